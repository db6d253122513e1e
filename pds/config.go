package pds

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	indigoid "github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/aipref"
	"github.com/hearth-social/hearth/internal/ratelimit"
	"github.com/hearth-social/hearth/pds/mail"
	"github.com/prometheus/client_golang/prometheus"
)

// OutboxPath is where mail goes in dataDir when no SMTP server is configured.
func OutboxPath(dataDir string) string { return filepath.Join(dataDir, "mail-outbox.jsonl") }

// DefaultMaxBlobBytes is the default cap on one blob: 300 MB, what the Bluesky app's
// video uploads need (the reference PDS's default is similar).
const DefaultMaxBlobBytes = 300 << 20

// Config is everything the PDS needs to run. cmd/hearth maps flags onto it.
type Config struct {
	// DataDir holds the database, blobs and keys.
	DataDir string
	// Hostname is the public host name (did:web:HOSTNAME is the server's DID).
	Hostname string
	// PublicURL is the URL that reaches this PDS (the #atproto_pds endpoint in DID
	// documents): https://HOSTNAME in production, http://localhost:PORT locally.
	PublicURL string
	// HandleDomains are the suffixes new handles may use, each starting with '.'.
	HandleDomains []string
	// InviteRequired makes createAccount demand an invite code.
	InviteRequired bool
	// Directory resolves handles and DIDs not hosted here (resolveHandle); nil builds
	// internal/resolve's cached directory on PLCURL (tests inject their own).
	Directory indigoid.Directory
	// HandleDNS and HandleHTTP, when set, replace the system DNS resolver and the
	// SSRF-guarded HTTP client the identity resolver uses for handle TXT lookups and for
	// https://HANDLE/.well-known/atproto-did and did:web fetches (tests point them at
	// servers they start). HandleRecheckInterval is how often each custom-domain handle
	// is verified again (0: DefaultHandleRecheckInterval; handle_domain.go).
	HandleDNS             *net.Resolver
	HandleHTTP            *http.Client
	HandleRecheckInterval time.Duration
	// Mailer sends the mailed tokens (PLC operations, account deletion, email and password
	// recovery, sign-in codes); nil writes them to the outbox OutboxPath in the data dir.
	Mailer mail.Mailer
	// AIUsageDefault is the operator's AI usage preference for bulk crawlers, a
	// Content-Usage expression such as "train-ai=n, train-genai=n" stated in /robots.txt
	// (draft-ietf-aipref-attach); "" states nothing. Accounts' own declarations are sent
	// with their data (ai_usage.go).
	AIUsageDefault string
	// AdminPassword guards admin methods (HTTP Basic admin:PASSWORD).
	AdminPassword string
	// JWTSecret, when set, is the HS256 key of session tokens; otherwise a random key is
	// generated on first start and kept in the database.
	JWTSecret string
	// PLCURL is the PLC directory accounts are registered with.
	PLCURL string
	// MaxRecordBytes caps one record's DAG-CBOR size (sync spec limit: 1,000,000).
	MaxRecordBytes int
	// MaxBodyBytes caps JSON request bodies.
	MaxBodyBytes int64
	// MaxImportBytes caps the CAR of one com.atproto.repo.importRepo (held in memory
	// while it is checked).
	MaxImportBytes int64
	// MaxBlobBytes caps one uploaded blob (advertised by describeServer); uploads are
	// streamed to disk, so the cap costs no memory.
	MaxBlobBytes int64
	// BlobGrace is how long an upload may stay unreferenced before it is deleted.
	BlobGrace time.Duration
	// QuotaRepoBytes and QuotaBlobBytes cap each account's storage: its records' bytes and
	// its uploaded blobs' bytes (0: unlimited, the default). Writes past a quota answer
	// StorageQuotaExceeded (quota.go); deletes always work.
	QuotaRepoBytes int64
	QuotaBlobBytes int64
	// PasswordCost is scrypt's N (0: 2^14). Tests lower it.
	PasswordCost int
	// EventRetention is how long firehose events are kept for cursor replay.
	EventRetention time.Duration
	// FirehoseMaxLag is how many events a live firehose subscriber may fall behind before
	// it is disconnected with ConsumerTooSlow (0: the sequencer's default).
	FirehoseMaxLag int
	// FirehoseWriteTimeout bounds each websocket write to a firehose subscriber (0: the
	// sequencer's default).
	FirehoseWriteTimeout time.Duration
	// Synchronous is the SQLite synchronous level ("FULL" unless set).
	Synchronous string
	// Version is reported by describeServer / _health.
	Version string
	// AppViewURL and AppViewDID name the default AppView: XRPC methods this PDS does not
	// serve are forwarded there when the request has no atproto-proxy header. Both empty
	// (the default) means no default AppView: such methods answer MethodNotImplemented.
	AppViewURL string
	AppViewDID string
	// AppViewCDNURLPattern is where the AppView serves account images, a format with
	// three %s (kind, DID, CID), e.g. https://cdn.bsky.app/img/%s/plain/%s/%s@jpeg. Views
	// this PDS builds itself (read-after-write) point there, or at getBlob when unset.
	AppViewCDNURLPattern string
	// ProxyAllowPrivate lets proxied requests and did:web fetches reach loopback and
	// private addresses. For development and tests only (it opens the proxy to SSRF).
	ProxyAllowPrivate bool
	// ServerName and ServerLogoURL brand the sign-in, consent and account pages
	// (pds/web, which checks them): empty name is "Hearth"; the logo is an https URL or
	// a path on this server (empty: the name's initial).
	ServerName    string
	ServerLogoURL string
	// OAuthClientHTTP fetches OAuth client metadata and jwks_uri documents; nil is the
	// SSRF-guarded client (tests inject one trusting their TLS server).
	OAuthClientHTTP *http.Client
	// RateLimits are the per-client request limits (ratelimit.go).
	RateLimits RateLimits
	// Crawlers are the relays (base URLs, crawler.NormalizeURL) this PDS announces itself
	// to; the admin API reports how they see it and asks them to crawl again
	// (relay_handlers.go). cmd/hearth runs the periodic announcements.
	Crawlers []string
	// Metrics is where the PDS and its store register their Prometheus collectors
	// (metrics.go; `hearth serve` passes the registry it serves on --metrics-listen).
	// nil registers into a private registry nobody scrapes.
	Metrics prometheus.Registerer
}

// RateLimits configures per-client rate limits. Each list holds every limit of one kind
// (e.g. per hour and per day); an empty list is no limit of that kind.
type RateLimits struct {
	// Disabled turns every limit off.
	Disabled bool
	// Bypass lists client addresses that are never limited: IPs ("127.0.0.1") or CIDR
	// prefixes ("10.0.0.0/8"). Validate rewrites each as a prefix.
	Bypass []string
	// BypassSecret, when set, exempts requests whose x-ratelimit-bypass header carries it
	// (migration tools, as with the reference PDS).
	BypassSecret string
	// TrustForwardedFor takes the client address from the last X-Forwarded-For entry
	// instead of the connection (only behind a reverse proxy that sets it).
	TrustForwardedFor bool
	// Global counts every XRPC request (proxied ones too) per client IP.
	Global []ratelimit.Limit
	// CreateAccount counts sign-ups per client IP.
	CreateAccount []ratelimit.Limit
	// CreateSession counts logins per identifier (lower-cased handle, email or DID):
	// createSession's and the pages' password sign-ins share one budget.
	CreateSession []ratelimit.Limit
	// PageSignIn counts password sign-ins through the pages (/oauth/authorize,
	// /account) per client IP.
	PageSignIn []ratelimit.Limit
	// RepoWrites counts record write points per account: create 3, update 2, delete 1.
	RepoWrites []ratelimit.Limit
	// UploadBlob counts uploads per account.
	UploadBlob []ratelimit.Limit
	// EmailRequests counts the methods that send an email or check an emailed token,
	// together, per account (per IP for the unauthenticated ones; requestPasswordReset
	// per IP and per address).
	EmailRequests []ratelimit.Limit
	// MaxKeys caps the clients each limit tracks at once (memory stays bounded; past it
	// the oldest window is forgotten).
	MaxKeys int
}

// DefaultConfig returns the local, offline defaults.
func DefaultConfig() Config {
	return Config{
		DataDir:        "./data",
		Hostname:       "localhost",
		PublicURL:      "http://localhost:2583",
		HandleDomains:  []string{".test"},
		MaxRecordBytes: 1_000_000,
		MaxBodyBytes:   2 << 20,
		MaxBlobBytes:   DefaultMaxBlobBytes,
		MaxImportBytes: 1 << 30,
		BlobGrace:      6 * time.Hour,
		EventRetention: 72 * time.Hour,
		Version:        "dev",
		// The global, login and repo-write limits are the reference PDS's. It allows 100
		// sign-ups per 5 minutes per IP; a small server wants far fewer (an operator can
		// raise them). Uploads and email requests get limits of their own.
		RateLimits: RateLimits{
			Global:        []ratelimit.Limit{{Points: 3000, Window: 5 * time.Minute}},
			CreateAccount: []ratelimit.Limit{{Points: 10, Window: 5 * time.Minute}, {Points: 100, Window: 24 * time.Hour}},
			CreateSession: []ratelimit.Limit{{Points: 30, Window: 5 * time.Minute}, {Points: 300, Window: 24 * time.Hour}},
			PageSignIn:    []ratelimit.Limit{{Points: 30, Window: 5 * time.Minute}, {Points: 300, Window: 24 * time.Hour}},
			RepoWrites:    []ratelimit.Limit{{Points: 5000, Window: time.Hour}, {Points: 35000, Window: 24 * time.Hour}},
			UploadBlob:    []ratelimit.Limit{{Points: 1000, Window: 24 * time.Hour}},
			EmailRequests: []ratelimit.Limit{{Points: 15, Window: time.Hour}, {Points: 50, Window: 24 * time.Hour}},
			MaxKeys:       ratelimit.DefaultMaxKeys,
		},
	}
}

// ServerDID is the PDS's own service DID.
func (c *Config) ServerDID() string { return "did:web:" + c.Hostname }

// Validate checks the configuration and fills derived defaults. Errors name the field.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("data dir must be set")
	}
	if c.Mailer == nil {
		c.Mailer = &mail.Outbox{Path: OutboxPath(c.DataDir)}
	}
	if _, err := syntax.ParseHandle(c.Hostname); err != nil && c.Hostname != "localhost" {
		return fmt.Errorf("hostname %q is not a valid host name: %w", c.Hostname, err)
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("public URL %q must be an http(s) URL", c.PublicURL)
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if len(c.HandleDomains) == 0 {
		return fmt.Errorf("at least one handle domain is required")
	}
	for i, d := range c.HandleDomains {
		d = strings.ToLower(strings.TrimSpace(d))
		if !strings.HasPrefix(d, ".") {
			d = "." + d
		}
		if _, err := syntax.ParseHandle("x" + d); err != nil {
			return fmt.Errorf("handle domain %q is not a valid domain suffix", d)
		}
		c.HandleDomains[i] = d
	}
	if c.AIUsageDefault != "" {
		norm, err := aipref.ParseUsageExpr(c.AIUsageDefault)
		if err != nil {
			return fmt.Errorf("AI usage default %q: %w", c.AIUsageDefault, err)
		}
		c.AIUsageDefault = norm
	}
	if c.PLCURL == "" {
		return fmt.Errorf("PLC directory URL must be set")
	}
	if u, err := url.Parse(c.PLCURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("PLC URL %q must be an http(s) URL", c.PLCURL)
	}
	c.PLCURL = strings.TrimRight(c.PLCURL, "/")
	// DefaultConfig alone owns the defaults: a zero limit here is a mistake, not a
	// request for the default.
	for _, l := range []struct {
		name string
		ok   bool
	}{
		{"max record size", c.MaxRecordBytes > 0}, {"max request body size", c.MaxBodyBytes > 0},
		{"max blob size", c.MaxBlobBytes > 0}, {"max import size", c.MaxImportBytes > 0}, {"blob grace period", c.BlobGrace > 0},
		{"event retention", c.EventRetention > 0},
	} {
		if !l.ok {
			return fmt.Errorf("%s must be positive (start from pds.DefaultConfig)", l.name)
		}
	}
	if c.QuotaRepoBytes < 0 || c.QuotaBlobBytes < 0 {
		return fmt.Errorf("storage quotas must be 0 (unlimited) or positive")
	}
	if c.AppViewURL != "" || c.AppViewDID != "" {
		u, err := url.Parse(c.AppViewURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("AppView URL %q must be an http(s) URL (set it together with the AppView DID)", c.AppViewURL)
		}
		if _, err := syntax.ParseDID(c.AppViewDID); err != nil {
			return fmt.Errorf("AppView DID %q is not a valid DID (set it together with the AppView URL)", c.AppViewDID)
		}
		c.AppViewURL = strings.TrimRight(c.AppViewURL, "/")
	}
	if p := c.AppViewCDNURLPattern; p != "" {
		u, err := url.Parse(fmt.Sprintf(p, "kind", "did", "cid"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Count(p, "%s") != 3 || strings.Count(p, "%") != 3 {
			return fmt.Errorf("AppView CDN URL pattern %q must be an http(s) URL with three %%s (kind, DID, CID) and no other %%", p)
		}
	}
	return c.RateLimits.validate()
}

// validate checks the rate limits and writes every bypass entry as a CIDR prefix.
func (rl *RateLimits) validate() error {
	for _, kind := range []struct {
		name   string
		limits []ratelimit.Limit
	}{
		{"global", rl.Global}, {"createAccount", rl.CreateAccount}, {"createSession", rl.CreateSession}, {"page sign-in", rl.PageSignIn},
		{"repo writes", rl.RepoWrites}, {"uploadBlob", rl.UploadBlob}, {"email requests", rl.EmailRequests},
	} {
		for _, l := range kind.limits {
			if err := l.Validate(); err != nil {
				return fmt.Errorf("%s rate limit: %w", kind.name, err)
			}
		}
	}
	if rl.MaxKeys <= 0 {
		return fmt.Errorf("rate limits: max tracked clients must be positive (start from pds.DefaultConfig)")
	}
	for i, raw := range rl.Bypass {
		p, err := parseBypass(raw)
		if err != nil {
			return fmt.Errorf("rate limit bypass %q: want an IP address or a CIDR prefix", raw)
		}
		rl.Bypass[i] = p.String()
	}
	return nil
}

// parseBypass reads an IP ("127.0.0.1", a one-address prefix) or a CIDR prefix.
func parseBypass(raw string) (netip.Prefix, error) {
	raw = strings.TrimSpace(raw)
	if strings.Contains(raw, "/") {
		p, err := netip.ParsePrefix(raw)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			// Client addresses are compared unmapped (::ffff:10.0.0.1 is 10.0.0.1).
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(raw)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

package pds

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

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
	// MaxBlobBytes caps one uploaded blob (advertised by describeServer).
	MaxBlobBytes int64
	// BlobGrace is how long an upload may stay unreferenced before it is deleted.
	BlobGrace time.Duration
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
	// ProxyAllowPrivate lets proxied requests and did:web fetches reach loopback and
	// private addresses. For development and tests only (it opens the proxy to SSRF).
	ProxyAllowPrivate bool
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
		MaxBlobBytes:   100 << 20,
		BlobGrace:      6 * time.Hour,
		EventRetention: 72 * time.Hour,
		Version:        "dev",
	}
}

// ServerDID is the PDS's own service DID.
func (c *Config) ServerDID() string { return "did:web:" + c.Hostname }

// Validate checks the configuration and fills derived defaults. Errors name the field.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("data dir must be set")
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
	if c.PLCURL == "" {
		return fmt.Errorf("PLC directory URL must be set")
	}
	if u, err := url.Parse(c.PLCURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("PLC URL %q must be an http(s) URL", c.PLCURL)
	}
	c.PLCURL = strings.TrimRight(c.PLCURL, "/")
	if c.MaxRecordBytes <= 0 {
		c.MaxRecordBytes = 1_000_000
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 2 << 20
	}
	if c.MaxBlobBytes <= 0 {
		c.MaxBlobBytes = 100 << 20
	}
	if c.BlobGrace <= 0 {
		c.BlobGrace = 6 * time.Hour
	}
	if c.EventRetention <= 0 {
		c.EventRetention = 72 * time.Hour
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
	return nil
}

package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/hearth-social/hearth/internal/datadir"
	"github.com/hearth-social/hearth/internal/metrics"
	"github.com/hearth-social/hearth/internal/ratelimit"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds"
	"github.com/hearth-social/hearth/pds/crawler"
	"github.com/hearth-social/hearth/pds/mail"
	"github.com/hearth-social/hearth/pds/plc"
	"github.com/urfave/cli/v2"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the PDS (with an embedded PLC directory unless --plc-url is set)",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "data-dir", Value: "./data", Usage: "where the databases, blobs and keys live", EnvVars: []string{"HEARTH_DATA_DIR"}},
			&cli.StringFlag{Name: "smtp-url", Usage: "SMTP server for the mailed tokens: smtps://USER:PASS@HOST:465 (TLS) or smtp://USER:PASS@HOST:587 (STARTTLS); unset writes mail to DATA-DIR/mail-outbox.jsonl (see `hearth admin mail`)", EnvVars: []string{"HEARTH_SMTP_URL"}},
			&cli.StringFlag{Name: "mail-from", Usage: "sender address of the PDS's mail (required with --smtp-url)", EnvVars: []string{"HEARTH_MAIL_FROM"}},
			&cli.Int64Flag{Name: "max-import-size", Value: 1 << 30, Usage: "largest repository CAR an arriving account may import, in bytes", EnvVars: []string{"HEARTH_MAX_IMPORT_SIZE"}},
			&cli.Int64Flag{Name: "max-blob-size", Value: pds.DefaultMaxBlobBytes, Usage: "largest blob (image, video) one upload may be, in bytes", EnvVars: []string{"HEARTH_MAX_BLOB_SIZE"}},
			&cli.Int64Flag{Name: "quota-repo-bytes", Usage: "storage quota of each account's records, in bytes; writes past it are refused (0: unlimited)", EnvVars: []string{"HEARTH_QUOTA_REPO_BYTES"}},
			&cli.Int64Flag{Name: "quota-blob-bytes", Usage: "storage quota of each account's blobs (images, video), in bytes; uploads past it are refused (0: unlimited)", EnvVars: []string{"HEARTH_QUOTA_BLOB_BYTES"}},
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:2583", Usage: "address the PDS listens on", EnvVars: []string{"HEARTH_LISTEN"}},
			&cli.StringFlag{Name: "hostname", Value: "localhost", Usage: "public host name of the PDS (its DID is did:web:HOSTNAME)", EnvVars: []string{"HEARTH_HOSTNAME"}},
			&cli.StringFlag{Name: "public-url", Usage: "URL that reaches this PDS (default https://HOSTNAME, or http://localhost:PORT for localhost)", EnvVars: []string{"HEARTH_PUBLIC_URL"}},
			&cli.StringFlag{Name: "handle-domains", Value: ".test", Usage: "comma-separated handle suffixes offered to new accounts", EnvVars: []string{"HEARTH_HANDLE_DOMAINS"}},
			&cli.BoolFlag{Name: "invite-required", Usage: "require an invite code to create an account", EnvVars: []string{"HEARTH_INVITE_REQUIRED"}},
			&cli.StringFlag{Name: "admin-password", Usage: "admin password (generated and kept in the data dir if unset)", EnvVars: []string{"HEARTH_ADMIN_PASSWORD"}},
			&cli.StringFlag{Name: "jwt-secret", Usage: "HS256 key for session tokens (default: generated and kept in the database)", EnvVars: []string{"HEARTH_JWT_SECRET"}},
			&cli.StringFlag{Name: "plc-url", Usage: "external PLC directory URL (default: run the embedded one)", EnvVars: []string{"HEARTH_PLC_URL"}},
			&cli.StringFlag{Name: "plc-listen", Value: "127.0.0.1:2582", Usage: "address of the embedded PLC directory", EnvVars: []string{"HEARTH_PLC_LISTEN"}},
			&cli.StringFlag{Name: "debug-listen", Usage: "serve Go pprof profiles on this address (loopback only; off by default)", EnvVars: []string{"HEARTH_DEBUG_LISTEN"}},
			&cli.StringFlag{Name: "server-name", Value: "Hearth", Usage: "name shown on the sign-in, consent and account pages", EnvVars: []string{"HEARTH_SERVER_NAME"}},
			&cli.StringFlag{Name: "server-logo-url", Usage: "logo on those pages: an https URL or a path on this server, e.g. /logo.png (unset: the name's initial)", EnvVars: []string{"HEARTH_SERVER_LOGO_URL"}},
			&cli.StringFlag{Name: "ai-usage-default", Usage: "the operator's AI usage preference for bulk crawlers, stated in /robots.txt (e.g. \"train-ai=n, train-genai=n\"); accounts' own declarations ride on their reads", EnvVars: []string{"HEARTH_AI_USAGE_DEFAULT"}},
			&cli.DurationFlag{Name: "handle-recheck-every", Value: pds.DefaultHandleRecheckInterval, Usage: "how often each custom-domain handle is verified again (DNS TXT or https://HANDLE/.well-known/atproto-did)", EnvVars: []string{"HEARTH_HANDLE_RECHECK_EVERY"}},
			&cli.DurationFlag{Name: "event-retention", Value: 72 * time.Hour, Usage: "how long firehose events are kept for cursor replay", EnvVars: []string{"HEARTH_EVENT_RETENTION"}},
			&cli.StringFlag{Name: "appview-url", Usage: "default AppView that methods this PDS does not serve are proxied to, e.g. https://api.bsky.app (unset: no default)", EnvVars: []string{"HEARTH_APPVIEW_URL"}},
			&cli.StringFlag{Name: "appview-did", Usage: "service DID of the default AppView, e.g. did:web:api.bsky.app", EnvVars: []string{"HEARTH_APPVIEW_DID"}},
			&cli.StringFlag{Name: "appview-cdn-url-pattern", Usage: "where the AppView serves images, three %s for kind, DID and CID, e.g. https://cdn.bsky.app/img/%s/plain/%s/%s@jpeg (unset: this PDS's getBlob)", EnvVars: []string{"HEARTH_APPVIEW_CDN_URL_PATTERN"}},
			&cli.BoolFlag{Name: "proxy-allow-private", Usage: "let proxied requests reach loopback and private addresses (development only)", EnvVars: []string{"HEARTH_PROXY_ALLOW_PRIVATE"}},
			&cli.StringSliceFlag{Name: "crawler", Usage: "relay URL to announce this PDS to with requestCrawl, at start-up and hourly (repeatable)", EnvVars: []string{"HEARTH_CRAWLERS"}},
			feedListenFlag(), feedHostnameFlag(), feedAllowPrivateFlag(), feedPublishersFlag(), feedLabelNoAITrainingFlag(), feedC2PATrustListFlag(), feedFirehoseFlag("firehose the feed generator reads (default: this PDS's, on loopback)"), feedPublisherFlag(), noFeedgenFlag(),
			dashboardListenFlag(), dashboardAllowRemoteFlag(), dashboardSampleEveryFlag(),
		}, append(append(append(rateLimitFlags(), serveBackupFlags()...), metricsFlags()...), tlsFlags()...)...),
		Action: runServe,
	}
}

// serveConfig is every flag of `hearth serve`, read once and checked.
type serveConfig struct {
	pds       pds.Config
	listen    string
	plcListen string
	embedPLC  bool
	crawlers  []string    // normalized relay base URLs
	tls       *acmeConfig // --tls-acme (nil: off; tls.go)
}

func readServeConfig(cctx *cli.Context) (*serveConfig, error) {
	sc := &serveConfig{pds: pds.DefaultConfig()}
	c := &sc.pds
	c.Version = version
	c.DataDir = cctx.String("data-dir")
	if c.DataDir == "" {
		return nil, errors.New("--data-dir (HEARTH_DATA_DIR) must not be empty")
	}
	sc.listen = cctx.String("listen")
	if _, _, err := net.SplitHostPort(sc.listen); err != nil {
		return nil, fmt.Errorf("--listen (HEARTH_LISTEN) %q: want host:port: %w", sc.listen, err)
	}
	c.Hostname = strings.ToLower(strings.TrimSpace(cctx.String("hostname")))
	c.PublicURL = cctx.String("public-url")
	if c.PublicURL == "" {
		if c.Hostname == "localhost" {
			_, port, _ := net.SplitHostPort(sc.listen)
			c.PublicURL = "http://localhost:" + port
		} else {
			c.PublicURL = "https://" + c.Hostname
		}
	}
	c.HandleDomains = nil
	for _, d := range strings.Split(cctx.String("handle-domains"), ",") {
		if d = strings.TrimSpace(d); d != "" {
			c.HandleDomains = append(c.HandleDomains, d)
		}
	}
	c.InviteRequired = cctx.Bool("invite-required")
	c.AdminPassword = cctx.String("admin-password")
	c.JWTSecret = cctx.String("jwt-secret")
	if c.JWTSecret != "" && len(c.JWTSecret) < 16 {
		return nil, errors.New("--jwt-secret (HEARTH_JWT_SECRET) must be at least 16 characters")
	}
	c.EventRetention = cctx.Duration("event-retention")
	c.HandleRecheckInterval = cctx.Duration("handle-recheck-every")
	c.AIUsageDefault = cctx.String("ai-usage-default")
	c.ServerName = strings.TrimSpace(cctx.String("server-name"))
	c.ServerLogoURL = strings.TrimSpace(cctx.String("server-logo-url"))
	if u := cctx.String("smtp-url"); u != "" {
		m, err := mail.New(mail.Config{SMTPURL: u, From: cctx.String("mail-from")})
		if err != nil {
			// The URL may hold a password: name the flag, not the value.
			return nil, fmt.Errorf("--smtp-url (HEARTH_SMTP_URL): %w", err)
		}
		c.Mailer = m
	}
	if c.MaxImportBytes = cctx.Int64("max-import-size"); c.MaxImportBytes <= 0 {
		return nil, errors.New("--max-import-size (HEARTH_MAX_IMPORT_SIZE) must be a positive number of bytes")
	}
	if c.MaxBlobBytes = cctx.Int64("max-blob-size"); c.MaxBlobBytes <= 0 {
		return nil, errors.New("--max-blob-size (HEARTH_MAX_BLOB_SIZE) must be a positive number of bytes")
	}
	if c.QuotaRepoBytes = cctx.Int64("quota-repo-bytes"); c.QuotaRepoBytes < 0 {
		return nil, errors.New("--quota-repo-bytes (HEARTH_QUOTA_REPO_BYTES) must be 0 (unlimited) or a positive number of bytes")
	}
	if c.QuotaBlobBytes = cctx.Int64("quota-blob-bytes"); c.QuotaBlobBytes < 0 {
		return nil, errors.New("--quota-blob-bytes (HEARTH_QUOTA_BLOB_BYTES) must be 0 (unlimited) or a positive number of bytes")
	}
	c.AppViewURL = strings.TrimSpace(cctx.String("appview-url"))
	c.AppViewDID = strings.TrimSpace(cctx.String("appview-did"))
	c.AppViewCDNURLPattern = strings.TrimSpace(cctx.String("appview-cdn-url-pattern"))
	c.ProxyAllowPrivate = cctx.Bool("proxy-allow-private")
	if err := readRateLimitFlags(cctx, &c.RateLimits); err != nil {
		return nil, err
	}
	for _, raw := range cctx.StringSlice("crawler") {
		if strings.TrimSpace(raw) == "" {
			continue
		}
		u, err := crawler.NormalizeURL(raw)
		if err != nil {
			return nil, fmt.Errorf("--crawler (HEARTH_CRAWLERS): %w", err)
		}
		sc.crawlers = append(sc.crawlers, u)
	}
	c.Crawlers = sc.crawlers // the admin API's relay status (pds/relay_handlers.go)
	ac, err := readTLSFlags(cctx, c.Hostname)
	if err != nil {
		return nil, err
	}
	sc.tls = ac
	c.PLCURL = cctx.String("plc-url")
	sc.plcListen = cctx.String("plc-listen")
	if c.PLCURL == "" {
		sc.embedPLC = true
		if _, _, err := net.SplitHostPort(sc.plcListen); err != nil {
			return nil, fmt.Errorf("--plc-listen (HEARTH_PLC_LISTEN) %q: want host:port: %w", sc.plcListen, err)
		}
		c.PLCURL = "http://" + sc.plcListen // replaced by the bound address below
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration (check --hostname, --public-url, --handle-domains, --plc-url, --appview-url, --appview-did): %w", err)
	}
	return sc, nil
}

// adminPassword returns the configured admin password, or the one kept in the data dir,
// generating it on first start.
func adminPassword(dataDir, configured string) (string, bool, error) {
	if configured != "" {
		return configured, false, nil
	}
	path := filepath.Join(dataDir, "admin-password")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), false, nil
	}
	raw := make([]byte, 18)
	if _, err := rand.Read(raw); err != nil {
		return "", false, err
	}
	pw := base64.RawURLEncoding.EncodeToString(raw)
	if err := os.MkdirAll(dataDir, datadir.DirMode); err != nil {
		return "", false, err
	}
	if err := datadir.WriteFile(path, []byte(pw+"\n")); err != nil {
		return "", false, fmt.Errorf("saving admin password: %w", err)
	}
	return pw, true, nil
}

func runServe(cctx *cli.Context) error {
	ctx := cctx.Context
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft heap limit keeps a small host's footprint flat through bursts (scrypt
		// hashing, big exports) instead of letting the heap double before each GC.
		debug.SetMemoryLimit(100 << 20)
	}
	log, err := newLogger(cctx)
	if err != nil {
		return err
	}
	sc, err := readServeConfig(cctx)
	if err != nil {
		return err
	}
	dashAddr, err := readDashboardListen(cctx)
	if err != nil {
		return err
	}
	out := cctx.App.Writer
	// Before anything reads or writes a secret there: the data dir is 0700, its files 0600.
	if err := datadir.Prepare(sc.pds.DataDir, log); err != nil {
		return fmt.Errorf("--data-dir (HEARTH_DATA_DIR) %s: %w", sc.pds.DataDir, err)
	}
	pw, generated, err := adminPassword(sc.pds.DataDir, sc.pds.AdminPassword)
	if err != nil {
		return err
	}
	sc.pds.AdminPassword = pw

	rt := newRuntime(log)
	defer rt.closeAll() // when start-up fails before Run; Run closes them itself
	if sc.embedPLC {
		dir, err := plc.OpenServer(ctx, filepath.Join(sc.pds.DataDir, "plc.sqlite"), log.With("component", "plc"))
		if err != nil {
			return fmt.Errorf("opening the embedded PLC directory: %w", err)
		}
		rt.closeLast("plc directory", dir.Close)
		ln, err := net.Listen("tcp", sc.plcListen)
		if err != nil {
			return fmt.Errorf("--plc-listen (HEARTH_PLC_LISTEN) %s: %w", sc.plcListen, err)
		}
		sc.pds.PLCURL = "http://" + ln.Addr().String()
		rt.serveHTTP("plc directory", ln, dir.Handler())
	}

	// One metrics registry, owned here: components register into it (--metrics-listen).
	reg := newServeRegistry(sc.pds.DataDir)
	sc.pds.Metrics = reg
	srv, err := pds.New(ctx, sc.pds, log)
	if err != nil {
		return err
	}
	rt.closeLast("pds", srv.Close)
	rt.work("pds background (retention, blob GC, scheduled deletions)", srv.Run)
	ln, err := net.Listen("tcp", sc.listen)
	if err != nil {
		return fmt.Errorf("--listen (HEARTH_LISTEN) %s: %w", sc.listen, err)
	}
	h := srv.Handler()
	rt.serveHTTP("pds", ln, h)
	var tlsLine string
	if sc.tls != nil {
		if tlsLine, err = startACME(sc.tls, sc.pds.DataDir, version, srv.CertificatePolicy, h, rt, log); err != nil {
			return err
		}
	}
	// Firehose subscribers get close frames before the HTTP servers drain.
	rt.stream("firehose", srv.Shutdown)
	feed, err := startServeFeed(ctx, cctx, log, sc.pds, ln.Addr(), rt)
	if err != nil {
		return err
	}
	if feed != nil && cctx.String("feed-firehose") == "" {
		registerIngestLag(reg, srv, feed)
	}

	// Announce the public host to relays once the PDS is listening.
	if len(sc.crawlers) > 0 {
		pub, _ := url.Parse(sc.pds.PublicURL) // checked by Validate
		rt.work("crawler", func(ctx context.Context) error {
			crawler.Run(ctx, log.With("component", "crawler"), pub.Host, sc.crawlers, crawler.DefaultInterval, srv.Activations)
			return nil
		})
	}

	if dl := cctx.String("debug-listen"); dl != "" {
		host, _, err := net.SplitHostPort(dl)
		if err != nil || !(host == "127.0.0.1" || host == "localhost" || host == "::1") {
			return fmt.Errorf("--debug-listen (HEARTH_DEBUG_LISTEN) %q: must be a loopback host:port", dl)
		}
		dln, err := net.Listen("tcp", dl)
		if err != nil {
			return fmt.Errorf("--debug-listen (HEARTH_DEBUG_LISTEN) %s: %w", dl, err)
		}
		rt.serveHTTP("debug", dln, debugMux())
		fmt.Fprintf(out, "  pprof:          http://%s/debug/pprof/\n", dln.Addr())
	}
	mln, err := listenMetrics(cctx)
	if err != nil {
		return err
	}
	if mln != nil {
		rt.serveHTTP("metrics", mln, metrics.Handler(reg))
		fmt.Fprintf(out, "  metrics:        http://%s/metrics\n", mln.Addr())
	}
	fmt.Fprintf(out, "Hearth %s\n", version)
	fmt.Fprintf(out, "  PDS:            http://%s (public URL %s, DID %s)\n", ln.Addr(), sc.pds.PublicURL, sc.pds.ServerDID())
	fmt.Fprintf(out, "  firehose:       ws://%s/xrpc/com.atproto.sync.subscribeRepos\n", ln.Addr())
	if sc.embedPLC {
		fmt.Fprintf(out, "  PLC directory:  %s (embedded)\n", sc.pds.PLCURL)
	} else {
		fmt.Fprintf(out, "  PLC directory:  %s\n", sc.pds.PLCURL)
	}
	fmt.Fprintf(out, "  handles:        *%s\n", strings.Join(sc.pds.HandleDomains, ", *"))
	fmt.Fprintf(out, "  data dir:       %s\n", sc.pds.DataDir)
	printTLS(out, tlsLine)
	feed.print(out)
	if len(sc.crawlers) > 0 {
		fmt.Fprintf(out, "  crawlers:       %s\n", strings.Join(sc.crawlers, ", "))
	}
	if err := startDashboard(cctx, log, out, dashAddr, sc, dashboardDeps{srv: srv, feed: feed, metrics: reg, crawlers: sc.crawlers}, rt); err != nil {
		return err
	}
	if generated {
		fmt.Fprintf(out, "  admin password: %s (generated; kept in %s)\n", pw, filepath.Join(sc.pds.DataDir, "admin-password"))
	}
	if err := startScheduledBackups(cctx, log, sc.pds.DataDir, rt); err != nil {
		return err
	}

	// Start-up (migrations, the lexicon catalog, key loading) leaves garbage the heap
	// would otherwise hand back to the OS only slowly; return it now, once.
	debug.FreeOSMemory()
	return rt.Run(ctx)
}

// debugMux serves pprof on its own mux (never on the PDS listener).
func debugMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// rateLimitKind is a --rate-limit-KIND flag: it takes POINTS/WINDOW[,...] or "off";
// unset keeps pds.DefaultConfig's limits, which the usage text shows.
type rateLimitKind struct {
	flag, env, usage string
	field            func(*pds.RateLimits) *[]ratelimit.Limit
}

func rateLimitKinds() []rateLimitKind {
	return []rateLimitKind{
		{"rate-limit-global", "HEARTH_RATE_LIMIT_GLOBAL", "requests per client IP, every XRPC method", func(r *pds.RateLimits) *[]ratelimit.Limit { return &r.Global }},
		{"rate-limit-create-account", "HEARTH_RATE_LIMIT_CREATE_ACCOUNT", "sign-ups per client IP", func(r *pds.RateLimits) *[]ratelimit.Limit { return &r.CreateAccount }},
		{"rate-limit-create-session", "HEARTH_RATE_LIMIT_CREATE_SESSION", "logins per identifier (handle, email or DID), createSession and the sign-in pages together", func(r *pds.RateLimits) *[]ratelimit.Limit { return &r.CreateSession }},
		{"rate-limit-page-sign-in", "HEARTH_RATE_LIMIT_PAGE_SIGN_IN", "password sign-ins through the pages (/oauth/authorize, /account) per client IP", func(r *pds.RateLimits) *[]ratelimit.Limit { return &r.PageSignIn }},
		{"rate-limit-repo-writes", "HEARTH_RATE_LIMIT_REPO_WRITES", "record write points per account (create 3, update 2, delete 1)", func(r *pds.RateLimits) *[]ratelimit.Limit { return &r.RepoWrites }},
		{"rate-limit-upload-blob", "HEARTH_RATE_LIMIT_UPLOAD_BLOB", "blob uploads per account", func(r *pds.RateLimits) *[]ratelimit.Limit { return &r.UploadBlob }},
		{"rate-limit-email", "HEARTH_RATE_LIMIT_EMAIL", "email and emailed-token requests per account (or IP)", func(r *pds.RateLimits) *[]ratelimit.Limit { return &r.EmailRequests }},
	}
}

// minBypassSecret keeps the bypass secret out of guessing range: the bypass is checked
// before any limit, so guesses are not limited.
const minBypassSecret = 16

func rateLimitFlags() []cli.Flag {
	def := pds.DefaultConfig().RateLimits
	flags := []cli.Flag{
		&cli.BoolFlag{Name: "no-rate-limits", Usage: "turn every rate limit off", EnvVars: []string{"HEARTH_NO_RATE_LIMITS"}},
		&cli.StringFlag{Name: "rate-limit-bypass", Usage: "comma-separated client IPs or CIDR prefixes that are never rate limited, e.g. 127.0.0.1", EnvVars: []string{"HEARTH_RATE_LIMIT_BYPASS"}},
		&cli.StringFlag{Name: "rate-limit-bypass-secret", Usage: fmt.Sprintf("requests with this value in the x-ratelimit-bypass header are never rate limited (at least %d characters)", minBypassSecret), EnvVars: []string{"HEARTH_RATE_LIMIT_BYPASS_SECRET"}},
		&cli.BoolFlag{Name: "trust-forwarded-for", Usage: "take the client IP from the last X-Forwarded-For entry (only behind a reverse proxy that sets it)", EnvVars: []string{"HEARTH_TRUST_FORWARDED_FOR"}},
	}
	for _, k := range rateLimitKinds() {
		usage := fmt.Sprintf("%s: POINTS/WINDOW[,...] or off (default %s)", k.usage, ratelimit.FormatLimits(*k.field(&def)))
		flags = append(flags, &cli.StringFlag{Name: k.flag, Usage: usage, EnvVars: []string{k.env}})
	}
	return flags
}

func readRateLimitFlags(cctx *cli.Context, rl *pds.RateLimits) error {
	rl.Disabled = cctx.Bool("no-rate-limits")
	rl.TrustForwardedFor = cctx.Bool("trust-forwarded-for")
	rl.Bypass = nil
	for _, raw := range strings.Split(cctx.String("rate-limit-bypass"), ",") {
		if raw = strings.TrimSpace(raw); raw == "" {
			continue
		}
		_, perr := netip.ParsePrefix(raw)
		if _, aerr := netip.ParseAddr(raw); aerr != nil && perr != nil {
			return fmt.Errorf("--rate-limit-bypass (HEARTH_RATE_LIMIT_BYPASS) %q: want an IP address or a CIDR prefix", raw)
		}
		rl.Bypass = append(rl.Bypass, raw)
	}
	rl.BypassSecret = cctx.String("rate-limit-bypass-secret")
	if rl.BypassSecret != "" && len(rl.BypassSecret) < minBypassSecret {
		return fmt.Errorf("--rate-limit-bypass-secret (HEARTH_RATE_LIMIT_BYPASS_SECRET) must be at least %d characters", minBypassSecret)
	}
	for _, k := range rateLimitKinds() {
		if !cctx.IsSet(k.flag) {
			continue
		}
		ls, err := ratelimit.ParseLimits(cctx.String(k.flag))
		if err != nil {
			return fmt.Errorf("--%s (%s): %w", k.flag, k.env, err)
		}
		*k.field(rl) = ls
	}
	return nil
}

// newHTTPServer is how every Hearth listener serves: headers within 10 s, request bodies
// cut when they stall for xrpc.BodyIdleTimeout (long uploads that keep moving go on),
// idle keep-alive connections closed after 2 min. There is no ReadTimeout/WriteTimeout:
// they would end firehose websockets and large blob transfers.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           xrpc.BodyDeadline(xrpc.BodyIdleTimeout, h),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

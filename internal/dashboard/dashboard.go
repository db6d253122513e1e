// Package dashboard is the operator dashboard of `hearth serve`: server-rendered pages
// on a listener of their own (loopback by default) for the person who runs the PDS.
// Accounts (search, status, storage, takedown and restore, password reset), invite
// codes, the moderation log, server health charts sampled from the Prometheus
// registry, firehose and relay status, and a feed explorer showing the feed
// generator's verdicts with their evidence.
//
// Every page needs the admin password (the one the admin API takes as HTTP Basic),
// entered once in a sign-in form that is rate limited per client address; a signed-in
// browser holds an HttpOnly, SameSite=Strict session cookie (Secure over https). Every
// form carries the session's CSRF token, compared in constant time, and cross-site
// requests are refused by Origin and Sec-Fetch-Site. Pages are html/template with an
// embedded stylesheet, charts are SVG drawn here, and the Content-Security-Policy
// allows nothing but this origin's stylesheet: no scripts, no external resources.
//
// The dashboard calls the PDS's admin code in-process (Admin, implemented by
// *pds.Server) and the feed generator's explainPost code (Feed); it stores nothing.
package dashboard

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hearth-social/hearth/feedgen"
	"github.com/hearth-social/hearth/internal/htmlpage"
	"github.com/hearth-social/hearth/internal/ratelimit"
	"github.com/hearth-social/hearth/pds"
	"github.com/hearth-social/hearth/pds/store"
	"github.com/prometheus/client_golang/prometheus"
)

//go:embed assets
var assets embed.FS

// DefaultListen is where the dashboard listens unless told otherwise.
const DefaultListen = "127.0.0.1:2585"

// Admin is the PDS's admin code, in-process (*pds.Server).
type Admin interface {
	AdminSearchAccounts(ctx context.Context, term, cursor string, limit int) ([]pds.AccountView, string, error)
	AdminAccountInfo(ctx context.Context, did string) (*pds.AccountView, error)
	AdminSetAccountTakedown(ctx context.Context, did string, applied bool, actor, reason string) error
	AdminResetPassword(ctx context.Context, did string) (string, error)
	AdminInviteCodes(ctx context.Context, limit int) ([]pds.InviteCodeView, error)
	AdminDisableInviteCodes(ctx context.Context, codes []string) error
	AdminCreateInviteCode(ctx context.Context, forAccount string, uses int) (string, error)
	AdminModerationLog(ctx context.Context, did string, before int64, limit int) ([]store.ModerationEntry, error)
	AdminActor(r *http.Request) string
	Firehose(ctx context.Context) (pds.FirehoseStatus, error)
}

// Feed is the feed generator's index and verdicts (*feedgen.Service).
type Feed interface {
	RecentExplained(ctx context.Context, before int64, limit int) ([]feedgen.ExplainedPost, error)
}

// RelayRow is one relay's view of this PDS.
type RelayRow struct {
	Relay string
	// Status is what the relay says of this host (e.g. active), or "" when it could not
	// be asked; Err then says why.
	Status    string
	Seq       int64
	HasSeq    bool
	Err       string
	CheckedAt time.Time
}

// Relays reports what each configured relay knows of this PDS.
type Relays interface {
	RelayStatus(ctx context.Context) ([]RelayRow, error)
	// RequestCrawl asks every relay to crawl this PDS now (requestCrawl) and returns,
	// per relay, "" or why it refused.
	RequestCrawl(ctx context.Context) map[string]string
}

// Config is what the dashboard is built from.
type Config struct {
	Admin Admin
	// Feed is nil when serve runs without the feed generator.
	Feed Feed
	// Relays is nil when no relay status is available.
	Relays Relays
	// Crawlers are the relays this PDS announces itself to (shown when Relays is nil).
	Crawlers []string
	// Metrics is sampled for the health charts (nil: no charts).
	Metrics prometheus.Gatherer
	// Password is the admin password.
	Password   string
	ServerName string
	Version    string
	// SignInLimits bound the sign-in attempts per client address (nil: unlimited).
	SignInLimits []ratelimit.Limit
	// SampleEvery and Window are the charts' resolution and span (default 10 s, 1 h).
	SampleEvery, Window time.Duration
	Log                 *slog.Logger
}

// Dashboard serves the pages and samples the metrics.
type Dashboard struct {
	cfg      Config
	log      *slog.Logger
	pages    *htmlpage.Set
	sessions *sessions
	signIns  ratelimit.Set
	samples  *sampler

	// cancel stops Run (Close); runDone is closed when Run returned.
	mu      sync.Mutex
	cancel  context.CancelFunc
	runDone chan struct{}
}

// New checks cfg and parses the templates.
func New(cfg Config) (*Dashboard, error) {
	if cfg.Admin == nil {
		return nil, errors.New("dashboard: Admin is required")
	}
	if cfg.Password == "" {
		return nil, errors.New("dashboard: the admin password is required")
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "Hearth"
	}
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = 10 * time.Second
	}
	if cfg.Window <= 0 {
		cfg.Window = time.Hour
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Dashboard{cfg: cfg, log: log, sessions: newSessions(maxSessions, sessionTTL),
		signIns: ratelimit.NewSet(cfg.SignInLimits, ratelimit.Options{}), samples: newSampler(cfg.Metrics, defaultSeries(), cfg.SampleEvery, cfg.Window)}
	var err error
	if d.pages, err = htmlpage.Parse(assets, funcs, log, pageNames...); err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	return d, nil
}

// CheckListen refuses an address that is not host:port on a loopback host unless
// allowRemote: the dashboard is a password away from every account.
func CheckListen(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want host:port: %w", addr, err)
	}
	if allowRemote {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%q is not a loopback address (127.0.0.1, ::1, localhost); reach the dashboard through an SSH tunnel, or allow it explicitly", addr)
}

// Run samples the metrics for the charts until ctx is done or Close is called.
func (d *Dashboard) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.runDone != nil {
		d.mu.Unlock()
		return errors.New("dashboard: Run called twice")
	}
	ctx, d.cancel = context.WithCancel(ctx)
	d.runDone = make(chan struct{})
	done := d.runDone
	d.mu.Unlock()
	defer close(done)
	d.samples.run(ctx)
	return nil
}

// Close stops Run and waits for it.
func (d *Dashboard) Close() error {
	d.mu.Lock()
	cancel, done := d.cancel, d.runDone
	d.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return nil
}

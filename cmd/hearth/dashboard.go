package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/hearth-social/hearth/internal/dashboard"
	"github.com/hearth-social/hearth/pds"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"
)

func dashboardListenFlag() cli.Flag {
	return &cli.StringFlag{Name: "dashboard-listen", Value: dashboard.DefaultListen, Usage: `address of the operator dashboard (admin password required); loopback only unless --dashboard-allow-remote; "" or off disables it`, EnvVars: []string{"HEARTH_DASHBOARD_LISTEN"}}
}

func dashboardSampleEveryFlag() cli.Flag {
	return &cli.DurationFlag{Name: "dashboard-sample-every", Value: 10 * time.Second, Usage: "how often the dashboard samples the metrics for its one-hour health charts", EnvVars: []string{"HEARTH_DASHBOARD_SAMPLE_EVERY"}}
}

func dashboardAllowRemoteFlag() cli.Flag {
	return &cli.BoolFlag{Name: "dashboard-allow-remote", Usage: "let --dashboard-listen be a non-loopback address (put TLS in front of it: the password and session cookie cross the network)", EnvVars: []string{"HEARTH_DASHBOARD_ALLOW_REMOTE"}}
}

// readDashboardListen is --dashboard-listen, checked ("" when the dashboard is off).
func readDashboardListen(cctx *cli.Context) (string, error) {
	addr := strings.TrimSpace(cctx.String("dashboard-listen"))
	if addr == "" || strings.EqualFold(addr, "off") {
		return "", nil
	}
	if every := cctx.Duration("dashboard-sample-every"); every < 100*time.Millisecond || every > 10*time.Minute {
		return "", fmt.Errorf("--dashboard-sample-every (HEARTH_DASHBOARD_SAMPLE_EVERY) %s: want 100ms to 10m", every)
	}
	if err := dashboard.CheckListen(addr, cctx.Bool("dashboard-allow-remote")); err != nil {
		return "", fmt.Errorf("--dashboard-listen (HEARTH_DASHBOARD_LISTEN) %w", err)
	}
	return addr, nil
}

// dashboardDeps is what the dashboard shows, from the rest of serve.
type dashboardDeps struct {
	srv      *pds.Server
	feed     *feedRunner // nil: --no-feedgen
	metrics  prometheus.Gatherer
	crawlers []string
}

// startDashboard serves the operator dashboard on addr and runs its metrics sampler.
// When the default address is taken (another Hearth on this machine), serve goes on
// without it (logged); an address given explicitly must work.
func startDashboard(cctx *cli.Context, log *slog.Logger, out io.Writer, addr string, sc *serveConfig, deps dashboardDeps, rt *runtime) error {
	if addr == "" {
		return nil
	}
	cfg := dashboard.Config{Admin: deps.srv, Metrics: deps.metrics, Crawlers: deps.crawlers, Password: sc.pds.AdminPassword,
		ServerName: sc.pds.ServerName, Version: version, SampleEvery: cctx.Duration("dashboard-sample-every"), Log: log.With("component", "dashboard")}
	if !sc.pds.RateLimits.Disabled {
		cfg.SignInLimits = sc.pds.RateLimits.PageSignIn
	}
	if deps.feed != nil {
		cfg.Feed = deps.feed.svc
	}
	if r := deps.srv.Relays(); r != nil && len(r.Crawlers) > 0 {
		cfg.Relays = dashboard.CrawlerRelays{Relays: r}
	}
	d, err := dashboard.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	var opErr *net.OpError
	if err != nil && errors.As(err, &opErr) && !cctx.IsSet("dashboard-listen") {
		log.Error("operator dashboard not started (set --dashboard-listen, or off)", "err", err)
		return nil
	} else if err != nil {
		return fmt.Errorf("--dashboard-listen (HEARTH_DASHBOARD_LISTEN) %s: %w", addr, err)
	}
	rt.serveHTTP("dashboard", ln, d.Handler())
	rt.work("dashboard metrics sampler", d.Run)
	rt.closeLast("dashboard", d.Close)
	fmt.Fprintf(out, "  dashboard:      http://%s/ (admin password)\n", ln.Addr())
	return nil
}

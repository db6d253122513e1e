package main

import (
	"fmt"
	"net"

	"github.com/hearth-social/hearth/internal/metrics"
	"github.com/hearth-social/hearth/pds"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"
)

func metricsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "metrics-listen", Usage: "serve Prometheus metrics at http://ADDR/metrics (loopback only unless --metrics-allow-public; off by default)", EnvVars: []string{"HEARTH_METRICS_LISTEN"}},
		&cli.BoolFlag{Name: "metrics-allow-public", Usage: "let --metrics-listen take a non-loopback address (the metrics have no authentication: firewall it)", EnvVars: []string{"HEARTH_METRICS_ALLOW_PUBLIC"}},
	}
}

// isLoopbackHost says whether a listen host is loopback (as --debug-listen requires).
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// listenMetrics checks --metrics-listen and listens on it; nil when it is unset.
func listenMetrics(cctx *cli.Context) (net.Listener, error) {
	addr := cctx.String("metrics-listen")
	if addr == "" {
		return nil, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen (HEARTH_METRICS_LISTEN) %q: want host:port: %w", addr, err)
	}
	if !isLoopbackHost(host) && !cctx.Bool("metrics-allow-public") {
		return nil, fmt.Errorf("--metrics-listen (HEARTH_METRICS_LISTEN) %q: must be a loopback host:port (metrics are unauthenticated; set --metrics-allow-public to listen elsewhere)", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen (HEARTH_METRICS_LISTEN) %s: %w", addr, err)
	}
	return ln, nil
}

// newServeRegistry is serve's one metrics registry: Go runtime and process collectors
// and the sizes of the data dir's databases; the PDS and the feed generator register
// their own collectors into it (pds.Config.Metrics, feedgen.Config.Metrics).
func newServeRegistry(dataDir string) *prometheus.Registry {
	reg := metrics.NewRegistry()
	reg.MustRegister(metrics.DBFiles(dataDir))
	return reg
}

// registerIngestLag adds hearth_feedgen_ingest_lag_events when the feed generator reads
// this PDS's own firehose, whose head is then known exactly.
func registerIngestLag(reg prometheus.Registerer, srv *pds.Server, feed *feedRunner) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hearth_feedgen_ingest_lag_events",
		Help: "Firehose events the feed generator has still to index: this PDS's firehose seq minus the last indexed seq.",
	}, func() float64 { return float64(max(srv.FirehoseSeq()-feed.svc.IngestedSeq(), 0)) }))
}

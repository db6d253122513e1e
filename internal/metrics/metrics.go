// Package metrics is the plumbing of Hearth's Prometheus metrics: `hearth serve` makes
// one registry with NewRegistry, passes it (as a prometheus.Registerer) to each
// component, which registers its own collectors, and serves it with Handler on its own
// listener (--metrics-listen). There is no global registry: a component given none
// registers into a private one (Or), so its counters work and are simply not scraped.
package metrics

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Or returns reg, or a fresh private registry when reg is nil.
func Or(reg prometheus.Registerer) prometheus.Registerer {
	if reg == nil {
		return prometheus.NewRegistry()
	}
	return reg
}

// Handler serves reg at GET /metrics in the Prometheus text (or negotiated) format.
func Handler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

// dbFiles reports the size of each SQLite file in a data dir (databases, their WAL
// and shared-memory files) when scraped.
type dbFiles struct {
	dir  string
	desc *prometheus.Desc
}

// DBFiles is a collector of hearth_database_file_bytes{file}: the size, read at scrape
// time, of every *.sqlite, *.sqlite-wal and *.sqlite-shm file directly in dir.
func DBFiles(dir string) prometheus.Collector {
	return &dbFiles{dir: dir, desc: prometheus.NewDesc("hearth_database_file_bytes",
		"Size of each SQLite file in the data dir (databases and their -wal/-shm files), read at scrape time.",
		[]string{"file"}, nil)}
}

func (d *dbFiles) Describe(ch chan<- *prometheus.Desc) { ch <- d.desc }

func (d *dbFiles) Collect(ch chan<- prometheus.Metric) {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(d.desc, err)
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !(strings.HasSuffix(name, ".sqlite") || strings.HasSuffix(name, ".sqlite-wal") || strings.HasSuffix(name, ".sqlite-shm")) {
			continue
		}
		fi, err := os.Stat(filepath.Join(d.dir, name))
		if err != nil {
			continue // removed since ReadDir (a -shm file at close)
		}
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.GaugeValue, float64(fi.Size()), name)
	}
}

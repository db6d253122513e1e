package pds

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/hearth-social/hearth/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// pdsMetrics are the PDS's own metrics, registered into Config.Metrics (the store
// registers its group-commit metrics and the firehose seq itself).
type pdsMetrics struct {
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	commits    *prometheus.CounterVec
	commitTime prometheus.Histogram
}

// otherMethod is the method label of every XRPC call to an NSID this PDS does not route
// (proxied or unknown), so callers cannot grow the label set.
const otherMethod = "other"

func newPDSMetrics(reg prometheus.Registerer, s *Server) *pdsMetrics {
	m := &pdsMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_xrpc_requests_total",
			Help: `XRPC requests by method (NSIDs this PDS serves; anything else is "other") and HTTP status.`,
		}, []string{"method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hearth_xrpc_request_duration_seconds",
			Help:    "XRPC request latency by method, until the handler returned.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 10), // 1 ms .. 3.8 s
		}, []string{"method"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_repo_commits_total",
			Help: "Repository commits (record writes) by result: ok (durable) or error.",
		}, []string{"result"}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hearth_repo_commit_duration_seconds",
			Help:    "Time of one durable repository commit: account lock, MST update and signing, and the group-committed write.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 13), // 1 ms .. 4 s
		}),
	}
	subs := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hearth_firehose_subscribers",
		Help: "Connected firehose (subscribeRepos) subscribers.",
	}, func() float64 { return float64(s.seq.Subscribers()) })
	dropped := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "hearth_firehose_slow_consumers_dropped_total",
		Help: "Firehose subscribers disconnected as too slow (ConsumerTooSlow).",
	}, func() float64 { return float64(s.seq.SlowDrops()) })
	metrics.Or(reg).MustRegister(m.requests, m.latency, m.commits, m.commitTime, subs, dropped, newBlobTotals(s))
	return m
}

// observeRequest counts one XRPC request.
func (m *pdsMetrics) observeRequest(method string, status int, d time.Duration) {
	m.requests.WithLabelValues(method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(method).Observe(d.Seconds())
}

// observeCommit counts one repository commit.
func (m *pdsMetrics) observeCommit(err error, d time.Duration) {
	if err != nil {
		m.commits.WithLabelValues("error").Inc()
		return
	}
	m.commits.WithLabelValues("ok").Inc()
	m.commitTime.Observe(d.Seconds())
}

// blobTotals reports the accounts' blobs from the store at scrape time.
type blobTotals struct {
	s            *Server
	bytes, count *prometheus.Desc
}

func newBlobTotals(s *Server) *blobTotals {
	return &blobTotals{s: s,
		bytes: prometheus.NewDesc("hearth_blob_bytes", "Bytes of the blobs accounts hold (a blob two accounts uploaded counts twice, as quotas count it).", nil, nil),
		count: prometheus.NewDesc("hearth_blobs", "Blobs accounts hold.", nil, nil),
	}
}

func (b *blobTotals) Describe(ch chan<- *prometheus.Desc) {
	ch <- b.bytes
	ch <- b.count
}

func (b *blobTotals) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, bytes, err := b.s.store.BlobTotals(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(b.bytes, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(b.bytes, prometheus.GaugeValue, float64(bytes))
	ch <- prometheus.MustNewConstMetric(b.count, prometheus.GaugeValue, float64(n))
}

// statusWriter remembers the status an XRPC handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushes, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// methodLabel is nsid when this PDS routes it, otherMethod for anything else.
func (s *Server) methodLabel(nsid string) string {
	if _, ok := s.routes[nsid]; ok {
		return nsid
	}
	return otherMethod
}

// FirehoseSeq is the highest durable firehose seq.
func (s *Server) FirehoseSeq() int64 { return s.store.DurableSeq() }

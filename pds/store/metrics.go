package store

import (
	"context"
	"time"

	"github.com/hearth-social/hearth/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// storeMetrics are the group-commit writer's metrics (Options.Metrics).
type storeMetrics struct {
	commits   prometheus.Counter
	failures  prometheus.Counter
	latency   prometheus.Histogram
	batchJobs prometheus.Histogram
}

func newStoreMetrics(reg prometheus.Registerer, durableSeq func() int64) *storeMetrics {
	m := &storeMetrics{
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hearth_store_commits_total",
			Help: "Group-committed write transactions made durable (one COMMIT, one WAL fsync each).",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hearth_store_commit_failures_total",
			Help: "Write transactions whose BEGIN or COMMIT failed.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hearth_store_commit_duration_seconds",
			Help:    "Time from BEGIN to durable COMMIT of one group-committed transaction.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms .. 4 s
		}),
		batchJobs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hearth_store_commit_batch_jobs",
			Help:    "Write jobs (callers' Write calls) sharing one group-committed transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9), // 1 .. 256 (MaxBatch's default)
		}),
	}
	seq := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hearth_firehose_seq",
		Help: "Highest firehose seq that is durable (the head subscribers are served up to).",
	}, func() float64 { return float64(durableSeq()) })
	metrics.Or(reg).MustRegister(m.commits, m.failures, m.latency, m.batchJobs, seq)
	return m
}

// committed records one durable transaction of jobs write jobs begun at start.
func (m *storeMetrics) committed(jobs int, start time.Time) {
	m.commits.Inc()
	m.latency.Observe(time.Since(start).Seconds())
	m.batchJobs.Observe(float64(jobs))
}

// DurableSeq is the highest durable firehose seq (the head subscribers are served up to).
func (s *Store) DurableSeq() int64 {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	return s.recent.durable
}

// BlobTotals is how many blobs the accounts hold and their bytes (a blob uploaded by
// two accounts counts twice, as the quotas count it).
func (s *Store) BlobTotals(ctx context.Context) (count, bytes int64, err error) {
	err = s.db.Read.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(size), 0) FROM blobs`).Scan(&count, &bytes)
	return count, bytes, err
}

// Check reads the database's schema through the read pool: the health check's proof
// that the database file can be read.
func (s *Store) Check(ctx context.Context) error {
	var n int
	return s.db.Read.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&n)
}

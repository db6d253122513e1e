package feedgen

import (
	"context"

	"github.com/hearth-social/hearth/feedgen/classify"
	"github.com/hearth-social/hearth/feedgen/index"
	"github.com/hearth-social/hearth/feedgen/ingest"
	"github.com/hearth-social/hearth/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// feedMetrics are the feed generator's Prometheus collectors (Config.Metrics).
type feedMetrics struct {
	verdicts *prometheus.CounterVec
}

func newFeedMetrics() *feedMetrics {
	return &feedMetrics{verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hearth_feedgen_classifications_total",
		Help: "Posts classified, by verdict (ai_generated, ai_assisted, human_declared, unknown), by the worker and inline at ingest.",
	}, []string{"verdict"})}
}

// register adds the collectors, with gauges reading the ingester's position.
func (m *feedMetrics) register(reg prometheus.Registerer, ing *ingest.Ingester) {
	seq := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hearth_feedgen_ingest_seq",
		Help: "Firehose seq of the last event the feed generator wrote to its index.",
	}, func() float64 { return float64(ing.AppliedSeq()) })
	lag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hearth_feedgen_ingest_lag_seconds",
		Help: "For the last indexed firehose event, how long after the event's time it was written to the index.",
	}, func() float64 { return ing.Lag().Seconds() })
	metrics.Or(reg).MustRegister(m.verdicts, seq, lag)
}

// counted is a verdict's label value: one of classify's labels, or "other".
func counted(label string) string {
	switch classify.Label(label) {
	case classify.LabelAIGenerated, classify.LabelAIAssisted, classify.LabelHumanDeclared, classify.LabelUnknown:
		return label
	}
	return "other"
}

// countVerdict counts one verdict made.
func (m *feedMetrics) countVerdict(v index.Verdict) {
	m.verdicts.WithLabelValues(counted(v.Label)).Inc()
}

// classifyTextCounted is classifyText (the index's inline classifier) counting its
// verdicts.
func (m *feedMetrics) classifyTextCounted(ctx context.Context, uri string, p *index.Post, authorLabels []string) (index.Verdict, bool) {
	v, ok := classifyText(ctx, uri, p, authorLabels)
	if ok {
		m.countVerdict(v)
	}
	return v, ok
}

// IngestedSeq is the firehose seq of the last event written to the index.
func (s *Service) IngestedSeq() int64 { return s.ingest.AppliedSeq() }

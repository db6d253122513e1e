package dashboard

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// seriesKind is how a metric family becomes a chart's values.
type seriesKind int

const (
	// kindRate: a counter's increase per second between samples (summed over labels).
	kindRate seriesKind = iota
	// kindMeanMs: a histogram's mean observation between samples, in milliseconds.
	kindMeanMs
	// kindGauge: a gauge's value (summed over labels).
	kindGauge
)

// seriesSpec is one chart: which family, and how it is read.
type seriesSpec struct {
	Title, Unit, Family string
	Kind                seriesKind
}

// defaultSeries are the health page's charts (families registered by pds, pds/store
// and the feed generator into serve's registry).
func defaultSeries() []seriesSpec {
	return []seriesSpec{
		{Title: "XRPC requests per second", Unit: "req/s", Family: "hearth_xrpc_requests_total", Kind: kindRate},
		{Title: "Repository commit latency (mean)", Unit: "ms", Family: "hearth_repo_commit_duration_seconds", Kind: kindMeanMs},
		{Title: "Firehose sequence number", Family: "hearth_firehose_seq", Kind: kindGauge},
		{Title: "Firehose subscribers", Family: "hearth_firehose_subscribers", Kind: kindGauge},
		{Title: "Feed generator ingest lag", Unit: "s", Family: "hearth_feedgen_ingest_lag_seconds", Kind: kindGauge},
		{Title: "Feed generator events behind the firehose", Family: "hearth_feedgen_ingest_lag_events", Kind: kindGauge},
	}
}

// raw is one family's reading at one sample: the summed value (a histogram's sum) and
// a histogram's count.
type raw struct {
	v, count float64
	ok       bool
}

type sample struct {
	at   time.Time
	vals []raw // one per spec
}

// sampler reads the registry every `every` and keeps the last window of readings in a
// ring; its goroutine is the dashboard's Run.
type sampler struct {
	g     prometheus.Gatherer
	specs []seriesSpec
	every time.Duration
	span  time.Duration

	mu    sync.Mutex
	ring  []sample
	start int // index of the oldest sample once the ring is full
}

func newSampler(g prometheus.Gatherer, specs []seriesSpec, every, span time.Duration) *sampler {
	n := int(span/every) + 2 // the window's samples, and one before it for the first rate
	return &sampler{g: g, specs: specs, every: every, span: span, ring: make([]sample, 0, n)}
}

func (s *sampler) run(ctx context.Context) {
	if s.g == nil {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(s.every)
	defer t.Stop()
	s.sample(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.sample(now)
		}
	}
}

// sample stores a reading in the ring. A gather error still leaves the families that
// were gathered (a failing collector costs its own family only).
func (s *sampler) sample(now time.Time) {
	sm := s.read(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ring) < cap(s.ring) {
		s.ring = append(s.ring, sm)
		return
	}
	s.ring[s.start] = sm
	s.start = (s.start + 1) % len(s.ring)
}

// read gathers every spec's family once.
func (s *sampler) read(now time.Time) sample {
	fams, _ := s.g.Gather()
	byName := make(map[string]*dto.MetricFamily, len(fams))
	for _, f := range fams {
		byName[f.GetName()] = f
	}
	sm := sample{at: now, vals: make([]raw, len(s.specs))}
	for i, sp := range s.specs {
		f := byName[sp.Family]
		if f == nil {
			continue
		}
		var r raw
		for _, m := range f.GetMetric() {
			switch {
			case m.Counter != nil:
				r.v += m.Counter.GetValue()
			case m.Gauge != nil:
				r.v += m.Gauge.GetValue()
			case m.Untyped != nil:
				r.v += m.Untyped.GetValue()
			case m.Histogram != nil:
				r.v += m.Histogram.GetSampleSum()
				r.count += float64(m.Histogram.GetSampleCount())
			default:
				continue
			}
			r.ok = true
		}
		sm.vals[i] = r
	}
	return sm
}

// ordered returns the samples oldest first.
func (s *sampler) ordered() []sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]sample, 0, len(s.ring))
	out = append(out, s.ring[s.start:]...)
	return append(out, s.ring[:s.start]...)
}

// point is one chart value; ok is false where there is none (no family, no
// observations, a counter reset).
type point struct {
	at time.Time
	v  float64
	ok bool
}

// series turns the readings of spec i into chart values.
func (s *sampler) series(samples []sample, i int) []point {
	kind := s.specs[i].Kind
	out := make([]point, 0, len(samples))
	for j, sm := range samples {
		cur := sm.vals[i]
		p := point{at: sm.at}
		switch kind {
		case kindGauge:
			p.v, p.ok = cur.v, cur.ok
		case kindRate, kindMeanMs:
			if j == 0 {
				continue // the first reading only starts the differences
			}
			// A vector family is absent until its first child exists: absent is zero.
			prev := samples[j-1].vals[i]
			dt := sm.at.Sub(samples[j-1].at).Seconds()
			if !cur.ok || dt <= 0 || cur.v < prev.v || cur.count < prev.count {
				break
			}
			if kind == kindRate {
				p.v, p.ok = (cur.v-prev.v)/dt, true
			} else if n := cur.count - prev.count; n > 0 {
				p.v, p.ok = (cur.v-prev.v)/n*1000, true
			}
		}
		out = append(out, p)
	}
	return out
}

// charts draws every spec over the window ending at now, with a reading taken now
// (not stored) as the newest point, so the page shows the current values.
func (s *sampler) charts(now time.Time) []chart {
	samples := s.ordered()
	if s.g != nil {
		samples = append(samples, s.read(now))
	}
	// A server up for less than the window is drawn since its first reading.
	from := now.Add(-s.span)
	if len(samples) > 1 && samples[0].at.After(from) {
		from = samples[0].at
	}
	out := make([]chart, 0, len(s.specs))
	for i, sp := range s.specs {
		out = append(out, drawChart(sp, s.series(samples, i), from, now))
	}
	return out
}

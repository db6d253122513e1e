package dashboard

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// TestSampler: counters become rates, histograms mean milliseconds between samples,
// gauges their value; a missing family draws "no data yet"; the ring keeps the window.
func TestSampler(t *testing.T) {
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reqs_total", Help: "h"}, []string{"code"})
	lat := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lat_seconds", Help: "h"})
	subs := prometheus.NewGauge(prometheus.GaugeOpts{Name: "subs", Help: "h"})
	reg.MustRegister(reqs, lat, subs)
	specs := []seriesSpec{{Title: "r", Family: "reqs_total", Kind: kindRate}, {Title: "l", Family: "lat_seconds", Kind: kindMeanMs},
		{Title: "s", Family: "subs", Kind: kindGauge}, {Title: "m", Family: "missing", Kind: kindGauge}}
	s := newSampler(reg, specs, 10*time.Second, time.Minute)
	t0 := time.Unix(1_700_000_000, 0)
	s.sample(t0)
	for range 30 {
		reqs.WithLabelValues("200").Inc()
	}
	for range 20 {
		reqs.WithLabelValues("500").Inc()
	}
	lat.Observe(0.010)
	lat.Observe(0.030)
	subs.Set(3)
	s.sample(t0.Add(10 * time.Second))
	samples := s.ordered()
	rate := s.series(samples, 0)
	require.Len(t, rate, 1)
	require.InDelta(t, 5.0, rate[0].v, 1e-9) // 50 requests in 10 s
	mean := s.series(samples, 1)
	require.InDelta(t, 20.0, mean[0].v, 1e-9) // (10 ms + 30 ms) / 2
	g := s.series(samples, 2)
	require.Equal(t, 3.0, g[1].v)

	for i := 2; i < 20; i++ {
		s.sample(t0.Add(time.Duration(i) * 10 * time.Second))
	}
	require.Len(t, s.ordered(), cap(s.ring))
	require.True(t, s.ordered()[0].at.Before(s.ordered()[1].at), "oldest first")
	charts := s.charts(t0.Add(190 * time.Second))
	require.Contains(t, string(charts[0].SVG), "<polyline")
	require.False(t, charts[0].Empty)
	require.Equal(t, "0", charts[0].Current) // no requests since
	require.True(t, charts[3].Empty)
	require.True(t, strings.Contains(string(charts[3].SVG), "no data yet"))
}

package pds

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// A handler that panics answers 500 through the recoverer and is counted as a 500, not
// as the 200 its untouched response writer would report.
func TestMetricsCountPanicAs500(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.PLCURL = "http://127.0.0.1:1" // never called
	cfg.PasswordCost = 1 << 10
	cfg.Metrics = prometheus.NewRegistry()
	s, err := New(ctx, cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer s.Close()
	const nsid = "social.hearth.test.panic"
	s.routes[nsid] = route{method: http.MethodGet, auth: authNone, handler: func(http.ResponseWriter, *http.Request) error { panic("boom") }}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	res, err := http.Get(ts.URL + "/xrpc/" + nsid)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusInternalServerError, res.StatusCode)
	var body struct{ Error string }
	require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
	require.Equal(t, "InternalServerError", body.Error)
	count := func(status string) float64 {
		var m dto.Metric
		require.NoError(t, s.metrics.requests.WithLabelValues(nsid, status).Write(&m))
		return m.GetCounter().GetValue()
	}
	require.Equal(t, 1.0, count("500"))
	require.Equal(t, 0.0, count("200"))
}

package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/internal/testnet"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// scrape reads http://addr/metrics with the Prometheus text parser.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	require.NoError(t, err)
	return fams
}

// value is the value of the family's metric with exactly these labels (-1 if absent).
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels)/2 {
			continue
		}
		for i := 0; i < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			return m.GetUntyped().GetValue()
		}
	}
	return -1
}

// TestServeMetrics runs `hearth serve --metrics-listen`, makes XRPC calls and commits,
// and checks the scraped families: request counts by method and status (unknown
// methods as "other"), latency histograms, repo and group commits, the firehose seq
// against the firehose itself, the feed generator's ingest position and verdicts, blob
// bytes, database file sizes and the Go collectors.
func TestServeMetrics(t *testing.T) {
	port, plcPort, feedPort, metricsPort := freePort(t), freePort(t), freePort(t), freePort(t)
	dataDir := t.TempDir()
	maddr := fmt.Sprintf("127.0.0.1:%d", metricsPort)
	args := []string{"hearth", "--log-level", "error", "serve", "--data-dir", dataDir,
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--plc-listen", fmt.Sprintf("127.0.0.1:%d", plcPort),
		"--feed-listen", fmt.Sprintf("127.0.0.1:%d", feedPort), "--admin-password", "x", "--metrics-listen", maddr}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	done := runApp(ctx, &out, args[3:]...) // runApp adds hearth --log-level error
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitHTTP(t, base+"/xrpc/_health", done, &out)
	require.Contains(t, out.String(), "metrics:        http://"+maddr+"/metrics")

	before := scrape(t, maddr)
	require.Equal(t, -1.0, value(before, "hearth_xrpc_requests_total", "method", "com.atproto.repo.createRecord", "status", "200"))

	c := testnet.NewClient(base, "x")
	alice := c.CreateAccount(t, "alice")
	var rev string
	for i := range 3 {
		r := c.Post(t, "com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "record": testnet.Post(fmt.Sprintf("post %d", i))}, alice.Access)
		testnet.RequireOK(t, r)
		rev = r.JSON["commit"].(map[string]any)["rev"].(string)
	}
	// A refused write, a missing record and methods nobody serves.
	testnet.RequireXRPCError(t, c.Post(t, "com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "record": map[string]any{"$type": "app.bsky.feed.post"}}, alice.Access), http.StatusBadRequest, "InvalidRequest")
	c.Get(t, "com.atproto.repo.getRecord", url.Values{"repo": {alice.DID}, "collection": {"app.bsky.feed.post"}, "rkey": {"nope"}}, "")
	for _, nsid := range []string{"com.example.one", "com.example.two"} {
		c.Get(t, nsid, nil, "")
	}
	up := c.Do(t, http.MethodPost, "com.atproto.repo.uploadBlob", nil, []byte("twelve bytes"), alice.Access)
	testnet.RequireOK(t, up)

	// The latest seq, read off the firehose: the third post's commit is the last event.
	fh, err := firehose.Dial(ctx, fmt.Sprintf("ws://127.0.0.1:%d/xrpc/com.atproto.sync.subscribeRepos", port), new(int64))
	require.NoError(t, err)
	defer fh.Close()
	var lastSeq int64
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	for lastSeq == 0 {
		ev, err := fh.Next(rctx)
		require.NoError(t, err)
		if ev.Commit != nil && ev.Commit.Rev == rev {
			lastSeq = ev.Seq
		}
	}

	// The feed generator catches up with the firehose (bounded wait).
	var fams map[string]*dto.MetricFamily
	deadline := time.Now().Add(20 * time.Second)
	for {
		fams = scrape(t, maddr)
		if value(fams, "hearth_feedgen_ingest_seq") == float64(lastSeq) && value(fams, "hearth_feedgen_classifications_total", "verdict", "unknown") >= 3 {
			break
		}
		require.True(t, time.Now().Before(deadline), "feed generator at seq %v of %d, verdicts %v", value(fams, "hearth_feedgen_ingest_seq"), lastSeq, fams["hearth_feedgen_classifications_total"])
		time.Sleep(100 * time.Millisecond)
	}

	require.Equal(t, 3.0, value(fams, "hearth_xrpc_requests_total", "method", "com.atproto.repo.createRecord", "status", "200"))
	require.Equal(t, 1.0, value(fams, "hearth_xrpc_requests_total", "method", "com.atproto.repo.createRecord", "status", "400"))
	require.Equal(t, 1.0, value(fams, "hearth_xrpc_requests_total", "method", "com.atproto.server.createAccount", "status", "200"))
	require.Equal(t, 1.0, value(fams, "hearth_xrpc_requests_total", "method", "com.atproto.repo.getRecord", "status", "400"))
	require.Equal(t, 2.0, value(fams, "hearth_xrpc_requests_total", "method", "other", "status", "501"), "unknown methods collapse into one label")
	for _, f := range fams["hearth_xrpc_requests_total"].GetMetric() {
		for _, l := range f.GetLabel() {
			require.NotContains(t, l.GetValue(), "com.example", "an unknown NSID became a label")
		}
	}
	require.Equal(t, 4.0, value(fams, "hearth_xrpc_request_duration_seconds", "method", "com.atproto.repo.createRecord"), "latency histogram count")

	require.Equal(t, 3.0, value(fams, "hearth_repo_commits_total", "result", "ok"))
	require.Equal(t, 3.0, value(fams, "hearth_repo_commit_duration_seconds"))
	require.GreaterOrEqual(t, value(fams, "hearth_store_commits_total"), 4.0, "account creation and three posts are durable transactions")
	batches := value(fams, "hearth_store_commit_batch_jobs")
	require.Equal(t, value(fams, "hearth_store_commits_total"), batches, "one batch size per committed transaction")
	require.Equal(t, batches, value(fams, "hearth_store_commit_duration_seconds"))

	require.Equal(t, float64(lastSeq), value(fams, "hearth_firehose_seq"))
	require.GreaterOrEqual(t, value(fams, "hearth_firehose_subscribers"), 2.0, "the feed generator and this test")
	require.Equal(t, 0.0, value(fams, "hearth_firehose_slow_consumers_dropped_total"))
	require.Equal(t, 0.0, value(fams, "hearth_feedgen_ingest_lag_events"))
	lag := value(fams, "hearth_feedgen_ingest_lag_seconds")
	require.True(t, lag >= 0 && lag < 20, "ingest lag %v s", lag)

	require.Equal(t, 12.0, value(fams, "hearth_blob_bytes"))
	require.Equal(t, 1.0, value(fams, "hearth_blobs"))
	for _, db := range []string{"pds.sqlite", "plc.sqlite", "feedgen.sqlite"} {
		require.Greater(t, value(fams, "hearth_database_file_bytes", "file", db), 0.0, db)
	}
	require.Greater(t, value(fams, "go_goroutines"), 0.0)
	require.Greater(t, value(fams, "process_resident_memory_bytes"), 0.0)

	stopApp(t, cancel, done)
}

// TestServeMetricsListenLoopback: --metrics-listen refuses a non-loopback address
// unless --metrics-allow-public says so.
func TestServeMetricsListenLoopback(t *testing.T) {
	args := []string{"hearth", "--log-level", "error", "serve", "--data-dir", t.TempDir(), "--no-feedgen",
		"--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--plc-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--admin-password", "x", "--metrics-listen", "0.0.0.0:0"}
	var out lockedBuffer
	err := newApp(&out, &out).RunContext(context.Background(), args)
	require.ErrorContains(t, err, "--metrics-listen")
	require.ErrorContains(t, err, "loopback")
}

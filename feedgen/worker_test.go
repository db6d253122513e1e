package feedgen_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/feedgen"
	"github.com/hearth-social/hearth/feedgen/classify"
	"github.com/hearth-social/hearth/feedgen/index"
	"github.com/stretchr/testify/require"
)

// TestWorkerBacklog: posts indexed before the worker runs (a restart) are classified
// when it starts; blob fetches that fail transiently are retried, a blob that keeps
// failing is given up after MaxAttempts, and a blob that can never be read is recorded
// at once, all as info evidence that does not move the verdict. The worker stops with
// the service.
func TestWorkerBacklog(t *testing.T) {
	ctx := context.Background()
	ai, err := os.ReadFile(filepath.Join(corpusDir, "png-comfyui.png"))
	require.NoError(t, err)
	aiCID := classify.BlobCID(ai)
	flakyCID := classify.BlobCID([]byte("flaky"))
	var flaky, down atomic.Int64
	pds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("cid") {
		case aiCID:
			if flaky.Add(1) <= 2 { // two failures, then the blob
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			w.Write(ai)
		case flakyCID:
			down.Add(1)
			http.Error(w, "down", http.StatusBadGateway)
		default:
			http.Error(w, `{"error":"BlobNotFound"}`, http.StatusBadRequest)
		}
	}))
	defer pds.Close()

	author := syntax.DID("did:plc:authorauthorauthorauthor")
	dir := identity.NewMockDirectory()
	dir.Insert(identity.Identity{DID: author, Handle: "author.test", Services: map[string]identity.ServiceEndpoint{
		"atproto_pds": {Type: "AtprotoPersonalDataServer", URL: pds.URL}}})
	cfg := feedgen.DefaultConfig()
	cfg.Hostname = feedHost
	cfg.IndexPath = filepath.Join(t.TempDir(), "feedgen.sqlite")
	cfg.Ingest.FirehoseURL = "ws://127.0.0.1:1" // nothing there: only the backlog
	cfg.Ingest.MinBackoff, cfg.Ingest.MaxBackoff = time.Second, time.Second
	cfg.Directory = dir
	cfg.AllowPrivate = true
	cfg.Classify = feedgen.ClassifyConfig{RetryBackoff: 10 * time.Millisecond, MaxAttempts: 4, PollInterval: 50 * time.Millisecond}
	svc, err := feedgen.New(ctx, cfg, quiet)
	require.NoError(t, err)
	defer svc.Close()

	post := func(rkey string, p *index.Post) index.Op {
		return index.Op{Action: index.ActionCreate, Collection: index.CollectionPost, RKey: rkey, CID: "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm", Record: p}
	}
	_, err = svc.Index().Apply(ctx, "test", []index.Event{{Seq: 1, Commit: &index.Commit{DID: author.String(), Rev: "3l00000000001", Ops: []index.Op{
		post("retried", &index.Post{Text: "comfy", Images: []index.Image{{CID: aiCID, MIME: "image/png"}}}),
		post("gaveup", &index.Post{Text: "flaky host", Images: []index.Image{{CID: flakyCID, MIME: "image/png"}}}),
		post("missing", &index.Post{Text: "gone blob", Images: []index.Image{{CID: classify.BlobCID([]byte("never")), MIME: "image/png"}}}),
		post("selflabel", &index.Post{Text: "declared", Labels: []string{"ai-generated"}}),
		post("plain", &index.Post{Text: "hello"}),
	}}}})
	require.NoError(t, err)
	uri := func(rkey string) string { return index.URI(author.String(), index.CollectionPost, rkey) }
	c, err := svc.Index().Classification(ctx, uri("retried"))
	require.NoError(t, err)
	require.False(t, c.Classified, "unknown until classified")

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	waitFor(t, "the backlog to be classified", func() bool {
		for _, r := range []string{"retried", "gaveup", "missing", "selflabel", "plain"} {
			c, err := svc.Index().Classification(ctx, uri(r))
			if err != nil || !c.Classified {
				return false
			}
		}
		for _, r := range []string{"retried", "selflabel"} {
			if l, err := svc.Labeler().Current(ctx, uri(r)); err != nil || len(l) != 1 {
				return false
			}
		}
		return true
	})
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("service did not stop")
	}

	want := map[string]string{"retried": "ai_generated", "gaveup": "unknown", "missing": "unknown", "selflabel": "ai_generated", "plain": "unknown"}
	for r, label := range want {
		c, err := svc.Index().Classification(ctx, uri(r))
		require.NoError(t, err)
		require.Equal(t, label, c.Label, r)
	}
	require.EqualValues(t, 3, flaky.Load(), "two transient failures, then success")
	require.EqualValues(t, 4, down.Load(), "given up after MaxAttempts")
	for _, r := range []string{"gaveup", "missing"} {
		c, err := svc.Index().Classification(ctx, uri(r))
		require.NoError(t, err)
		require.Contains(t, string(c.Evidence), `"signal":"media.unavailable"`, r)
		require.Empty(t, c.LabelVals)
	}
	c, err = svc.Index().Classification(ctx, uri("retried"))
	require.NoError(t, err)
	require.Equal(t, []string{"ai-generated"}, c.LabelVals)
	require.Equal(t, "gen.comfyui", c.Signals[:len("gen.comfyui")])
	require.EqualValues(t, 1, svc.BlobsFetched())
	labels, err := svc.Labeler().Current(ctx, uri("selflabel"))
	require.NoError(t, err)
	require.Len(t, labels, 1, "a self-label is tier-0 evidence")
}

package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hearth-social/hearth/feedgen"
	"github.com/stretchr/testify/require"
)

func runToEnd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case err := <-runApp(ctx, &out, args...):
		return out.String(), err
	case <-ctx.Done():
		t.Fatal("command did not finish")
		return "", nil
	}
}

func TestFeedEval(t *testing.T) {
	out, err := runToEnd(t, "feed", "eval", "../../testdata/classify")
	require.NoError(t, err, out)
	require.Contains(t, out, "precision=1.0000")
	require.Contains(t, out, "false_ai=0 false_ai_rate=0.0000")
	require.Contains(t, out, "png-comfyui")

	// A corpus that calls an AI image human fails the check.
	dir := t.TempDir()
	img, err := os.ReadFile("../../testdata/classify/png-comfyui.png")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "x.png"), img, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "labels.json"), []byte(`{"version":1,"items":[{"name":"mislabelled","file":"x.png","expect":"human"}]}`), 0o600))
	out, err = runToEnd(t, "feed", "eval", dir)
	require.Error(t, err)
	require.Contains(t, out, "false_ai=1")

	_, err = runToEnd(t, "feed", "eval")
	require.Error(t, err)
}

func TestFeedExplain(t *testing.T) {
	const post = "at://did:plc:alice/app.bsky.feed.post/3l"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/xrpc/"+feedgen.ExplainNSID, r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("uri") != post {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"PostNotFound","message":"not indexed"}`))
			return
		}
		json.NewEncoder(w).Encode(feedgen.ExplainOutput{URI: post, CID: "bafy", Status: feedgen.ExplainClassified, Label: "ai_generated",
			Confidence: "0.9933", AIScore: "0.9933", Labels: []string{"ai-generated"}, Feeds: []string{"ai", "balanced"},
			FeedContext: "v=ai_generated;e=gen.a1111", Version: "classify/1",
			Evidence: []feedgen.ExplainEvidence{{Signal: "gen.a1111", Class: "ai_generated", Weight: "5.0000", Tier: 0, Locator: "blob:bafk png:tEXt[parameters]", Excerpt: "Steps: 20"}}})
	}))
	defer srv.Close()

	for _, args := range [][]string{
		{"feed", "explain", post, "--feed-url", srv.URL},
		{"feed", "explain", "--feed-url", srv.URL, post},
	} {
		out, err := runToEnd(t, args...)
		require.NoError(t, err, out)
		require.Contains(t, out, "verdict:      ai_generated (confidence 0.9933")
		require.Contains(t, out, "labels:       ai-generated")
		require.Contains(t, out, "gen.a1111")
		require.Contains(t, out, "png:tEXt[parameters]")
	}
	out, err := runToEnd(t, "feed", "explain", post, "--feed-url="+srv.URL, "--json")
	require.NoError(t, err)
	require.Contains(t, out, `"label":"ai_generated"`)
	_, err = runToEnd(t, "feed", "explain", "at://did:plc:alice/app.bsky.feed.post/other", "--feed-url", srv.URL)
	require.ErrorContains(t, err, "PostNotFound")
	_, err = runToEnd(t, "feed", "explain", "not-a-uri", "--feed-url", srv.URL)
	require.Error(t, err)
}

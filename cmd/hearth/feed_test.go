package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// runApp runs the CLI in-process until ctx ends; the returned channel yields its error.
func runApp(ctx context.Context, out *lockedBuffer, args ...string) chan error {
	done := make(chan error, 1)
	go func() {
		done <- newApp(out, out).RunContext(ctx, append([]string{"hearth", "--log-level", "error"}, args...))
	}()
	return done
}

// waitHTTP polls url until it answers 200 (bounded), failing early if the app exits.
func waitHTTP(t *testing.T, u string, done chan error, out *lockedBuffer) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("exited early: %v\n%s", err, out.String())
		default:
		}
		if res, err := client.Get(u); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within 30s\n%s", u, out.String())
}

func stopApp(t *testing.T, cancel context.CancelFunc, done chan error) {
	t.Helper()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("did not stop")
	}
}

// skeletonPosts returns the posts of one getFeedSkeleton page.
func skeletonPosts(t *testing.T, feedBase, feedURI string) []string {
	t.Helper()
	res, err := http.Get(feedBase + "/xrpc/app.bsky.feed.getFeedSkeleton?" + url.Values{"feed": {feedURI}}.Encode())
	require.NoError(t, err)
	defer res.Body.Close()
	if res.StatusCode == http.StatusBadRequest {
		var e struct{ Error string }
		json.NewDecoder(res.Body).Decode(&e)
		require.Equal(t, "UnknownFeed", e.Error)
		return nil // not (yet) a feed this generator serves
	}
	require.Equal(t, http.StatusOK, res.StatusCode)
	var out struct {
		Feed []struct{ Post string } `json:"feed"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
	var posts []string
	for _, it := range out.Feed {
		posts = append(posts, it.Post)
	}
	return posts
}

func waitForPost(t *testing.T, feedBase, feedURI, post string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range skeletonPosts(t, feedBase, feedURI) {
			if p == post {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never appeared in %s", post, feedURI)
}

func newAccount(t *testing.T, client *http.Client, base, name string) (did, token string) {
	t.Helper()
	out, err := call(client, base, "com.atproto.server.createAccount", map[string]any{"handle": name + ".test", "password": "pw-" + name, "email": name + "@example.com"}, "")
	require.NoError(t, err)
	return out["did"].(string), out["accessJwt"].(string)
}

// postURI writes one post and returns its AT-URI.
func postURI(t *testing.T, client *http.Client, base, did, token, text string) string {
	t.Helper()
	out, err := call(client, base, "com.atproto.repo.createRecord", map[string]any{"repo": did, "collection": "app.bsky.feed.post",
		"record": map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": time.Now().UTC().Format(time.RFC3339Nano)}}, token)
	require.NoError(t, err)
	return out["uri"].(string)
}

// TestServeRunsFeedgen runs `hearth serve` with its feed generator, posts through the
// PDS, reads the post back from getFeedSkeleton, and publishes the feed record with
// `hearth feed publish`.
func TestServeRunsFeedgen(t *testing.T) {
	port, plcPort, feedPort := freePort(t), freePort(t), freePort(t)
	base, feedBase := fmt.Sprintf("http://127.0.0.1:%d", port), fmt.Sprintf("http://127.0.0.1:%d", feedPort)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	done := runApp(ctx, &out, "serve", "--data-dir", t.TempDir(), "--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--plc-listen", fmt.Sprintf("127.0.0.1:%d", plcPort), "--admin-password", "x", "--feed-listen", fmt.Sprintf("127.0.0.1:%d", feedPort))
	waitHTTP(t, base+"/xrpc/com.atproto.server.describeServer", done, &out)
	waitHTTP(t, feedBase+"/xrpc/app.bsky.feed.describeFeedGenerator", done, &out)
	require.Contains(t, out.String(), "feed generator: http://127.0.0.1:")
	feedDID := fmt.Sprintf("did:web:localhost%%3A%d", feedPort) // resolvable to the feed listener, unlike did:web:localhost
	require.Contains(t, out.String(), "at://"+feedDID+"/app.bsky.feed.generator/recent")

	client := &http.Client{Timeout: 20 * time.Second}
	did, token := newAccount(t, client, base, "alice")
	post := postURI(t, client, base, did, token, "hello from serve")
	waitForPost(t, feedBase, "at://"+feedDID+"/app.bsky.feed.generator/recent", post)

	res, err := http.Get(feedBase + "/.well-known/did.json")
	require.NoError(t, err)
	var doc struct {
		ID      string `json:"id"`
		Service []struct {
			ID, Type, ServiceEndpoint string
		} `json:"service"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&doc))
	res.Body.Close()
	require.Equal(t, feedDID, doc.ID)
	require.Equal(t, "#bsky_fg", doc.Service[0].ID)
	require.Equal(t, fmt.Sprintf("http://localhost:%d", feedPort), doc.Service[0].ServiceEndpoint)

	// Publish the feed record for alice.
	var pub lockedBuffer
	pctx, pcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer pcancel()
	avatar := filepath.Join(t.TempDir(), "avatar.png")
	require.NoError(t, os.WriteFile(avatar, []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), 0o600))
	err = newApp(&pub, &pub).RunContext(pctx, []string{"hearth", "feed", "publish", "--pds", base, "--handle", "alice.test", "--password", "pw-alice",
		"--feed", "recent", "--display-name", "Recent posts", "--avatar", avatar, "--feed-listen", fmt.Sprintf("127.0.0.1:%d", feedPort)})
	require.NoError(t, err, pub.String())
	uri := "at://" + did + "/app.bsky.feed.generator/recent"
	require.Contains(t, pub.String(), "published "+uri)
	rec, err := http.Get(base + "/xrpc/com.atproto.repo.getRecord?" + url.Values{"repo": {did}, "collection": {"app.bsky.feed.generator"}, "rkey": {"recent"}}.Encode())
	require.NoError(t, err)
	var got struct {
		URI   string         `json:"uri"`
		Value map[string]any `json:"value"`
	}
	require.NoError(t, json.NewDecoder(rec.Body).Decode(&got))
	rec.Body.Close()
	require.Equal(t, uri, got.URI)
	require.Equal(t, feedDID, got.Value["did"])
	require.Equal(t, "Recent posts", got.Value["displayName"])
	require.Equal(t, true, got.Value["acceptsInteractions"])
	require.Equal(t, "app.bsky.feed.defs#contentModeUnspecified", got.Value["contentMode"])
	require.Equal(t, feedDescriptions["recent"], got.Value["description"], "the shipped feed's description by default")
	av, _ := got.Value["avatar"].(map[string]any)
	require.Equal(t, "image/png", av["mimeType"], "the avatar is an uploaded blob: %v", got.Value["avatar"])
	// The record alone makes alice's feed live on the running feed generator (it reads
	// this PDS's firehose), with no restart; describeFeedGenerator lists it.
	waitForPost(t, feedBase, uri, post)
	dres, err := http.Get(feedBase + "/xrpc/app.bsky.feed.describeFeedGenerator")
	require.NoError(t, err)
	var desc struct {
		Feeds []struct {
			URI string `json:"uri"`
		} `json:"feeds"`
	}
	require.NoError(t, json.NewDecoder(dres.Body).Decode(&desc))
	dres.Body.Close()
	var listed []string
	for _, f := range desc.Feeds {
		listed = append(listed, f.URI)
	}
	require.Contains(t, listed, uri)

	// Bad flags are refused before anything is written.
	notImage := filepath.Join(t.TempDir(), "notes.txt")
	require.NoError(t, os.WriteFile(notImage, []byte("hello"), 0o600))
	for _, bad := range [][]string{{"--avatar", notImage}, {"--content-mode", "loud"}} {
		err = newApp(&pub, &pub).RunContext(pctx, append([]string{"hearth", "feed", "publish", "--pds", base, "--handle", "alice.test", "--password", "pw-alice",
			"--feed", "recent", "--display-name", "x"}, bad...))
		require.Error(t, err, "%v", bad)
	}

	// A wrong password is reported, not ignored.
	err = newApp(&pub, &pub).RunContext(pctx, []string{"hearth", "feed", "publish", "--pds", base, "--handle", "alice.test", "--password", "nope",
		"--feed", "recent", "--display-name", "x"})
	require.ErrorContains(t, err, "logging in")

	stopApp(t, cancel, done)
}

// TestFeedServeStandalone runs the PDS with --no-feedgen and `hearth feed serve` beside
// it against its firehose, with a backfill for what was posted before it started.
func TestFeedServeStandalone(t *testing.T) {
	port, plcPort, feedPort := freePort(t), freePort(t), freePort(t)
	base, feedBase := fmt.Sprintf("http://127.0.0.1:%d", port), fmt.Sprintf("http://127.0.0.1:%d", feedPort)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	done := runApp(ctx, &out, "serve", "--data-dir", t.TempDir(), "--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--plc-listen", fmt.Sprintf("127.0.0.1:%d", plcPort), "--admin-password", "x", "--no-feedgen")
	waitHTTP(t, base+"/xrpc/com.atproto.server.describeServer", done, &out)
	require.NotContains(t, out.String(), "feed generator:")

	client := &http.Client{Timeout: 20 * time.Second}
	did, token := newAccount(t, client, base, "bob")
	early := postURI(t, client, base, did, token, "before the feed generator existed")

	var missing lockedBuffer
	err := newApp(&missing, &missing).RunContext(ctx, []string{"hearth", "feed", "serve", "--data-dir", t.TempDir()})
	require.ErrorContains(t, err, "--feed-firehose")

	fctx, fcancel := context.WithCancel(context.Background())
	defer fcancel()
	var fout lockedBuffer
	publisher := "did:plc:publisherpublisherpublis"
	fdone := runApp(fctx, &fout, "feed", "serve", "--data-dir", t.TempDir(), "--feed-listen", fmt.Sprintf("127.0.0.1:%d", feedPort),
		"--feed-firehose", fmt.Sprintf("ws://127.0.0.1:%d", port), "--feed-plc-url", fmt.Sprintf("http://127.0.0.1:%d", plcPort),
		"--feed-backfill", base, "--feed-allow-private", "--feed-hostname", "feeds.example.com", "--feed-publisher-did", publisher)
	waitHTTP(t, feedBase+"/xrpc/_health", fdone, &fout)
	feed := "at://" + publisher + "/app.bsky.feed.generator/recent"
	require.Contains(t, fout.String(), feed)
	waitForPost(t, feedBase, feed, early)
	live := postURI(t, client, base, did, token, "after it started")
	waitForPost(t, feedBase, feed, live)
	require.Equal(t, []string{live, early}, skeletonPosts(t, feedBase, feed))
	require.False(t, strings.Contains(fout.String(), "level=ERROR"), fout.String())

	stopApp(t, fcancel, fdone)
	stopApp(t, cancel, done)
}

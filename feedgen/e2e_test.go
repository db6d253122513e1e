package feedgen_test

// End to end: a real Hearth PDS (with its embedded PLC directory) and the feed generator
// reading its firehose over loopback, driven only through XRPC. The feed generator
// package itself never imports pds; this external test package may.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/feedgen"
	"github.com/hearth-social/hearth/feedgen/index"
	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/hearth-social/hearth/pds"
	"github.com/stretchr/testify/require"
)

type hearth struct {
	t      *testing.T
	net    *testnet.Net
	pds    *pds.Server
	pdsURL string
	plcURL string
	client *http.Client
}

func startPDS(t *testing.T) *hearth {
	t.Helper()
	n := testnet.Start(t)
	return &hearth{t: t, net: n, pds: n.PDS, pdsURL: n.URL(), plcURL: n.PLCServer.URL, client: n.Client.HTTP}
}

func (h *hearth) xrpc(method, nsid string, params url.Values, body any, token string) map[string]any {
	h.t.Helper()
	status, out := h.xrpcStatus(method, nsid, params, body, token)
	require.Equal(h.t, http.StatusOK, status, "%s: %v", nsid, out)
	return out
}

func (h *hearth) xrpcStatus(method, nsid string, params url.Values, body any, token string) (int, map[string]any) {
	h.t.Helper()
	u := h.pdsURL + "/xrpc/" + nsid
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(h.t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	require.NoError(h.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := h.client.Do(req)
	require.NoError(h.t, err)
	defer res.Body.Close()
	var out map[string]any
	raw, err := io.ReadAll(res.Body)
	require.NoError(h.t, err)
	json.Unmarshal(raw, &out)
	return res.StatusCode, out
}

type acct struct{ did, handle, token string }

func (h *hearth) account(name string) acct {
	out := h.xrpc(http.MethodPost, "com.atproto.server.createAccount", nil,
		map[string]any{"handle": name + ".test", "password": "pw-" + name, "email": name + "@example.com"}, "")
	return acct{did: out["did"].(string), handle: name + ".test", token: out["accessJwt"].(string)}
}

func (h *hearth) create(a acct, collection string, record map[string]any) (uri, cid string) {
	record["$type"] = collection
	if _, ok := record["createdAt"]; !ok {
		record["createdAt"] = time.Now().UTC().Format(time.RFC3339Nano)
	}
	out := h.xrpc(http.MethodPost, "com.atproto.repo.createRecord", nil, map[string]any{"repo": a.did, "collection": collection, "record": record}, a.token)
	return out["uri"].(string), out["cid"].(string)
}

func (h *hearth) post(a acct, text string) string {
	uri, _ := h.create(a, "app.bsky.feed.post", map[string]any{"text": text})
	return uri
}

func (h *hearth) like(a acct, uri, cid string) string {
	u, _ := h.create(a, "app.bsky.feed.like", map[string]any{"subject": map[string]any{"uri": uri, "cid": cid}})
	return u
}

func (h *hearth) deleteRecord(a acct, uri string) {
	at, err := syntax.ParseATURI(uri)
	require.NoError(h.t, err)
	h.xrpc(http.MethodPost, "com.atproto.repo.deleteRecord", nil,
		map[string]any{"repo": a.did, "collection": at.Collection().String(), "rkey": at.RecordKey().String()}, a.token)
}

// serviceAuth asks the account's PDS for a requester token (com.atproto.server.getServiceAuth).
func (h *hearth) serviceAuth(a acct, aud, lxm string) string {
	out := h.xrpc(http.MethodGet, "com.atproto.server.getServiceAuth", url.Values{"aud": {aud}, "lxm": {lxm}}, nil, a.token)
	return out["token"].(string)
}

// feedNode is a running feed generator (testnet's, with the short names these tests use).
type feedNode struct {
	f   *testnet.Feed
	svc *feedgen.Service
	srv *httptest.Server
}

func startFeed(t *testing.T, h *hearth, indexPath string) *feedNode {
	t.Helper()
	return startFeedWith(t, h, indexPath, nil)
}

// startFeedWith starts a feed generator on h's firehose with a modified configuration.
func startFeedWith(t *testing.T, h *hearth, indexPath string, mod func(*feedgen.Config)) *feedNode {
	t.Helper()
	var mods []func(*feedgen.Config)
	if mod != nil {
		mods = append(mods, mod)
	}
	f := h.net.StartFeed(t, indexPath, mods...)
	return &feedNode{f: f, svc: f.Svc, srv: f.Server}
}

func (n *feedNode) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, n.f.Stop())
}

// page fetches one skeleton page.
func (n *feedNode) page(t *testing.T, feed string, limit int, cursor, token string) skeleton {
	t.Helper()
	p := url.Values{"feed": {n.svc.Config().FeedURI(feed)}, "limit": {itoa(limit)}}
	if cursor != "" {
		p.Set("cursor", cursor)
	}
	st, out := getSkeleton(t, n.srv.URL, skel, p, token)
	require.Equal(t, http.StatusOK, st, "%+v", out)
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }

// waitFor polls cond (bounded).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func likeCount(t *testing.T, n *feedNode, uri string) int64 {
	t.Helper()
	p, err := n.svc.Index().Post(context.Background(), uri)
	if err != nil {
		return -1
	}
	return p.LikeCount
}

// pageAll pages through a feed, calling between() after each page, and returns the
// posts in order; it fails on any repeat.
func pageAll(t *testing.T, n *feedNode, feed string, limit int, token string, between func()) []string {
	t.Helper()
	var all []string
	seen := map[string]bool{}
	cursor := ""
	for range 100 {
		out := n.page(t, feed, limit, cursor, token)
		for _, it := range out.Feed {
			require.False(t, seen[it.Post], "%s repeated %s", feed, it.Post)
			seen[it.Post] = true
			all = append(all, it.Post)
		}
		if out.Cursor == "" {
			return all
		}
		cursor = out.Cursor
		if between != nil {
			between()
		}
	}
	t.Fatal("too many pages")
	return nil
}

func TestEndToEnd(t *testing.T) {
	h := startPDS(t)
	indexPath := filepath.Join(t.TempDir(), "feedgen.sqlite")
	feed := startFeed(t, h, indexPath)
	serviceDID := feed.svc.Config().ServiceDID()

	alice, bob, carol := h.account("alice"), h.account("bob"), h.account("carol")
	type post struct{ uri, cid string }
	var alicePosts, allPosts []post
	for i := range 6 {
		for _, a := range []acct{alice, bob, carol} {
			u, c := h.create(a, "app.bsky.feed.post", map[string]any{"text": a.handle + " says " + itoa(i)})
			allPosts = append(allPosts, post{u, c})
			if a.did == alice.did {
				alicePosts = append(alicePosts, post{u, c})
			}
		}
	}
	// carol follows alice; bob likes three of alice's posts, carol likes the first.
	h.create(carol, "app.bsky.graph.follow", map[string]any{"subject": alice.did})
	bobLikes := []string{}
	for _, p := range alicePosts[:3] {
		bobLikes = append(bobLikes, h.like(bob, p.uri, p.cid))
	}
	h.like(carol, alicePosts[0].uri, alicePosts[0].cid)

	waitFor(t, "likes to be indexed", func() bool {
		return likeCount(t, feed, alicePosts[0].uri) == 2 && likeCount(t, feed, alicePosts[2].uri) == 1
	})

	// recent: newest first, every post once, while new posts arrive between pages.
	extra := 0
	got := pageAll(t, feed, "recent", 4, "", func() {
		h.post(bob, "arrives while paging "+itoa(extra))
		extra++
	})
	require.Len(t, got, len(allPosts), "no skips: every post that existed at page 1 is shown")
	for i := range allPosts {
		require.Equal(t, allPosts[len(allPosts)-1-i].uri, got[i], "newest first")
	}
	waitFor(t, "posts made while paging", func() bool {
		first := feed.page(t, "recent", 100, "", "")
		return len(first.Feed) == len(allPosts)+extra
	})

	// following: carol sees alice's posts only, with a token from her PDS.
	tok := h.serviceAuth(carol, serviceDID, "app.bsky.feed.getFeedSkeleton")
	aliceExtra := 0
	got = pageAll(t, feed, "following", 2, tok, func() { h.post(alice, "alice while carol pages"); aliceExtra++ })
	require.Len(t, got, len(alicePosts))
	for i := range alicePosts {
		require.Equal(t, alicePosts[len(alicePosts)-1-i].uri, got[i])
	}
	following := url.Values{"feed": {feed.svc.Config().FeedURI("following")}}
	st, out := getSkeleton(t, feed.srv.URL, skel, following, "")
	require.Equal(t, http.StatusUnauthorized, st)
	require.Equal(t, "AuthenticationRequired", out.Error)
	for _, bad := range []string{
		h.serviceAuth(carol, "did:web:elsewhere.example.com", "app.bsky.feed.getFeedSkeleton"), // another service
		h.serviceAuth(carol, serviceDID, "app.bsky.feed.getTimeline"),                          // another method
		carol.token, // a session token is not a service-auth token
	} {
		st, out := getSkeleton(t, feed.srv.URL, skel, following, bad)
		require.Equal(t, http.StatusUnauthorized, st, "%+v", out)
		require.Equal(t, "InvalidToken", out.Error)
	}

	// Restart: stop the feed generator, keep writing, start it on the same index.
	waitFor(t, "quiet", func() bool {
		first := feed.page(t, "recent", 100, "", "")
		return len(first.Feed) == len(allPosts)+extra+aliceExtra
	})
	ctx := context.Background()
	before, err := feed.svc.Index().Count(ctx)
	require.NoError(t, err)
	cursorBefore, _, err := feed.svc.Index().Cursor(ctx, feed.svc.Ingester().Service())
	require.NoError(t, err)
	feed.stop(t)

	dave := h.account("dave")
	h.deleteRecord(bob, bobLikes[0])                   // alicePosts[0]: 2 -> 1
	h.like(dave, alicePosts[0].uri, alicePosts[0].cid) // -> 2
	h.like(dave, alicePosts[1].uri, alicePosts[1].cid) // 1 -> 2
	h.deleteRecord(carol, allPosts[2].uri)             // carol's first post
	late := h.post(alice, "posted while the feed generator was down")

	feed = startFeed(t, h, indexPath)
	defer feed.stop(t)
	waitFor(t, "catch-up", func() bool {
		_, err := feed.svc.Index().Post(ctx, late)
		return err == nil
	})
	require.EqualValues(t, 2, likeCount(t, feed, alicePosts[0].uri))
	require.EqualValues(t, 2, likeCount(t, feed, alicePosts[1].uri))
	require.EqualValues(t, 1, likeCount(t, feed, alicePosts[2].uri))
	require.EqualValues(t, 0, likeCount(t, feed, alicePosts[3].uri))
	after, err := feed.svc.Index().Count(ctx)
	require.NoError(t, err)
	require.Equal(t, before.Posts+1-1, after.Posts, "one post added, one deleted")
	require.Equal(t, before.Likes-1+2, after.Likes)
	require.Equal(t, before.Follows, after.Follows)
	require.Equal(t, after.Posts, after.Classifications, "one classification row per post")
	cursorAfter, _, err := feed.svc.Index().Cursor(ctx, feed.svc.Ingester().Service())
	require.NoError(t, err)
	require.Greater(t, cursorAfter, cursorBefore)
	_, err = feed.svc.Index().Post(ctx, allPosts[2].uri)
	require.ErrorIs(t, err, index.ErrNotFound)
	require.Zero(t, feed.svc.Ingester().Invalid(), "every event from the PDS verifies")

	// The restarted generator serves the same feeds, and old cursors still work.
	all := pageAll(t, feed, "recent", 7, "", nil)
	require.Len(t, all, int(after.Posts))
	require.Equal(t, late, all[0])
}

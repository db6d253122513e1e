package pds_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/hearth-social/hearth/pds"
	"github.com/stretchr/testify/require"
)

// Right after a write, the app reads through the PDS before the AppView has indexed
// it. The AppView double answers as the real one would for a repo it has read up to an
// older rev (Atproto-Repo-Rev), and the PDS patches in the newer posts and profile.
func TestReadAfterWrite(t *testing.T) {
	av := newFakeService(t)
	const cdn = "https://cdn.example/img/%s/plain/%s/%s@jpeg"
	e := newEnv(t, func(c *pds.Config) {
		c.AppViewURL, c.AppViewDID, c.AppViewCDNURLPattern = av.srv.URL, av.did, cdn
	})
	av.dir = e.directory()
	alice := e.createAccount("alice")
	bob := e.createAccount("bobby")

	putProfile := func(name, desc string, avatar any) {
		rec := map[string]any{"$type": "app.bsky.actor.profile", "displayName": name}
		if desc != "" {
			rec["description"] = desc
		}
		if avatar != nil {
			rec["avatar"] = avatar
		}
		requireOK(t, e.post("com.atproto.repo.putRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.actor.profile", "rkey": "self", "record": rec}, alice.Access))
	}
	createPost := func(rec map[string]any) (uri, cid string) {
		r := e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "record": rec}, alice.Access)
		requireOK(t, r)
		return r.Str("uri"), r.Str("cid")
	}
	head := func() string {
		r := e.get("com.atproto.sync.getLatestCommit", url.Values{"did": {alice.DID}}, "")
		requireOK(t, r)
		return r.Str("rev")
	}

	putProfile("Old Alice", "old words", nil)
	p1, p1cid := createPost(post("first"))
	seenRev := head() // what the AppView has indexed

	// Newer than the AppView: a post, a reply to p1, a profile edit with an avatar, a
	// post quoting someone else's post.
	blob := e.raw("POST", "com.atproto.repo.uploadBlob", "", []byte("\x89PNG\r\n\x1a\nnot really"), alice.Access, map[string]string{"Content-Type": "image/png"})
	require.Equal(t, http.StatusOK, blob.Status, "%s", blob.Body)
	avatar := blob.JSON["blob"]
	avatarCID := avatar.(map[string]any)["ref"].(map[string]any)["$link"].(string)
	p2, _ := createPost(post("second"))
	reply := post("a reply")
	reply["reply"] = map[string]any{"root": map[string]any{"uri": p1, "cid": p1cid}, "parent": map[string]any{"uri": p1, "cid": p1cid}}
	p3, _ := createPost(reply)
	putProfile("New Alice", "", avatar)
	quote := post("look at this")
	const quoted = "at://did:plc:bbbbbbbbbbbbbbbbbbbbbbbb/app.bsky.feed.post/3kquoted"
	quote["embed"] = map[string]any{"$type": "app.bsky.embed.record", "record": map[string]any{"uri": quoted, "cid": p1cid}}
	p4, _ := createPost(quote)
	nowRev := head()

	oldAuthor := map[string]any{"did": alice.DID, "handle": alice.Handle, "displayName": "Old Alice"}
	p1View := map[string]any{"uri": p1, "cid": p1cid, "author": oldAuthor, "record": post("first"), "indexedAt": "2020-01-01T00:00:00.000Z",
		"likeCount": 3, "replyCount": 0, "repostCount": 0, "quoteCount": 0}
	var mu sync.Mutex
	rev := seenRev
	av.reply = func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := w.Header()
		if rev != "" {
			h.Set("Atproto-Repo-Rev", rev)
		}
		mu.Unlock()
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Content-Language", "en")
		q := r.URL.Query()
		var out any
		switch strings.TrimPrefix(r.URL.Path, "/xrpc/") {
		case "app.bsky.feed.getTimeline", "app.bsky.feed.getAuthorFeed":
			out = map[string]any{"feed": []any{map[string]any{"post": p1View}}, "cursor": "c2"}
		case "app.bsky.actor.getProfile":
			out = map[string]any{"did": alice.DID, "handle": alice.Handle, "displayName": "Old Alice", "description": "old words", "followersCount": 7}
		case "app.bsky.actor.getProfiles":
			out = map[string]any{"profiles": []any{
				map[string]any{"did": bob.DID, "handle": bob.Handle, "displayName": "Bob"},
				map[string]any{"did": alice.DID, "handle": alice.Handle, "displayName": "Old Alice"},
			}}
		case "app.bsky.feed.getPosts":
			out = map[string]any{"posts": []any{map[string]any{"uri": quoted, "cid": p1cid, "author": map[string]any{"did": "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb", "handle": "carol.example"},
				"record": post("quoted words"), "indexedAt": "2020-01-01T00:00:00.000Z"}}}
		case "app.bsky.feed.getPostThread":
			if q.Get("uri") != p1 {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"error":"NotFound","message":"Post not found: `+q.Get("uri")+`"}`)
				return
			}
			out = map[string]any{"thread": map[string]any{"$type": "app.bsky.feed.defs#threadViewPost", "post": p1View, "replies": []any{}}}
		}
		json.NewEncoder(w).Encode(out)
	}
	get := func(nsid string, q url.Values) *resp {
		t.Helper()
		r := e.raw("GET", nsid, q.Encode(), nil, alice.Access, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s: %s", nsid, r.Body)
		return r
	}
	feedURIs := func(r *resp) []string {
		var uris []string
		for _, it := range r.JSON["feed"].([]any) {
			uris = append(uris, it.(map[string]any)["post"].(map[string]any)["uri"].(string))
		}
		return uris
	}
	item := func(r *resp, i int) map[string]any {
		return r.JSON["feed"].([]any)[i].(map[string]any)["post"].(map[string]any)
	}
	wantAvatar := strings.Replace(strings.Replace(strings.Replace(cdn, "%s", "avatar", 1), "%s", alice.DID, 1), "%s", avatarCID, 1)

	// Timeline: the newer posts on top, newest first, built from the records; the
	// AppView's own item and headers kept; the lag reported.
	r := get("app.bsky.feed.getTimeline", url.Values{"limit": {"30"}})
	require.Equal(t, []string{p4, p3, p2, p1}, feedURIs(r))
	require.Equal(t, "c2", r.Str("cursor"))
	require.Equal(t, "en", r.Header.Get("Content-Language"))
	require.Equal(t, seenRev, r.Header.Get("Atproto-Repo-Rev"))
	require.NotEmpty(t, r.Header.Get("Atproto-Upstream-Lag"))
	newest := item(r, 0)
	require.Equal(t, "look at this", newest["record"].(map[string]any)["text"])
	require.Equal(t, map[string]any{"did": alice.DID, "handle": alice.Handle, "displayName": "New Alice", "avatar": wantAvatar}, newest["author"])
	require.EqualValues(t, 0, newest["likeCount"])
	embed := newest["embed"].(map[string]any)
	require.Equal(t, "app.bsky.embed.record#view", embed["$type"])
	rec := embed["record"].(map[string]any)
	require.Equal(t, "app.bsky.embed.record#viewRecord", rec["$type"])
	require.Equal(t, quoted, rec["uri"])
	require.Equal(t, "quoted words", rec["value"].(map[string]any)["text"])
	c := av.last()
	require.Equal(t, "app.bsky.feed.getPosts", c.NSID, "the quoted post is looked up on the AppView")
	require.NoError(t, c.AuthErr)
	require.Equal(t, "app.bsky.feed.getPosts", c.Claims["lxm"])
	require.Equal(t, alice.DID, c.Issuer)
	require.EqualValues(t, 3, item(r, 3)["likeCount"], "the AppView's items come back as they were")

	// Author feed: her own, so the author of her old items is updated too.
	r = get("app.bsky.feed.getAuthorFeed", url.Values{"actor": {alice.DID}})
	require.Equal(t, []string{p4, p3, p2, p1}, feedURIs(r))
	require.Equal(t, "New Alice", item(r, 3)["author"].(map[string]any)["displayName"])
	require.Equal(t, wantAvatar, item(r, 3)["author"].(map[string]any)["avatar"])

	// Profiles: her own view takes the new record (the description now absent); others untouched.
	r = get("app.bsky.actor.getProfile", url.Values{"actor": {alice.DID}})
	require.Equal(t, "New Alice", r.Str("displayName"))
	require.Equal(t, wantAvatar, r.Str("avatar"))
	require.NotContains(t, r.JSON, "description")
	require.EqualValues(t, 7, r.JSON["followersCount"])
	r = get("app.bsky.actor.getProfiles", url.Values{"actors": {bob.DID, alice.DID}})
	profiles := r.JSON["profiles"].([]any)
	require.Equal(t, "Bob", profiles[0].(map[string]any)["displayName"])
	require.Equal(t, "New Alice", profiles[1].(map[string]any)["displayName"])

	// Thread: her new reply under p1.
	r = get("app.bsky.feed.getPostThread", url.Values{"uri": {p1}})
	thread := r.JSON["thread"].(map[string]any)
	replies := thread["replies"].([]any)
	require.Len(t, replies, 1)
	require.Equal(t, "app.bsky.feed.defs#threadViewPost", replies[0].(map[string]any)["$type"])
	require.Equal(t, p3, replies[0].(map[string]any)["post"].(map[string]any)["uri"])

	// Thread of a post the AppView does not know yet (NotFound): built here, its parent
	// asked of the AppView.
	r = get("app.bsky.feed.getPostThread", url.Values{"uri": {p3}, "parentHeight": {"5"}})
	thread = r.JSON["thread"].(map[string]any)
	require.Equal(t, p3, thread["post"].(map[string]any)["uri"])
	require.Equal(t, p1, thread["parent"].(map[string]any)["post"].(map[string]any)["uri"])
	c = av.last()
	require.Equal(t, "app.bsky.feed.getPostThread", c.NSID)
	require.Equal(t, p1, mustQuery(t, c.RawQuery).Get("uri"))
	require.Equal(t, "0", mustQuery(t, c.RawQuery).Get("depth"))
	require.Equal(t, "5", mustQuery(t, c.RawQuery).Get("parentHeight"))
	// Someone else's unknown post stays NotFound.
	nf := e.raw("GET", "app.bsky.feed.getPostThread", url.Values{"uri": {"at://" + bob.DID + "/app.bsky.feed.post/3kxyz"}}.Encode(), nil, alice.Access, nil)
	requireXRPCError(t, nf, 400, "NotFound")

	// Another account's reads are not patched with alice's records.
	r = e.raw("GET", "app.bsky.feed.getTimeline", "", nil, bob.Access, nil)
	require.Equal(t, []string{p1}, feedURIs(r))

	// Once the AppView has caught up (or says nothing about the rev), answers pass
	// through byte for byte.
	for _, rv := range []string{nowRev, ""} {
		mu.Lock()
		rev = rv
		mu.Unlock()
		r = get("app.bsky.feed.getTimeline", nil)
		require.Equal(t, []string{p1}, feedURIs(r), "rev %q", rv)
		require.Empty(t, r.Header.Get("Atproto-Upstream-Lag"))
		requireXRPCError(t, e.raw("GET", "app.bsky.feed.getPostThread", url.Values{"uri": {p3}}.Encode(), nil, alice.Access, nil), 400, "NotFound")
	}
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	q, err := url.ParseQuery(raw)
	require.NoError(t, err)
	return q
}

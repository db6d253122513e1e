package feedgen_test

// End to end for issue 6: posts with and without provenance-carrying images go through
// Hearth's PDS (uploadBlob + app.bsky.embed.images); the feed generator reads the
// firehose, fetches each image with com.atproto.sync.getBlob from the author's PDS,
// classifies the posts, serves the human / ai / balanced / following-mix feeds, labels
// the tier-0 AI posts through its labeler (verified against the key in its did.json),
// negates the labels when the evidence goes away, and explains its verdicts.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/labeling"
	"github.com/gorilla/websocket"
	"github.com/hearth-social/hearth/feedgen"
	"github.com/hearth-social/hearth/feedgen/labeler"
	"github.com/hearth-social/hearth/feedgen/rank"
	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/stretchr/testify/require"
)

const corpusDir = "../testdata/classify"

// upload sends a corpus file to the PDS with uploadBlob and returns the blob object.
func (h *hearth) upload(a acct, file string) map[string]any {
	h.t.Helper()
	return h.uploadPath(a, filepath.Join(corpusDir, file))
}

// uploadPath sends any file to the PDS with uploadBlob and returns the blob object.
func (h *hearth) uploadPath(a acct, path string) map[string]any {
	h.t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(h.t, err)
	file := path
	req, err := http.NewRequest(http.MethodPost, h.pdsURL+"/xrpc/com.atproto.repo.uploadBlob", bytes.NewReader(data))
	require.NoError(h.t, err)
	mime := map[string]string{".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp"}[filepath.Ext(file)]
	req.Header.Set("Content-Type", mime)
	req.Header.Set("Authorization", "Bearer "+a.token)
	res, err := h.client.Do(req)
	require.NoError(h.t, err)
	defer res.Body.Close()
	var out struct {
		Blob map[string]any `json:"blob"`
	}
	require.Equal(h.t, http.StatusOK, res.StatusCode)
	require.NoError(h.t, json.NewDecoder(res.Body).Decode(&out))
	return out.Blob
}

type e2ePost struct {
	name, uri, cid string
	author         acct
	ai             bool // expected in the ai feed (else in the human feed)
	label          string
	signal         string // expected top evidence signal ("" for none)
	likes          int
}

// imagePost creates a post embedding blobs (nil: a text-only post).
func (h *hearth) imagePost(a acct, text string, blobs ...map[string]any) (string, string) {
	rec := map[string]any{"text": text}
	if len(blobs) > 0 {
		var imgs []any
		for i, b := range blobs {
			imgs = append(imgs, map[string]any{"alt": fmt.Sprintf("image %d", i), "image": b})
		}
		rec["embed"] = map[string]any{"$type": "app.bsky.embed.images", "images": imgs}
	}
	return h.create(a, "app.bsky.feed.post", rec)
}

type skelItem struct {
	Post        string `json:"post"`
	FeedContext string `json:"feedContext"`
}

type skelPage struct {
	Feed   []skelItem `json:"feed"`
	Cursor string     `json:"cursor"`
}

// rankedPages pages through a feed with feedContext.
func rankedPages(t *testing.T, n *feedNode, feed string, limit int, token string) []skelItem {
	t.Helper()
	var all []skelItem
	cursor := ""
	for range 50 {
		p := url.Values{"feed": {n.svc.Config().FeedURI(feed)}, "limit": {itoa(limit)}}
		if cursor != "" {
			p.Set("cursor", cursor)
		}
		req, err := http.NewRequest(http.MethodGet, n.srv.URL+skel+"?"+p.Encode(), nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		require.NoError(t, err)
		var page skelPage
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode, string(raw))
		require.NoError(t, json.Unmarshal(raw, &page))
		all = append(all, page.Feed...)
		if page.Cursor == "" {
			return all
		}
		cursor = page.Cursor
	}
	t.Fatal("too many pages")
	return nil
}

func postsOf(items []skelItem) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Post)
	}
	return out
}

func explain(t *testing.T, n *feedNode, uri string) (int, feedgen.ExplainOutput) {
	t.Helper()
	res, err := http.Get(n.srv.URL + "/xrpc/" + feedgen.ExplainNSID + "?" + url.Values{"uri": {uri}}.Encode())
	require.NoError(t, err)
	defer res.Body.Close()
	var out feedgen.ExplainOutput
	require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
	return res.StatusCode, out
}

// labelKey reads the labeler key from the feed service's did.json, as a consumer would.
func labelKey(t *testing.T, n *feedNode) atcrypto.PublicKey {
	t.Helper()
	res, err := http.Get(n.srv.URL + "/.well-known/did.json")
	require.NoError(t, err)
	defer res.Body.Close()
	var doc identity.DIDDocument
	require.NoError(t, json.NewDecoder(res.Body).Decode(&doc))
	id := identity.ParseIdentity(&doc)
	require.Equal(t, n.svc.Config().PublicURL, id.GetServiceEndpoint("atproto_labeler"))
	require.Equal(t, n.svc.Config().PublicURL, id.GetServiceEndpoint("bsky_fg"))
	pub, err := id.GetPublicKey("atproto_label")
	require.NoError(t, err)
	return pub
}

// labelStream is a subscribeLabels connection that verifies every label it reads.
type labelStream struct {
	t    *testing.T
	conn *websocket.Conn
	pub  atcrypto.PublicKey
	src  string
}

func subscribeLabels(t *testing.T, n *feedNode, pub atcrypto.PublicKey) *labelStream {
	u := "ws" + strings.TrimPrefix(n.srv.URL, "http") + labeler.PathSubscribeLabels + "?cursor=0"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, resp, err := websocket.DefaultDialer.DialContext(ctx, u, nil)
	require.NoError(t, err)
	resp.Body.Close()
	t.Cleanup(func() { conn.Close() })
	return &labelStream{t: t, conn: conn, pub: pub, src: n.svc.Config().ServiceDID()}
}

// until reads labels until want (a set of "[-]val uri") is covered, bounded in time.
func (s *labelStream) until(want ...string) {
	s.t.Helper()
	need := map[string]bool{}
	for _, w := range want {
		need[w] = true
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(need) > 0 {
		require.NoError(s.t, s.conn.SetReadDeadline(deadline))
		typ, data, err := s.conn.ReadMessage()
		require.NoError(s.t, err, "still waiting for %v", need)
		require.Equal(s.t, websocket.BinaryMessage, typ)
		f, err := testnet.DecodeLabelsFrame(data)
		require.NoError(s.t, err)
		require.NotNil(s.t, f.Labels, "frame %+v", f)
		for _, lex := range f.Labels.Labels {
			lab := labeling.FromLexicon(lex)
			require.NoError(s.t, lab.VerifySyntax())
			require.NoError(s.t, lab.VerifySignature(s.pub), "signature against the #atproto_label key of did.json")
			require.Equal(s.t, s.src, lex.Src)
			key := lex.Val + " " + lex.Uri
			if lex.Neg != nil && *lex.Neg {
				key = "-" + key
			}
			delete(need, key)
		}
	}
}

// checkPrefix asserts the balanced-mix prefix property while both classes have posts.
func checkPrefix(t *testing.T, items []skelItem, isAI func(string) bool, share float64) {
	t.Helper()
	total := 0
	for _, it := range items {
		if isAI(it.Post) {
			total++
		}
	}
	a, h := 0, 0
	for k, it := range items {
		if a == total || h == len(items)-total {
			return
		}
		if isAI(it.Post) {
			a++
		} else {
			h++
		}
		n := float64(k + 1)
		require.LessOrEqual(t, math.Abs(float64(a)/n-share), 1/n+1e-9, "prefix %d holds %d AI posts", k+1, a)
	}
}

// subsequence keeps the items of list that are in set, in order.
func subsequence(list []string, keep func(string) bool) []string {
	var out []string
	for _, s := range list {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

func TestClassifyEndToEnd(t *testing.T) {
	h := startPDS(t)
	feed := startFeedWith(t, h, filepath.Join(t.TempDir(), "feedgen.sqlite"), func(c *feedgen.Config) {
		c.Rank.DiversityFloor = 1 // no diversity decay and no author cap: feeds are in plain score order
		c.Rank.AuthorCap = 0
		c.Rank.SnapshotTTL = 0
		c.Classify.PollInterval = 200 * time.Millisecond
	})
	defer feed.stop(t)
	ctx := context.Background()
	pub := labelKey(t, feed)
	labels := subscribeLabels(t, feed, pub)

	alice, bob, carol, dave := h.account("alice"), h.account("bob"), h.account("carol"), h.account("dave")
	var likers []acct
	for i := range 4 {
		likers = append(likers, h.account(fmt.Sprintf("liker%d", i)))
	}
	botty := h.account("botty")
	h.xrpc(http.MethodPost, "com.atproto.repo.putRecord", nil, map[string]any{"repo": botty.did, "collection": "app.bsky.actor.profile", "rkey": "self",
		"record": map[string]any{"$type": "app.bsky.actor.profile", "displayName": "Botty",
			"labels": map[string]any{"$type": "com.atproto.label.defs#selfLabels", "values": []any{map[string]any{"val": "bot"}}}}}, botty.token)

	c2pa := h.upload(alice, "png-c2pa-trained.png")
	posts := []*e2ePost{
		{name: "A1", author: alice, ai: true, label: "ai_generated", signal: "c2pa.digitalSourceType", likes: 3},
		{name: "A2", author: alice, ai: true, label: "ai_generated", signal: "gen.a1111", likes: 1},
		{name: "A3", author: dave, ai: true, label: "ai_assisted", signal: "xmp.digitalSourceType", likes: 2},
		{name: "A4", author: dave, ai: true, label: "ai_generated", signal: "xmp.digitalSourceType", likes: 0},
		{name: "H1", author: bob, label: "human_declared", signal: "exif.camera", likes: 4},
		{name: "H2", author: bob, label: "unknown", likes: 0},
		{name: "H3", author: dave, label: "unknown", signal: "text.hashtag", likes: 1},
		{name: "H4", author: alice, label: "unknown", likes: 2},
		{name: "H5", author: bob, label: "unknown", likes: 0}, // liked by a bot only
	}
	byName := map[string]*e2ePost{}
	for _, p := range posts {
		byName[p.name] = p
	}
	mk := func(name, text string, blobs ...map[string]any) {
		p := byName[name]
		p.uri, p.cid = h.imagePost(p.author, text, blobs...)
	}
	mk("A1", "a render", c2pa)
	mk("A2", "sd", h.upload(alice, "jpeg-exif-a1111.jpg"))
	mk("A3", "edited", h.upload(dave, "png-xmp-composite.png"))
	mk("A4", "webp", h.upload(dave, "webp-xmp-trained.webp"))
	mk("H1", "a photo", h.upload(bob, "jpeg-exif-camera.jpg"))
	mk("H2", "stripped", h.upload(bob, "png-stripped.png"))
	mk("H3", "#aiart? no, a decoy", h.upload(dave, "png-decoy-parameters.png"))
	mk("H4", "just words")
	mk("H5", "more words")

	// carol follows alice and bob (not dave).
	h.create(carol, "app.bsky.graph.follow", map[string]any{"subject": alice.did})
	h.create(carol, "app.bsky.graph.follow", map[string]any{"subject": bob.did})
	for _, p := range posts {
		for i := range p.likes {
			h.like(likers[i], p.uri, p.cid)
		}
	}
	h.like(botty, byName["H5"].uri, byName["H5"].cid)

	waitFor(t, "every post classified and every like indexed", func() bool {
		for _, p := range posts {
			c, err := feed.svc.Index().Classification(ctx, p.uri)
			if err != nil || !c.Classified {
				return false
			}
			want := int64(p.likes)
			if p.name == "H5" {
				want = 1
			}
			if likeCount(t, feed, p.uri) != want {
				return false
			}
		}
		return true
	})
	require.EqualValues(t, 7, feed.svc.BlobsFetched(), "each image fetched once with getBlob")

	// Verdicts and explanations.
	for _, p := range posts {
		st, ex := explain(t, feed, p.uri)
		require.Equal(t, http.StatusOK, st)
		require.Equal(t, feedgen.ExplainClassified, ex.Status, p.name)
		require.Equal(t, p.label, ex.Label, "%s: %+v", p.name, ex)
		require.Equal(t, p.cid, ex.CID)
		require.Equal(t, p.cid, ex.ClassifiedCID)
		if p.signal != "" {
			i := slices.IndexFunc(ex.Evidence, func(e feedgen.ExplainEvidence) bool { return e.Class != "info" })
			require.GreaterOrEqual(t, i, 0, "%s: %+v", p.name, ex.Evidence)
			require.Equal(t, p.signal, ex.Evidence[i].Signal, "%s: %+v", p.name, ex.Evidence)
			require.Contains(t, ex.FeedContext, p.signal)
		}
		require.Equal(t, p.ai, slices.Contains(ex.Feeds, rank.FeedAI), p.name)
		require.Equal(t, !p.ai, slices.Contains(ex.Feeds, rank.FeedHuman), p.name)
	}
	_, ex := explain(t, feed, byName["A1"].uri)
	require.Equal(t, []string{"ai-generated"}, ex.Labels)
	conf, err := strconv.ParseFloat(ex.Confidence, 64)
	require.NoError(t, err)
	require.Greater(t, conf, 0.9)
	require.Contains(t, ex.Evidence[0].Locator, "blob:"+c2pa["ref"].(map[string]any)["$link"].(string))
	require.Equal(t, "ai_generated", ex.Evidence[0].Class)
	require.Equal(t, 0, ex.Evidence[0].Tier)
	_, ex = explain(t, feed, byName["A3"].uri)
	require.Equal(t, []string{"ai-assisted"}, ex.Labels)
	_, ex = explain(t, feed, byName["H2"].uri)
	require.Empty(t, ex.Labels)
	require.Equal(t, "v=unknown", ex.FeedContext, "a stripped image is no evidence of anything")
	st, _ := explain(t, feed, "at://"+alice.did+"/app.bsky.feed.post/nope")
	require.Equal(t, http.StatusBadRequest, st)

	// The feeds, in score order: more likes first (a bot's like counts a tenth), then newer.
	// (A snapshot counts what was written before its millisecond.)
	time.Sleep(5 * time.Millisecond)
	order := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, byName[n].uri)
		}
		return out
	}
	wantHuman := order("H1", "H4", "H3", "H5", "H2")
	wantAI := order("A1", "A3", "A2", "A4")
	human := rankedPages(t, feed, rank.FeedHuman, 2, "")
	require.Equal(t, wantHuman, postsOf(human))
	ai := rankedPages(t, feed, rank.FeedAI, 3, "")
	require.Equal(t, wantAI, postsOf(ai))
	require.Equal(t, "v=ai_generated;e=c2pa.digitalSourceType", ai[0].FeedContext)
	require.True(t, strings.HasPrefix(human[0].FeedContext, "v=human_declared;e=exif.camera"), human[0].FeedContext)

	isAI := func(u string) bool { return slices.Contains(wantAI, u) }
	bal := rankedPages(t, feed, rank.FeedBalanced, 3, "")
	require.ElementsMatch(t, append(slices.Clone(wantHuman), wantAI...), postsOf(bal))
	checkPrefix(t, bal, isAI, feed.svc.Config().Rank.AIShare)
	require.Equal(t, wantAI, subsequence(postsOf(bal), isAI), "each class keeps its score order")
	require.Equal(t, wantHuman, subsequence(postsOf(bal), func(u string) bool { return !isAI(u) }))

	tok := h.serviceAuth(carol, feed.svc.Config().ServiceDID(), "app.bsky.feed.getFeedSkeleton")
	mix := rankedPages(t, feed, rank.FeedFollowingMix, 2, tok)
	followed := func(u string) bool { return strings.Contains(u, alice.did) || strings.Contains(u, bob.did) }
	require.Equal(t, subsequence(wantAI, followed), subsequence(postsOf(mix), isAI))
	require.Equal(t, subsequence(wantHuman, followed), subsequence(postsOf(mix), func(u string) bool { return !isAI(u) }))
	checkPrefix(t, mix, isAI, feed.svc.Config().Rank.AIShare)
	st, _ = getSkeleton(t, feed.srv.URL, skel, url.Values{"feed": {feed.svc.Config().FeedURI(rank.FeedFollowingMix)}}, "")
	require.Equal(t, http.StatusUnauthorized, st)

	// Signed labels for the tier-0 AI posts.
	labels.until("ai-generated "+byName["A1"].uri, "ai-generated "+byName["A2"].uri, "ai-assisted "+byName["A3"].uri, "ai-generated "+byName["A4"].uri)

	// The same image in a new post is not fetched again.
	a5 := &e2ePost{name: "A5", author: alice, ai: true, label: "ai_generated"}
	a5.uri, a5.cid = h.imagePost(alice, "the same render again", c2pa)
	waitFor(t, "A5 classified", func() bool {
		c, err := feed.svc.Index().Classification(ctx, a5.uri)
		return err == nil && c.Classified
	})
	require.EqualValues(t, 7, feed.svc.BlobsFetched(), "served from the per-CID cache")
	labels.until("ai-generated " + a5.uri)

	// Evidence goes away: A1 deleted, A2 edited to drop its image, dave taken down.
	h.deleteRecord(alice, byName["A1"].uri)
	a2 := byName["A2"]
	rkey := a2.uri[strings.LastIndexByte(a2.uri, '/')+1:]
	h.xrpc(http.MethodPost, "com.atproto.repo.putRecord", nil, map[string]any{"repo": alice.did, "collection": "app.bsky.feed.post", "rkey": rkey,
		"record": map[string]any{"$type": "app.bsky.feed.post", "text": "no image any more", "createdAt": time.Now().UTC().Format(time.RFC3339Nano)}}, alice.token)
	req, err := http.NewRequest(http.MethodPost, h.pdsURL+"/xrpc/com.atproto.admin.updateSubjectStatus", strings.NewReader(
		`{"subject":{"$type":"com.atproto.admin.defs#repoRef","did":"`+dave.did+`"},"takedown":{"applied":true}}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("admin", testnet.AdminPassword)
	res, err := h.client.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	labels.until("-ai-generated "+byName["A1"].uri, "-ai-generated "+a2.uri, "-ai-assisted "+byName["A3"].uri, "-ai-generated "+byName["A4"].uri)

	waitFor(t, "A2 re-classified", func() bool {
		_, ex := explain(t, feed, a2.uri)
		return ex.Status == feedgen.ExplainClassified && ex.CID != a2.cid
	})
	_, ex = explain(t, feed, a2.uri)
	require.Equal(t, "unknown", ex.Label)
	require.Empty(t, ex.Labels)
	st, _ = explain(t, feed, byName["A1"].uri)
	require.Equal(t, http.StatusBadRequest, st, "a deleted post is not explained")
	require.Equal(t, order("H1", "H4", "H5", "H2"), subsequence(postsOf(rankedPages(t, feed, rank.FeedHuman, 10, "")), func(u string) bool { return u != a2.uri }))
	require.Equal(t, []string{a5.uri}, postsOf(rankedPages(t, feed, rank.FeedAI, 10, "")))
	current, err := feed.svc.Labeler().Current(ctx, byName["A1"].uri)
	require.NoError(t, err)
	require.Empty(t, current)
}

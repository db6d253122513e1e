package pds

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/store"
)

// Read-after-write: right after a post or a profile edit, the app reads its timeline,
// its author feed, the thread or the profile through the PDS, often before the AppView
// has indexed the write. The AppView says how far it has read the caller's repository
// (Atproto-Repo-Rev); when the caller has newer posts or profile changes, the answer
// is patched with them, as the reference PDS does (packages/pds/src/read-after-write).
// The views are built here from the records (counts zero, images by CDN pattern or
// getBlob), so nothing waits on the AppView catching up.

const (
	// rawMaxRecords is how many newer records are looked at (the reference's 10).
	rawMaxRecords = 10
	// rawMaxBody caps an upstream answer read to be patched; a larger one is passed on.
	rawMaxBody = 8 << 20
	// rawEmbedTimeout bounds each AppView lookup for a quoted record.
	rawEmbedTimeout = 5 * time.Second
)

const (
	collProfile = "app.bsky.actor.profile"
	collPost    = "app.bsky.feed.post"
)

// rawPatchers are the methods whose answers are patched, by NSID.
var rawPatchers = map[string]func(v *localViewer, body map[string]any) error{
	"app.bsky.feed.getTimeline":   patchTimeline,
	"app.bsky.feed.getAuthorFeed": patchAuthorFeed,
	"app.bsky.feed.getPostThread": patchPostThread,
	"app.bsky.actor.getProfile":   patchProfile,
	"app.bsky.actor.getProfiles":  patchProfiles,
}

type jsonMap = map[string]any

// localPost is one of the caller's posts the AppView has not seen.
type localPost struct {
	uri, cid, indexedAt string
	record              jsonMap
}

// localViewer builds views of the caller's own records.
type localViewer struct {
	s       *Server
	ctx     context.Context
	did     string
	handle  string
	up      upstream
	profile jsonMap // the caller's profile record, when newer than the AppView's
	posts   []localPost
	oldest  time.Time // when the oldest of the newer records was written
}

// forwardReadAfterWrite forwards a call whose answer may need the caller's newer
// records, patching it when the AppView is behind. Whatever goes wrong while patching,
// the client gets the AppView's answer as it came.
func (s *Server) forwardReadAfterWrite(w http.ResponseWriter, r *http.Request, nsid syntax.NSID, up upstream, c *caller) error {
	ctx, cancel := context.WithTimeout(r.Context(), proxyTotalTimeout)
	defer cancel()
	res, err := s.send(ctx, r, nsid, up, c, up.aud, nsid, nil, true)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	rev := res.Header.Get("Atproto-Repo-Rev")
	mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	notFound := nsid == "app.bsky.feed.getPostThread" && res.StatusCode == http.StatusBadRequest
	if rev == "" || mt != "application/json" || (res.StatusCode != http.StatusOK && !notFound) || res.ContentLength > rawMaxBody {
		s.relay(w, r, nsid, res)
		return nil
	}
	recs, err := s.store.RecordsSinceRev(ctx, c.DID, rev, []string{collProfile, collPost}, rawMaxRecords)
	if err != nil || len(recs) == 0 {
		if err != nil {
			s.log.Warn("read-after-write: reading newer records", "did", c.DID, "err", err)
		}
		s.relay(w, r, nsid, res)
		return nil
	}
	buf, err := io.ReadAll(io.LimitReader(res.Body, rawMaxBody+1))
	if err != nil {
		return &xrpc.Error{Status: http.StatusBadGateway, Name: "UpstreamFailure", Message: "reading the upstream answer failed", Err: err}
	}
	passOn := func() {
		res.Body = io.NopCloser(io.MultiReader(bytes.NewReader(buf), res.Body))
		res.ContentLength = -1
		s.relay(w, r, nsid, res)
	}
	if len(buf) > rawMaxBody {
		passOn()
		return nil
	}
	v, err := s.newLocalViewer(ctx, c.DID, up, recs)
	if err != nil {
		s.log.Warn("read-after-write: loading the caller's records", "did", c.DID, "err", err)
		passOn()
		return nil
	}
	var body jsonMap
	if notFound {
		body, err = v.threadNotFound(r.URL.Query(), buf)
	} else {
		body, err = decodeJSONMap(buf)
		if err == nil {
			err = rawPatchers[nsid.String()](v, body)
		}
	}
	if err != nil || body == nil {
		if err != nil {
			s.log.Debug("read-after-write: not patched", "nsid", nsid, "err", err)
		}
		passOn()
		return nil
	}
	out, err := json.Marshal(body)
	if err != nil {
		passOn()
		return nil
	}
	h := w.Header()
	for _, name := range proxyResponseHeaders {
		if vals := res.Header.Values(name); len(vals) > 0 && name != "Content-Encoding" {
			h[name] = vals
		}
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(out)))
	if !v.oldest.IsZero() {
		h.Set("Atproto-Upstream-Lag", strconv.FormatInt(time.Since(v.oldest).Milliseconds(), 10))
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(out)
	}
	return nil
}

func decodeJSONMap(b []byte) (jsonMap, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m jsonMap
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("answer is not a JSON object")
	}
	return m, nil
}

func (s *Server) newLocalViewer(ctx context.Context, did string, up upstream, recs []store.RevRecord) (*localViewer, error) {
	acct, err := s.store.AccountByDID(ctx, did)
	if err != nil {
		return nil, err
	}
	v := &localViewer{s: s, ctx: ctx, did: did, handle: acct.Handle, up: up}
	for _, rec := range recs {
		raw, err := recordJSON(rec.Value)
		if err != nil {
			return nil, err
		}
		m, err := decodeJSONMap(raw)
		if err != nil {
			return nil, err
		}
		written := time.Now()
		if tid, err := syntax.ParseTID(rec.Rev); err == nil {
			written = tid.Time()
		}
		if v.oldest.IsZero() || written.Before(v.oldest) {
			v.oldest = written
		}
		switch {
		case rec.Collection == collProfile && rec.RKey == "self":
			v.profile = m
		case rec.Collection == collPost:
			v.posts = append(v.posts, localPost{
				uri: atURI(did, rec.Collection, rec.RKey), cid: rec.CID.String(),
				indexedAt: written.UTC().Format("2006-01-02T15:04:05.000Z"), record: m,
			})
		}
	}
	return v, nil
}

// imageURL is where the app loads one of the caller's images: the AppView's CDN when
// its pattern is configured (kind, DID, CID, like cdn.bsky.app/img/%s/plain/%s/%s@jpeg),
// else this PDS's getBlob.
func (v *localViewer) imageURL(kind string, blob any) (string, bool) {
	c := blobCID(blob)
	if c == "" {
		return "", false
	}
	if p := v.s.cfg.AppViewCDNURLPattern; p != "" {
		return fmt.Sprintf(p, kind, v.did, c), true
	}
	return v.s.cfg.PublicURL + "/xrpc/com.atproto.sync.getBlob?did=" + url.QueryEscape(v.did) + "&cid=" + url.QueryEscape(c), true
}

// blobCID reads the CID of a blob reference in its JSON form (or the legacy {cid}).
func blobCID(b any) string {
	m, ok := b.(jsonMap)
	if !ok {
		return ""
	}
	if ref, ok := m["ref"].(jsonMap); ok {
		if l, ok := ref["$link"].(string); ok {
			return l
		}
	}
	if c, ok := m["cid"].(string); ok {
		return c
	}
	return ""
}

// profileBasic is the caller's app.bsky.actor.defs#profileViewBasic from its current
// profile record.
func (v *localViewer) profileBasic() jsonMap {
	out := jsonMap{"did": v.did, "handle": v.handle}
	prof := v.profile
	if prof == nil {
		if _, val, err := v.s.store.Record(v.ctx, v.did, collProfile, "self"); err == nil {
			if raw, err := recordJSON(val); err == nil {
				prof, _ = decodeJSONMap(raw)
			}
		}
	}
	if prof != nil {
		if dn, ok := prof["displayName"].(string); ok {
			out["displayName"] = dn
		}
		if u, ok := v.imageURL("avatar", prof["avatar"]); ok {
			out["avatar"] = u
		}
	}
	return out
}

// updateProfile overwrites what the profile record says in a profile view: display
// name and avatar (basic), description (view), banner (detailed).
func (v *localViewer) updateProfile(view jsonMap, level int) {
	rec := v.profile
	set := func(key string, val any, ok bool) {
		if ok {
			view[key] = val
		} else {
			delete(view, key)
		}
	}
	dn, ok := rec["displayName"].(string)
	set("displayName", dn, ok)
	u, ok := v.imageURL("avatar", rec["avatar"])
	set("avatar", u, ok)
	if level >= 1 {
		d, ok := rec["description"].(string)
		set("description", d, ok)
	}
	if level >= 2 {
		u, ok := v.imageURL("banner", rec["banner"])
		set("banner", u, ok)
	}
}

// postView is app.bsky.feed.defs#postView of a new post (counts presumed zero).
func (v *localViewer) postView(p localPost) jsonMap {
	view := jsonMap{
		"uri": p.uri, "cid": p.cid, "author": v.profileBasic(), "record": p.record, "indexedAt": p.indexedAt,
		"likeCount": 0, "replyCount": 0, "repostCount": 0, "quoteCount": 0,
	}
	if e, ok := p.record["embed"].(jsonMap); ok {
		if ev := v.embedView(e); ev != nil {
			view["embed"] = ev
		}
	}
	return view
}

func (v *localViewer) embedView(e jsonMap) jsonMap {
	switch e["$type"] {
	case "app.bsky.embed.images":
		return v.imagesView(e)
	case "app.bsky.embed.external":
		return v.externalView(e)
	case "app.bsky.embed.record":
		return v.recordView(e)
	case "app.bsky.embed.recordWithMedia":
		var media jsonMap
		if m, ok := e["media"].(jsonMap); ok {
			switch m["$type"] {
			case "app.bsky.embed.images":
				media = v.imagesView(m)
			case "app.bsky.embed.external":
				media = v.externalView(m)
			}
		}
		rec, _ := e["record"].(jsonMap)
		if media == nil || rec == nil {
			return nil
		}
		return jsonMap{"$type": "app.bsky.embed.recordWithMedia#view", "record": v.recordView(rec), "media": media}
	}
	return nil
}

func (v *localViewer) imagesView(e jsonMap) jsonMap {
	imgs, _ := e["images"].([]any)
	views := []any{}
	for _, i := range imgs {
		img, ok := i.(jsonMap)
		if !ok {
			continue
		}
		thumb, ok1 := v.imageURL("feed_thumbnail", img["image"])
		full, ok2 := v.imageURL("feed_fullsize", img["image"])
		if !ok1 || !ok2 {
			continue
		}
		iv := jsonMap{"thumb": thumb, "fullsize": full, "alt": img["alt"]}
		if img["alt"] == nil {
			iv["alt"] = ""
		}
		if ar, ok := img["aspectRatio"]; ok {
			iv["aspectRatio"] = ar
		}
		views = append(views, iv)
	}
	return jsonMap{"$type": "app.bsky.embed.images#view", "images": views}
}

func (v *localViewer) externalView(e jsonMap) jsonMap {
	ext, _ := e["external"].(jsonMap)
	out := jsonMap{"uri": ext["uri"], "title": ext["title"], "description": ext["description"]}
	if u, ok := v.imageURL("feed_thumbnail", ext["thumb"]); ok {
		out["thumb"] = u
	}
	return jsonMap{"$type": "app.bsky.embed.external#view", "external": out}
}

// recordView is app.bsky.embed.record#view of a quoted record, looked up on the
// AppView (posts, feed generators, lists), or viewNotFound.
func (v *localViewer) recordView(e jsonMap) jsonMap {
	ref, _ := e["record"].(jsonMap)
	uri, _ := ref["uri"].(string)
	var inner jsonMap
	if u, err := syntax.ParseATURI(uri); err == nil {
		inner = v.lookupRecord(u)
	}
	if inner == nil {
		inner = jsonMap{"$type": "app.bsky.embed.record#viewNotFound", "uri": uri, "notFound": true}
	}
	return jsonMap{"$type": "app.bsky.embed.record#view", "record": inner}
}

func (v *localViewer) lookupRecord(u syntax.ATURI) jsonMap {
	var nsid, param, key, typ string
	switch u.Collection() {
	case collPost:
		nsid, param = "app.bsky.feed.getPosts", "uris"
	case "app.bsky.feed.generator":
		nsid, param, key, typ = "app.bsky.feed.getFeedGenerator", "feed", "view", "app.bsky.feed.defs#generatorView"
	case "app.bsky.graph.list":
		nsid, param, key, typ = "app.bsky.graph.getList", "list", "list", "app.bsky.graph.defs#listView"
	default:
		return nil
	}
	var out jsonMap
	if err := v.callAppView(nsid, url.Values{param: {u.String()}}, &out); err != nil {
		v.s.log.Debug("read-after-write: looking up a quoted record", "uri", u, "err", err)
		return nil
	}
	if key != "" {
		view, ok := out[key].(jsonMap)
		if !ok {
			return nil
		}
		view["$type"] = typ
		return view
	}
	posts, _ := out["posts"].([]any)
	if len(posts) == 0 {
		return nil
	}
	post, ok := posts[0].(jsonMap)
	if !ok {
		return nil
	}
	rec := jsonMap{"$type": "app.bsky.embed.record#viewRecord", "uri": post["uri"], "cid": post["cid"],
		"author": post["author"], "value": post["record"], "indexedAt": post["indexedAt"]}
	if l, ok := post["labels"]; ok {
		rec["labels"] = l
	}
	if emb, ok := post["embed"]; ok {
		rec["embeds"] = []any{emb}
	}
	return rec
}

// callAppView asks the upstream a query for the caller.
func (v *localViewer) callAppView(nsid string, params url.Values, out any) error {
	ctx, cancel := context.WithTimeout(v.ctx, rawEmbedTimeout)
	defer cancel()
	lxm := syntax.NSID(nsid)
	tok, err := v.s.serviceAuthToken(ctx, v.did, v.up.aud, &lxm, defaultServiceAuthTTL)
	if err != nil {
		return err
	}
	client, err := xrpc.NewClient(v.up.endpoint, xrpc.WithHTTPClient(v.up.client))
	if err != nil {
		return err
	}
	return client.Query(ctx, nsid, tok, params, out)
}

// insertPosts puts the caller's newer posts into a feed (FeedViewPost list) by
// indexedAt, newest first, skipping those older than the feed's last item (they
// belong to a later page).
func (v *localViewer) insertPosts(feed []any) []any {
	if len(v.posts) == 0 {
		return feed
	}
	last := "1970-01-01T00:00:00.000Z"
	if n := len(feed); n > 0 {
		last = feedItemIndexedAt(feed[n-1])
	}
	for i := len(v.posts) - 1; i >= 0; i-- {
		p := v.posts[i]
		if p.indexedAt <= last || feedHas(feed, p.uri) {
			continue
		}
		item := jsonMap{"post": v.postView(p)}
		idx := len(feed)
		for j, fi := range feed {
			if feedItemIndexedAt(fi) < p.indexedAt {
				idx = j
				break
			}
		}
		feed = append(feed, nil)
		copy(feed[idx+1:], feed[idx:])
		feed[idx] = item
	}
	return feed
}

func feedItemIndexedAt(item any) string {
	m, _ := item.(jsonMap)
	post, _ := m["post"].(jsonMap)
	s, _ := post["indexedAt"].(string)
	return s
}

func feedHas(feed []any, uri string) bool {
	for _, fi := range feed {
		m, _ := fi.(jsonMap)
		post, _ := m["post"].(jsonMap)
		if post["uri"] == uri {
			return true
		}
	}
	return false
}

func patchTimeline(v *localViewer, body jsonMap) error {
	feed, ok := body["feed"].([]any)
	if !ok {
		return fmt.Errorf("no feed in the answer")
	}
	body["feed"] = v.insertPosts(feed)
	return nil
}

func patchAuthorFeed(v *localViewer, body jsonMap) error {
	feed, ok := body["feed"].([]any)
	if !ok {
		return fmt.Errorf("no feed in the answer")
	}
	if !v.isOwnFeed(feed) {
		return nil
	}
	if v.profile != nil {
		for _, fi := range feed {
			m, _ := fi.(jsonMap)
			post, _ := m["post"].(jsonMap)
			if author, ok := post["author"].(jsonMap); ok && author["did"] == v.did {
				v.updateProfile(author, 0)
			}
		}
	}
	body["feed"] = v.insertPosts(feed)
	return nil
}

// isOwnFeed reports whether an author feed is the caller's: its first item is the
// caller's post or the caller's repost.
func (v *localViewer) isOwnFeed(feed []any) bool {
	if len(feed) == 0 {
		return false
	}
	first, _ := feed[0].(jsonMap)
	if reason, ok := first["reason"].(jsonMap); ok {
		by, _ := reason["by"].(jsonMap)
		return reason["$type"] == "app.bsky.feed.defs#reasonRepost" && by["did"] == v.did
	}
	post, _ := first["post"].(jsonMap)
	author, _ := post["author"].(jsonMap)
	return author["did"] == v.did
}

func patchProfile(v *localViewer, body jsonMap) error {
	if v.profile != nil && body["did"] == v.did {
		v.updateProfile(body, 2)
	}
	return nil
}

func patchProfiles(v *localViewer, body jsonMap) error {
	if v.profile == nil {
		return nil
	}
	profiles, _ := body["profiles"].([]any)
	for _, p := range profiles {
		if m, ok := p.(jsonMap); ok && m["did"] == v.did {
			v.updateProfile(m, 2)
		}
	}
	return nil
}

const typeThreadViewPost = "app.bsky.feed.defs#threadViewPost"

func patchPostThread(v *localViewer, body jsonMap) error {
	thread, ok := body["thread"].(jsonMap)
	if !ok || thread["$type"] != typeThreadViewPost {
		return nil
	}
	v.addToThread(thread, v.posts)
	return nil
}

// addToThread inserts the caller's newer replies that belong to thread (same root)
// under their parents.
func (v *localViewer) addToThread(thread jsonMap, posts []localPost) {
	post, _ := thread["post"].(jsonMap)
	threadURI, _ := post["uri"].(string)
	threadRoot := replyRef(post["record"], "root")
	for _, p := range posts {
		root := replyRef(p.record, "root")
		if root == "" || (root != threadURI && root != threadRoot) {
			continue
		}
		v.insertReply(thread, p)
	}
}

// replyRef is the uri of a post record's reply.root or reply.parent.
func replyRef(record any, which string) string {
	rec, _ := record.(jsonMap)
	reply, _ := rec["reply"].(jsonMap)
	ref, _ := reply[which].(jsonMap)
	s, _ := ref["uri"].(string)
	return s
}

func (v *localViewer) insertReply(view jsonMap, p localPost) {
	post, _ := view["post"].(jsonMap)
	replies, _ := view["replies"].([]any)
	if replyRef(p.record, "parent") == post["uri"] {
		for _, r := range replies {
			if m, ok := r.(jsonMap); ok {
				if rp, ok := m["post"].(jsonMap); ok && rp["uri"] == p.uri {
					return
				}
			}
		}
		view["replies"] = append([]any{jsonMap{"$type": typeThreadViewPost, "post": v.postView(p)}}, replies...)
		return
	}
	for _, r := range replies {
		if m, ok := r.(jsonMap); ok && m["$type"] == typeThreadViewPost {
			v.insertReply(m, p)
		}
	}
}

// threadNotFound answers getPostThread for one of the caller's own posts the AppView
// does not know yet (it said NotFound): the thread is built from the local posts, with
// its parents asked of the AppView. nil when the post is not one of those.
func (v *localViewer) threadNotFound(q url.Values, upstreamBody []byte) (jsonMap, error) {
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(upstreamBody, &e); err != nil || e.Error != "NotFound" {
		return nil, nil
	}
	u, err := syntax.ParseATURI(q.Get("uri"))
	if err != nil {
		return nil, nil
	}
	if u.Authority().String() != v.did && !strings.EqualFold(u.Authority().String(), v.handle) {
		return nil, nil
	}
	want := atURI(v.did, u.Collection().String(), u.RecordKey().String())
	var rest []localPost
	var found *localPost
	for i, p := range v.posts {
		if p.uri == want {
			found = &v.posts[i]
		} else {
			rest = append(rest, p)
		}
	}
	if found == nil {
		return nil, nil
	}
	thread := jsonMap{"$type": typeThreadViewPost, "post": v.postView(*found)}
	v.addToThread(thread, rest)
	if parent := replyRef(found.record, "parent"); parent != "" {
		params := url.Values{"uri": {parent}, "depth": {"0"}}
		if ph := q.Get("parentHeight"); ph != "" {
			params.Set("parentHeight", ph)
		}
		var out jsonMap
		if err := v.callAppView("app.bsky.feed.getPostThread", params, &out); err == nil && out["thread"] != nil {
			thread["parent"] = out["thread"]
		}
	}
	return jsonMap{"thread": thread}, nil
}

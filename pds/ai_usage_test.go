package pds_test

import (
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/hearth-social/hearth/pds"
	"github.com/stretchr/testify/require"
)

// aiPref is a community.lexicon.preference.ai record: scope nil is the account default.
func aiPref(collection string, prefs map[string]bool) map[string]any {
	now := time.Now().UTC().Format(time.RFC3339)
	set := map[string]any{}
	for k, v := range prefs {
		set[k] = map[string]any{"allow": v, "updatedAt": now}
	}
	scope := map[string]any{"$type": "community.lexicon.preference.ai#globalScope"}
	if collection != "" {
		scope = map[string]any{"$type": "community.lexicon.preference.ai#collectionScope", "collection": collection}
	}
	return map[string]any{"$type": "community.lexicon.preference.ai", "updatedAt": now, "scope": scope, "preferences": set}
}

// usageOnReads reads a's data through every public read path and returns each answer's
// Content-Usage header (blobRef: a blob of a; postRkey: one of a's posts).
func (e *env) usageOnReads(a *account, postRkey, blobCID string) map[string]string {
	e.t.Helper()
	head := func(r *resp) string {
		e.t.Helper()
		require.Equal(e.t, 200, r.Status, string(r.Body))
		return r.Header.Get("Content-Usage")
	}
	post := url.Values{"repo": {a.DID}, "collection": {"app.bsky.feed.post"}, "rkey": {postRkey}}
	syncPost := url.Values{"did": {a.DID}, "collection": {"app.bsky.feed.post"}, "rkey": {postRkey}}
	c := e.get("com.atproto.repo.getRecord", post, "")
	return map[string]string{
		"repo.getRecord":        head(c),
		"repo.listRecords post": head(e.get("com.atproto.repo.listRecords", url.Values{"repo": {a.DID}, "collection": {"app.bsky.feed.post"}}, "")),
		"repo.listRecords like": head(e.get("com.atproto.repo.listRecords", url.Values{"repo": {a.DID}, "collection": {"app.bsky.feed.like"}}, "")),
		"sync.getRecord":        head(e.raw("GET", "com.atproto.sync.getRecord", syncPost.Encode(), nil, "", nil)),
		"sync.getRepo":          head(e.raw("GET", "com.atproto.sync.getRepo", "did="+a.DID, nil, "", nil)),
		"sync.getBlocks":        head(e.raw("GET", "com.atproto.sync.getBlocks", url.Values{"did": {a.DID}, "cids": {c.Str("cid")}}.Encode(), nil, "", nil)),
		"sync.getBlob":          head(e.getBlob(a.DID, blobCID)),
	}
}

func sameOnAll(v string) map[string]string {
	return map[string]string{"repo.getRecord": v, "repo.listRecords post": v, "repo.listRecords like": v,
		"sync.getRecord": v, "sync.getRepo": v, "sync.getBlocks": v, "sync.getBlob": v}
}

// TestContentUsage: an account's AI usage declaration, written as an ordinary record,
// becomes a Content-Usage header on every public read of its data; nothing declared,
// no header; a collection override changes that collection's reads only; a deletion or
// a change is seen at once; the proposal 0008 record is read too.
func TestContentUsage(t *testing.T) {
	e := newEnv(t, func(c *pds.Config) { c.AIUsageDefault = "train-ai=n" })
	alice := e.createAccount("alice")
	ref := e.uploadOK(alice.Access, append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 64)...))
	rkey := e.createPost(alice, imagePost("mine", ref))
	blob := blobLink(ref)

	require.Equal(t, sameOnAll(""), e.usageOnReads(alice, rkey, blob), "nothing declared: no header")

	put := func(rkey string, rec map[string]any) {
		t.Helper()
		requireOK(t, e.post("com.atproto.repo.putRecord", map[string]any{"repo": alice.DID, "collection": "community.lexicon.preference.ai", "rkey": rkey, "record": rec}, alice.Access))
	}
	put("self", aiPref("", map[string]bool{"training": false, "syntheticContent": false, "inference": true}))
	require.Equal(t, sameOnAll("train-ai=n, train-genai=n"), e.usageOnReads(alice, rkey, blob))

	// Posts may be trained on (not for generative models); likes keep the default.
	put("3lbcoverride2a", aiPref("app.bsky.feed.post", map[string]bool{"training": true}))
	want := sameOnAll("train-ai=n, train-genai=n")
	want["repo.getRecord"], want["repo.listRecords post"], want["sync.getRecord"] = "train-ai=y, train-genai=n", "train-ai=y, train-genai=n", "train-ai=y, train-genai=n"
	require.Equal(t, want, e.usageOnReads(alice, rkey, blob))

	d := e.get("com.atproto.repo.describeRepo", url.Values{"repo": {alice.DID}}, "")
	requireOK(t, d)
	require.Equal(t, "train-ai=n, train-genai=n", d.Header.Get("Content-Usage"))
	require.Equal(t, map[string]any{"default": "train-ai=n, train-genai=n", "collections": map[string]any{"app.bsky.feed.post": "train-ai=y, train-genai=n"}}, d.JSON["contentUsage"])

	// Deleting the declarations: undefined again, at once.
	for _, k := range []string{"self", "3lbcoverride2a"} {
		requireOK(t, e.post("com.atproto.repo.deleteRecord", map[string]any{"repo": alice.DID, "collection": "community.lexicon.preference.ai", "rkey": k}, alice.Access))
	}
	require.Equal(t, sameOnAll(""), e.usageOnReads(alice, rkey, blob))
	_, hasView := e.get("com.atproto.repo.describeRepo", url.Values{"repo": {alice.DID}}, "").JSON["contentUsage"]
	require.False(t, hasView)

	// The proposal 0008 declaration alone.
	requireOK(t, e.post("com.atproto.repo.putRecord", map[string]any{"repo": alice.DID, "collection": "org.user-intents.declaration", "rkey": "self", "record": map[string]any{
		"$type": "org.user-intents.declaration", "updatedAt": time.Now().UTC().Format(time.RFC3339),
		"syntheticContentGeneration": map[string]any{"allow": false, "updatedAt": time.Now().UTC().Format(time.RFC3339)},
	}}, alice.Access))
	require.Equal(t, sameOnAll("train-genai=n"), e.usageOnReads(alice, rkey, blob))

	// Another account declared nothing: its reads say nothing.
	bob := e.createAccount("bobby")
	bref := e.uploadOK(bob.Access, append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 65)...))
	require.Equal(t, sameOnAll(""), e.usageOnReads(bob, e.createPost(bob, imagePost("his", bref)), blobLink(bref)))

	// A malformed declaration is refused by lexicon validation like any record.
	requireXRPCError(t, e.post("com.atproto.repo.putRecord", map[string]any{"repo": alice.DID, "collection": "community.lexicon.preference.ai", "rkey": "self",
		"record": map[string]any{"$type": "community.lexicon.preference.ai", "preferences": "no"}}, alice.Access), 400, "InvalidRequest")

	// The operator's default for bulk crawlers, in robots.txt.
	res, err := http.Get(e.http.URL + "/robots.txt")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, "User-agent: *\nAllow: /\nContent-Usage: train-ai=n\n", string(body))
}

// TestAIUsageDefaultValidated: the operator's expression is checked and normalised.
func TestAIUsageDefaultValidated(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"train-ai=n", "train-ai=n", ""},
		{" train-ai = n ,train-genai=y", "train-ai=n, train-genai=y", ""},
		{"train-ai=maybe", "", "want term=y or term=n"},
		{"train-ai", "", "want term=y or term=n"},
		{"Train-AI=n", "", "not a vocabulary term"},
		{"train-ai=n, train-ai=y", "", "given twice"},
	} {
		c := pds.DefaultConfig()
		c.DataDir, c.PLCURL, c.AIUsageDefault = t.TempDir(), "http://127.0.0.1:1", tc.in
		err := c.Validate()
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, c.AIUsageDefault)
	}
}

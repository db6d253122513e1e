package pds_test

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/pds/plc"
	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"
)

func (e *env) latest(did string) (string, string) {
	r := e.get("com.atproto.sync.getLatestCommit", url.Values{"did": {did}}, "")
	requireOK(e.t, r)
	return r.Str("cid"), r.Str("rev")
}

func TestRecordLifecycle(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")

	// createRecord: TID rkey, valid lexicon, commit {cid, rev} that is the new head.
	r := e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "record": post("hello")}, alice.Access)
	requireOK(t, r)
	uri := r.Str("uri")
	rkey := uri[strings.LastIndex(uri, "/")+1:]
	_, err := syntax.ParseTID(rkey)
	require.NoError(t, err)
	require.Equal(t, "valid", r.Str("validationStatus"))
	commit := r.JSON["commit"].(map[string]any)
	head, rev := e.latest(alice.DID)
	require.Equal(t, head, commit["cid"])
	require.Equal(t, rev, commit["rev"])
	postCID := r.Str("cid")

	// getRecord by DID and by handle, with and without a matching cid.
	for _, repoID := range []string{alice.DID, "alice.test"} {
		g := e.get("com.atproto.repo.getRecord", url.Values{"repo": {repoID}, "collection": {"app.bsky.feed.post"}, "rkey": {rkey}}, "")
		requireOK(t, g)
		require.Equal(t, postCID, g.Str("cid"))
		require.Equal(t, "hello", g.JSON["value"].(map[string]any)["text"])
	}
	requireXRPCError(t, e.get("com.atproto.repo.getRecord", url.Values{"repo": {alice.DID}, "collection": {"app.bsky.feed.post"}, "rkey": {rkey}, "cid": {head}}, ""), 400, "RecordNotFound")

	// putRecord creates, then updates with swapRecord; a stale swapRecord is InvalidSwap.
	profile := map[string]any{"$type": "app.bsky.actor.profile", "displayName": "Alice"}
	r = e.post("com.atproto.repo.putRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.actor.profile", "rkey": "self", "record": profile}, alice.Access)
	requireOK(t, r)
	p1 := r.Str("cid")
	profile["displayName"] = "Alice 2"
	requireXRPCError(t, e.post("com.atproto.repo.putRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.actor.profile", "rkey": "self", "record": profile, "swapRecord": postCID}, alice.Access), 400, "InvalidSwap")
	requireXRPCError(t, e.post("com.atproto.repo.putRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.actor.profile", "rkey": "self", "record": profile, "swapRecord": nil}, alice.Access), 400, "InvalidSwap")
	r = e.post("com.atproto.repo.putRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.actor.profile", "rkey": "self", "record": profile, "swapRecord": p1}, alice.Access)
	requireOK(t, r)
	require.NotEqual(t, p1, r.Str("cid"))

	// Unknown lexicon: accepted unvalidated unless validate=true.
	r = e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "com.example.thing", "record": map[string]any{"a": 1}}, alice.Access)
	requireOK(t, r)
	require.Equal(t, "unknown", r.Str("validationStatus"))
	requireXRPCError(t, e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "com.example.thing", "validate": true, "record": map[string]any{"a": 1}}, alice.Access), 400, "InvalidRequest")
	r = e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "validate": false, "record": map[string]any{"nonsense": true}}, alice.Access)
	requireOK(t, r)
	require.Equal(t, "unknown", r.Str("validationStatus"))

	// listRecords: descending by default, ascending with reverse, paginated.
	for i := 0; i < 5; i++ {
		requireOK(t, e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "record": post(fmt.Sprint("n", i))}, alice.Access))
	}
	list := func(reverse bool) []string {
		var out []string
		cursor := ""
		for i := 0; i < 20; i++ {
			q := url.Values{"repo": {alice.DID}, "collection": {"app.bsky.feed.post"}, "limit": {"2"}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			if reverse {
				q.Set("reverse", "true")
			}
			r := e.get("com.atproto.repo.listRecords", q, "")
			requireOK(t, r)
			for _, x := range r.JSON["records"].([]any) {
				out = append(out, x.(map[string]any)["uri"].(string))
			}
			cursor = r.Str("cursor")
			if cursor == "" {
				break
			}
		}
		return out
	}
	desc, asc := list(false), list(true)
	require.Len(t, desc, 7)
	for i := range desc {
		require.Equal(t, desc[i], asc[len(asc)-1-i])
		if i > 0 {
			require.Greater(t, desc[i-1], desc[i])
		}
	}
	requireXRPCError(t, e.get("com.atproto.repo.listRecords", url.Values{"repo": {alice.DID}, "collection": {"app.bsky.feed.post"}, "limit": {"0"}}, ""), 400, "InvalidRequest")

	// deleteRecord, then RecordNotFound; deleting again is a no-op.
	r = e.post("com.atproto.repo.deleteRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "rkey": rkey}, alice.Access)
	requireOK(t, r)
	require.NotNil(t, r.JSON["commit"])
	requireXRPCError(t, e.get("com.atproto.repo.getRecord", url.Values{"repo": {alice.DID}, "collection": {"app.bsky.feed.post"}, "rkey": {rkey}}, ""), 400, "RecordNotFound")
	requireOK(t, e.post("com.atproto.repo.deleteRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "rkey": rkey}, alice.Access))

	// applyWrites: atomic batch with results in order.
	r = e.post("com.atproto.repo.applyWrites", map[string]any{"repo": alice.DID, "writes": []any{
		map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "value": post("batch")},
		map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.like", "rkey": "3kaaaaaaaaab2", "value": map[string]any{"subject": map[string]any{"uri": uri, "cid": postCID}, "createdAt": "2026-01-01T00:00:00Z"}},
		map[string]any{"$type": "com.atproto.repo.applyWrites#update", "collection": "app.bsky.actor.profile", "rkey": "self", "value": map[string]any{"displayName": "A3"}},
		map[string]any{"$type": "com.atproto.repo.applyWrites#delete", "collection": "com.example.thing", "rkey": strings.TrimPrefix(desc[0], "x")[len(desc[0]):]},
	}}, alice.Access)
	// The last write names an empty rkey: the whole batch is refused, nothing written.
	requireXRPCError(t, r, 400, "InvalidRequest")
	headBefore, _ := e.latest(alice.DID)
	r = e.post("com.atproto.repo.applyWrites", map[string]any{"repo": alice.DID, "writes": []any{
		map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "value": post("batch")},
		map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.like", "rkey": "3kaaaaaaaaab2", "value": map[string]any{"subject": map[string]any{"uri": uri, "cid": postCID}, "createdAt": "2026-01-01T00:00:00Z"}},
		map[string]any{"$type": "com.atproto.repo.applyWrites#update", "collection": "app.bsky.actor.profile", "rkey": "self", "value": map[string]any{"displayName": "A3"}},
	}, "swapCommit": headBefore}, alice.Access)
	requireOK(t, r)
	results := r.JSON["results"].([]any)
	require.Len(t, results, 3)
	require.Equal(t, "com.atproto.repo.applyWrites#updateResult", results[2].(map[string]any)["$type"])
	// A batch with a failing write changes nothing.
	headBefore, _ = e.latest(alice.DID)
	r = e.post("com.atproto.repo.applyWrites", map[string]any{"repo": alice.DID, "writes": []any{
		map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "value": post("never")},
		map[string]any{"$type": "com.atproto.repo.applyWrites#update", "collection": "app.bsky.feed.post", "rkey": "3kaaaaaaaaaaa", "value": post("missing")},
	}}, alice.Access)
	requireXRPCError(t, r, 400, "InvalidRequest")
	headAfter, _ := e.latest(alice.DID)
	require.Equal(t, headBefore, headAfter)
	requireXRPCError(t, e.post("com.atproto.repo.applyWrites", map[string]any{"repo": alice.DID, "swapCommit": head, "writes": []any{
		map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "value": post("stale")},
	}}, alice.Access), 400, "InvalidSwap")
	many := make([]any, 201)
	for i := range many {
		many[i] = map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "value": post("x")}
	}
	requireXRPCError(t, e.post("com.atproto.repo.applyWrites", map[string]any{"repo": alice.DID, "writes": many}, alice.Access), 400, "InvalidRequest")

	// describeRepo lists the collections and the DID document.
	r = e.get("com.atproto.repo.describeRepo", url.Values{"repo": {"alice.test"}}, "")
	requireOK(t, r)
	require.Equal(t, true, r.JSON["handleIsCorrect"])
	require.ElementsMatch(t, []any{"app.bsky.actor.profile", "app.bsky.feed.like", "app.bsky.feed.post", "com.example.thing"}, r.JSON["collections"])
	require.Equal(t, alice.DID, r.JSON["didDoc"].(map[string]any)["id"])
}

func TestWriteErrors(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	bob := e.createAccount("bobby")
	requireOK(t, e.post("com.atproto.repo.createRecord", map[string]any{"repo": bob.DID, "collection": "app.bsky.feed.post", "record": post("bob")}, bob.Access))
	aHead, _ := e.latest(alice.DID)
	bHead, _ := e.latest(bob.DID)

	create := func(body map[string]any) map[string]any {
		out := map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "record": post("x")}
		for k, v := range body {
			out[k] = v
		}
		return out
	}
	cases := []struct {
		name    string
		nsid    string
		body    any
		token   string
		status  int
		errName string
	}{
		{"no token", "com.atproto.repo.createRecord", create(nil), "", 401, "AuthenticationRequired"},
		{"garbage token", "com.atproto.repo.createRecord", create(nil), "abc.def.ghi", 401, "InvalidToken"},
		{"refresh token as access", "com.atproto.repo.createRecord", create(nil), alice.Refresh, 401, "InvalidToken"},
		{"other account's repo", "com.atproto.repo.createRecord", create(map[string]any{"repo": bob.DID}), alice.Access, 403, "Forbidden"},
		{"other account's repo by handle", "com.atproto.repo.createRecord", create(map[string]any{"repo": "bobby.test"}), alice.Access, 403, "Forbidden"},
		{"delete in other repo", "com.atproto.repo.deleteRecord", map[string]any{"repo": bob.DID, "collection": "app.bsky.feed.post", "rkey": "3kaaaaaaaaaaa"}, alice.Access, 403, "Forbidden"},
		{"unknown repo", "com.atproto.repo.createRecord", create(map[string]any{"repo": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}), alice.Access, 400, "RepoNotFound"},
		{"bad repo syntax", "com.atproto.repo.createRecord", create(map[string]any{"repo": "not a repo"}), alice.Access, 400, "InvalidRequest"},
		{"bad collection", "com.atproto.repo.createRecord", create(map[string]any{"collection": "not_an_nsid"}), alice.Access, 400, "InvalidRequest"},
		{"two-part collection", "com.atproto.repo.createRecord", create(map[string]any{"collection": "com.example"}), alice.Access, 400, "InvalidRequest"},
		{"bad rkey", "com.atproto.repo.createRecord", create(map[string]any{"rkey": "bad rkey"}), alice.Access, 400, "InvalidRequest"},
		{"dotdot rkey", "com.atproto.repo.createRecord", create(map[string]any{"rkey": ".."}), alice.Access, 400, "InvalidRequest"},
		{"long rkey", "com.atproto.repo.createRecord", create(map[string]any{"rkey": strings.Repeat("a", 513)}), alice.Access, 400, "InvalidRequest"},
		{"missing text", "com.atproto.repo.createRecord", create(map[string]any{"record": map[string]any{"$type": "app.bsky.feed.post", "createdAt": "2026-01-01T00:00:00Z"}}), alice.Access, 400, "InvalidRequest"},
		{"bad datetime", "com.atproto.repo.createRecord", create(map[string]any{"record": map[string]any{"$type": "app.bsky.feed.post", "text": "x", "createdAt": "yesterday"}}), alice.Access, 400, "InvalidRequest"},
		{"wrong $type", "com.atproto.repo.createRecord", create(map[string]any{"record": map[string]any{"$type": "app.bsky.actor.profile"}}), alice.Access, 400, "InvalidRequest"},
		{"record not an object", "com.atproto.repo.createRecord", create(map[string]any{"record": "string"}), alice.Access, 400, "InvalidRequest"},
		{"float in record", "com.atproto.repo.createRecord", create(map[string]any{"collection": "com.example.thing", "record": map[string]any{"f": 1.5}}), alice.Access, 400, "InvalidRequest"},
		{"oversized record", "com.atproto.repo.createRecord", create(map[string]any{"collection": "com.example.big", "record": map[string]any{"d": bigArray(20, 60_000)}}), alice.Access, 400, "RecordTooBig"},
		{"oversized string", "com.atproto.repo.createRecord", create(map[string]any{"collection": "com.example.big", "record": map[string]any{"d": strings.Repeat("z", 1_100_000)}}), alice.Access, 400, "InvalidRequest"},
		{"oversized body", "com.atproto.repo.createRecord", create(map[string]any{"collection": "com.example.big", "record": map[string]any{"d": strings.Repeat("z", 3_000_000)}}), alice.Access, 413, "PayloadTooLarge"},
		{"malformed JSON", "com.atproto.repo.createRecord", []byte(`{"repo":`), alice.Access, 400, "InvalidRequest"},
		{"bad swapCommit", "com.atproto.repo.createRecord", create(map[string]any{"swapCommit": "nope"}), alice.Access, 400, "InvalidRequest"},
		{"post key not a TID", "com.atproto.repo.createRecord", create(map[string]any{"rkey": "hello"}), alice.Access, 400, "InvalidRequest"},
		{"profile key not self", "com.atproto.repo.putRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.actor.profile", "rkey": "other", "record": map[string]any{"displayName": "x"}}, alice.Access, 400, "InvalidRequest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			requireXRPCError(t, e.post(tc.nsid, tc.body, tc.token), tc.status, tc.errName)
		})
	}
	a2, _ := e.latest(alice.DID)
	b2, _ := e.latest(bob.DID)
	require.Equal(t, aHead, a2, "rejected writes must not move alice's head")
	require.Equal(t, bHead, b2, "rejected writes must not move bob's head")

	reads := []struct {
		name    string
		nsid    string
		q       url.Values
		errName string
	}{
		{"getRecord unknown repo", "com.atproto.repo.getRecord", url.Values{"repo": {"ghost.test"}, "collection": {"app.bsky.feed.post"}, "rkey": {"x"}}, "RepoNotFound"},
		{"getRecord bad nsid", "com.atproto.repo.getRecord", url.Values{"repo": {alice.DID}, "collection": {"x"}, "rkey": {"x"}}, "InvalidRequest"},
		{"getLatestCommit unknown", "com.atproto.sync.getLatestCommit", url.Values{"did": {"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}}, "RepoNotFound"},
		{"getRepo bad did", "com.atproto.sync.getRepo", url.Values{"did": {"alice"}}, "InvalidRequest"},
		{"getRepo unknown", "com.atproto.sync.getRepo", url.Values{"did": {"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}}, "RepoNotFound"},
		{"getBlocks missing", "com.atproto.sync.getBlocks", url.Values{"did": {alice.DID}, "cids": {"bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454"}}, "BlockNotFound"},
		{"getBlocks bad cid", "com.atproto.sync.getBlocks", url.Values{"did": {alice.DID}, "cids": {"nope"}}, "InvalidRequest"},
		{"sync getRecord missing", "com.atproto.sync.getRecord", url.Values{"did": {alice.DID}, "collection": {"app.bsky.feed.post"}, "rkey": {"3kaaaaaaaaaaa"}}, "RecordNotFound"},
		{"describeRepo bad handle", "com.atproto.repo.describeRepo", url.Values{"repo": {"-x-"}}, "InvalidRequest"},
	}
	for _, tc := range reads {
		t.Run(tc.name, func(t *testing.T) {
			requireXRPCError(t, e.get(tc.nsid, tc.q, ""), 400, tc.errName)
		})
	}
}

// TestRepoExportVerifies exports a repository as a CAR and verifies it as any client
// would: indigo loads it, the commit signature checks against the key in the DID
// document from the PLC directory, and the records are exactly what was written.
func TestRepoExportVerifies(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	alice := e.createAccount("alice")
	written := map[string]string{}
	var midRev string
	for i := 0; i < 120; i++ {
		r := e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "record": post(fmt.Sprint("post ", i))}, alice.Access)
		requireOK(t, r)
		u := r.Str("uri")
		written[strings.TrimPrefix(u, "at://"+alice.DID+"/")] = r.Str("cid")
		if i == 99 {
			midRev = r.JSON["commit"].(map[string]any)["rev"].(string)
		}
	}
	// Some deletes and updates so the MST has been rewritten.
	n := 0
	for path := range written {
		if n++; n > 10 {
			break
		}
		rkey := path[strings.Index(path, "/")+1:]
		requireOK(t, e.post("com.atproto.repo.deleteRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "rkey": rkey}, alice.Access))
		delete(written, path)
	}

	r := e.get("com.atproto.sync.getRepo", url.Values{"did": {alice.DID}}, "")
	requireOK(t, r)
	require.Equal(t, "application/vnd.ipld.car", r.Header.Get("Content-Type"))
	commit, rp, err := indigorepo.LoadRepoFromCAR(ctx, bytes.NewReader(r.Body))
	require.NoError(t, err)

	doc, err := (&plc.Client{BaseURL: e.plc.URL}).Resolve(ctx, syntax.DID(alice.DID))
	require.NoError(t, err)
	pub, err := identityOf(doc).PublicKey()
	require.NoError(t, err)
	require.NoError(t, commit.VerifySignature(pub))
	head, rev := e.latest(alice.DID)
	require.Equal(t, rev, commit.Rev)

	got := map[string]string{}
	require.NoError(t, rp.MST.Walk(func(k []byte, v cid.Cid) error {
		got[string(k)] = v.String()
		return nil
	}))
	require.Equal(t, written, got)
	for path := range written {
		coll, rkey, _ := strings.Cut(path, "/")
		_, _, err := rp.GetRecordBytes(ctx, syntax.NSID(coll), syntax.RecordKey(rkey))
		require.NoError(t, err, "record block for %s in CAR", path)
	}

	// since: only newer blocks, rooted at the same commit.
	r = e.get("com.atproto.sync.getRepo", url.Values{"did": {alice.DID}, "since": {midRev}}, "")
	requireOK(t, r)
	c2, root, err := indigorepo.LoadCommitFromCAR(ctx, bytes.NewReader(r.Body))
	require.NoError(t, err)
	require.Equal(t, head, root.String())
	require.Equal(t, rev, c2.Rev)
	require.Less(t, len(r.Body), len(e.get("com.atproto.sync.getRepo", url.Values{"did": {alice.DID}}, "").Body))

	// sync.getRecord: a proof CAR from which indigo can read the record.
	var anyPath string
	for p := range written {
		anyPath = p
		break
	}
	coll, rkey, _ := strings.Cut(anyPath, "/")
	r = e.get("com.atproto.sync.getRecord", url.Values{"did": {alice.DID}, "collection": {coll}, "rkey": {rkey}}, "")
	requireOK(t, r)
	pc, prp, err := indigorepo.LoadRepoFromCAR(ctx, bytes.NewReader(r.Body))
	require.NoError(t, err)
	require.NoError(t, pc.VerifySignature(pub))
	_, rc, err := prp.GetRecordBytes(ctx, syntax.NSID(coll), syntax.RecordKey(rkey))
	require.NoError(t, err)
	require.Equal(t, written[anyPath], rc.String())

	// getBlocks returns the commit block.
	r = e.get("com.atproto.sync.getBlocks", url.Values{"did": {alice.DID}, "cids": {head, written[anyPath]}}, "")
	requireOK(t, r)

	// listRepos and getRepoStatus.
	e.createAccount("bobby")
	r = e.get("com.atproto.sync.listRepos", url.Values{"limit": {"1"}}, "")
	requireOK(t, r)
	require.Len(t, r.JSON["repos"], 1)
	require.NotEmpty(t, r.Str("cursor"))
	r2 := e.get("com.atproto.sync.listRepos", url.Values{"cursor": {r.Str("cursor")}}, "")
	requireOK(t, r2)
	require.Len(t, r2.JSON["repos"], 1)
	r = e.get("com.atproto.sync.getRepoStatus", url.Values{"did": {alice.DID}}, "")
	requireOK(t, r)
	require.Equal(t, true, r.JSON["active"])
	require.Equal(t, rev, r.Str("rev"))
}

func bigArray(n, size int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strings.Repeat("z", size)
	}
	return out
}

package pds_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-car"
	"github.com/stretchr/testify/require"
)

// carCIDs lists the blocks of a CAR answer.
func carCIDs(t *testing.T, r *resp) map[string]bool {
	t.Helper()
	require.Equal(t, 200, r.Status, string(r.Body))
	cr, err := car.NewCarReader(bytes.NewReader(r.Body))
	require.NoError(t, err)
	out := map[string]bool{}
	for {
		b, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out[b.Cid().String()] = true
	}
}

func (e *env) setStatus(subject map[string]any, applied bool, comment string) *resp {
	e.t.Helper()
	body := map[string]any{"subject": subject, "takedown": map[string]any{"applied": applied}}
	if comment != "" {
		body["comment"] = comment
	}
	return e.post("com.atproto.admin.updateSubjectStatus", body, "admin")
}

// TestAdminTakedownRecord: a taken-down record is served by no read path (repo.getRecord,
// listRecords, sync.getRecord, getRepo's CAR, getBlocks) while the account's other
// records are; a block shared with a record not taken down stays in the CAR; lifting it
// serves it again; both changes are in the moderation log with who, when and why.
func TestAdminTakedownRecord(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	bad, badCID := e.net.Client.CreateRecord(t, alice, "app.bsky.feed.post", post("something awful"))
	good, goodCID := e.net.Client.CreateRecord(t, alice, "app.bsky.feed.post", post("something nice"))
	badRkey, goodRkey := bad[len(bad)-13:], good[len(good)-13:]
	twin := map[string]any{"$type": "com.example.twin", "v": 1}
	twinA, twinCID := e.net.Client.CreateRecord(t, alice, "com.example.twin", twin)
	_, twinCID2 := e.net.Client.CreateRecord(t, alice, "com.example.twin", twin)
	require.Equal(t, twinCID, twinCID2, "identical records share their block")

	getRecord := func(rkey string) *resp {
		return e.get("com.atproto.repo.getRecord", url.Values{"repo": {alice.DID}, "collection": {"app.bsky.feed.post"}, "rkey": {rkey}}, "")
	}
	syncRecord := func(coll, rkey string) *resp {
		return e.raw("GET", "com.atproto.sync.getRecord", url.Values{"did": {alice.DID}, "collection": {coll}, "rkey": {rkey}}.Encode(), nil, "", nil)
	}
	listed := func() []string {
		r := e.get("com.atproto.repo.listRecords", url.Values{"repo": {alice.DID}, "collection": {"app.bsky.feed.post"}}, "")
		requireOK(t, r)
		var uris []string
		for _, rec := range r.JSON["records"].([]any) {
			uris = append(uris, rec.(map[string]any)["uri"].(string))
		}
		return uris
	}
	repoCAR := func() map[string]bool {
		return carCIDs(t, e.raw("GET", "com.atproto.sync.getRepo", "did="+alice.DID, nil, "", nil))
	}
	getBlocks := func(c string) *resp {
		return e.raw("GET", "com.atproto.sync.getBlocks", url.Values{"did": {alice.DID}, "cids": {c}}.Encode(), nil, "", nil)
	}
	served := func() {
		t.Helper()
		requireOK(t, getRecord(badRkey))
		require.ElementsMatch(t, []string{bad, good}, listed())
		require.Equal(t, 200, syncRecord("app.bsky.feed.post", badRkey).Status)
		require.True(t, repoCAR()[badCID])
		require.Equal(t, 200, getBlocks(badCID).Status)
	}
	served()

	strong := map[string]any{"$type": "com.atproto.repo.strongRef", "uri": bad, "cid": badCID}
	r := e.setStatus(strong, true, "reported as harassment")
	requireOK(t, r)
	require.Equal(t, bad, r.JSON["subject"].(map[string]any)["uri"])
	requireXRPCError(t, getRecord(badRkey), 400, "RecordNotFound")
	requireOK(t, getRecord(goodRkey))
	require.Equal(t, []string{good}, listed())
	requireXRPCError(t, syncRecord("app.bsky.feed.post", badRkey), 400, "RecordNotFound")
	require.Equal(t, 200, syncRecord("app.bsky.feed.post", goodRkey).Status)
	blocks := repoCAR()
	require.False(t, blocks[badCID], "getRepo leaves the record's block out")
	require.True(t, blocks[goodCID])
	requireXRPCError(t, getBlocks(badCID), 400, "BlockNotFound")
	require.Equal(t, 200, getBlocks(goodCID).Status)
	s := e.get("com.atproto.admin.getSubjectStatus", url.Values{"uri": {bad}}, "admin")
	requireOK(t, s)
	require.Equal(t, true, s.JSON["takedown"].(map[string]any)["applied"])
	require.NotEmpty(t, s.JSON["takedown"].(map[string]any)["ref"], "a takedown without a ref gets its time, as in the reference")
	require.Equal(t, badCID, s.JSON["subject"].(map[string]any)["cid"])

	// An edit does not bring it back: the takedown is of the record, not of a version.
	requireOK(t, e.post("com.atproto.repo.putRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "rkey": badRkey,
		"record": post("something awful, edited")}, alice.Access))
	requireXRPCError(t, getRecord(badRkey), 400, "RecordNotFound")

	// A block two records share stays in the CAR while one of them is served.
	requireOK(t, e.setStatus(map[string]any{"$type": "com.atproto.repo.strongRef", "uri": twinA, "cid": twinCID}, true, ""))
	requireXRPCError(t, syncRecord("com.example.twin", twinA[len(twinA)-13:]), 400, "RecordNotFound")
	require.True(t, repoCAR()[twinCID])
	require.Equal(t, 200, getBlocks(twinCID).Status)

	// Lifted: served again everywhere.
	requireOK(t, e.setStatus(strong, false, "appeal accepted"))
	requireOK(t, getRecord(badRkey))
	require.ElementsMatch(t, []string{bad, good}, listed())
	require.Equal(t, 200, syncRecord("app.bsky.feed.post", badRkey).Status)
	s = e.get("com.atproto.admin.getSubjectStatus", url.Values{"uri": {bad}}, "admin")
	require.Equal(t, false, s.JSON["takedown"].(map[string]any)["applied"])

	// The moderation log, newest first, paged.
	r = e.get("social.hearth.admin.getModerationLog", url.Values{"did": {alice.DID}, "limit": {"2"}}, "admin")
	requireOK(t, r)
	entries := r.JSON["entries"].([]any)
	require.Len(t, entries, 2)
	last := entries[0].(map[string]any)
	require.Equal(t, "appeal accepted", last["reason"])
	require.Equal(t, "admin@127.0.0.1", last["actor"])
	require.Equal(t, false, last["takedown"].(map[string]any)["applied"])
	require.Equal(t, bad, last["subject"].(map[string]any)["uri"])
	require.NotEmpty(t, last["createdAt"])
	r = e.get("social.hearth.admin.getModerationLog", url.Values{"did": {alice.DID}, "cursor": {r.Str("cursor")}}, "admin")
	requireOK(t, r)
	first := r.JSON["entries"].([]any)[0].(map[string]any)
	require.Equal(t, "reported as harassment", first["reason"])
	require.Equal(t, true, first["takedown"].(map[string]any)["applied"])
	require.Empty(t, r.Str("cursor"))

	unknown := "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
	status := func(sub map[string]any) map[string]any {
		return map[string]any{"subject": sub, "takedown": map[string]any{"applied": true}}
	}
	G, P := http.MethodGet, http.MethodPost
	e.runAdminCases(t, []adminCase{
		{"no subject", P, "com.atproto.admin.updateSubjectStatus", nil, map[string]any{"takedown": map[string]any{"applied": true}}, "admin", 400, "InvalidRequest"},
		{"unknown $type", P, "com.atproto.admin.updateSubjectStatus", nil, status(map[string]any{"$type": "com.example.ref", "did": alice.DID}), "admin", 400, "InvalidRequest"},
		{"bad uri", P, "com.atproto.admin.updateSubjectStatus", nil, status(map[string]any{"$type": "com.atproto.repo.strongRef", "uri": "not a uri", "cid": badCID}), "admin", 400, "InvalidRequest"},
		{"uri of a repo", P, "com.atproto.admin.updateSubjectStatus", nil, status(map[string]any{"$type": "com.atproto.repo.strongRef", "uri": "at://" + alice.DID, "cid": badCID}), "admin", 400, "InvalidRequest"},
		{"bad cid", P, "com.atproto.admin.updateSubjectStatus", nil, status(map[string]any{"$type": "com.atproto.repo.strongRef", "uri": bad, "cid": "nope"}), "admin", 400, "InvalidRequest"},
		{"record of nobody", P, "com.atproto.admin.updateSubjectStatus", nil, status(map[string]any{"$type": "com.atproto.repo.strongRef", "uri": "at://" + unknown + "/app.bsky.feed.post/3kaaaaaaaaaaa", "cid": badCID}), "admin", 400, "AccountNotFound"},
		{"no such record", P, "com.atproto.admin.updateSubjectStatus", nil, status(map[string]any{"$type": "com.atproto.repo.strongRef", "uri": "at://" + alice.DID + "/app.bsky.feed.post/3kaaaaaaaaaaa", "cid": badCID}), "admin", 400, "RecordNotFound"},
		{"deactivated", P, "com.atproto.admin.updateSubjectStatus", nil, map[string]any{"subject": map[string]any{"$type": "com.atproto.admin.defs#repoRef", "did": alice.DID}, "deactivated": map[string]any{"applied": true}}, "admin", 400, "InvalidRequest"},
		{"account: unknown", P, "com.atproto.admin.updateSubjectStatus", nil, status(map[string]any{"$type": "com.atproto.admin.defs#repoRef", "did": unknown}), "admin", 400, "AccountNotFound"},
		{"status: nothing", G, "com.atproto.admin.getSubjectStatus", nil, nil, "admin", 400, "InvalidRequest"},
		{"status: blob without did", G, "com.atproto.admin.getSubjectStatus", url.Values{"blob": {badCID}}, nil, "admin", 400, "InvalidRequest"},
		{"status: no such record", G, "com.atproto.admin.getSubjectStatus", url.Values{"uri": {"at://" + alice.DID + "/app.bsky.feed.post/3kaaaaaaaaaaa"}}, nil, "admin", 400, "NotFound"},
		{"status: unknown account", G, "com.atproto.admin.getSubjectStatus", url.Values{"did": {unknown}}, nil, "admin", 400, "NotFound"},
		{"status: bad uri", G, "com.atproto.admin.getSubjectStatus", url.Values{"uri": {"x"}}, nil, "admin", 400, "InvalidRequest"},
		{"log: bad cursor", G, "social.hearth.admin.getModerationLog", url.Values{"cursor": {"x"}}, nil, "admin", 400, "InvalidRequest"},
		{"log: bad did", G, "social.hearth.admin.getModerationLog", url.Values{"did": {"x"}}, nil, "admin", 400, "InvalidRequest"},
	})
}

// TestAdminTakedownBlob: a taken-down blob is not served by getBlob nor accepted again
// by uploadBlob; its status says so; lifting it serves it again. An account takedown is
// logged too.
func TestAdminTakedownBlob(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	img, other := testPNG(t, 7), testPNG(t, 8)
	ref, otherRef := e.uploadOK(alice.Access, img), e.uploadOK(alice.Access, other)
	e.createPost(alice, imagePost("pictures", ref, otherRef))
	c, otherCID := blobLink(ref), blobLink(otherRef)
	require.Equal(t, 200, e.getBlob(alice.DID, c).Status)

	blobRef := map[string]any{"$type": "com.atproto.admin.defs#repoBlobRef", "did": alice.DID, "cid": c}
	requireOK(t, e.setStatus(blobRef, true, "copyright notice"))
	requireXRPCError(t, e.getBlob(alice.DID, c), 400, "BlobNotFound")
	require.Equal(t, 200, e.getBlob(alice.DID, otherCID).Status)
	requireXRPCError(t, e.upload(alice.Access, "image/png", img), 400, "InvalidRequest")
	s := e.get("com.atproto.admin.getSubjectStatus", url.Values{"did": {alice.DID}, "blob": {c}}, "admin")
	requireOK(t, s)
	require.Equal(t, true, s.JSON["takedown"].(map[string]any)["applied"])
	require.Equal(t, "com.atproto.admin.defs#repoBlobRef", s.JSON["subject"].(map[string]any)["$type"])

	requireOK(t, e.setStatus(blobRef, false, ""))
	r := e.getBlob(alice.DID, c)
	require.Equal(t, 200, r.Status)
	require.Equal(t, img, r.Body)
	e.uploadOK(alice.Access, img)

	// An account takedown, with its reason, is in the log.
	requireOK(t, e.setStatus(map[string]any{"$type": "com.atproto.admin.defs#repoRef", "did": alice.DID}, true, "spam account"))
	r = e.get("social.hearth.admin.getModerationLog", nil, "admin")
	requireOK(t, r)
	entries := r.JSON["entries"].([]any)
	require.Len(t, entries, 3)
	require.Equal(t, "spam account", entries[0].(map[string]any)["reason"])
	require.Equal(t, "com.atproto.admin.defs#repoRef", entries[0].(map[string]any)["subject"].(map[string]any)["$type"])
	require.Equal(t, c, entries[1].(map[string]any)["subject"].(map[string]any)["cid"])
	requireOK(t, e.setStatus(map[string]any{"$type": "com.atproto.admin.defs#repoRef", "did": alice.DID}, false, ""))

	notStored, err := cid.Decode("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
	require.NoError(t, err)
	G, P := http.MethodGet, http.MethodPost
	e.runAdminCases(t, []adminCase{
		{"no such blob", P, "com.atproto.admin.updateSubjectStatus", nil, map[string]any{"subject": map[string]any{"$type": "com.atproto.admin.defs#repoBlobRef", "did": alice.DID, "cid": notStored.String()}, "takedown": map[string]any{"applied": true}}, "admin", 400, "BlobNotFound"},
		{"bad blob cid", P, "com.atproto.admin.updateSubjectStatus", nil, map[string]any{"subject": map[string]any{"$type": "com.atproto.admin.defs#repoBlobRef", "did": alice.DID, "cid": "x"}, "takedown": map[string]any{"applied": true}}, "admin", 400, "InvalidRequest"},
		{"status: no such blob", G, "com.atproto.admin.getSubjectStatus", url.Values{"did": {alice.DID}, "blob": {notStored.String()}}, nil, "admin", 400, "NotFound"},
		{"status: bad blob cid", G, "com.atproto.admin.getSubjectStatus", url.Values{"did": {alice.DID}, "blob": {"x"}}, nil, "admin", 400, "InvalidRequest"},
	})
}

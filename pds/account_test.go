package pds_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/stretchr/testify/require"
)

// accountEvent waits for an #account event for did with the given status ("" = active).
func accountEvent(did, status string) func([]*firehose.Event) bool {
	return func(evs []*firehose.Event) bool {
		for _, ev := range evs {
			if a := ev.Account; a != nil && a.Did == did {
				got := ""
				if a.Status != nil {
					got = *a.Status
				}
				if got == status && a.Active == (status == "") {
					return true
				}
			}
		}
		return false
	}
}

func TestAccountLifecycle(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	bob := e.createAccount("bobby")
	cursor := int64(0)
	fh := subscribe(t, e.http.URL, &cursor)
	r := e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "record": post("hi")}, alice.Access)
	requireOK(t, r)
	rkey := r.Str("uri")[len("at://"+alice.DID+"/app.bsky.feed.post/"):]
	getPost := func() *resp {
		return e.get("com.atproto.repo.getRecord", url.Values{"repo": {alice.DID}, "collection": {"app.bsky.feed.post"}, "rkey": {rkey}}, "")
	}

	// Deactivate: reads and writes refused, status reported, #account emitted.
	requireOK(t, e.post("com.atproto.server.deactivateAccount", map[string]any{}, alice.Access))
	fh.waitFor(t, "#account deactivated", accountEvent(alice.DID, "deactivated"))
	requireXRPCError(t, getPost(), 400, "RepoDeactivated")
	requireXRPCError(t, e.get("com.atproto.sync.getRepo", url.Values{"did": {alice.DID}}, ""), 400, "RepoDeactivated")
	requireXRPCError(t, e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "record": post("x")}, alice.Access), 400, "AccountDeactivated")
	st := e.get("com.atproto.sync.getRepoStatus", url.Values{"did": {alice.DID}}, "")
	requireOK(t, st)
	require.Equal(t, false, st.JSON["active"])
	require.Equal(t, "deactivated", st.Str("status"))
	login := e.post("com.atproto.server.createSession", map[string]any{"identifier": "alice.test", "password": alice.Password}, "")
	requireOK(t, login)
	require.Equal(t, false, login.JSON["active"])

	// Activate again.
	requireOK(t, e.post("com.atproto.server.activateAccount", map[string]any{}, alice.Access))
	fh.waitFor(t, "#account active", func(evs []*firehose.Event) bool {
		n := 0
		for _, ev := range evs {
			if ev.Account != nil && ev.Account.Did == alice.DID && ev.Account.Active {
				n++
			}
		}
		return n >= 2 // creation + reactivation
	})
	requireOK(t, getPost())

	// Admin takedown and its reversal.
	requireXRPCError(t, e.post("com.atproto.admin.updateSubjectStatus", map[string]any{}, alice.Access), 401, "AuthenticationRequired")
	takedown := func(applied bool) {
		requireOK(t, e.post("com.atproto.admin.updateSubjectStatus", map[string]any{
			"subject": map[string]any{"$type": "com.atproto.admin.defs#repoRef", "did": alice.DID}, "takedown": map[string]any{"applied": applied},
		}, "admin"))
	}
	takedown(true)
	fh.waitFor(t, "#account takendown", accountEvent(alice.DID, "takendown"))
	requireXRPCError(t, getPost(), 400, "RepoTakendown")
	requireXRPCError(t, e.post("com.atproto.server.createSession", map[string]any{"identifier": "alice.test", "password": alice.Password}, ""), 401, "AccountTakedown")
	requireXRPCError(t, e.post("com.atproto.server.activateAccount", map[string]any{}, alice.Access), 401, "AccountTakedown")
	s := e.get("com.atproto.admin.getSubjectStatus", url.Values{"did": {alice.DID}}, "admin")
	requireOK(t, s)
	require.Equal(t, true, s.JSON["takedown"].(map[string]any)["applied"])
	takedown(false)
	requireOK(t, getPost())

	// Admin delete: data gone, #account deleted, the other account untouched.
	requireOK(t, e.post("com.atproto.admin.deleteAccount", map[string]any{"did": alice.DID}, "admin"))
	fh.waitFor(t, "#account deleted", accountEvent(alice.DID, "deleted"))
	requireXRPCError(t, getPost(), 400, "RepoNotFound")
	requireXRPCError(t, e.get("com.atproto.sync.getLatestCommit", url.Values{"did": {alice.DID}}, ""), 400, "RepoNotFound")
	requireXRPCError(t, e.post("com.atproto.server.createSession", map[string]any{"identifier": alice.DID, "password": alice.Password}, ""), 401, "AuthenticationRequired")
	requireXRPCError(t, e.post("com.atproto.admin.deleteAccount", map[string]any{"did": alice.DID}, "admin"), 400, "AccountNotFound")
	bobLast, _ := commitOf(t, e.post("com.atproto.repo.createRecord", map[string]any{"repo": bob.DID, "collection": "app.bsky.feed.post", "record": post("still here")}, bob.Access))

	// Deleted means gone from the firehose too: a replay holds nothing of alice's but the
	// final #account deleted, and bob's events are all still there. Replay from the start
	// (paged from the store) and from just before alice's post (served from the
	// sequencer's in-memory ring, which the live subscriber filled).
	var postSeq int64
	for _, ev := range fh.waitFor(t, "everything so far", hasCommit(bobLast)) {
		if ev.Commit != nil && ev.Commit.Repo == alice.DID && len(ev.Commit.Ops) > 0 && strings.HasPrefix(ev.Commit.Ops[0].Path, "app.bsky.feed.post/") {
			postSeq = ev.Seq
			break
		}
	}
	require.NotZero(t, postSeq)
	for _, from := range []int64{0, postSeq - 1} {
		replay := subscribe(t, e.http.URL, &from)
		evs := replay.waitFor(t, "bob's last post", hasCommit(bobLast))
		var aliceEvents []string
		for _, ev := range evs {
			switch {
			case ev.Commit != nil && ev.Commit.Repo == alice.DID:
				aliceEvents = append(aliceEvents, "#commit")
			case ev.Identity != nil && ev.Identity.Did == alice.DID:
				aliceEvents = append(aliceEvents, "#identity")
			case ev.Sync != nil && ev.Sync.Did == alice.DID:
				aliceEvents = append(aliceEvents, "#sync")
			case ev.Account != nil && ev.Account.Did == alice.DID:
				aliceEvents = append(aliceEvents, "#account "+derefStatus(ev.Account.Status))
			}
		}
		require.Equal(t, []string{"#account deleted"}, aliceEvents, "replay from %d", from)
	}
	// The handle is free: it no longer resolves, and someone else can take it.
	requireXRPCError(t, e.get("com.atproto.identity.resolveHandle", url.Values{"handle": {"alice.test"}}, ""), 400, "HandleNotFound")
	requireOK(t, e.post("com.atproto.server.createAccount", map[string]any{"handle": "alice.test", "password": "new-alice"}, ""))
}

func derefStatus(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// deactivateAccount with deleteAfter deletes the account once the time has come, unless
// it reactivated first.
func TestDeactivateDeleteAfter(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	bob := e.createAccount("bobby")
	soon := time.Now().Add(-time.Second).UTC().Format(time.RFC3339)
	requireXRPCError(t, e.post("com.atproto.server.deactivateAccount", map[string]any{"deleteAfter": "tomorrow"}, alice.Access), 400, "InvalidRequest")
	requireOK(t, e.post("com.atproto.server.deactivateAccount", map[string]any{"deleteAfter": soon}, alice.Access))
	requireOK(t, e.post("com.atproto.server.deactivateAccount", map[string]any{"deleteAfter": soon}, bob.Access))
	requireOK(t, e.post("com.atproto.server.activateAccount", nil, bob.Access))   // bob changed his mind
	requireOK(t, e.post("com.atproto.server.deactivateAccount", nil, bob.Access)) // no body: no deletion scheduled
	n, err := e.srv.DeleteDueAccounts(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	gone := e.get("com.atproto.sync.getRepoStatus", url.Values{"did": {alice.DID}}, "")
	requireOK(t, gone)
	require.Equal(t, "deleted", gone.Str("status"))
	requireXRPCError(t, e.get("com.atproto.sync.getLatestCommit", url.Values{"did": {alice.DID}}, ""), 400, "RepoNotFound")
	st := e.get("com.atproto.sync.getRepoStatus", url.Values{"did": {bob.DID}}, "")
	requireOK(t, st)
	require.Equal(t, "deactivated", st.Str("status"))
}

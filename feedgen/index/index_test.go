package index

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

const svc = "ws://127.0.0.1:1/xrpc/com.atproto.sync.subscribeRepos"

func open(t *testing.T) *Index {
	t.Helper()
	ix, err := Open(context.Background(), filepath.Join(t.TempDir(), "feed.sqlite"), Options{})
	require.NoError(t, err)
	t.Cleanup(func() { ix.Close() })
	return ix
}

// rev returns a valid, increasing TID-like rev for n (13 chars of base32-sortable).
func rev(n int) string { return fmt.Sprintf("3l%011d", n) }

func postOp(rkey, text string) Op {
	return Op{Action: ActionCreate, Collection: CollectionPost, RKey: rkey, CID: "bafy" + rkey, Record: &Post{Text: text, CreatedAt: "2026-01-01T00:00:00Z"}}
}

func likeOp(rkey, subject string) Op {
	return Op{Action: ActionCreate, Collection: CollectionLike, RKey: rkey, CID: "bafyl" + rkey, Record: &Like{Subject: subject}}
}

func commit(seq int64, did string, r int, ops ...Op) Event {
	return Event{Seq: seq, Commit: &Commit{DID: did, Rev: rev(r), Ops: ops}}
}

func TestApplyIdempotent(t *testing.T) {
	ctx := context.Background()
	ix := open(t)
	alice, bob := "did:plc:alice", "did:plc:bob"
	p1 := URI(alice, CollectionPost, "p1")
	events := []Event{
		commit(1, alice, 1, postOp("p1", "hello")),
		commit(2, bob, 1, likeOp("l1", p1)),
		commit(3, bob, 2, Op{Action: ActionCreate, Collection: CollectionRepost, RKey: "r1", CID: "bafyr", Record: &Repost{Subject: p1}}),
		commit(4, bob, 3, Op{Action: ActionCreate, Collection: CollectionPost, RKey: "reply", CID: "bafyreply", Record: &Post{Text: "re", ReplyRoot: p1, ReplyParent: p1}}),
		commit(5, bob, 4, Op{Action: ActionCreate, Collection: CollectionFollow, RKey: "f1", CID: "bafyf", Record: &Follow{Subject: alice}}),
	}
	st, err := ix.Apply(ctx, svc, events)
	require.NoError(t, err)
	require.Equal(t, 5, st.Commits)
	cur, ok, err := ix.Cursor(ctx, svc)
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 5, cur)

	check := func() {
		t.Helper()
		p, err := ix.Post(ctx, p1)
		require.NoError(t, err)
		require.EqualValues(t, 1, p.LikeCount)
		require.EqualValues(t, 1, p.RepostCount)
		require.EqualValues(t, 1, p.ReplyCount)
	}
	check()

	// Replaying every event (a reconnect with an old cursor) changes nothing.
	st, err = ix.Apply(ctx, svc, events)
	require.NoError(t, err)
	require.Equal(t, 0, st.Commits)
	require.Equal(t, 5, st.Stale)
	check()

	// A like with a new URI but a replayed rev is skipped too.
	st, err = ix.Apply(ctx, svc, []Event{commit(6, bob, 2, likeOp("l2", p1))})
	require.NoError(t, err)
	require.Equal(t, 1, st.Stale)
	check()

	// Deletes decrement, and only once.
	del := []Event{
		commit(7, bob, 5, Op{Action: ActionDelete, Collection: CollectionLike, RKey: "l1"}),
		commit(8, bob, 6, Op{Action: ActionDelete, Collection: CollectionPost, RKey: "reply"}),
	}
	_, err = ix.Apply(ctx, svc, del)
	require.NoError(t, err)
	_, err = ix.Apply(ctx, svc, del)
	require.NoError(t, err)
	p, err := ix.Post(ctx, p1)
	require.NoError(t, err)
	require.EqualValues(t, 0, p.LikeCount)
	require.EqualValues(t, 1, p.RepostCount)
	require.EqualValues(t, 0, p.ReplyCount)
	c, err := ix.Count(ctx)
	require.NoError(t, err)
	require.Equal(t, Counts{Posts: 1, Likes: 0, Reposts: 1, Follows: 1, Accounts: 2, Classifications: 1}, c)
}

func TestCountsWhenInteractionsArriveFirst(t *testing.T) {
	ctx := context.Background()
	ix := open(t)
	alice, bob := "did:plc:alice", "did:plc:bob"
	p1 := URI(alice, CollectionPost, "p1")
	_, err := ix.Apply(ctx, svc, []Event{
		commit(1, bob, 1, likeOp("l1", p1), Op{Action: ActionCreate, Collection: CollectionPost, RKey: "reply", CID: "c", Record: &Post{ReplyRoot: p1, ReplyParent: p1}}),
		commit(2, alice, 1, postOp("p1", "late")),
	})
	require.NoError(t, err)
	p, err := ix.Post(ctx, p1)
	require.NoError(t, err)
	require.EqualValues(t, 1, p.LikeCount)
	require.EqualValues(t, 1, p.ReplyCount)
}

func TestCursorOnlyWithRows(t *testing.T) {
	ctx := context.Background()
	ix := open(t)
	// An op whose record has the wrong type fails the whole batch: neither the rows nor
	// the cursor are written.
	_, err := ix.Apply(ctx, svc, []Event{
		commit(1, "did:plc:a", 1, postOp("ok", "fine")),
		commit(2, "did:plc:a", 2, Op{Action: ActionCreate, Collection: CollectionPost, RKey: "bad", Record: &Like{}}),
	})
	require.Error(t, err)
	_, ok, err := ix.Cursor(ctx, svc)
	require.NoError(t, err)
	require.False(t, ok)
	c, err := ix.Count(ctx)
	require.NoError(t, err)
	require.Zero(t, c.Posts)

	// Events without content still move the cursor.
	_, err = ix.Apply(ctx, svc, []Event{{Seq: 9}})
	require.NoError(t, err)
	cur, _, err := ix.Cursor(ctx, svc)
	require.NoError(t, err)
	require.EqualValues(t, 9, cur)
}

func TestAccountStatus(t *testing.T) {
	ctx := context.Background()
	ix := open(t)
	alice, bob := "did:plc:alice", "did:plc:bob"
	p1 := URI(alice, CollectionPost, "p1")
	_, err := ix.Apply(ctx, svc, []Event{
		commit(1, alice, 1, postOp("p1", "a")),
		commit(2, bob, 1, postOp("b1", "b"), likeOp("l1", p1), Op{Action: ActionCreate, Collection: CollectionPost, RKey: "r", CID: "c", Record: &Post{ReplyParent: p1, ReplyRoot: p1}}),
	})
	require.NoError(t, err)
	visible := func() []string {
		t.Helper()
		page, err := ix.RecentPosts(ctx, NoCursor, 10)
		require.NoError(t, err)
		var out []string
		for _, p := range page {
			out = append(out, p.URI)
		}
		return out
	}
	require.Len(t, visible(), 3)

	_, err = ix.Apply(ctx, svc, []Event{{Seq: 3, Account: &Account{DID: bob, Active: false, Status: StatusTakendown}}})
	require.NoError(t, err)
	require.Equal(t, []string{p1}, visible())
	// New posts of a hidden account are hidden too.
	_, err = ix.Apply(ctx, svc, []Event{commit(4, bob, 2, postOp("b2", "still hidden"))})
	require.NoError(t, err)
	require.Equal(t, []string{p1}, visible())

	_, err = ix.Apply(ctx, svc, []Event{{Seq: 5, Account: &Account{DID: bob, Active: true}}})
	require.NoError(t, err)
	require.Len(t, visible(), 4)

	_, err = ix.Apply(ctx, svc, []Event{{Seq: 6, Account: &Account{DID: bob, Active: false, Status: StatusDeleted}}})
	require.NoError(t, err)
	require.Equal(t, []string{p1}, visible())
	p, err := ix.Post(ctx, p1)
	require.NoError(t, err)
	require.Zero(t, p.LikeCount)
	require.Zero(t, p.ReplyCount)
	a, err := ix.Account(ctx, bob)
	require.NoError(t, err)
	require.Equal(t, StatusDeleted, a.Status)
	// Commits of a deleted account are ignored.
	st, err := ix.Apply(ctx, svc, []Event{commit(7, bob, 9, postOp("zombie", "no"))})
	require.NoError(t, err)
	require.Equal(t, 1, st.Stale)
}

func TestSnapshot(t *testing.T) {
	ctx := context.Background()
	ix := open(t)
	alice := "did:plc:alice"
	// The live stream applied rev 2 first; a snapshot at rev 2 still fills in older records.
	_, err := ix.Apply(ctx, svc, []Event{commit(1, alice, 2, postOp("p2", "live"))})
	require.NoError(t, err)
	st, err := ix.Apply(ctx, "", []Event{{Commit: &Commit{DID: alice, Rev: rev(2), Snapshot: true, Ops: []Op{postOp("p1", "old"), postOp("p2", "live")}}}})
	require.NoError(t, err)
	require.Equal(t, 1, st.Commits)
	// An older snapshot is stale.
	st, err = ix.Apply(ctx, "", []Event{{Commit: &Commit{DID: alice, Rev: rev(1), Snapshot: true, Ops: []Op{postOp("p0", "older")}}}})
	require.NoError(t, err)
	require.Equal(t, 1, st.Stale)
	c, err := ix.Count(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, c.Posts)
	cur, _, err := ix.Cursor(ctx, svc)
	require.NoError(t, err)
	require.EqualValues(t, 1, cur, "snapshots do not move the cursor")
}

func TestPostUpdateAndProfile(t *testing.T) {
	ctx := context.Background()
	ix := open(t)
	alice := "did:plc:alice"
	p1 := URI(alice, CollectionPost, "p1")
	_, err := ix.Apply(ctx, svc, []Event{
		commit(1, alice, 1, postOp("p1", "v1"), Op{Action: ActionCreate, Collection: CollectionProfile, RKey: "self", CID: "pc", Record: &Profile{DisplayName: "Alice", Labels: []string{"bot"}}}),
	})
	require.NoError(t, err)
	before, err := ix.Post(ctx, p1)
	require.NoError(t, err)
	_, err = ix.Apply(ctx, svc, []Event{commit(2, alice, 2, Op{Action: ActionUpdate, Collection: CollectionPost, RKey: "p1", CID: "v2cid",
		Record: &Post{Text: "v2", Langs: []string{"en"}, Labels: []string{"ai-generated"}, Images: []Image{{CID: "bafkimg", MIME: "image/png", Alt: "a cat"}}}})})
	require.NoError(t, err)
	after, err := ix.Post(ctx, p1)
	require.NoError(t, err)
	require.Equal(t, before.Seq, after.Seq, "an update keeps the post's place")
	require.Equal(t, "v2", after.Text)
	require.Equal(t, []string{"en"}, after.Langs)
	require.Equal(t, []string{"ai-generated"}, after.Labels)
	require.Equal(t, []Image{{CID: "bafkimg", MIME: "image/png", Alt: "a cat"}}, after.Images)
	prof, err := ix.Profile(ctx, alice)
	require.NoError(t, err)
	require.Equal(t, "Alice", prof.DisplayName)
	require.Equal(t, []string{"bot"}, prof.Labels)
}

func TestFollowingPosts(t *testing.T) {
	ctx := context.Background()
	for _, follows := range []int{3, 170} {
		t.Run(fmt.Sprint(follows), func(t *testing.T) {
			ix := open(t)
			viewer := "did:plc:viewer"
			var events []Event
			seq := int64(0)
			var fops []Op
			for i := range follows {
				fops = append(fops, Op{Action: ActionCreate, Collection: CollectionFollow, RKey: fmt.Sprintf("f%d", i), CID: "c", Record: &Follow{Subject: fmt.Sprintf("did:plc:author%d", i)}})
			}
			seq++
			events = append(events, Event{Seq: seq, Commit: &Commit{DID: viewer, Rev: rev(1), Ops: fops}})
			// Followed and unfollowed authors post in turn.
			want := map[string]bool{}
			for round := range 5 {
				for _, author := range []string{"did:plc:author0", "did:plc:stranger", "did:plc:author2"} {
					seq++
					rk := fmt.Sprintf("p%d", round)
					events = append(events, commit(seq, author, round+1, postOp(rk, "x")))
					if author != "did:plc:stranger" {
						want[URI(author, CollectionPost, rk)] = true
					}
				}
			}
			_, err := ix.Apply(ctx, svc, events)
			require.NoError(t, err)
			got := map[string]bool{}
			before := int64(NoCursor)
			for range 10 {
				page, err := ix.FollowingPosts(ctx, viewer, before, 3)
				require.NoError(t, err)
				for i, p := range page {
					require.False(t, got[p.URI], "repeated %s", p.URI)
					got[p.URI] = true
					if i > 0 {
						require.Less(t, p.Seq, page[i-1].Seq)
					}
				}
				if len(page) < 3 {
					break
				}
				before = page[len(page)-1].Seq
			}
			require.Equal(t, want, got)
			none, err := ix.FollowingPosts(ctx, "did:plc:nobody", NoCursor, 10)
			require.NoError(t, err)
			require.Empty(t, none)
		})
	}
}

// TestFollowingMatchesBruteForce compares FollowingPosts with a plain filter over every
// post.
func TestFollowingMatchesBruteForce(t *testing.T) {
	ctx := context.Background()
	ix := open(t)
	rng := rand.New(rand.NewPCG(3, 4))
	var events []Event
	revs := map[string]int{}
	type row struct {
		seq    int64
		author string
	}
	var rows []row
	for i := range 400 {
		// author0 posts half the time; the others share the rest.
		a := fmt.Sprintf("did:plc:author%d", rng.IntN(8))
		if rng.IntN(2) == 0 {
			a = "did:plc:author0"
		}
		revs[a]++
		events = append(events, commit(int64(i+1), a, revs[a], postOp(fmt.Sprintf("p%d", i), "x")))
		rows = append(rows, row{int64(i + 1), a})
	}
	authors := []string{"did:plc:author0", "did:plc:author3", "did:plc:author5", "did:plc:author7", "did:plc:nobody"}
	var fops []Op
	for i, a := range authors {
		fops = append(fops, Op{Action: ActionCreate, Collection: CollectionFollow, RKey: fmt.Sprintf("f%d", i), CID: "c", Record: &Follow{Subject: a}})
	}
	events = append(events, Event{Seq: 1000, Commit: &Commit{DID: "did:plc:viewer", Rev: rev(1), Ops: fops}})
	_, err := ix.Apply(ctx, svc, events)
	require.NoError(t, err)
	for _, limit := range []int{1, 2, 5, 17, 50, 100} {
		for _, before := range []int64{NoCursor, 399, 200, 37, 2} {
			got, err := ix.FollowingPosts(ctx, "did:plc:viewer", before, limit)
			require.NoError(t, err)
			var want []int64
			for i := len(rows) - 1; i >= 0 && len(want) < limit; i-- {
				if r := rows[i]; r.seq < before && slices.Contains(authors, r.author) {
					want = append(want, r.seq)
				}
			}
			var gotSeqs []int64
			for _, p := range got {
				gotSeqs = append(gotSeqs, p.Seq)
			}
			require.Equal(t, want, gotSeqs, "limit %d before %d", limit, before)
		}
	}
}

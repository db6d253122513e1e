package index

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// followingBySQL is FollowingPosts computed by SQLite alone over every post, the
// reference the memory index must match.
func followingBySQL(t *testing.T, ix *Index, viewer string, before int64, limit int) []FeedPost {
	t.Helper()
	lo, hi := RepoRange(viewer, CollectionFollow)
	want, err := ix.feedQuery(context.Background(), `SELECT seq, author, rkey FROM posts
		WHERE hidden = 0 AND seq < ? AND author IN (SELECT subject FROM follows WHERE uri >= ? AND uri < ?) ORDER BY seq DESC LIMIT ?`, before, lo, hi, limit)
	require.NoError(t, err)
	return want
}

// TestFollowingMemoryTracksChanges applies random batches of posts, deletions, follows,
// unfollows, takedowns, reactivations and account deletions, and after each batch (with
// the viewers' follow sets cached from the batch before) compares every viewer's pages,
// and the recent feed's kept first page, with SQLite's answer; then reopens the index,
// which loads the memory from disk, and compares again.
func TestFollowingMemoryTracksChanges(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "feed.sqlite")
	ix, err := Open(ctx, path, Options{})
	require.NoError(t, err)
	defer func() { ix.Close() }()
	rng := rand.New(rand.NewPCG(11, 12))
	const authors, viewers = 12, 3
	author := func(i int) string { return fmt.Sprintf("did:plc:author%d", i) }
	viewer := func(i int) string { return fmt.Sprintf("did:plc:viewer%d", i) }
	revs := map[string]int{}
	posts := map[string][]string{} // author -> rkeys that may exist
	seq := int64(0)
	nextRKey := 0
	check := func(ix *Index, when string) {
		// One limit, so that the page kept from the batch before is what is checked first.
		for range 2 {
			want, err := ix.feedQuery(ctx, `SELECT seq, author, rkey FROM posts WHERE hidden = 0 ORDER BY seq DESC LIMIT 20`)
			require.NoError(t, err)
			got, err := ix.RecentPosts(ctx, NoCursor, 20)
			require.NoError(t, err)
			require.Equal(t, want, got, "%s: recent", when)
		}
		for v := range viewers {
			for _, limit := range []int{1, 4, 50} {
				before := int64(NoCursor)
				for page := 0; page < 100; page++ {
					want := followingBySQL(t, ix, viewer(v), before, limit)
					got, err := ix.FollowingPosts(ctx, viewer(v), before, limit)
					require.NoError(t, err)
					require.Equal(t, want, got, "%s: viewer %d limit %d before %d", when, v, limit, before)
					if len(got) < limit {
						break
					}
					before = got[len(got)-1].Seq
				}
			}
		}
	}
	for batch := range 40 {
		var events []Event
		for range 1 + rng.IntN(12) {
			seq++
			a := author(rng.IntN(authors))
			switch r := rng.IntN(20); {
			case r < 10: // a post
				revs[a]++
				nextRKey++
				rk := fmt.Sprintf("p%05d", nextRKey)
				posts[a] = append(posts[a], rk)
				events = append(events, commit(seq, a, revs[a], postOp(rk, "x")))
			case r < 13 && len(posts[a]) > 0: // a deletion
				revs[a]++
				rk := posts[a][rng.IntN(len(posts[a]))]
				events = append(events, commit(seq, a, revs[a], Op{Action: ActionDelete, Collection: CollectionPost, RKey: rk}))
			case r < 17: // a follow or an unfollow
				v := viewer(rng.IntN(viewers))
				revs[v]++
				rk := fmt.Sprintf("f%s", a[len("did:plc:"):])
				op := Op{Action: ActionCreate, Collection: CollectionFollow, RKey: rk, CID: "c", Record: &Follow{Subject: a}}
				if rng.IntN(3) == 0 {
					op = Op{Action: ActionDelete, Collection: CollectionFollow, RKey: rk}
				}
				events = append(events, commit(seq, v, revs[v], op))
			case r < 18:
				events = append(events, Event{Seq: seq, Account: &Account{DID: a, Active: false, Status: StatusTakendown}})
			case r < 19:
				events = append(events, Event{Seq: seq, Account: &Account{DID: a, Active: true}})
			default:
				events = append(events, Event{Seq: seq, Account: &Account{DID: a, Active: false, Status: StatusDeleted}})
				posts[a] = nil
			}
		}
		_, err := ix.Apply(ctx, svc, events)
		require.NoError(t, err)
		check(ix, fmt.Sprintf("batch %d", batch))
	}
	require.NoError(t, ix.Close())
	ix, err = Open(ctx, path, Options{})
	require.NoError(t, err)
	check(ix, "reopened")
	c, err := ix.Count(ctx)
	require.NoError(t, err)
	require.NotZero(t, c.Posts)
	require.NotZero(t, c.Follows)
}

// TestFollowingMemoryIsOnlyAGuide: a post the memory still lists after SQLite lost or
// hid it (the instant between a commit and its memory update) is not served, and the
// page is filled from below it.
func TestFollowingMemoryIsOnlyAGuide(t *testing.T) {
	ctx := context.Background()
	ix := open(t)
	alice := "did:plc:alice"
	events := []Event{{Seq: 1, Commit: &Commit{DID: "did:plc:viewer", Rev: rev(1), Ops: []Op{
		{Action: ActionCreate, Collection: CollectionFollow, RKey: "f1", CID: "c", Record: &Follow{Subject: alice}}}}}}
	for i := range 6 {
		events = append(events, commit(int64(i+2), alice, i+1, postOp(fmt.Sprintf("p%d", i), "x")))
	}
	_, err := ix.Apply(ctx, svc, events)
	require.NoError(t, err)
	all, err := ix.FollowingPosts(ctx, "did:plc:viewer", NoCursor, 10)
	require.NoError(t, err)
	require.Len(t, all, 6)
	// Behind the memory's back: the newest post hidden, the next deleted.
	_, err = ix.db.Write.ExecContext(ctx, `UPDATE posts SET hidden = 1 WHERE seq = ?`, all[0].Seq)
	require.NoError(t, err)
	_, err = ix.db.Write.ExecContext(ctx, `DELETE FROM posts WHERE seq = ?`, all[1].Seq)
	require.NoError(t, err)
	got, err := ix.FollowingPosts(ctx, "did:plc:viewer", NoCursor, 3)
	require.NoError(t, err)
	require.Equal(t, all[2:5], got)
}

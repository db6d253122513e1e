package rank

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/feedgen/index"
	"github.com/stretchr/testify/require"
)

// rankIndex is a real index filled through Apply, with verdicts stored as the worker
// would.
type rankIndex struct {
	t    *testing.T
	ix   *index.Index
	seq  int64
	revs map[string]int
}

func newRankIndex(t *testing.T) *rankIndex {
	ix, err := index.Open(context.Background(), filepath.Join(t.TempDir(), "feed.sqlite"), index.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { ix.Close() })
	return &rankIndex{t: t, ix: ix, revs: map[string]int{}}
}

func (r *rankIndex) commit(did string, ops ...index.Op) {
	r.t.Helper()
	r.seq++
	r.revs[did]++
	_, err := r.ix.Apply(context.Background(), "test", []index.Event{{Seq: r.seq, Commit: &index.Commit{DID: did, Rev: fmt.Sprintf("3l%011d", r.revs[did]), Ops: ops}}})
	require.NoError(r.t, err)
}

// post creates a post and stores its verdict: label and the lowest AI evidence tier.
func (r *rankIndex) post(did, rkey, label string, tier int) string {
	r.t.Helper()
	r.commit(did, index.Op{Action: index.ActionCreate, Collection: index.CollectionPost, RKey: rkey, CID: "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm", Record: &index.Post{Text: rkey}})
	uri := index.URI(did, index.CollectionPost, rkey)
	p, err := r.ix.Post(context.Background(), uri)
	require.NoError(r.t, err)
	stored, err := r.ix.StoreVerdict(context.Background(), index.Verdict{Seq: p.Seq, PostCID: p.CID, Label: label, AITier: tier, Evidence: []byte("[]"), Signals: "sig." + label, Version: "test"})
	require.NoError(r.t, err)
	require.True(r.t, stored)
	return uri
}

func (r *rankIndex) like(did, rkey, subject string) {
	r.t.Helper()
	r.commit(did, index.Op{Action: index.ActionCreate, Collection: index.CollectionLike, RKey: rkey, CID: "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm", Record: &index.Like{Subject: subject}})
}

func pageAllRanked(t *testing.T, algo Algorithm, src Source, viewer string, limit int, between func(page int)) ([]string, []string) {
	t.Helper()
	var posts, contexts []string
	seen := map[string]bool{}
	cursor := ""
	for page := 0; page < 100; page++ {
		p, err := algo.Page(context.Background(), src, Request{Viewer: viewer, Limit: limit, Cursor: cursor})
		require.NoError(t, err)
		require.LessOrEqual(t, len(p.Items), limit)
		for _, it := range p.Items {
			require.False(t, seen[it.Post], "page %d repeats %s", page, it.Post)
			seen[it.Post] = true
			posts = append(posts, it.Post)
			contexts = append(contexts, it.FeedContext)
		}
		if p.Cursor == "" {
			return posts, contexts
		}
		cursor = p.Cursor
		if between != nil {
			between(page)
		}
	}
	t.Fatal("too many pages")
	return nil, nil
}

func TestRankedFeeds(t *testing.T) {
	r := newRankIndex(t)
	p := DefaultParams()
	p.DiversityFloor, p.AuthorCap = 1, 0 // plain score order, checked below
	p.SnapshotTTL = 0
	rk := NewRanker(p, nil)
	reg := DefaultWith(rk)

	// Eight authors, one post each per class; likes make the score order explicit.
	var humans, ais []string
	for i := range 8 {
		did := fmt.Sprintf("did:plc:author%d", i)
		humans = append(humans, r.post(did, "h", "unknown", index.NoAITier))
		ais = append(ais, r.post(did, "a", "ai_generated", 0))
	}
	r.post("did:plc:author0", "heur", "unknown", 2) // heuristic AI lean only: still "no known AI"
	r.post("did:plc:author0", "weak", "unknown", 1) // a tier-1 AI claim: in neither class
	r.post("did:plc:author0", "declared", "human_declared", index.NoAITier)
	for i, u := range humans {
		for k := range i { // humans[i] gets i likes
			r.like(fmt.Sprintf("did:plc:liker%d", k), "h"+fmt.Sprint(i), u)
		}
	}
	for i, u := range ais {
		for k := range 8 - i { // ais[i] gets 8-i likes
			r.like(fmt.Sprintf("did:plc:liker%d", k), "a"+fmt.Sprint(i), u)
		}
	}
	time.Sleep(2 * time.Millisecond) // the snapshot's time base comes after every like

	get := func(name string) Algorithm { a, ok := reg.Get(name); require.True(t, ok); return a }
	human, ctx := pageAllRanked(t, get(FeedHuman), r.ix, "", 3, nil)
	require.Len(t, human, 10)
	for i := range 7 { // most liked first
		require.Equal(t, humans[7-i], human[i])
	}
	// No likes: newest first.
	require.Equal(t, []string{index.URI("did:plc:author0", index.CollectionPost, "declared"), index.URI("did:plc:author0", index.CollectionPost, "heur"), humans[0]}, human[7:])
	require.Equal(t, "v=unknown;e=sig.unknown", ctx[0])

	ai, ctx := pageAllRanked(t, get(FeedAI), r.ix, "", 4, nil)
	require.Equal(t, ais, ai)
	require.Equal(t, "v=ai_generated;e=sig.ai_generated", ctx[0])

	// Balanced at the default share 0.5: alternate, AI first on ties when it scores higher.
	bal, _ := pageAllRanked(t, get(FeedBalanced), r.ix, "", 5, nil)
	require.Len(t, bal, 18)
	a := 0
	for k, u := range bal[:16] {
		if contains(ais, u) {
			a++
		}
		require.LessOrEqual(t, math.Abs(float64(a)/float64(k+1)-0.5), 1/float64(k+1))
	}

	// following-mix needs a viewer, and keeps to the viewer's follows.
	_, err := get(FeedFollowingMix).Page(context.Background(), r.ix, Request{Limit: 10})
	require.ErrorIs(t, err, ErrAuthRequired)
	r.commit("did:plc:viewer", index.Op{Action: index.ActionCreate, Collection: index.CollectionFollow, RKey: "f1", CID: "c", Record: &index.Follow{Subject: "did:plc:author3"}},
		index.Op{Action: index.ActionCreate, Collection: index.CollectionFollow, RKey: "f2", CID: "c", Record: &index.Follow{Subject: "did:plc:author5"}})
	mix, _ := pageAllRanked(t, get(FeedFollowingMix), r.ix, "did:plc:viewer", 10, nil)
	require.ElementsMatch(t, []string{humans[3], humans[5], ais[3], ais[5]}, mix)

	// A bad cursor, and one from the far future, are refused.
	for _, bad := range []string{"x", EncodeCursor(5), EncodeRankCursor(time.Now().Add(time.Hour), 5, 3), EncodeRankCursor(time.Now().Add(-48*time.Hour), 5, 3)} {
		_, err := get(FeedHuman).Page(context.Background(), r.ix, Request{Limit: 3, Cursor: bad})
		require.ErrorIs(t, err, ErrInvalidCursor, bad)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestRankedCursorStable pages through a ranked feed while posts and likes arrive (which
// reorder any fresh ranking), with the snapshot cache dropped half-way (a restart):
// every post that existed at page 1 is shown exactly once, in the page-1 order.
func TestRankedCursorStable(t *testing.T) {
	r := newRankIndex(t)
	p := DefaultParams()
	p.SnapshotTTL = time.Minute
	var all []string
	for i := range 20 {
		all = append(all, r.post(fmt.Sprintf("did:plc:a%d", i%5), fmt.Sprintf("p%d", i), "unknown", index.NoAITier))
	}
	for i := range 10 {
		r.like("did:plc:fan", fmt.Sprintf("l%d", i), all[i*2])
	}
	time.Sleep(2 * time.Millisecond)
	first, _ := pageAllRanked(t, NewRanker(p, nil).Feed(FeedHuman, KindHuman), r.ix, "", 100, nil)
	require.Len(t, first, 20)

	rk := NewRanker(p, nil)
	feed := rk.Feed(FeedHuman, KindHuman)
	extra := 0
	got, _ := pageAllRanked(t, feed, r.ix, "", 3, func(page int) {
		// New posts, and likes that would move the least-liked posts to the top.
		r.post("did:plc:newcomer", fmt.Sprintf("n%d", page), "unknown", index.NoAITier)
		for k := range 3 {
			r.like(fmt.Sprintf("did:plc:late%d", k), fmt.Sprintf("x%d", page), all[19-page])
		}
		extra++
		if page == 2 {
			rk.mu.Lock() // drop every snapshot: later pages are rebuilt from the cursor
			rk.snaps = map[snapKey]*snapEntry{}
			rk.current = map[curKey]*snapEntry{}
			rk.mu.Unlock()
		}
	})
	require.Equal(t, first, got, "same posts, same order, none repeated or skipped")

	// A fresh first page sees the new posts and likes.
	time.Sleep(2 * time.Millisecond)
	fresh, _ := pageAllRanked(t, NewRanker(p, nil).Feed(FeedHuman, KindHuman), r.ix, "", 100, nil)
	require.Len(t, fresh, 20+extra)

	// A deleted post drops out of a cached snapshot without shifting the rest.
	rk2 := NewRanker(p, nil)
	feed = rk2.Feed(FeedHuman, KindHuman)
	p1, err := feed.Page(context.Background(), r.ix, Request{Limit: 5})
	require.NoError(t, err)
	victim := fresh[5] // first post of page 2
	at, err := syntax.ParseATURI(victim)
	require.NoError(t, err)
	r.commit(at.Authority().String(), index.Op{Action: index.ActionDelete, Collection: index.CollectionPost, RKey: at.RecordKey().String()})
	_, err = r.ix.Post(context.Background(), victim)
	require.ErrorIs(t, err, index.ErrNotFound)
	p2, err := feed.Page(context.Background(), r.ix, Request{Limit: 5, Cursor: p1.Cursor})
	require.NoError(t, err)
	require.Len(t, p2.Items, 5)
	require.Equal(t, fresh[6], p2.Items[0].Post)
	require.Equal(t, fresh[10], p2.Items[4].Post)
}

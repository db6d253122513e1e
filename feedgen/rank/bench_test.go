package rank

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/hearth-social/hearth/feedgen/index"
)

// BenchmarkRankedFeed measures a balanced first page (a new snapshot every time:
// candidate queries with engagement counts for 2×1000 candidates, scoring, Mix) and a
// page served from a cached snapshot, on an index of 10,000 classified posts by 1,000
// authors with 30,000 likes. Run with -benchtime=20x.
func BenchmarkRankedFeed(b *testing.B) {
	ctx := context.Background()
	ix, err := index.Open(ctx, filepath.Join(b.TempDir(), "bench.sqlite"), index.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	const posts, authors, likes = 10_000, 1_000, 30_000
	rng := rand.New(rand.NewPCG(3, 4))
	var events []index.Event
	uris := make([]string, posts)
	for i := range posts {
		did := fmt.Sprintf("did:plc:bench%06d", i%authors)
		uris[i] = index.URI(did, index.CollectionPost, fmt.Sprintf("p%06d", i))
		events = append(events, index.Event{Seq: int64(i + 1), Commit: &index.Commit{DID: did, Rev: fmt.Sprintf("3l%011d", i+1), Ops: []index.Op{
			{Action: index.ActionCreate, Collection: index.CollectionPost, RKey: fmt.Sprintf("p%06d", i), CID: "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm", Record: &index.Post{Text: "x"}}}}})
	}
	for i := range likes {
		did := fmt.Sprintf("did:plc:fan%06d", i)
		events = append(events, index.Event{Seq: int64(posts + i + 1), Commit: &index.Commit{DID: did, Rev: "3l00000000001", Ops: []index.Op{
			{Action: index.ActionCreate, Collection: index.CollectionLike, RKey: "l", CID: "c", Record: &index.Like{Subject: uris[rng.IntN(posts)]}}}}})
	}
	for len(events) > 0 {
		n := min(len(events), 2000)
		if _, err := ix.Apply(ctx, "bench", events[:n]); err != nil {
			b.Fatal(err)
		}
		events = events[n:]
	}
	for i, u := range uris {
		p, err := ix.Post(ctx, u)
		if err != nil {
			b.Fatal(err)
		}
		v := index.Verdict{Seq: p.Seq, PostCID: p.CID, Label: "unknown", AITier: index.NoAITier, Evidence: []byte("[]")}
		if i%10 < 3 {
			v.Label, v.AITier, v.Signals = "ai_generated", 0, "c2pa.digitalSourceType"
		}
		if _, err := ix.StoreVerdict(ctx, v); err != nil {
			b.Fatal(err)
		}
	}
	p := DefaultParams()
	p.SnapshotTTL = 0
	feed := NewRanker(p, nil).Feed(FeedBalanced, KindBalanced)
	b.Run("first-page-new-snapshot", func(b *testing.B) {
		for b.Loop() {
			if _, err := feed.Page(ctx, ix, Request{Limit: 50}); err != nil {
				b.Fatal(err)
			}
		}
	})
	first, err := feed.Page(ctx, ix, Request{Limit: 50})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("next-page-cached-snapshot", func(b *testing.B) {
		for b.Loop() {
			if _, err := feed.Page(ctx, ix, Request{Limit: 50, Cursor: first.Cursor}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

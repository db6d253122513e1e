package index

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func outbox(t *testing.T, ix *Index) map[string]LabelTask {
	t.Helper()
	tasks, err := ix.LabelOutbox(context.Background(), 100)
	require.NoError(t, err)
	out := map[string]LabelTask{}
	for _, tk := range tasks {
		out[tk.URI] = tk
	}
	return out
}

func drain(t *testing.T, ix *Index) map[string]LabelTask {
	t.Helper()
	tasks := outbox(t, ix)
	for _, tk := range tasks {
		require.NoError(t, ix.LabelDone(context.Background(), tk))
	}
	require.Empty(t, outbox(t, ix))
	return tasks
}

// TestVerdictsAndLabelOutbox follows one labelled post through classification, edit,
// takedown, reinstatement and deletion.
func TestVerdictsAndLabelOutbox(t *testing.T) {
	ctx := context.Background()
	ix := open(t)
	alice := "did:plc:alice"
	p1, p2 := URI(alice, CollectionPost, "p1"), URI(alice, CollectionPost, "p2")
	_, err := ix.Apply(ctx, svc, []Event{commit(1, alice, 1, postOp("p1", "ai art"), postOp("p2", "a photo"))})
	require.NoError(t, err)

	pending, err := ix.PendingClassifications(ctx, 10)
	require.NoError(t, err)
	post1, err := ix.Post(ctx, p1)
	require.NoError(t, err)
	post2, err := ix.Post(ctx, p2)
	require.NoError(t, err)
	require.Equal(t, []int64{post2.Seq, post1.Seq}, pending, "newest first")
	c, err := ix.Classification(ctx, p1)
	require.NoError(t, err)
	require.False(t, c.Classified)
	require.Equal(t, "unknown", c.Label)

	// A verdict for a version that is no longer current is not stored.
	stored, err := ix.StoreVerdict(ctx, Verdict{Seq: post1.Seq, PostCID: "bafystale", Label: "ai_generated", Evidence: []byte("[]")})
	require.NoError(t, err)
	require.False(t, stored)

	v := Verdict{Seq: post1.Seq, PostCID: post1.CID, Label: "ai_generated", Confidence: 0.99, AIScore: 0.99, AITier: 0,
		Evidence: []byte(`[{"signal":"c2pa.digitalSourceType"}]`), Signals: "c2pa.digitalSourceType", LabelVals: []string{"ai-generated"}, Version: "classify/1"}
	stored, err = ix.StoreVerdict(ctx, v)
	require.NoError(t, err)
	require.True(t, stored)
	stored, err = ix.StoreVerdict(ctx, Verdict{Seq: post2.Seq, PostCID: post2.CID, Label: "unknown", AITier: NoAITier, Evidence: []byte("[]")})
	require.NoError(t, err)
	require.True(t, stored)
	pending, err = ix.PendingClassifications(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, pending)
	c, err = ix.Classification(ctx, p1)
	require.NoError(t, err)
	require.True(t, c.Classified)
	require.Equal(t, []string{"ai-generated"}, c.LabelVals)
	require.Equal(t, post1.CID, c.ClassifiedCID)

	// Only the labelled post is queued for the labeler.
	tasks := drain(t, ix)
	require.Len(t, tasks, 1)
	require.Equal(t, LabelTask{URI: p1, CID: post1.CID, Vals: []string{"ai-generated"}, Gen: 0}, tasks[p1])

	// An edit resets the verdict (and its extra columns) and the post is pending again.
	_, err = ix.Apply(ctx, svc, []Event{commit(2, alice, 2, Op{Action: ActionUpdate, Collection: CollectionPost, RKey: "p1", CID: "bafyp1v2", Record: &Post{Text: "edited"}})})
	require.NoError(t, err)
	c, err = ix.Classification(ctx, p1)
	require.NoError(t, err)
	require.False(t, c.Classified)
	require.Empty(t, c.LabelVals)
	require.Equal(t, NoAITier, c.AITier)
	// Re-classified without the evidence: the labels must go.
	stored, err = ix.StoreVerdict(ctx, Verdict{Seq: post1.Seq, PostCID: "bafyp1v2", Label: "unknown", AITier: NoAITier, Evidence: []byte("[]")})
	require.NoError(t, err)
	require.True(t, stored)
	tasks = drain(t, ix)
	require.Equal(t, LabelTask{URI: p1, HadCID: post1.CID}, tasks[p1])

	// Labelled again; then the account is taken down (labels go) and reinstated (back).
	v.PostCID = "bafyp1v2"
	_, err = ix.StoreVerdict(ctx, v)
	require.NoError(t, err)
	require.Len(t, drain(t, ix), 1)
	_, err = ix.Apply(ctx, svc, []Event{{Seq: 3, Account: &Account{DID: alice, Active: false, Status: StatusTakendown}}})
	require.NoError(t, err)
	tasks = drain(t, ix)
	require.Equal(t, LabelTask{URI: p1, HadCID: "bafyp1v2"}, tasks[p1])
	_, err = ix.Apply(ctx, svc, []Event{{Seq: 4, Account: &Account{DID: alice, Active: true}}})
	require.NoError(t, err)
	tasks = drain(t, ix)
	require.Equal(t, LabelTask{URI: p1, CID: "bafyp1v2", Vals: []string{"ai-generated"}}, tasks[p1])

	// A re-queue while a drain is in flight survives it.
	before := outbox(t, ix)
	require.Empty(t, before)
	_, err = ix.StoreVerdict(ctx, v)
	require.NoError(t, err)
	read := outbox(t, ix)[p1]
	_, err = ix.StoreVerdict(ctx, v) // re-queued (gen+1) after the read
	require.NoError(t, err)
	require.NoError(t, ix.LabelDone(ctx, read))
	require.Contains(t, outbox(t, ix), p1)
	drain(t, ix)

	// Deleting the post retracts its labels; a deleted account's posts too.
	_, err = ix.Apply(ctx, svc, []Event{commit(5, alice, 5, Op{Action: ActionDelete, Collection: CollectionPost, RKey: "p1"})})
	require.NoError(t, err)
	tasks = drain(t, ix)
	require.Equal(t, LabelTask{URI: p1, HadCID: "bafyp1v2"}, tasks[p1])
	_, err = ix.Classification(ctx, p1)
	require.ErrorIs(t, err, ErrNotFound)

	v2 := Verdict{Seq: post2.Seq, PostCID: post2.CID, Label: "ai_assisted", AITier: 0, Evidence: []byte("[]"), LabelVals: []string{"ai-assisted"}}
	_, err = ix.StoreVerdict(ctx, v2)
	require.NoError(t, err)
	drain(t, ix)
	_, err = ix.Apply(ctx, svc, []Event{{Seq: 6, Account: &Account{DID: alice, Active: false, Status: StatusDeleted}}})
	require.NoError(t, err)
	tasks = drain(t, ix)
	require.Equal(t, LabelTask{URI: p2, HadCID: post2.CID}, tasks[p2])
}

func TestMediaCacheAndWindow(t *testing.T) {
	ctx := context.Background()
	ix := open(t)
	_, ok, err := ix.CachedMedia(ctx, "bafkblob", "v1")
	require.NoError(t, err)
	require.False(t, ok)
	require.NoError(t, ix.PutMedia(ctx, "bafkblob", 10, []byte(`[{"signal":"x"}]`), "v1"))
	raw, ok, err := ix.CachedMedia(ctx, "bafkblob", "v1")
	require.NoError(t, err)
	require.True(t, ok)
	require.JSONEq(t, `[{"signal":"x"}]`, string(raw))
	_, ok, err = ix.CachedMedia(ctx, "bafkblob", "v2")
	require.NoError(t, err)
	require.False(t, ok, "a new classifier version re-reads the blob")

	// Posts indexed at known times; FirstSeqSince finds the window start.
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	clock := base
	ix.now = func() time.Time { return clock }
	for i := range 40 {
		clock = base.Add(time.Duration(i) * time.Hour)
		_, err := ix.Apply(ctx, svc, []Event{commit(int64(i+1), "did:plc:a", i+1, postOp("p"+rev(i), "x"))})
		require.NoError(t, err)
	}
	// Delete some posts so the sequence has gaps.
	_, err = ix.Apply(ctx, svc, []Event{commit(41, "did:plc:a", 41,
		Op{Action: ActionDelete, Collection: CollectionPost, RKey: "p" + rev(10)}, Op{Action: ActionDelete, Collection: CollectionPost, RKey: "p" + rev(11)})})
	require.NoError(t, err)
	maxSeq, err := ix.MaxPostSeq(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 40, maxSeq)
	for _, tc := range []struct {
		since time.Time
		max   int64
		want  int64
	}{
		{base.Add(-time.Hour), 40, 1},
		{base, 40, 1},
		{base.Add(30 * time.Minute), 40, 2},
		{base.Add(10 * time.Hour), 40, 11}, // 11 and 12 are gone: anything in (10, 13] is right
		{base.Add(20 * time.Hour), 40, 21},
		{base.Add(39 * time.Hour), 40, 40},
		{base.Add(50 * time.Hour), 40, 41},
		{base.Add(20 * time.Hour), 15, 16},
	} {
		got, err := ix.FirstSeqSince(ctx, tc.since, tc.max)
		require.NoError(t, err)
		if tc.want == 11 {
			require.True(t, got >= 11 && got <= 13, "got %d", got)
			continue
		}
		require.Equal(t, tc.want, got, "since %s", tc.since)
	}
}

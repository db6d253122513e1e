package index

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A post without media is stored with its verdict in the ingest transaction (nothing
// pending for the worker), the classifier sees the author's profile labels, a verdict
// asking for labels queues the labeler, and an edit that drops them queues the
// withdrawal; a post with media still waits for the worker.
func TestInlineTextVerdict(t *testing.T) {
	ctx := context.Background()
	var seenLabels []string
	classifier := func(_ context.Context, uri string, p *Post, authorLabels []string) (Verdict, bool) {
		seenLabels = authorLabels
		if strings.Contains(p.Text, "#ai") {
			return Verdict{Label: "ai_generated", Confidence: 1, AIScore: 1, AITier: 0, Evidence: []byte(`[{"signal":"selflabel.post"}]`),
				Signals: "selflabel.post", LabelVals: []string{"ai-generated"}, Version: "test/1"}, true
		}
		return Verdict{Label: "unknown", AIScore: 0.5, AITier: NoAITier, Evidence: []byte(`[]`), LabelVals: nil, Version: "test/1"}, true
	}
	ix, err := Open(ctx, filepath.Join(t.TempDir(), "feed.sqlite"), Options{ClassifyText: classifier})
	require.NoError(t, err)
	defer ix.Close()
	alice := "did:plc:alice"
	p1, p2 := URI(alice, CollectionPost, "p1"), URI(alice, CollectionPost, "p2")
	withImage := postOp("p2", "a photo")
	withImage.Record.(*Post).Images = []Image{{CID: "bafyimg", MIME: "image/jpeg"}}
	profile := Op{Action: ActionCreate, Collection: CollectionProfile, RKey: "self", CID: "bafyprof", Record: &Profile{Labels: []string{"!no-unauthenticated"}}}
	st, err := ix.Apply(ctx, svc, []Event{commit(1, alice, 1, profile), commit(2, alice, 2, postOp("p1", "made with #ai"), withImage)})
	require.NoError(t, err)
	require.Equal(t, 1, st.Classified)
	require.Equal(t, []string{"!no-unauthenticated"}, seenLabels)

	c, err := ix.Classification(ctx, p1)
	require.NoError(t, err)
	require.True(t, c.Classified)
	require.Equal(t, "ai_generated", c.Label)
	require.Equal(t, "bafyp1", c.ClassifiedCID)
	require.Equal(t, []string{"ai-generated"}, c.LabelVals)
	post2, err := ix.Post(ctx, p2)
	require.NoError(t, err)
	pending, err := ix.PendingClassifications(ctx, 10)
	require.NoError(t, err)
	require.Equal(t, []int64{post2.Seq}, pending, "only the post with media waits for the worker")
	require.Equal(t, []string{"ai-generated"}, drain(t, ix)[p1].Vals)

	// Edited to plain text: classified again at once, and the label is withdrawn.
	edit := Op{Action: ActionUpdate, Collection: CollectionPost, RKey: "p1", CID: "bafyp1b", Record: &Post{Text: "just words"}}
	st, err = ix.Apply(ctx, svc, []Event{commit(3, alice, 3, edit)})
	require.NoError(t, err)
	require.Equal(t, 1, st.Classified)
	c, err = ix.Classification(ctx, p1)
	require.NoError(t, err)
	require.Equal(t, "unknown", c.Label)
	require.True(t, c.Classified)
	require.Equal(t, "bafyp1b", c.ClassifiedCID)
	task, ok := outbox(t, ix)[p1]
	require.True(t, ok, "the withdrawal is queued")
	require.Empty(t, task.Vals)
}

package index

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSeeLessAcrossReopen: SeeLess answers from SQLite for viewers who asked to see
// less, whether they did so in this process or before the index was reopened, and "see
// more" undoes it.
func TestSeeLessAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "feed.sqlite")
	ix, err := Open(ctx, path, Options{})
	require.NoError(t, err)
	now := time.Now()
	alice, bob := "did:plc:alice", "did:plc:bob"
	post := URI(bob, CollectionPost, "p1")
	less, err := ix.SeeLess(ctx, alice, now)
	require.NoError(t, err)
	require.Empty(t, less)
	require.NoError(t, ix.PutInteractions(ctx, alice, []Interaction{{Item: post, Event: "app.bsky.feed.defs#interactionSeen"}}, now))
	less, err = ix.SeeLess(ctx, alice, now)
	require.NoError(t, err)
	require.Empty(t, less)
	require.NoError(t, ix.PutInteractions(ctx, alice, []Interaction{{Item: post, Event: InteractionRequestLess}}, now))
	less, err = ix.SeeLess(ctx, alice, now)
	require.NoError(t, err)
	require.Equal(t, map[string]bool{bob: true}, less)
	require.NoError(t, ix.Close())

	ix, err = Open(ctx, path, Options{})
	require.NoError(t, err)
	defer ix.Close()
	less, err = ix.SeeLess(ctx, alice, now)
	require.NoError(t, err)
	require.Equal(t, map[string]bool{bob: true}, less)
	less, err = ix.SeeLess(ctx, alice, now.Add(31*24*time.Hour))
	require.NoError(t, err)
	require.Empty(t, less, "a see-less lasts 30 days")
	require.NoError(t, ix.PutInteractions(ctx, alice, []Interaction{{Item: post, Event: InteractionRequestMore}}, now))
	less, err = ix.SeeLess(ctx, alice, now)
	require.NoError(t, err)
	require.Empty(t, less)
}

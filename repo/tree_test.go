package repo

import (
	"context"
	"fmt"
	"testing"

	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"
)

func TestTreeFromRecordsAndProofs(t *testing.T) {
	ctx := context.Background()
	recs := map[string]cid.Cid{}
	for i := 0; i < 500; i++ {
		c, err := RecordCID([]byte(fmt.Sprint("record ", i)))
		require.NoError(t, err)
		recs[fmt.Sprintf("app.bsky.feed.post/3k%011d", i*37%1000)] = c
	}
	ref, err := mst.LoadTreeFromMap(recs)
	require.NoError(t, err)
	root, err := ref.RootCID()
	require.NoError(t, err)

	tree, err := TreeFromRecords(recs, Head{Data: *root})
	require.NoError(t, err)
	other, _ := RecordCID([]byte("other"))
	_, err = TreeFromRecords(recs, Head{Data: other})
	require.Error(t, err, "a root mismatch is detected")

	blocks, err := TreeBlocks(tree)
	require.NoError(t, err)
	require.Equal(t, *root, blocks[0].CID)
	require.NoError(t, verifyTreeBlocks(ctx, blocks, *root))

	for path := range recs {
		proof, found, err := ProofBlocks(tree, path)
		require.NoError(t, err)
		require.True(t, found, path)
		// The proof alone is enough to read the key back.
		src := MapSource{}
		for _, b := range proof {
			src[b.CID] = b.Data
		}
		pt, err := mst.LoadTreeFromStore(ctx, src, *root)
		require.NoError(t, err)
		got, err := pt.Get([]byte(path))
		require.NoError(t, err, path)
		require.Equal(t, recs[path], *got)
	}
	for _, missing := range []string{"app.bsky.feed.post/3k00000000001", "a/a", "zzz/zzz"} {
		proof, found, err := ProofBlocks(tree, missing)
		require.NoError(t, err)
		require.False(t, found)
		src := MapSource{}
		for _, b := range proof {
			src[b.CID] = b.Data
		}
		pt, err := mst.LoadTreeFromStore(ctx, src, *root)
		require.NoError(t, err)
		got, err := pt.Get([]byte(missing))
		require.NoError(t, err, "absence of %s is provable from the path", missing)
		require.Nil(t, got)
	}
	data, ok, err := FindNode(tree, blocks[len(blocks)-1].CID)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, blocks[len(blocks)-1].Data, data)
}

// verifyTreeBlocks is a test helper: the encoded nodes load back into the same tree.
func verifyTreeBlocks(ctx context.Context, blocks []Block, root cid.Cid) error {
	src := MapSource{}
	for _, b := range blocks {
		src[b.CID] = b.Data
	}
	t, err := mst.LoadTreeFromStore(ctx, src, root)
	if err != nil {
		return err
	}
	if t.IsPartial() {
		return mst.ErrPartialTree
	}
	return nil
}

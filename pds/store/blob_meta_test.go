package store

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"
)

func TestPutBlobReturnsStoredMeta(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "pds.sqlite"))
	defer s.Close()
	mh, err := multihash.Sum([]byte("bytes"), multihash.SHA2_256, -1)
	require.NoError(t, err)
	c := cid.NewCidV1(cid.Raw, mh)
	put := func(mime string) BlobMeta {
		var got BlobMeta
		require.NoError(t, s.Write(ctx, func(tx *Tx) error {
			var err error
			got, err = tx.PutBlob("did:plc:a", BlobMeta{CID: c, MIME: mime, Size: 5})
			return err
		}))
		return got
	}
	require.Equal(t, BlobMeta{CID: c, MIME: "text/csv", Size: 5}, put("text/csv"))
	// Re-uploading the same bytes with another computed type keeps, and reports, the first.
	require.Equal(t, BlobMeta{CID: c, MIME: "text/csv", Size: 5}, put("application/x-other"))

	ok, err := s.HasBlob(ctx, "did:plc:a", c)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = s.HasBlob(ctx, "did:plc:b", c)
	require.NoError(t, err)
	require.False(t, ok)
	require.NoError(t, s.Write(ctx, func(tx *Tx) error {
		m, err := tx.BlobMeta("did:plc:a", c)
		require.NoError(t, err)
		require.Equal(t, &BlobMeta{CID: c, MIME: "text/csv", Size: 5}, m)
		_, err = tx.BlobMeta("did:plc:b", c)
		require.ErrorIs(t, err, ErrNotFound)
		return nil
	}))
}

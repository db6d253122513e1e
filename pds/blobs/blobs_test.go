package blobs

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"
)

func TestDiskRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := NewDisk(dir)
	require.NoError(t, err)
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 2000)...)
	up, err := d.Put(ctx, "did:plc:abc", bytes.NewReader(png), 1<<20, nil)
	require.NoError(t, err)
	require.Equal(t, int64(len(png)), up.Size)
	require.Equal(t, "image/png", up.Sniffed)
	want, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.SHA2_256, MhLength: -1}.Sum(png)
	require.NoError(t, err)
	require.Equal(t, want, up.CID)

	rc, err := d.Open(ctx, "did:plc:abc", up.CID)
	require.NoError(t, err)
	got, _ := io.ReadAll(rc)
	rc.Close()
	require.Equal(t, png, got)

	_, err = d.Open(ctx, "did:plc:other", up.CID)
	require.ErrorIs(t, err, ErrNotFound)
	require.NoError(t, d.Delete(ctx, "did:plc:abc", up.CID))
	require.NoError(t, d.Delete(ctx, "did:plc:abc", up.CID))
	_, err = d.Open(ctx, "did:plc:abc", up.CID)
	require.ErrorIs(t, err, ErrNotFound)
}

func TestDiskSizeCap(t *testing.T) {
	dir := t.TempDir()
	d, err := NewDisk(dir)
	require.NoError(t, err)
	_, err = d.Put(context.Background(), "did:plc:abc", bytes.NewReader(make([]byte, 1001)), 1000, nil)
	require.ErrorIs(t, err, ErrTooLarge)
	left, _ := os.ReadDir(filepath.Join(dir, "tmp"))
	require.Empty(t, left, "a refused upload leaves nothing behind")
	_, err = d.Put(context.Background(), "did:plc:abc", bytes.NewReader(make([]byte, 1000)), 1000, nil)
	require.NoError(t, err)
}

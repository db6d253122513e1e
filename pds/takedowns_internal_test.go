package pds

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/hearth-social/hearth/pds/store"
	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"
)

// The in-memory takedown set: counted (the read paths' fast path), lifted, dropped with
// an account.
func TestAdminTakedownSet(t *testing.T) {
	s := newTakedownSet(nil)
	require.False(t, s.record("did:plc:a", "app.bsky.feed.post", "1"))
	require.Zero(t, s.n.Load())
	s.set("did:plc:a", store.TakedownRecord, "app.bsky.feed.post/1", "r1", true)
	s.set("did:plc:a", store.TakedownRecord, "app.bsky.feed.post/1", "r2", true) // again: still one
	c, err := cid.Decode("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
	require.NoError(t, err)
	s.set("did:plc:a", store.TakedownBlob, c.String(), "r3", true)
	s.set("did:plc:b", store.TakedownRecord, "app.bsky.feed.post/2", "r4", true)
	require.EqualValues(t, 3, s.n.Load())
	require.True(t, s.record("did:plc:a", "app.bsky.feed.post", "1"))
	require.False(t, s.record("did:plc:a", "app.bsky.feed.post", "2"))
	require.True(t, s.blob("did:plc:a", c))
	require.False(t, s.blob("did:plc:b", c))
	ref, ok := s.lookup("did:plc:a", store.TakedownRecord, "app.bsky.feed.post/1")
	require.True(t, ok)
	require.Equal(t, "r2", ref)
	require.Equal(t, []string{"app.bsky.feed.post/1"}, s.recordsOf("did:plc:a"))
	s.set("did:plc:a", store.TakedownRecord, "app.bsky.feed.post/1", "", false)
	s.set("did:plc:a", store.TakedownRecord, "app.bsky.feed.post/1", "", false) // lifting twice
	require.EqualValues(t, 2, s.n.Load())
	s.dropAccount("did:plc:a")
	require.EqualValues(t, 1, s.n.Load())
	require.False(t, s.blob("did:plc:a", c))
	require.True(t, s.record("did:plc:b", "app.bsky.feed.post", "2"))
}

// Takedowns outlive a restart: New loads them from the store.
func TestAdminTakedownsLoaded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	st, err := store.Open(ctx, filepath.Join(dir, "pds.sqlite"), log, store.Options{})
	require.NoError(t, err)
	require.NoError(t, st.Write(ctx, func(tx *store.Tx) error {
		return tx.PutTakedown(store.Takedown{DID: "did:plc:a", Kind: store.TakedownRecord, Subject: "app.bsky.feed.post/1", Ref: "why"})
	}))
	require.NoError(t, st.Close())

	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.PLCURL = "http://127.0.0.1:1" // never called by New
	cfg.PasswordCost = 1 << 10
	s, err := New(ctx, cfg, log)
	require.NoError(t, err)
	defer s.Close()
	require.True(t, s.takedowns.record("did:plc:a", "app.bsky.feed.post", "1"))
	ref, _ := s.takedowns.lookup("did:plc:a", store.TakedownRecord, "app.bsky.feed.post/1")
	require.Equal(t, "why", ref)
}

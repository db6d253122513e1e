package pds

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/lexicons"
	"github.com/hearth-social/hearth/pds/store"
	"github.com/hearth-social/hearth/repo"
	"github.com/stretchr/testify/require"
)

// TestWriterCacheBounds drives the commit pipeline with a tiny cache: trees are evicted
// by account count and by total records, rebuilt from the records on next use, and
// every commit still chains onto the previous head.
func TestWriterCacheBounds(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "pds.sqlite"), log, store.Options{})
	require.NoError(t, err)
	defer st.Close()
	w := newRepos(st, log, lexicons.NewCatalog(), 2, 25)

	var dids []syntax.DID
	for i := 0; i < 4; i++ {
		key, err := atcrypto.GeneratePrivateKeyK256()
		require.NoError(t, err)
		did := syntax.DID(fmt.Sprintf("did:plc:cache%019d", i))
		require.NoError(t, st.Write(ctx, func(tx *store.Tx) error {
			if err := tx.CreateAccount(&store.Account{DID: did.String(), Handle: fmt.Sprintf("c%d.test", i), PasswordHash: "x", SigningKey: key.Bytes()}); err != nil {
				return err
			}
			_, err := genesis(ctx, tx, did, fmt.Sprintf("c%d.test", i), key)
			return err
		}))
		dids = append(dids, did)
	}
	heads := map[syntax.DID]string{}
	for round := 0; round < 10; round++ {
		for _, did := range dids {
			rec, err := atdata.MarshalCBOR(map[string]any{"$type": "app.bsky.feed.post", "text": fmt.Sprint(round), "createdAt": "2026-01-01T00:00:00Z"})
			require.NoError(t, err)
			rk := syntax.RecordKey(fmt.Sprintf("3k%011d", round))
			res, err := w.commit(ctx, did, commitRequest{Writes: []repo.Write{{Action: repo.ActionCreate, Collection: "app.bsky.feed.post", RKey: rk, Record: rec}}})
			require.NoError(t, err)
			h, err := st.Head(ctx, did.String())
			require.NoError(t, err)
			require.Equal(t, h.Commit, res.Commit)
			require.NotEqual(t, heads[did], res.Rev)
			heads[did] = res.Rev
			w.mu.Lock()
			require.LessOrEqual(t, w.lru.Len(), 2)
			require.LessOrEqual(t, w.keys, 25+10, "at most one over-budget tree stays while in use")
			w.mu.Unlock()
		}
	}
	// Every repository reloads to exactly its stored state.
	for _, did := range dids {
		v, _, err := w.view(ctx, did.String(), "")
		require.NoError(t, err)
		recs, err := v.RecordCIDs()
		require.NoError(t, err)
		require.Len(t, recs, 10)
		require.NoError(t, v.Close())
	}
}

// TestWriterCacheKeepsBigTree: a repository with more records than the whole key cap is
// still kept while it is the one being written, instead of being rebuilt from its
// records on every write.
func TestWriterCacheKeepsBigTree(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "pds.sqlite"), log, store.Options{})
	require.NoError(t, err)
	defer st.Close()
	w := newRepos(st, log, lexicons.NewCatalog(), 4, 5)
	key, err := atcrypto.GeneratePrivateKeyK256()
	require.NoError(t, err)
	did := syntax.DID("did:plc:bigtree000000000000000")
	require.NoError(t, st.Write(ctx, func(tx *store.Tx) error {
		if err := tx.CreateAccount(&store.Account{DID: did.String(), Handle: "big.test", PasswordHash: "x", SigningKey: key.Bytes()}); err != nil {
			return err
		}
		_, err := genesis(ctx, tx, did, "big.test", key)
		return err
	}))
	for i := range 12 {
		rec, err := atdata.MarshalCBOR(map[string]any{"$type": "app.bsky.feed.post", "text": fmt.Sprint(i), "createdAt": "2026-01-01T00:00:00Z"})
		require.NoError(t, err)
		_, err = w.commit(ctx, did, commitRequest{Writes: []repo.Write{{Action: repo.ActionCreate, Collection: "app.bsky.feed.post", RKey: syntax.RecordKey(fmt.Sprintf("3k%011d", i)), Record: rec}}})
		require.NoError(t, err)
		w.mu.Lock()
		el, ok := w.states[did.String()]
		require.True(t, ok, "write %d: the state was evicted", i)
		require.NotNil(t, el.Value.(*repoState).tree, "write %d: the tree was dropped", i)
		w.mu.Unlock()
	}
}

package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/repo"
	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"
)

func openTest(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	require.NoError(t, err)
	return s
}

func record(t *testing.T, text string) []byte {
	b, err := atdata.MarshalCBOR(map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-01-01T00:00:00Z"})
	require.NoError(t, err)
	return b
}

// commitWrites applies writes through repo.Apply and stores the commit like the PDS
// writer does (record blocks in records, the rest in blocks).
func commitWrites(t *testing.T, s *Store, did string, key atcrypto.PrivateKey, head repo.Head, tree *mst.Tree, writes []repo.Write) (repo.Head, *mst.Tree) {
	t.Helper()
	ctx := context.Background()
	res, err := repo.Apply(ctx, repo.Input{DID: syntax.DID(did), Head: head, Tree: tree, Writes: writes, Key: key})
	require.NoError(t, err)
	c := &Commit{DID: did, Prev: head, Head: repo.Head{Commit: res.CommitCID, Rev: res.Rev, Data: res.Data},
		Genesis: !head.Commit.Defined(), CommitData: res.Blocks[len(res.Blocks)-1].Data}
	for _, w := range writes {
		rw := RecordWrite{Collection: w.Collection.String(), RKey: w.RKey.String()}
		if w.Action != repo.ActionDelete {
			rw.CID, rw.Value = res.RecordCIDs[w.Path()], w.Record
		}
		c.Records = append(c.Records, rw)
	}
	require.NoError(t, s.Write(ctx, func(tx *Tx) error {
		if c.Genesis {
			if err := tx.CreateAccount(&Account{DID: did, Handle: did[8:] + ".test", PasswordHash: "x", SigningKey: []byte("k")}); err != nil {
				return err
			}
		}
		return tx.PutCommit(c)
	}))
	return c.Head, res.Tree
}

// TestTreeRebuiltFromRecords checks the storage model: only records and the head commit
// are stored, and the MST rebuilt from the records after a reopen has exactly the
// signed root, through creates, deletes and a create-then-delete that returns the tree
// to an earlier shape.
func TestTreeRebuiltFromRecords(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "pds.sqlite")
	s := openTest(t, path)
	key, err := atcrypto.GeneratePrivateKeyK256()
	require.NoError(t, err)
	did := "did:plc:gcgcgcgcgcgcgcgcgcgcgcgc"
	head, tree := commitWrites(t, s, did, key, repo.Head{}, nil, nil)
	coll := syntax.NSID("app.bsky.feed.post")
	rk := func(i int) syntax.RecordKey { return syntax.RecordKey(fmt.Sprintf("3k%011d", i)) }
	for i := 0; i < 200; i++ {
		head, tree = commitWrites(t, s, did, key, head, tree, []repo.Write{{Action: repo.ActionCreate, Collection: coll, RKey: rk(i), Record: record(t, fmt.Sprint(i))}})
	}
	for i := 0; i < 20; i++ {
		head, tree = commitWrites(t, s, did, key, head, tree, []repo.Write{{Action: repo.ActionCreate, Collection: coll, RKey: rk(1000 + i), Record: record(t, "tmp")}})
		head, tree = commitWrites(t, s, did, key, head, tree, []repo.Write{{Action: repo.ActionDelete, Collection: coll, RKey: rk(1000 + i)}})
	}
	for i := 0; i < 200; i += 3 {
		head, tree = commitWrites(t, s, did, key, head, tree, []repo.Write{{Action: repo.ActionDelete, Collection: coll, RKey: rk(i)}})
	}
	require.NoError(t, s.Close())

	s = openTest(t, path)
	defer s.Close()
	sn, err := s.Snapshot(ctx, did)
	require.NoError(t, err)
	defer sn.Close()
	require.Equal(t, head, sn.Head)
	c, err := repo.RecordCID(sn.CommitData)
	require.NoError(t, err)
	require.Equal(t, head.Commit, c, "the stored commit block hashes to the head")
	recs, err := sn.RecordCIDs()
	require.NoError(t, err)
	loaded, err := repo.TreeFromRecords(recs, sn.Head)
	require.NoError(t, err)
	want, got := map[string]cid.Cid{}, map[string]cid.Cid{}
	require.NoError(t, tree.WriteToMap(want))
	require.NoError(t, loaded.WriteToMap(got))
	require.Equal(t, want, got)
	require.Len(t, got, 200-67)
}

// TestGroupCommitIsolation runs concurrent jobs where some fail: the failures roll back
// alone and every other job commits.
func TestGroupCommitIsolation(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "pds.sqlite"))
	defer s.Close()
	var wg sync.WaitGroup
	errs := make([]error, 200)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Write(ctx, func(tx *Tx) error {
				if _, err := tx.AppendEvent("did:plc:x", "#info", func(seq int64) ([]byte, error) { return []byte{byte(seq)}, nil }); err != nil {
					return err
				}
				if i%7 == 0 {
					return fmt.Errorf("job %d fails", i)
				}
				return tx.PutInviteCode(InviteCode{Code: fmt.Sprint("code-", i), ForAccount: "admin", CreatedBy: "admin", Available: 1, CreatedAt: "now"})
			})
		}()
	}
	wg.Wait()
	failed := 0
	for i, err := range errs {
		if i%7 == 0 {
			require.Error(t, err)
			failed++
		} else {
			require.NoError(t, err)
		}
	}
	var codes, events int
	require.NoError(t, s.db.Read.QueryRow(`SELECT count(*) FROM invite_codes`).Scan(&codes))
	require.NoError(t, s.db.Read.QueryRow(`SELECT count(*) FROM events`).Scan(&events))
	require.Equal(t, 200-failed, codes)
	require.Equal(t, 200-failed, events)
	// seqs are contiguous: failed jobs did not burn numbers that a later job skipped.
	last, err := s.LastSeq(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(200-failed), last)
}

// TestPruneEvents: retention deletes old events in order, keeps newer ones, and never
// lets a seq be reused afterwards.
func TestPruneEvents(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "pds.sqlite"))
	defer s.Close()
	appendN := func(n int) {
		for i := 0; i < n; i++ {
			require.NoError(t, s.Write(ctx, func(tx *Tx) error {
				_, err := tx.AppendEvent("did:plc:x", "#info", func(seq int64) ([]byte, error) { return []byte{1}, nil })
				return err
			}))
		}
	}
	appendN(30)
	cut := time.Now().Add(5 * time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	appendN(5)
	n, err := s.PruneEvents(ctx, cut)
	require.NoError(t, err)
	require.Equal(t, int64(30), n)
	oldest, _, err := s.OldestEvent(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(31), oldest)
	// Everything pruned: seq still continues above the old maximum.
	n, err = s.PruneEvents(ctx, time.Now().Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, int64(5), n)
	_, _, err = s.OldestEvent(ctx)
	require.ErrorIs(t, err, ErrNotFound)
	appendN(1)
	last, err := s.LastSeq(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(36), last)
	evs, err := s.EventsAfter(ctx, 0, 10)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Equal(t, int64(36), evs[0].Seq)
}

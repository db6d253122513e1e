package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/repo"
)

// BenchmarkCommitPipeline measures the store side of createRecord: 32 accounts writing
// concurrently through repo.Apply and group-committed PutCommit + event append. It
// reports commits/s and WAL bytes per commit (checkpoints run in the background).
func BenchmarkCommitPipeline(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	s, err := Open(ctx, filepath.Join(dir, "pds.sqlite"), slog.New(slog.NewTextHandler(io.Discard, nil)), Options{Synchronous: os.Getenv("HEARTH_BENCH_SYNC")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const accounts = 32
	type acct struct {
		did  string
		key  atcrypto.PrivateKey
		head repo.Head
		tree *mst.Tree
	}
	accts := make([]*acct, accounts)
	for i := range accts {
		key, _ := atcrypto.GeneratePrivateKeyK256()
		a := &acct{did: fmt.Sprintf("did:plc:bench%019d", i), key: key}
		res, err := repo.Apply(ctx, repo.Input{DID: syntax.DID(a.did), Key: key})
		if err != nil {
			b.Fatal(err)
		}
		c := &Commit{DID: a.did, Head: repo.Head{Commit: res.CommitCID, Rev: res.Rev, Data: res.Data}, Genesis: true, CommitData: res.Blocks[len(res.Blocks)-1].Data}
		if err := s.Write(ctx, func(tx *Tx) error {
			if err := tx.CreateAccount(&Account{DID: a.did, Handle: fmt.Sprintf("b%d.test", i), PasswordHash: "x", SigningKey: []byte("k")}); err != nil {
				return err
			}
			return tx.PutCommit(c)
		}); err != nil {
			b.Fatal(err)
		}
		a.head, a.tree = c.Head, res.Tree
		accts[i] = a
	}
	var n sync.WaitGroup
	per := b.N/accounts + 1
	b.ResetTimer()
	start := time.Now()
	for _, a := range accts {
		n.Add(1)
		go func() {
			defer n.Done()
			for i := 0; i < per; i++ {
				rk := syntax.NewTIDNow(0)
				w := repo.Write{Action: repo.ActionCreate, Collection: "app.bsky.feed.post", RKey: syntax.RecordKey(rk.String()), Record: append([]byte{0xa1, 0x61, 'k', 0x6d}, []byte(rk.String())...)}
				res, err := repo.Apply(ctx, repo.Input{DID: syntax.DID(a.did), Head: a.head, Tree: a.tree, Writes: []repo.Write{w}, Key: a.key})
				if err != nil {
					b.Error(err)
					return
				}
				c := &Commit{DID: a.did, Prev: a.head, Head: repo.Head{Commit: res.CommitCID, Rev: res.Rev, Data: res.Data}, CommitData: res.Blocks[len(res.Blocks)-1].Data,
					Records: []RecordWrite{{Collection: "app.bsky.feed.post", RKey: rk.String(), CID: res.RecordCIDs[w.Path()], Value: w.Record}}}
				frame := make([]byte, 1200)
				if err := s.Write(ctx, func(tx *Tx) error {
					if err := tx.PutCommit(c); err != nil {
						return err
					}
					_, err := tx.AppendEvent(a.did, "#commit", func(int64) ([]byte, error) { return frame, nil })
					return err
				}); err != nil {
					b.Error(err)
					return
				}
				a.head, a.tree = c.Head, res.Tree
			}
		}()
	}
	n.Wait()
	el := time.Since(start)
	total := per * accounts
	b.ReportMetric(float64(total)/el.Seconds(), "commits/s")
	b.ReportMetric(float64(s.db.WALSize())/float64(total), "walB/commit")
}

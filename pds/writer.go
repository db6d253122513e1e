package pds

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/pds/sequencer"
	"github.com/hearth-social/hearth/pds/store"
	"github.com/hearth-social/hearth/repo"
	"github.com/ipfs/go-cid"
)

// writer is the commit pipeline: per-account lock -> repo.Apply -> one group-committed
// store transaction (blocks, records, head, #commit event). It caches each account's
// MST and signing key so a write does not reload the tree; a cached tree is dropped on
// any error, since a failed Apply or store write may leave it half-mutated.
type writer struct {
	store *store.Store
	log   *slog.Logger

	mu     sync.Mutex
	states map[string]*list.Element // did -> element holding *repoState
	lru    *list.List
	max    int
}

type repoState struct {
	did  string
	mu   sync.Mutex
	head repo.Head
	tree *mst.Tree
	key  atcrypto.PrivateKey
	busy int // holders + waiters; guarded by writer.mu
}

func newWriter(st *store.Store, log *slog.Logger, maxCached int) *writer {
	return &writer{store: st, log: log, states: map[string]*list.Element{}, lru: list.New(), max: maxCached}
}

// acquire returns the locked state for did.
func (w *writer) acquire(did string) *repoState {
	w.mu.Lock()
	el, ok := w.states[did]
	if !ok {
		el = w.lru.PushFront(&repoState{did: did})
		w.states[did] = el
	} else {
		w.lru.MoveToFront(el)
	}
	st := el.Value.(*repoState)
	st.busy++
	// Evict idle states past the cap (oldest first); busy ones stay.
	for e := w.lru.Back(); e != nil && w.lru.Len() > w.max; {
		prev := e.Prev()
		if s := e.Value.(*repoState); s.busy == 0 {
			w.lru.Remove(e)
			delete(w.states, s.did)
		}
		e = prev
	}
	w.mu.Unlock()
	st.mu.Lock()
	return st
}

func (w *writer) release(st *repoState) {
	st.mu.Unlock()
	w.mu.Lock()
	st.busy--
	w.mu.Unlock()
}

// forget drops cached state for did (after takedown, deletion or import).
func (w *writer) forget(did string) {
	st := w.acquire(did)
	st.tree, st.key, st.head = nil, nil, repo.Head{}
	w.release(st)
}

// load fills the state's head, key and tree from the store if they are not cached.
func (w *writer) load(ctx context.Context, st *repoState) error {
	if st.key == nil {
		acct, err := w.store.AccountByDID(ctx, st.did)
		if err != nil {
			return err
		}
		k, err := atcrypto.ParsePrivateBytesK256(acct.SigningKey)
		if err != nil {
			return fmt.Errorf("parsing signing key of %s: %w", st.did, err)
		}
		st.key = k
	}
	if st.tree == nil {
		head, err := w.store.Head(ctx, st.did)
		if err != nil {
			return err
		}
		tree, err := repo.LoadTree(ctx, w.store.BlockSource(st.did), head)
		if err != nil {
			return err
		}
		st.head, st.tree = head, tree
	}
	return nil
}

// commitRequest is a batch of writes to one repository.
type commitRequest struct {
	Writes     []repo.Write
	SwapCommit *cid.Cid
	// Blobs maps a written path to the blob CIDs its new record references. They must
	// have been uploaded by the account; the references are stored with the commit.
	Blobs map[string][]cid.Cid
}

// errBlobNotUploaded: a record references a blob the account never uploaded.
var errBlobNotUploaded = errors.New("record references a blob that was not uploaded")

// putBlobRefs records which blobs each written record references, in the commit's
// transaction, refusing references to blobs that were never uploaded.
func putBlobRefs(tx *store.Tx, did, rev string, writes []repo.Write, refs map[string][]cid.Cid) error {
	for _, w := range writes {
		path := w.Path()
		cids := refs[path]
		if w.Action == repo.ActionCreate && len(cids) == 0 {
			continue // a fresh path has no old references to clear
		}
		for _, c := range cids {
			ok, err := tx.HasBlob(did, c)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%w: %s in %s", errBlobNotUploaded, c, path)
			}
		}
		if err := tx.SetRecordBlobs(did, path, rev, cids); err != nil {
			return err
		}
	}
	return nil
}

// commitResult is what a write handler reports back.
type commitResult struct {
	Commit cid.Cid
	Rev    string
	Ops    []repo.Op
	CIDs   map[string]cid.Cid
}

// commit applies writes to did's repository and returns once the commit is durable.
func (w *writer) commit(ctx context.Context, did syntax.DID, req commitRequest) (*commitResult, error) {
	st := w.acquire(did.String())
	defer w.release(st)
	if err := w.load(ctx, st); err != nil {
		return nil, err
	}
	prev := st.head
	res, err := repo.Apply(ctx, repo.Input{
		DID: did, Head: prev, Tree: st.tree, Source: w.store.BlockSource(did.String()),
		Writes: req.Writes, SwapCommit: req.SwapCommit, Key: st.key,
	})
	if err != nil {
		st.tree = nil
		return nil, err
	}
	now := time.Now()
	var blobList []cid.Cid
	for _, cids := range req.Blobs {
		blobList = append(blobList, cids...)
	}
	ev, err := res.CommitEvent(did, blobList, now)
	if err != nil {
		st.tree = nil
		return nil, err
	}
	sc := storeCommit(did.String(), prev, res, req.Writes)
	err = w.store.Write(ctx, func(tx *store.Tx) error {
		if err := tx.PutCommit(sc); err != nil {
			return err
		}
		if err := putBlobRefs(tx, did.String(), res.Rev, req.Writes, req.Blobs); err != nil {
			return err
		}
		_, err := tx.AppendEvent(did.String(), sequencer.TypeCommit, func(seq int64) ([]byte, error) {
			return sequencer.CommitFrame(ev, seq)
		})
		return err
	})
	if err != nil {
		st.tree = nil
		return nil, err
	}
	st.head, st.tree = sc.Head, res.Tree
	return &commitResult{Commit: res.CommitCID, Rev: res.Rev, Ops: res.Ops, CIDs: res.RecordCIDs}, nil
}

// storeCommit splits a repo.Result into the store's shape: record blocks go to the
// records table, the commit and MST nodes to blocks.
func storeCommit(did string, prev repo.Head, res *repo.Result, writes []repo.Write) *store.Commit {
	sc := &store.Commit{
		DID:      did,
		Prev:     prev,
		Head:     repo.Head{Commit: res.CommitCID, Rev: res.Rev, Data: res.Data},
		Genesis:  !prev.Commit.Defined(),
		Obsolete: res.Obsolete,
	}
	isRecord := make(map[cid.Cid]bool, len(writes))
	for _, wr := range writes {
		rw := store.RecordWrite{Collection: wr.Collection.String(), RKey: wr.RKey.String()}
		if wr.Action != repo.ActionDelete {
			c := res.RecordCIDs[wr.Path()]
			rw.CID, rw.Value = c, wr.Record
			isRecord[c] = true
		}
		sc.Records = append(sc.Records, rw)
	}
	for _, b := range res.Blocks {
		if !isRecord[b.CID] {
			sc.Blocks = append(sc.Blocks, b)
		}
	}
	return sc
}

// genesis builds the first (empty) commit of a new repository and the events a new
// account emits, in order: #identity, #account (active), #commit, #sync. It runs inside
// the caller's transaction (account creation).
func genesis(ctx context.Context, tx *store.Tx, did syntax.DID, handle string, key atcrypto.PrivateKey) (*repo.Result, error) {
	res, err := repo.Apply(ctx, repo.Input{DID: did, Key: key, Now: tx.Now()})
	if err != nil {
		return nil, err
	}
	if err := tx.PutCommit(storeCommit(did.String(), repo.Head{}, res, nil)); err != nil {
		return nil, err
	}
	at := tx.Now().UTC().Format(syntax.AtprotoDatetimeLayout)
	h := handle
	if _, err := tx.AppendEvent(did.String(), sequencer.TypeIdentity, func(seq int64) ([]byte, error) {
		return sequencer.IdentityFrame(&comatproto.SyncSubscribeRepos_Identity{Did: did.String(), Handle: &h, Time: at}, seq)
	}); err != nil {
		return nil, err
	}
	if _, err := tx.AppendEvent(did.String(), sequencer.TypeAccount, func(seq int64) ([]byte, error) {
		return sequencer.AccountFrame(&comatproto.SyncSubscribeRepos_Account{Did: did.String(), Active: true, Time: at}, seq)
	}); err != nil {
		return nil, err
	}
	ev, err := res.CommitEvent(did, nil, tx.Now())
	if err != nil {
		return nil, err
	}
	if _, err := tx.AppendEvent(did.String(), sequencer.TypeCommit, func(seq int64) ([]byte, error) {
		return sequencer.CommitFrame(ev, seq)
	}); err != nil {
		return nil, err
	}
	syncCAR, err := repo.CAR(res.CommitCID, res.Blocks[len(res.Blocks)-1:])
	if err != nil {
		return nil, err
	}
	if _, err := tx.AppendEvent(did.String(), sequencer.TypeSync, func(seq int64) ([]byte, error) {
		return sequencer.SyncFrame(&comatproto.SyncSubscribeRepos_Sync{Did: did.String(), Rev: res.Rev, Blocks: syncCAR, Time: at}, seq)
	}); err != nil {
		return nil, err
	}
	return res, nil
}

var errAccountInactive = errors.New("account is not active")

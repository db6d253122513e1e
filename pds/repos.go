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
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/lexicons"
	"github.com/hearth-social/hearth/pds/store"
	"github.com/hearth-social/hearth/repo"
	"github.com/ipfs/go-cid"
)

// repos holds each account's repository state and is the commit pipeline: per-account
// lock -> repo.Apply -> one group-committed store transaction (records, head and commit block, #commit event). The MST is not
// stored: it is rebuilt from the records on first use (its root checked against the
// signed head) and kept in an LRU cache bounded by accounts and by total records. A
// cached tree is dropped on any error, since a failed Apply or store write may leave it
// half-mutated.
type repos struct {
	store *store.Store
	log   *slog.Logger
	// lex gives the lexicon constraints of blob fields (see blobref.go).
	lex *lexicons.Catalog

	mu      sync.Mutex
	states  map[string]*list.Element // did -> element holding *repoState
	lru     *list.List
	max     int // cached accounts
	maxKeys int // cached records over all trees
	keys    int // records in cached trees (sum of repoState.counted)
}

type repoState struct {
	did  string
	mu   sync.Mutex
	head repo.Head
	tree *mst.Tree
	key  atcrypto.PrivateKey
	size int // records in tree; guarded by mu
	// guarded by repos.mu:
	busy    int // holders + waiters
	counted int // size as last added to repos.keys
}

// Bounds of the tree cache: a cached record costs about 250 bytes of MST nodes, so
// 100,000 records is about 25 MB. An evicted tree is rebuilt from its records on the
// account's next write (tens of milliseconds for 10,000 records), so the cap must hold
// the trees of the accounts writing at the same time: at 40,000, 32 accounts writing
// together (about 1,500 records each) were evicted and rebuilt in turn, half the CPU.
const (
	cachedRepos    = 512
	cachedRepoKeys = 100_000
)

func newRepos(st *store.Store, log *slog.Logger, lex *lexicons.Catalog, maxCached, maxKeys int) *repos {
	return &repos{store: st, log: log, lex: lex, states: map[string]*list.Element{}, lru: list.New(), max: maxCached, maxKeys: maxKeys}
}

// acquire returns the locked state for did.
func (w *repos) acquire(did string) *repoState {
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
	w.evictLocked()
	w.mu.Unlock()
	st.mu.Lock()
	return st
}

// evictLocked drops idle states, oldest first, while over either cap. The most
// recently used state is never dropped: a repository larger than the whole cap would
// otherwise be rebuilt from its records on every write.
func (w *repos) evictLocked() {
	front := w.lru.Front()
	for e := w.lru.Back(); e != nil && e != front && (w.lru.Len() > w.max || w.keys > w.maxKeys); {
		prev := e.Prev()
		if s := e.Value.(*repoState); s.busy == 0 {
			w.lru.Remove(e)
			delete(w.states, s.did)
			w.keys -= s.counted
		}
		e = prev
	}
}

func (w *repos) release(st *repoState) {
	size := st.size
	if st.tree == nil {
		size = 0
	}
	st.mu.Unlock()
	w.mu.Lock()
	st.busy--
	w.keys += size - st.counted
	st.counted = size
	if w.keys > w.maxKeys {
		w.evictLocked()
	}
	w.mu.Unlock()
}

// forget drops cached state for did (after takedown, deletion or import).
func (w *repos) forget(did string) {
	st := w.acquire(did)
	st.tree, st.key, st.head = nil, nil, repo.Head{}
	w.release(st)
}

// load fills the state's head, key and tree from the store if they are not cached.
func (w *repos) load(ctx context.Context, st *repoState) error {
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
		sn, err := w.store.Snapshot(ctx, st.did)
		if err != nil {
			return err
		}
		defer sn.Close()
		recs, err := sn.RecordCIDs()
		if err != nil {
			return err
		}
		tree, err := repo.TreeFromRecords(recs, sn.Head)
		if err != nil {
			return fmt.Errorf("repo %s: %w", st.did, err)
		}
		st.head, st.tree, st.size = sn.Head, tree, len(recs)
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
// transaction, refusing references to blobs that were never uploaded and refs (uses,
// from recordBlobUses) that differ from the stored blob or break their field's
// constraints. Checking here, in the transaction that adds the references, means no
// deletion of the blob can slip in between check and commit.
func putBlobRefs(tx *store.Tx, did, rev string, writes []repo.Write, refs map[string][]cid.Cid, uses map[string][]blobUse) error {
	for _, w := range writes {
		path := w.Path()
		cids := refs[path]
		if w.Action == repo.ActionCreate && len(cids) == 0 {
			continue // a fresh path has no old references to clear
		}
		if us, ok := uses[path]; ok {
			for _, u := range us {
				stored, err := tx.BlobMeta(did, cid.Cid(u.Blob.Ref))
				if errors.Is(err, store.ErrNotFound) {
					stored = nil
				} else if err != nil {
					return err
				}
				if err := checkBlobUse(path, u, stored); err != nil {
					return err
				}
			}
		} else {
			// No record to check refs against (a write by CID): existence only.
			for _, c := range cids {
				ok, err := tx.HasBlob(did, c)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("%w: %s in %s", errBlobNotUploaded, c, path)
				}
			}
		}
		if err := tx.SetRecordBlobs(did, path, rev, cids); err != nil {
			return err
		}
	}
	return nil
}

// blobUses finds the blobs of the request's records and their fields' constraints.
func (w *repos) blobUses(req commitRequest) (map[string][]blobUse, error) {
	if len(req.Blobs) == 0 {
		return nil, nil
	}
	cat, err := w.lex.Load()
	if err != nil {
		return nil, err
	}
	return recordBlobUses(cat, req.Writes, req.Blobs)
}

// commitResult is what a write handler reports back.
type commitResult struct {
	Commit cid.Cid
	Rev    string
	Ops    []repo.Op
	CIDs   map[string]cid.Cid
}

// commit applies writes to did's repository and returns once the commit is durable.
func (w *repos) commit(ctx context.Context, did syntax.DID, req commitRequest) (*commitResult, error) {
	// Decoding records and walking schemas needs no lock: done before taking the account's.
	uses, err := w.blobUses(req)
	if err != nil {
		return nil, err
	}
	st := w.acquire(did.String())
	defer w.release(st)
	if err := w.load(ctx, st); err != nil {
		return nil, err
	}
	prev := st.head
	res, err := repo.Apply(ctx, repo.Input{
		DID: did, Head: prev, Tree: st.tree, Writes: req.Writes, SwapCommit: req.SwapCommit, Key: st.key,
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
	if len(ev.Blocks) > repo.MaxEventBlocks {
		st.tree = nil
		return nil, fmt.Errorf("%w: its blocks are %d bytes, over the firehose's limit of %d bytes per commit; split the writes", repo.ErrCommitTooBig, len(ev.Blocks), repo.MaxEventBlocks)
	}
	sc := storeCommit(did.String(), prev, res, req.Writes)
	err = w.store.Write(ctx, func(tx *store.Tx) error {
		if err := tx.PutCommit(sc); err != nil {
			return err
		}
		if err := putBlobRefs(tx, did.String(), res.Rev, req.Writes, req.Blobs, uses); err != nil {
			return err
		}
		_, err := tx.AppendEvent(did.String(), firehose.TypeCommit, func(seq int64) ([]byte, error) {
			return firehose.CommitFrame(ev, seq)
		})
		return err
	})
	if err != nil {
		st.tree = nil
		return nil, err
	}
	st.head, st.tree = sc.Head, res.Tree
	for _, op := range res.Ops {
		switch op.Action {
		case repo.ActionCreate:
			st.size++
		case repo.ActionDelete:
			st.size--
		}
	}
	return &commitResult{Commit: res.CommitCID, Rev: res.Rev, Ops: res.Ops, CIDs: res.RecordCIDs}, nil
}

// storeCommit turns a repo.Result into the store's shape: the records index changes
// and the signed commit block (Apply adds it last). MST nodes are not stored.
func storeCommit(did string, prev repo.Head, res *repo.Result, writes []repo.Write) *store.Commit {
	sc := &store.Commit{
		DID:        did,
		Prev:       prev,
		Head:       repo.Head{Commit: res.CommitCID, Rev: res.Rev, Data: res.Data},
		CommitData: res.Blocks[len(res.Blocks)-1].Data,
		Genesis:    !prev.Commit.Defined(),
	}
	for _, wr := range writes {
		rw := store.RecordWrite{Collection: wr.Collection.String(), RKey: wr.RKey.String()}
		if wr.Action != repo.ActionDelete {
			rw.CID, rw.Value = res.RecordCIDs[wr.Path()], wr.Record
		}
		sc.Records = append(sc.Records, rw)
	}
	return sc
}

// repoView is a consistent export of a repository: the head, its commit block and MST
// nodes taken under the account's lock, and a store snapshot taken at the same head for
// the records. Close releases the snapshot.
type repoView struct {
	*store.Snapshot
	Nodes []repo.Block
}

// view takes a consistent view of did's repository; with proofKey set, only the nodes on
// that key's path (and found reports the key's presence), otherwise every node.
func (w *repos) view(ctx context.Context, did string, proofKey string) (v *repoView, found bool, err error) {
	st := w.acquire(did)
	defer w.release(st)
	if err := w.load(ctx, st); err != nil {
		return nil, false, err
	}
	sn, err := w.store.Snapshot(ctx, did)
	if err != nil {
		return nil, false, err
	}
	if sn.Head != st.head {
		// Cannot happen while we hold the account's lock, unless the store was changed
		// behind our back: drop the cache rather than serve a mismatch.
		sn.Close()
		st.tree = nil
		return nil, false, fmt.Errorf("repo %s: cached head %s differs from stored %s", did, st.head.Commit, sn.Head.Commit)
	}
	var nodes []repo.Block
	if proofKey != "" {
		nodes, found, err = repo.ProofBlocks(st.tree, proofKey)
	} else {
		nodes, err = repo.TreeBlocks(st.tree)
	}
	if err != nil {
		sn.Close()
		return nil, false, err
	}
	return &repoView{Snapshot: sn, Nodes: nodes}, found, nil
}

// node returns an MST node of did's current tree by CID.
func (w *repos) node(ctx context.Context, did string, c cid.Cid) ([]byte, bool, error) {
	st := w.acquire(did)
	defer w.release(st)
	if err := w.load(ctx, st); err != nil {
		return nil, false, err
	}
	return repo.FindNode(st.tree, c)
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
	if _, err := tx.AppendEvent(did.String(), firehose.TypeIdentity, func(seq int64) ([]byte, error) {
		return firehose.IdentityFrame(&comatproto.SyncSubscribeRepos_Identity{Did: did.String(), Handle: &h, Time: at}, seq)
	}); err != nil {
		return nil, err
	}
	if _, err := tx.AppendEvent(did.String(), firehose.TypeAccount, func(seq int64) ([]byte, error) {
		return firehose.AccountFrame(&comatproto.SyncSubscribeRepos_Account{Did: did.String(), Active: true, Time: at}, seq)
	}); err != nil {
		return nil, err
	}
	ev, err := res.CommitEvent(did, nil, tx.Now())
	if err != nil {
		return nil, err
	}
	if _, err := tx.AppendEvent(did.String(), firehose.TypeCommit, func(seq int64) ([]byte, error) {
		return firehose.CommitFrame(ev, seq)
	}); err != nil {
		return nil, err
	}
	syncCAR, err := repo.CAR(res.CommitCID, res.Blocks[len(res.Blocks)-1:])
	if err != nil {
		return nil, err
	}
	if _, err := tx.AppendEvent(did.String(), firehose.TypeSync, func(seq int64) ([]byte, error) {
		return firehose.SyncFrame(&comatproto.SyncSubscribeRepos_Sync{Did: did.String(), Rev: res.Rev, Blocks: syncCAR, Time: at}, seq)
	}); err != nil {
		return nil, err
	}
	return res, nil
}

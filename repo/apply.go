package repo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// MaxWrites is the largest batch one commit may hold (applyWrites limit).
const MaxWrites = 200

// MaxEventBlocks is the largest CAR slice one #commit event may carry: the firehose
// lexicon's maxLength for com.atproto.sync.subscribeRepos#commit blocks. A commit whose
// new blocks exceed it cannot be published, so it is refused.
const MaxEventBlocks = 2_000_000

// Errors returned by Apply. Callers map them to XRPC errors.
var (
	// ErrSwapCommit: the caller's swapCommit is not the current commit.
	ErrSwapCommit = errors.New("commit was not the expected head")
	// ErrSwapRecord: a write's swapRecord does not match the current record.
	ErrSwapRecord = errors.New("record was not the expected value")
	// ErrRecordExists: a create targets a path that already holds a record.
	ErrRecordExists = errors.New("record already exists")
	// ErrRecordNotFound: an update or delete targets a path with no record.
	ErrRecordNotFound = errors.New("record not found")
	// ErrDuplicatePath: the batch writes the same path twice.
	ErrDuplicatePath = errors.New("batch writes the same record twice")
	// ErrTooManyWrites: more than MaxWrites writes in one batch.
	ErrTooManyWrites = errors.New("too many writes in one commit")
	// ErrCommitTooBig: the commit's new blocks exceed MaxEventBlocks.
	ErrCommitTooBig = errors.New("commit too big")
)

// Action is what a write does.
type Action string

const (
	ActionCreate Action = "create"
	ActionUpdate Action = "update"
	ActionDelete Action = "delete"
	// ActionPut creates the record or updates it, whichever applies at commit time; the
	// resulting Op says which.
	ActionPut Action = "put"
)

// Write is one record change.
type Write struct {
	Action     Action
	Collection syntax.NSID
	RKey       syntax.RecordKey
	// Record is the DAG-CBOR encoding of the record (create and update).
	Record []byte
	// CID, when defined and Record is nil, names a record whose block is already stored
	// (re-commits, imports, interop fixtures): the MST points at it, no block is added.
	CID cid.Cid
	// SwapRecord, when set, is the CID the record must currently have.
	SwapRecord *cid.Cid
	// SwapMissing requires that no record exists at the path.
	SwapMissing bool
}

// Path is collection/rkey.
func (w Write) Path() string { return w.Collection.String() + "/" + w.RKey.String() }

// Head is the state of a repository before a commit. The zero Head is an empty repo
// that has never been committed.
type Head struct {
	Commit cid.Cid // undefined before the first commit
	Rev    string  // "" before the first commit
	Data   cid.Cid // MST root of the current commit; undefined before the first commit
}

// Op is one applied operation as the firehose reports it.
type Op struct {
	Action Action
	Path   string
	CID    *cid.Cid // new record CID; nil for delete
	Prev   *cid.Cid // previous record CID; nil for create
}

// Result is a signed commit and everything needed to store and announce it.
type Result struct {
	Commit    *indigorepo.Commit
	CommitCID cid.Cid
	Rev       string
	Since     string   // rev of the previous commit; "" for the first
	PrevData  *cid.Cid // MST root before this commit; nil for the first
	Data      cid.Cid  // MST root after this commit
	Ops       []Op
	// Blocks holds every new block: records, the MST nodes needed to invert the ops, and
	// the commit itself (last).
	Blocks []Block
	// RecordCIDs maps each created/updated path to its record CID.
	RecordCIDs map[string]cid.Cid
	// Tree is the MST after the commit (the tree passed in, mutated).
	Tree *mst.Tree
	// Obsolete lists MST node blocks of the previous tree that the new tree no longer
	// uses (the old versions of rewritten nodes). Nodes merged away entirely are not
	// tracked, so a store that deletes these still keeps a few unreachable blocks.
	Obsolete []cid.Cid
}

// Input groups what Apply needs.
type Input struct {
	DID  syntax.DID
	Head Head
	// Tree is the current MST; nil means load it from Source (or start empty when the
	// head has no commit). Apply mutates it.
	Tree   *mst.Tree
	Source BlockSource
	Writes []Write
	// SwapCommit, when set, must equal Head.Commit.
	SwapCommit *cid.Cid
	Key        atcrypto.PrivateKey
	// Now is the time used for the rev; zero means time.Now().
	Now time.Time
}

// RecordCID is the CID (v1, dag-cbor, sha-256) of a DAG-CBOR encoded record.
func RecordCID(b []byte) (cid.Cid, error) {
	return cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: multihash.SHA2_256, MhLength: -1}.Sum(b)
}

// LoadTree loads the MST of the current head, or returns an empty tree for a new repo.
func LoadTree(ctx context.Context, src BlockSource, head Head) (*mst.Tree, error) {
	if !head.Data.Defined() {
		t := mst.NewEmptyTree()
		return &t, nil
	}
	t, err := mst.LoadTreeFromStore(ctx, src, head.Data)
	if err != nil {
		return nil, fmt.Errorf("loading MST %s: %w", head.Data, err)
	}
	if t.IsPartial() {
		return nil, fmt.Errorf("loading MST %s: %w", head.Data, mst.ErrPartialTree)
	}
	return t, nil
}

// NextRev returns a TID rev for now that is strictly greater than prev.
func NextRev(prev string, now time.Time) string {
	rev := syntax.NewTIDFromTime(now, 0)
	if prev != "" {
		if p, err := syntax.ParseTID(prev); err == nil && rev.Integer() <= p.Integer() {
			rev = syntax.NewTIDFromInteger(p.Integer() + 1)
		}
	}
	return rev.String()
}

// Apply applies the writes to the repository and returns the new signed commit.
// An empty Writes list produces a commit with no ops (used for the genesis commit).
func Apply(ctx context.Context, in Input) (*Result, error) {
	if len(in.Writes) > MaxWrites {
		return nil, fmt.Errorf("%w: %d > %d", ErrTooManyWrites, len(in.Writes), MaxWrites)
	}
	if in.SwapCommit != nil && (!in.Head.Commit.Defined() || !in.SwapCommit.Equals(in.Head.Commit)) {
		return nil, fmt.Errorf("%w: head is %s", ErrSwapCommit, in.Head.Commit)
	}
	tree := in.Tree
	if tree == nil {
		var err error
		if tree, err = LoadTree(ctx, in.Source, in.Head); err != nil {
			return nil, err
		}
	}

	diff := NewDiffSet()
	res := &Result{Since: in.Head.Rev, RecordCIDs: make(map[string]cid.Cid, len(in.Writes)), Tree: tree}
	if in.Head.Data.Defined() {
		pd := in.Head.Data
		res.PrevData = &pd
	}
	seen := make(map[string]bool, len(in.Writes))
	for _, w := range in.Writes {
		path := w.Path()
		if seen[path] {
			return nil, fmt.Errorf("%w: %s", ErrDuplicatePath, path)
		}
		seen[path] = true
		cur, err := tree.Get([]byte(path))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		if w.SwapMissing && cur != nil {
			return nil, fmt.Errorf("%w: %s exists", ErrSwapRecord, path)
		}
		if w.SwapRecord != nil && (cur == nil || !cur.Equals(*w.SwapRecord)) {
			return nil, fmt.Errorf("%w: %s", ErrSwapRecord, path)
		}
		var val *cid.Cid
		switch w.Action {
		case ActionCreate, ActionUpdate, ActionPut:
			if w.Action == ActionCreate && cur != nil {
				return nil, fmt.Errorf("%w: %s", ErrRecordExists, path)
			}
			if w.Action == ActionUpdate && cur == nil {
				return nil, fmt.Errorf("%w: %s", ErrRecordNotFound, path)
			}
			c := w.CID
			if w.Record != nil || !c.Defined() {
				var err error
				if c, err = RecordCID(w.Record); err != nil {
					return nil, fmt.Errorf("hashing %s: %w", path, err)
				}
				diff.Add(c, w.Record)
			}
			res.RecordCIDs[path] = c
			val = &c
		case ActionDelete:
			if cur == nil {
				return nil, fmt.Errorf("%w: %s", ErrRecordNotFound, path)
			}
		default:
			return nil, fmt.Errorf("unknown write action %q", w.Action)
		}
		op, err := indigorepo.ApplyOp(tree, path, val)
		if err != nil {
			return nil, fmt.Errorf("applying %s %s: %w", w.Action, path, err)
		}
		if op.Prev != nil && op.Value != nil && op.Prev.Equals(*op.Value) {
			// Writing the record it already holds changes nothing: no op to announce (an
			// "update" from a CID to itself cannot be inverted by consumers).
			continue
		}
		act := w.Action
		if act == ActionPut {
			act = ActionCreate
			if op.Prev != nil {
				act = ActionUpdate
			}
		}
		res.Ops = append(res.Ops, Op{Action: act, Path: path, CID: op.Value, Prev: op.Prev})
	}

	var replaced []cid.Cid
	collectReplaced(tree.Root, &replaced)
	root, err := tree.WriteDiffBlocks(ctx, diff)
	if err != nil {
		return nil, fmt.Errorf("writing MST blocks: %w", err)
	}
	res.Data = *root
	if ok, _ := diff.Has(ctx, *root); !ok {
		// The root is always part of the slice, even when no node changed (an empty or
		// no-op commit): consumers load the tree from it.
		b, err := nodeBlock(tree.Root)
		if err != nil {
			return nil, err
		}
		diff.Add(b.CID, b.Data)
	}
	res.Rev = NextRev(in.Head.Rev, in.Now.UTC())
	if in.Now.IsZero() {
		res.Rev = NextRev(in.Head.Rev, time.Now())
	}
	commit, cc, block, err := SignCommit(in.DID.String(), *root, res.Rev, in.Key)
	if err != nil {
		return nil, err
	}
	diff.Add(cc, block)
	for _, c := range replaced {
		if ok, _ := diff.Has(ctx, c); !ok {
			res.Obsolete = append(res.Obsolete, c)
		}
	}
	res.Commit = commit
	res.CommitCID = cc
	res.Blocks = diff.Blocks()
	return res, nil
}

// collectReplaced gathers the last-written CIDs of dirty nodes: the block versions that
// WriteDiffBlocks is about to replace. Mutations mark every ancestor of a touched node
// dirty, so only dirty subtrees need a visit.
func collectReplaced(n *mst.Node, out *[]cid.Cid) {
	if n == nil || !n.Dirty {
		return
	}
	if n.CID != nil {
		*out = append(*out, *n.CID)
	}
	for _, e := range n.Entries {
		if e.Child != nil {
			collectReplaced(e.Child, out)
		}
	}
}

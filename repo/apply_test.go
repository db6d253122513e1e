package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/atdata"
	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"
)

// commitProofFixture mirrors indigo's atproto/repo/testdata/commit-proof-fixtures.json,
// copied into testdata/indigo by `go generate ./lexicons/`.
type commitProofFixture struct {
	Comment       string   `json:"comment"`
	LeafValue     string   `json:"leafValue"`
	Keys          []string `json:"keys"`
	Adds          []string `json:"adds"`
	Dels          []string `json:"dels"`
	RootBefore    string   `json:"rootBeforeCommit"`
	RootAfter     string   `json:"rootAfterCommit"`
	BlocksInProof []string `json:"blocksInProof"`
}

// fixtureWrite builds a write from a fixture key ("A0/374913"); the keys are not real
// NSIDs, so the typed values are built by conversion rather than parsing.
func fixtureWrite(key string, act Action, leaf cid.Cid) Write {
	coll, rkey, _ := strings.Cut(key, "/")
	w := Write{Action: act, Collection: syntax.NSID(coll), RKey: syntax.RecordKey(rkey)}
	if act != ActionDelete {
		w.CID = leaf
	}
	return w
}

func TestApplyCommitProofFixtures(t *testing.T) {
	raw, err := os.ReadFile("../testdata/indigo/commit-proof-fixtures.json")
	require.NoError(t, err)
	var fixtures []commitProofFixture
	require.NoError(t, json.Unmarshal(raw, &fixtures))
	require.NotEmpty(t, fixtures)
	key, err := atcrypto.GeneratePrivateKeyK256()
	require.NoError(t, err)
	did := syntax.DID("did:plc:fixturefixturefixture")

	for _, f := range fixtures {
		t.Run(f.Comment, func(t *testing.T) {
			ctx := context.Background()
			leaf, err := cid.Decode(f.LeafValue)
			require.NoError(t, err)
			m := map[string]cid.Cid{}
			for _, k := range f.Keys {
				m[k] = leaf
			}
			tree, err := mst.LoadTreeFromMap(m)
			require.NoError(t, err)
			all := NewDiffSet()
			before, err := tree.WriteDiffBlocks(ctx, all)
			require.NoError(t, err)
			require.Equal(t, f.RootBefore, before.String(), "root before")
			src := MapSource{}
			for _, b := range all.Blocks() {
				src[b.CID] = b.Data
			}

			var writes []Write
			for _, k := range f.Adds {
				writes = append(writes, fixtureWrite(k, ActionCreate, leaf))
			}
			for _, k := range f.Dels {
				writes = append(writes, fixtureWrite(k, ActionDelete, leaf))
			}
			head := Head{Data: *before, Rev: "3l3qo2vutsw2b"}
			res, err := Apply(ctx, Input{DID: did, Head: head, Source: src, Writes: writes, Key: key})
			require.NoError(t, err)
			require.Equal(t, f.RootAfter, res.Data.String(), "root after")
			have := map[string]bool{}
			for _, b := range res.Blocks {
				have[b.CID.String()] = true
			}
			for _, c := range f.BlocksInProof {
				require.True(t, have[c], "block %s missing from the diff", c)
			}

			// Inverting the ops against a tree loaded from the diff blocks alone reproduces
			// the root before the commit: the diff is a sync 1.1 proof.
			diffSrc := MapSource{}
			for _, b := range res.Blocks {
				diffSrc[b.CID] = b.Data
			}
			inv, err := mst.LoadTreeFromStore(ctx, diffSrc, res.Data)
			require.NoError(t, err)
			var ops []indigorepo.Operation
			for _, op := range res.Ops {
				ops = append(ops, indigorepo.Operation{Path: op.Path, Value: op.CID, Prev: op.Prev})
			}
			ops, err = indigorepo.NormalizeOps(ops)
			require.NoError(t, err)
			for _, op := range ops {
				require.NoError(t, indigorepo.InvertOp(inv, &op))
			}
			back, err := inv.RootCID()
			require.NoError(t, err)
			require.Equal(t, f.RootBefore, back.String(), "inverted root")
			require.NoError(t, res.Commit.VerifySignature(mustPub(t, key)))
		})
	}
}

func post(t *testing.T, text string) []byte {
	t.Helper()
	b, err := atdata.MarshalCBOR(map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-01-01T00:00:00Z"})
	require.NoError(t, err)
	return b
}

// TestApplySequence drives a repository through creates, updates, deletes and batches,
// verifying every commit as a consumer would and the final state through a CAR export.
func TestApplySequence(t *testing.T) {
	ctx := context.Background()
	key, err := atcrypto.GeneratePrivateKeyK256()
	require.NoError(t, err)
	did := syntax.DID("did:plc:abcdefghijklmnopqrstuvwx")
	store := MapSource{}
	var head Head
	var tree *mst.Tree
	model := map[string]cid.Cid{}

	commit := func(writes []Write, swap *cid.Cid) (*Result, error) {
		res, err := Apply(ctx, Input{DID: did, Head: head, Tree: tree, Source: store, Writes: writes, SwapCommit: swap, Key: key})
		if err != nil {
			tree = nil // discard a possibly half-mutated tree
			return nil, err
		}
		for _, b := range res.Blocks {
			store[b.CID] = b.Data
		}
		// Obsolete blocks must really be unreachable: dropping them keeps the repo whole
		// (checked by the CAR export at the end).
		for _, c := range res.Obsolete {
			delete(store, c)
		}
		ev, err := res.CommitEvent(did, nil, time.Now())
		require.NoError(t, err)
		_, err = indigorepo.VerifyCommitMessage(ctx, ev)
		require.NoError(t, err, "commit %s", res.Rev)
		if head.Rev != "" {
			require.Greater(t, res.Rev, head.Rev)
			require.Equal(t, head.Data, *res.PrevData)
		}
		head = Head{Commit: res.CommitCID, Rev: res.Rev, Data: res.Data}
		tree = res.Tree
		for _, op := range res.Ops {
			if op.CID == nil {
				delete(model, op.Path)
			} else {
				model[op.Path] = *op.CID
			}
		}
		return res, nil
	}

	genesis, err := commit(nil, nil)
	require.NoError(t, err)
	require.Nil(t, genesis.PrevData)
	require.Empty(t, genesis.Ops)

	rk := func(i int) syntax.RecordKey { return syntax.RecordKey(fmt.Sprintf("3k%011d", i)) }
	coll := syntax.NSID("app.bsky.feed.post")
	for i := 0; i < 300; i++ {
		_, err := commit([]Write{{Action: ActionCreate, Collection: coll, RKey: rk(i), Record: post(t, fmt.Sprint("p", i))}}, nil)
		require.NoError(t, err)
	}
	// update with the right swapRecord, delete, batch
	old := model["app.bsky.feed.post/"+rk(5).String()]
	res, err := commit([]Write{{Action: ActionUpdate, Collection: coll, RKey: rk(5), Record: post(t, "edited"), SwapRecord: &old}}, nil)
	require.NoError(t, err)
	require.Equal(t, old, *res.Ops[0].Prev)
	res, err = commit([]Write{{Action: ActionPut, Collection: coll, RKey: rk(6), Record: post(t, "put over")}}, nil)
	require.NoError(t, err)
	require.Equal(t, ActionUpdate, res.Ops[0].Action)
	res, err = commit([]Write{{Action: ActionPut, Collection: syntax.NSID("app.bsky.actor.profile"), RKey: "self", Record: post(t, "new")}}, nil)
	require.NoError(t, err)
	require.Equal(t, ActionCreate, res.Ops[0].Action)
	// Putting the record a path already holds commits with no op, and still verifies.
	same := post(t, "put over")
	res, err = commit([]Write{{Action: ActionPut, Collection: coll, RKey: rk(6), Record: same}}, nil)
	require.NoError(t, err)
	require.Empty(t, res.Ops)
	_, err = commit([]Write{{Action: ActionDelete, Collection: coll, RKey: rk(7)}}, nil)
	require.NoError(t, err)
	var batch []Write
	for i := 300; i < 400; i++ {
		batch = append(batch, Write{Action: ActionCreate, Collection: coll, RKey: rk(i), Record: post(t, fmt.Sprint("b", i))})
	}
	for i := 10; i < 60; i++ {
		batch = append(batch, Write{Action: ActionDelete, Collection: coll, RKey: rk(i)})
	}
	batch = append(batch, Write{Action: ActionUpdate, Collection: coll, RKey: rk(100), Record: post(t, "batch edit")})
	_, err = commit(batch, &head.Commit)
	require.NoError(t, err)

	// rejected writes leave the head alone
	headBefore := head
	stale := genesis.CommitCID
	cases := []struct {
		name   string
		writes []Write
		swap   *cid.Cid
		want   error
	}{
		{"stale swapCommit", []Write{{Action: ActionCreate, Collection: coll, RKey: rk(999), Record: post(t, "x")}}, &stale, ErrSwapCommit},
		{"create existing", []Write{{Action: ActionCreate, Collection: coll, RKey: rk(1), Record: post(t, "x")}}, nil, ErrRecordExists},
		{"update missing", []Write{{Action: ActionUpdate, Collection: coll, RKey: rk(7), Record: post(t, "x")}}, nil, ErrRecordNotFound},
		{"delete missing", []Write{{Action: ActionDelete, Collection: coll, RKey: rk(7)}}, nil, ErrRecordNotFound},
		{"swapRecord mismatch", []Write{{Action: ActionUpdate, Collection: coll, RKey: rk(1), Record: post(t, "x"), SwapRecord: &stale}}, nil, ErrSwapRecord},
		{"swapMissing on existing", []Write{{Action: ActionUpdate, Collection: coll, RKey: rk(1), Record: post(t, "x"), SwapMissing: true}}, nil, ErrSwapRecord},
		{"duplicate path", []Write{{Action: ActionCreate, Collection: coll, RKey: rk(998), Record: post(t, "x")}, {Action: ActionDelete, Collection: coll, RKey: rk(998)}}, nil, ErrDuplicatePath},
		{"too many", make([]Write, MaxWrites+1), nil, ErrTooManyWrites},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := commit(tc.writes, tc.swap)
			require.ErrorIs(t, err, tc.want)
			require.Equal(t, headBefore, head)
		})
	}

	// Reloading the tree from the pruned store works: no live node was dropped.
	_, err = LoadTree(ctx, store, head)
	require.NoError(t, err)

	// Export the whole repo as a CAR and load it with indigo.
	var blocks []Block
	for c, b := range store {
		blocks = append(blocks, Block{CID: c, Data: b})
	}
	car, err := CAR(head.Commit, blocks)
	require.NoError(t, err)
	c, r, err := indigorepo.LoadRepoFromCAR(ctx, bytes.NewReader(car))
	require.NoError(t, err)
	require.NoError(t, c.VerifySignature(mustPub(t, key)))
	got := map[string]cid.Cid{}
	require.NoError(t, r.MST.Walk(func(k []byte, v cid.Cid) error { got[string(k)] = v; return nil }))
	require.Equal(t, model, got)
	require.Len(t, got, 300-1-50+100+1)
}

func TestNextRev(t *testing.T) {
	now := time.Now()
	a := NextRev("", now)
	require.Greater(t, NextRev(a, now), a)
	future := syntax.NewTIDFromTime(now.Add(time.Hour), 0).String()
	require.Greater(t, NextRev(future, now), future)
}

func mustPub(t *testing.T, k atcrypto.PrivateKey) atcrypto.PublicKey {
	t.Helper()
	p, err := k.PublicKey()
	require.NoError(t, err)
	return p
}

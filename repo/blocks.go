package repo

import (
	"context"
	"errors"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	blockstore "github.com/ipfs/go-ipfs-blockstore"
	ipld "github.com/ipfs/go-ipld-format"
)

// Block is one content-addressed block.
type Block struct {
	CID  cid.Cid
	Data []byte
}

// BlockSource is the read side a repository needs: a block by CID. A missing block must
// be reported with an error that ipld.IsNotFound recognises.
type BlockSource interface {
	Get(ctx context.Context, c cid.Cid) (blocks.Block, error)
}

// DiffSet collects the blocks a commit writes, in insertion order, without duplicates.
// It satisfies blockstore.Blockstore because indigo's mst.Tree.WriteDiffBlocks asks for
// that interface; only Put, PutMany, Get and Has do anything.
type DiffSet struct {
	order []cid.Cid
	data  map[cid.Cid][]byte
}

//lint:ignore SA1019 indigo's mst.Tree.WriteDiffBlocks takes this (deprecated) interface
var _ blockstore.Blockstore = (*DiffSet)(nil)

// NewDiffSet returns an empty set.
func NewDiffSet() *DiffSet { return &DiffSet{data: make(map[cid.Cid][]byte)} }

// Add stores a block unless it is already there.
func (d *DiffSet) Add(c cid.Cid, b []byte) {
	if _, ok := d.data[c]; ok {
		return
	}
	d.order = append(d.order, c)
	d.data[c] = b
}

// Blocks returns the blocks in the order they were added.
func (d *DiffSet) Blocks() []Block {
	out := make([]Block, len(d.order))
	for i, c := range d.order {
		out[i] = Block{CID: c, Data: d.data[c]}
	}
	return out
}

// Len is the number of blocks.
func (d *DiffSet) Len() int { return len(d.order) }

func (d *DiffSet) Put(_ context.Context, b blocks.Block) error {
	d.Add(b.Cid(), b.RawData())
	return nil
}

func (d *DiffSet) PutMany(ctx context.Context, bs []blocks.Block) error {
	for _, b := range bs {
		d.Add(b.Cid(), b.RawData())
	}
	return nil
}

func (d *DiffSet) Get(_ context.Context, c cid.Cid) (blocks.Block, error) {
	b, ok := d.data[c]
	if !ok {
		return nil, ipld.ErrNotFound{Cid: c}
	}
	return blocks.NewBlockWithCid(b, c)
}

func (d *DiffSet) Has(_ context.Context, c cid.Cid) (bool, error) {
	_, ok := d.data[c]
	return ok, nil
}

func (d *DiffSet) GetSize(_ context.Context, c cid.Cid) (int, error) {
	b, ok := d.data[c]
	if !ok {
		return 0, ipld.ErrNotFound{Cid: c}
	}
	return len(b), nil
}

var errReadOnlyOp = errors.New("operation not supported by a diff set")

func (d *DiffSet) DeleteBlock(context.Context, cid.Cid) error { return errReadOnlyOp }

func (d *DiffSet) AllKeysChan(context.Context) (<-chan cid.Cid, error) {
	ch := make(chan cid.Cid, len(d.order))
	for _, c := range d.order {
		ch <- c
	}
	close(ch)
	return ch, nil
}

func (d *DiffSet) HashOnRead(bool) {}

// MapSource is an in-memory BlockSource, for tests and for CAR imports.
type MapSource map[cid.Cid][]byte

func (m MapSource) Get(_ context.Context, c cid.Cid) (blocks.Block, error) {
	b, ok := m[c]
	if !ok {
		return nil, ipld.ErrNotFound{Cid: c}
	}
	return blocks.NewBlockWithCid(b, c)
}

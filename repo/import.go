package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/ipfs/go-cid"
	"github.com/ipld/go-car"
)

// ErrBadImport: a CAR offered for import is not a complete, intact repository.
var ErrBadImport = errors.New("not a valid repository CAR")

// ImportedRecord is one record of a repository read from a CAR.
type ImportedRecord struct {
	Path string
	CID  cid.Cid
	Data []byte
}

// Import is a repository read from a CAR and checked for everything that needs no key:
// every block hashes to its CID, the root is a well-formed commit, the MST is complete
// and hashes to the commit's data CID, and every record it names is in the CAR. The
// caller checks the commit's DID and signature.
type Import struct {
	Commit    *indigorepo.Commit
	CommitCID cid.Cid
	Records   []ImportedRecord
}

// ReadImport reads and checks a repository CAR (see Import). The blocks are held in
// memory while it is checked: the caller caps r.
func ReadImport(ctx context.Context, r io.Reader) (*Import, error) {
	cr, err := car.NewCarReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadImport, err)
	}
	if cr.Header.Version != 1 || len(cr.Header.Roots) < 1 {
		return nil, fmt.Errorf("%w: want a CARv1 with a root", ErrBadImport)
	}
	root := cr.Header.Roots[0]
	bs := MapSource{}
	for {
		blk, err := cr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadImport, err)
		}
		// go-car does not check hashes; a tampered block must not get in.
		got, err := blk.Cid().Prefix().Sum(blk.RawData())
		if err != nil || !got.Equals(blk.Cid()) {
			return nil, fmt.Errorf("%w: block %s does not hash to its CID", ErrBadImport, blk.Cid())
		}
		bs[blk.Cid()] = blk.RawData()
	}
	cb, err := bs.Get(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("%w: the root commit block %s is missing", ErrBadImport, root)
	}
	var commit indigorepo.Commit
	if err := commit.UnmarshalCBOR(bytes.NewReader(cb.RawData())); err != nil {
		return nil, fmt.Errorf("%w: the root is not a commit: %w", ErrBadImport, err)
	}
	if err := commit.VerifyStructure(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadImport, err)
	}
	tree, err := mst.LoadTreeFromStore(ctx, bs, commit.Data)
	if err != nil {
		return nil, fmt.Errorf("%w: the MST does not load: %w", ErrBadImport, err)
	}
	if tree.IsPartial() {
		return nil, fmt.Errorf("%w: the MST is incomplete", ErrBadImport)
	}
	if err := tree.Verify(); err != nil {
		return nil, fmt.Errorf("%w: the MST is malformed: %w", ErrBadImport, err)
	}
	rc, err := tree.RootCID()
	if err != nil || !rc.Equals(commit.Data) {
		return nil, fmt.Errorf("%w: the MST does not hash to the commit's data CID", ErrBadImport)
	}
	imp := &Import{Commit: &commit, CommitCID: root}
	err = tree.Walk(func(key []byte, val cid.Cid) error {
		blk, err := bs.Get(ctx, val)
		if err != nil {
			return fmt.Errorf("%w: record %s (%s) is missing", ErrBadImport, key, val)
		}
		imp.Records = append(imp.Records, ImportedRecord{Path: string(key), CID: val, Data: blk.RawData()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return imp, nil
}

// SignCommit makes and signs the commit of a repository of did whose MST root is data,
// at rev, and returns it with its CID and encoded block.
func SignCommit(did string, data cid.Cid, rev string, key atcrypto.PrivateKey) (*indigorepo.Commit, cid.Cid, []byte, error) {
	commit := &indigorepo.Commit{DID: did, Version: indigorepo.ATPROTO_REPO_VERSION, Data: data, Rev: rev}
	if err := commit.Sign(key); err != nil {
		return nil, cid.Undef, nil, fmt.Errorf("signing commit: %w", err)
	}
	buf := new(bytes.Buffer)
	if err := commit.MarshalCBOR(buf); err != nil {
		return nil, cid.Undef, nil, fmt.Errorf("encoding commit: %w", err)
	}
	cc, err := RecordCID(buf.Bytes())
	if err != nil {
		return nil, cid.Undef, nil, err
	}
	return commit, cc, buf.Bytes(), nil
}

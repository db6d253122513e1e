package plc

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
)

// Helpers only the tests use.

// NewTombstone builds and signs a plc_tombstone after the op whose CID is prevCID.
// rotationPriv must be a rotation key of that op.
func NewTombstone(prevCID string, rotationPriv atcrypto.PrivateKey) (*Op, error) {
	if _, err := cid.Decode(prevCID); err != nil {
		return nil, fmt.Errorf("new tombstone: prev CID %q: %w", prevCID, err)
	}
	op := &Op{Type: OpTypeTombstone, Prev: &prevCID}
	if err := SignOp(op, rotationPriv); err != nil {
		return nil, fmt.Errorf("new tombstone: %w", err)
	}
	return op, nil
}

// Submit verifies op as the next operation of did and appends it. Rejections are
// *RejectedError.
func (d *Server) Submit(ctx context.Context, did syntax.DID, op *Op) error {
	body, err := json.Marshal(op)
	if err != nil {
		return fmt.Errorf("submit %s: %w", did, err)
	}
	_, err = d.SubmitJSON(ctx, did.String(), body)
	return err
}

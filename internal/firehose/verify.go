package firehose

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/identity"
	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/ipfs/go-cid"
)

// ErrInvalidEvent wraps every verification failure.
var ErrInvalidEvent = errors.New("invalid firehose event")

// Verify checks an event against its author's identity. A #commit must be signed by the
// account's current key (repo.VerifyCommitSignature), its CAR must be rooted at the
// announced commit, and its ops must invert against the included MST blocks
// (repo.VerifyCommitMessage, sync 1.1). A #sync must carry a commit signed by the
// account's key for the announced DID and rev. Other event types have nothing to verify.
func Verify(ctx context.Context, dir identity.Directory, ev *Event) error {
	switch {
	case ev.Commit != nil:
		c := ev.Commit
		if err := indigorepo.VerifyCommitSignature(ctx, dir, c); err != nil {
			return fmt.Errorf("%w: seq %d: commit signature: %w", ErrInvalidEvent, ev.Seq, err)
		}
		_, root, err := indigorepo.LoadCommitFromCAR(ctx, bytes.NewReader(c.Blocks))
		if err != nil {
			return fmt.Errorf("%w: seq %d: %w", ErrInvalidEvent, ev.Seq, err)
		}
		if !root.Equals(cid.Cid(c.Commit)) {
			return fmt.Errorf("%w: seq %d: CAR root %s is not the commit %s", ErrInvalidEvent, ev.Seq, root, cid.Cid(c.Commit))
		}
		if _, err := indigorepo.VerifyCommitMessage(ctx, c); err != nil {
			return fmt.Errorf("%w: seq %d: %w", ErrInvalidEvent, ev.Seq, err)
		}
	case ev.Sync != nil:
		commit, err := indigorepo.VerifySyncMessage(ctx, dir, ev.Sync)
		if err != nil {
			return fmt.Errorf("%w: seq %d: sync commit: %w", ErrInvalidEvent, ev.Seq, err)
		}
		if commit.DID != ev.Sync.Did || commit.Rev != ev.Sync.Rev {
			return fmt.Errorf("%w: seq %d: sync commit is %s@%s, event says %s@%s", ErrInvalidEvent, ev.Seq, commit.DID, commit.Rev, ev.Sync.Did, ev.Sync.Rev)
		}
	}
	return nil
}

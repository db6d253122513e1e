package firehose

import (
	comatproto "github.com/bluesky-social/indigo/api/atproto"
)

// The server side of subscribeRepos builds its frames here, next to the client that
// decodes them, so the PDS (which stores them) and the feed generator (which reads them)
// share one definition of each. The message type names are the Type constants in
// firehose.go; the error and info names below are shared by every event stream
// (subscribeRepos and subscribeLabels use the same ones).

// Error and info names sent on event streams (subscribeRepos and subscribeLabels
// lexicons).
const (
	ErrFutureCursor    = "FutureCursor"
	ErrConsumerTooSlow = "ConsumerTooSlow"
	InfoOutdatedCursor = "OutdatedCursor"
)

// CommitFrame encodes a #commit with the given seq (set on ev).
func CommitFrame(ev *comatproto.SyncSubscribeRepos_Commit, seq int64) ([]byte, error) {
	ev.Seq = seq
	// The blocks, and about 300 bytes of fields (DIDs, CIDs, rev, time) plus 150 per op.
	return encodeMessage(TypeCommit, ev, len(ev.Blocks)+320+160*len(ev.Ops))
}

// SyncFrame encodes a #sync with the given seq (set on ev).
func SyncFrame(ev *comatproto.SyncSubscribeRepos_Sync, seq int64) ([]byte, error) {
	ev.Seq = seq
	return EncodeMessage(TypeSync, ev)
}

// IdentityFrame encodes an #identity with the given seq (set on ev).
func IdentityFrame(ev *comatproto.SyncSubscribeRepos_Identity, seq int64) ([]byte, error) {
	ev.Seq = seq
	return EncodeMessage(TypeIdentity, ev)
}

// AccountFrame encodes an #account with the given seq (set on ev).
func AccountFrame(ev *comatproto.SyncSubscribeRepos_Account, seq int64) ([]byte, error) {
	ev.Seq = seq
	return EncodeMessage(TypeAccount, ev)
}

// InfoFrame encodes an #info message (it has no seq). subscribeLabels' #info has the
// same shape, so both streams use it.
func InfoFrame(name, message string) ([]byte, error) {
	ev := &comatproto.SyncSubscribeRepos_Info{Name: name}
	if message != "" {
		ev.Message = &message
	}
	return EncodeMessage(TypeInfo, ev)
}

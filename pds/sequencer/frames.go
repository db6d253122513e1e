package sequencer

import (
	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/hearth-social/hearth/internal/firehose"
	cbg "github.com/whyrusleeping/cbor-gen"
)

// Event type names, as they appear in frame headers.
const (
	TypeCommit   = "#commit"
	TypeSync     = "#sync"
	TypeIdentity = "#identity"
	TypeAccount  = "#account"
	TypeInfo     = "#info"
)

// Frame encodes a message frame: the DAG-CBOR header {op: 1, t} followed by the body.
func Frame(t string, body cbg.CBORMarshaler) ([]byte, error) { return firehose.EncodeMessage(t, body) }

// ErrorFrame encodes an error frame: {op: -1} followed by {error, message}.
func ErrorFrame(name, message string) ([]byte, error) { return firehose.EncodeError(name, message) }

// CommitFrame encodes a #commit with the given seq.
func CommitFrame(ev *comatproto.SyncSubscribeRepos_Commit, seq int64) ([]byte, error) {
	ev.Seq = seq
	return Frame(TypeCommit, ev)
}

// SyncFrame encodes a #sync with the given seq.
func SyncFrame(ev *comatproto.SyncSubscribeRepos_Sync, seq int64) ([]byte, error) {
	ev.Seq = seq
	return Frame(TypeSync, ev)
}

// IdentityFrame encodes an #identity with the given seq.
func IdentityFrame(ev *comatproto.SyncSubscribeRepos_Identity, seq int64) ([]byte, error) {
	ev.Seq = seq
	return Frame(TypeIdentity, ev)
}

// AccountFrame encodes an #account with the given seq.
func AccountFrame(ev *comatproto.SyncSubscribeRepos_Account, seq int64) ([]byte, error) {
	ev.Seq = seq
	return Frame(TypeAccount, ev)
}

// InfoFrame encodes an #info message (it has no seq).
func InfoFrame(name, message string) ([]byte, error) {
	ev := &comatproto.SyncSubscribeRepos_Info{Name: name}
	if message != "" {
		ev.Message = &message
	}
	return Frame(TypeInfo, ev)
}

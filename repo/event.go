package repo

import (
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/ipfs/go-cid"
)

// CommitEvent builds the sync 1.1 #commit body for this result: the CAR slice of every
// new block rooted at the commit, ops with prev, prevData and since. Seq is left zero;
// the sequencer assigns it when the event is stored.
func (r *Result) CommitEvent(did syntax.DID, blobs []cid.Cid, at time.Time) (*comatproto.SyncSubscribeRepos_Commit, error) {
	car, err := CAR(r.CommitCID, r.Blocks)
	if err != nil {
		return nil, err
	}
	ev := &comatproto.SyncSubscribeRepos_Commit{
		Repo:   did.String(),
		Commit: lexutil.LexLink(r.CommitCID),
		Rev:    r.Rev,
		Blocks: car,
		Ops:    make([]*comatproto.SyncSubscribeRepos_RepoOp, 0, len(r.Ops)),
		Blobs:  make([]lexutil.LexLink, 0, len(blobs)),
		Time:   at.UTC().Format(syntax.AtprotoDatetimeLayout),
	}
	if r.Since != "" {
		s := r.Since
		ev.Since = &s
	}
	if r.PrevData != nil {
		pd := lexutil.LexLink(*r.PrevData)
		ev.PrevData = &pd
	}
	for _, op := range r.Ops {
		o := &comatproto.SyncSubscribeRepos_RepoOp{Action: string(op.Action), Path: op.Path}
		if op.CID != nil {
			c := lexutil.LexLink(*op.CID)
			o.Cid = &c
		}
		if op.Prev != nil {
			p := lexutil.LexLink(*op.Prev)
			o.Prev = &p
		}
		ev.Ops = append(ev.Ops, o)
	}
	for _, b := range blobs {
		ev.Blobs = append(ev.Blobs, lexutil.LexLink(b))
	}
	return ev, nil
}

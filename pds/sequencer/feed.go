package sequencer

import (
	"context"
	"errors"

	"github.com/hearth-social/hearth/internal/stream"
	"github.com/hearth-social/hearth/pds/store"
)

// feed is the sequencer as the stream server's Source: live subscribers read the ring,
// subscribers behind it page the store. It is a separate type so these methods are not
// part of the Sequencer's API.
type feed struct{ s *Sequencer }

// Prepare starts the tail with the first subscriber.
func (f feed) Prepare(ctx context.Context) error { return f.s.startTail(ctx) }

func (f feed) LastSeq(ctx context.Context) (int64, error) { return f.s.src.LastSeq(ctx) }

func (f feed) OldestSeq(ctx context.Context) (int64, bool, error) {
	oldest, _, err := f.s.src.OldestEvent(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return 0, false, nil
	}
	return oldest, err == nil, err
}

func (f feed) Read(ctx context.Context, after int64, dst []stream.Event, limit int) (stream.Page, error) {
	s := f.s
	ents, state, last, wake := s.ring.read(after, dst, limit)
	switch state {
	case ringEntries:
		return stream.Page{Events: ents, Pos: ents[len(ents)-1].Seq, Last: last}, nil
	case ringCaughtUp:
		return stream.Page{Pos: after, Last: last, Wake: wake}, nil
	}
	// Behind the ring: page from the store.
	evs, _, err := s.readPage(ctx, after)
	if err != nil {
		return stream.Page{}, err
	}
	if len(evs) == 0 {
		// Nothing after `after` although the ring starts later: the gap was pruned
		// meanwhile. Continue from the ring rather than spin.
		return stream.Page{Pos: max(after, s.ring.floorSeq()), Last: last}, nil
	}
	for _, ev := range evs {
		dst = append(dst, stream.Event{Seq: ev.Seq, Frame: ev.Frame})
	}
	return stream.Page{Events: dst, Pos: evs[len(evs)-1].Seq, Last: last}, nil
}

package store

import "sort"

// The newest durable events are also kept in memory, so the sequencer's tail (which
// reads every batch back to fan it out) and subscribers just behind the head are served
// without a query: under write load that read-back was a tenth of the process's CPU.
// The database stays the source of truth: an event enters the window only after its
// transaction is durable, a request the window cannot answer whole goes to the
// database, and an account deletion takes the account's events out of both.

const (
	// The sequencer's tail reads each batch back just after it is durable, so the
	// window only needs to span a few batches; older events are in the sequencer's ring.
	recentMaxEvents = 1024
	recentMaxBytes  = 4 << 20
)

type recentEvent struct {
	did string
	ev  Event
}

// recentWindow is the in-memory tail of the event log. Writer-goroutine state (pending,
// purged) is staged per transaction; the published part is guarded by Store.notifyMu.
type recentWindow struct {
	pending []recentEvent
	purged  []string
	pruned  int64         // events below this seq were deleted in this transaction
	events  []recentEvent // published, in seq order
	bytes   int64
	durable int64 // highest seq known durable
}

// stage records an event appended in the current transaction.
func (w *recentWindow) stage(did string, ev Event) {
	w.pending = append(w.pending, recentEvent{did: did, ev: ev})
}

// reset drops what the current transaction staged (it is starting, or rolled back).
func (w *recentWindow) reset() {
	clear(w.pending)
	w.pending = w.pending[:0]
	w.purged = w.purged[:0]
	w.pruned = 0
}

// publish adds the committed transaction's events; the caller holds notifyMu.
func (w *recentWindow) publish(durable int64) {
	if len(w.purged) > 0 || w.pruned > 0 {
		gone := map[string]bool{}
		for _, d := range w.purged {
			gone[d] = true
		}
		kept := w.events[:0]
		w.bytes = 0
		for _, e := range w.events {
			if !gone[e.did] && e.ev.Seq >= w.pruned {
				kept = append(kept, e)
				w.bytes += int64(len(e.ev.Frame))
			}
		}
		clear(w.events[len(kept):])
		w.events = kept
	}
	for _, e := range w.pending {
		w.events = append(w.events, e)
		w.bytes += int64(len(e.ev.Frame))
	}
	drop := 0
	for len(w.events)-drop > recentMaxEvents || (w.bytes > recentMaxBytes && len(w.events)-drop > 1) {
		w.bytes -= int64(len(w.events[drop].ev.Frame))
		drop++
	}
	if drop > 0 {
		// Copy down rather than reslice, so the array does not grow without bound.
		n := copy(w.events, w.events[drop:])
		clear(w.events[n:])
		w.events = w.events[:n]
	}
	w.durable = durable
	w.reset()
}

// page answers EventsPage from memory when it can: ok is false when events after
// `after` may exist that the window does not hold.
func (w *recentWindow) page(after int64, limit int, maxBytes int64) ([]Event, bool) {
	if after >= w.durable {
		return []Event{}, true
	}
	if len(w.events) == 0 || w.events[0].ev.Seq > after+1 {
		return nil, false
	}
	i := sort.Search(len(w.events), func(i int) bool { return w.events[i].ev.Seq > after })
	out := make([]Event, 0, min(limit, len(w.events)-i, 64))
	var total int64
	for ; i < len(w.events) && len(out) < limit; i++ {
		out = append(out, w.events[i].ev)
		total += int64(len(w.events[i].ev.Frame))
		if maxBytes > 0 && total >= maxBytes {
			break
		}
	}
	return out, true
}

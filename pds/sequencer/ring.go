package sequencer

import (
	"sort"
	"sync"

	"github.com/hearth-social/hearth/internal/stream"
)

// entry is one stored frame kept in memory for live subscribers, with its websocket
// header computed once for all of them.
type entry = stream.Event

// entrySize is what an entry pins in memory, as counted against the ring's byte budget.
func entrySize(e *entry) int64 { return int64(len(e.Header) + len(e.Frame)) }

// ringState says where a subscriber stands relative to the ring.
type ringState int

const (
	// ringEntries: entries after the subscriber's position were returned.
	ringEntries ringState = iota
	// ringCaughtUp: nothing newer yet; wait on the returned channel.
	ringCaughtUp
	// ringBehind: the position is older than the ring covers; page from the Source.
	ringBehind
)

// ring holds the most recent frames, in seq order, bounded both by entry count (len(buf))
// and by bytes (maxBytes), so a burst of large commits cannot pin unbounded memory. Its
// invariant: every event with floor < seq <= last is in buf, so a subscriber whose
// position is at least floor can be served from memory without a gap. Eviction, by
// either bound, only ever drops the oldest entry and raises floor to its seq; a
// subscriber left below floor pages from the Source instead.
//
// Only the tail goroutine appends; subscribers read under the read lock. Waiters are
// woken by closing wake, which is replaced on every append (so the tail never waits on
// anybody).
type ring struct {
	mu    sync.RWMutex
	buf   []entry
	start int // index in buf of the oldest entry
	n     int // entries held
	floor int64
	last  int64
	wake  chan struct{}
	// bytes is the sum of entrySize over the held entries; it never exceeds maxBytes.
	bytes    int64
	maxBytes int64
}

func newRing(size int, maxBytes int64) *ring {
	return &ring{buf: make([]entry, size), maxBytes: maxBytes, wake: make(chan struct{})}
}

// reset empties the ring at position seq (the last event that exists before it starts).
func (r *ring) reset(seq int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.buf)
	r.start, r.n, r.bytes = 0, 0, 0
	r.floor, r.last = seq, seq
}

// dropThrough evicts every entry with seq <= seq and moves floor (and last, if behind)
// up to seq, so readers of those seqs go to the Source, and the tail's later appends of
// older seqs are ignored.
func (r *ring) dropThrough(seq int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.n > 0 && r.buf[r.start].Seq <= seq {
		r.evictOldestLocked()
	}
	if r.floor < seq {
		r.floor = seq
	}
	if r.last < seq {
		r.last = seq
	}
}

// floorSeq is the seq after which the ring holds every event.
func (r *ring) floorSeq() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.floor
}

// append adds entries (in increasing seq order, newer than last), evicting the oldest
// while either bound would be exceeded, and wakes every waiter.
func (r *ring) append(es []entry) {
	if len(es) == 0 {
		return
	}
	r.mu.Lock()
	for _, e := range es {
		if e.Seq <= r.last {
			continue
		}
		size := entrySize(&e)
		for r.n > 0 && (r.n == len(r.buf) || r.bytes+size > r.maxBytes) {
			r.evictOldestLocked()
		}
		if size > r.maxBytes {
			// A frame larger than the whole budget is not kept: the ring is empty now, and
			// moving floor past it keeps the invariant, so subscribers read it from the
			// Source like any other evicted event.
			r.floor, r.last = e.Seq, e.Seq
			continue
		}
		r.buf[(r.start+r.n)%len(r.buf)] = e
		r.n++
		r.bytes += size
		r.last = e.Seq
	}
	close(r.wake)
	r.wake = make(chan struct{})
	r.mu.Unlock()
}

// evictOldestLocked drops the oldest entry; floor becomes its seq so the invariant holds.
func (r *ring) evictOldestLocked() {
	old := &r.buf[r.start]
	r.floor = old.Seq
	r.bytes -= entrySize(old)
	*old = entry{}
	r.start = (r.start + 1) % len(r.buf)
	r.n--
}

// read appends to dst up to max entries with seq > after. It also returns the newest
// seq in the ring (to measure lag) and, when caught up, the channel closed on the next
// append.
func (r *ring) read(after int64, dst []entry, max int) ([]entry, ringState, int64, <-chan struct{}) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if after >= r.last {
		return dst, ringCaughtUp, r.last, r.wake
	}
	if after < r.floor {
		return dst, ringBehind, r.last, nil
	}
	// First entry with seq > after.
	i := sort.Search(r.n, func(i int) bool { return r.buf[(r.start+i)%len(r.buf)].Seq > after })
	for ; i < r.n && max > 0; i, max = i+1, max-1 {
		dst = append(dst, r.buf[(r.start+i)%len(r.buf)])
	}
	return dst, ringEntries, r.last, nil
}

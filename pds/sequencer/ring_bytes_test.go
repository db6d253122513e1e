package sequencer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/stretchr/testify/require"
)

// sized returns an entry whose frame is n bytes (no header, so size() == n).
// heldBytes is the memory the held entries pin.
func (r *ring) heldBytes() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.bytes
}

// lastSeq is the newest seq the ring knows about.
func (r *ring) lastSeq() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.last
}

func sized(seq int64, n int) entry {
	return entry{Seq: seq, Frame: make([]byte, n)}
}

// requireContiguous checks the ring invariant: every seq in (floor, last] is held.
func requireContiguous(t *testing.T, r *ring) {
	t.Helper()
	floor, last := r.floorSeq(), r.lastSeq()
	if floor == last {
		_, st, _, _ := r.read(floor, nil, 1)
		require.Equal(t, ringCaughtUp, st)
		return
	}
	ents, st, _, _ := r.read(floor, nil, 1<<20)
	require.Equal(t, ringEntries, st)
	require.Len(t, ents, int(last-floor))
	for i, e := range ents {
		require.Equal(t, floor+1+int64(i), e.Seq)
	}
}

func TestRingByteBudget(t *testing.T) {
	t.Run("evicts oldest by bytes, floor follows", func(t *testing.T) {
		const budget = 10_000
		r := newRing(1000, budget) // the frame cap is far away: only bytes evict
		r.reset(0)
		for s := int64(1); s <= 20; s++ {
			r.append([]entry{sized(s, 3000)})
			require.LessOrEqual(t, r.heldBytes(), int64(budget), "after seq %d", s)
			requireContiguous(t, r)
		}
		// 3 frames of 3000 fit in 10000: 18..20 held, floor at 17.
		require.EqualValues(t, 9000, r.heldBytes())
		require.EqualValues(t, 17, r.floorSeq())
		_, st, _, _ := r.read(16, nil, 10)
		require.Equal(t, ringBehind, st)
		ents, st, _, _ := r.read(17, nil, 10)
		require.Equal(t, ringEntries, st)
		require.Equal(t, []int64{18, 19, 20}, seqsOf(ents))
	})
	t.Run("one batch larger than the budget", func(t *testing.T) {
		r := newRing(1000, 10_000)
		r.reset(0)
		var batch []entry
		for s := int64(1); s <= 50; s++ {
			batch = append(batch, sized(s, 1500))
		}
		r.append(batch)
		require.LessOrEqual(t, r.heldBytes(), int64(10_000))
		require.EqualValues(t, 50, r.lastSeq())
		requireContiguous(t, r)
	})
	t.Run("a frame larger than the whole budget is not kept", func(t *testing.T) {
		r := newRing(1000, 10_000)
		r.reset(0)
		r.append([]entry{sized(1, 4000), sized(2, 4000)})
		r.append([]entry{sized(3, 50_000)})
		require.Zero(t, r.heldBytes())
		require.EqualValues(t, 3, r.floorSeq())
		require.EqualValues(t, 3, r.lastSeq())
		// A subscriber before it pages from the Source; one at it is caught up.
		_, st, _, _ := r.read(2, nil, 10)
		require.Equal(t, ringBehind, st)
		_, st, _, _ = r.read(3, nil, 10)
		require.Equal(t, ringCaughtUp, st)
		r.append([]entry{sized(4, 100)})
		ents, _, _, _ := r.read(3, nil, 10)
		require.Equal(t, []int64{4}, seqsOf(ents))
	})
	t.Run("frame cap still applies", func(t *testing.T) {
		r := newRing(4, 1<<30)
		r.reset(0)
		for s := int64(1); s <= 10; s++ {
			r.append([]entry{sized(s, 10)})
		}
		require.EqualValues(t, 40, r.heldBytes())
		require.EqualValues(t, 6, r.floorSeq())
		requireContiguous(t, r)
	})
}

// TestLargeFramesBoundedAndGapless writes commits of ~100 kB each, far more than the
// ring's byte budget, while a live subscriber and a replaying one read: the ring never
// holds more than its budget, replay pages stay within theirs, and both subscribers get
// every event in order.
func TestLargeFramesBoundedAndGapless(t *testing.T) {
	const (
		frameBytes  = 100 << 10
		bufferBytes = 512 << 10 // ~5 frames
		pageBytes   = 300 << 10 // ~3 frames
		events      = 80        // ~8 MB written in all
	)
	src := newFakeSource()
	src.pad = frameBytes
	src.add(t, 10) // history for the replaying subscriber
	ts := newTestServer(t, src, Config{BufferBytes: bufferBytes, PageBytes: pageBytes, MaxLag: 1 << 20})
	live := ts.dial(t, nil)
	replay := ts.dial(t, ptr(int64(0)))

	var peak int64
	written := make(chan struct{})
	go func() {
		defer close(written)
		for n := 10; n < events; n += 5 {
			src.add(t, 5)
			if h := ts.seq.ring.heldBytes(); h > peak {
				peak = h
			}
		}
	}()
	// Both subscribers read concurrently; failures are reported back to the test
	// goroutine (require must not stop another goroutine).
	errs := make(chan error, 2)
	for _, c := range []struct {
		conn  *firehose.Conn
		after int64
	}{{live, 10}, {replay, 0}} {
		go func() { errs <- expectSeqs(c.conn, c.after, events) }()
	}
	for range 2 {
		require.NoError(t, <-errs)
	}
	<-written

	require.LessOrEqual(t, peak, int64(bufferBytes), "ring memory over its budget while writing")
	require.LessOrEqual(t, ts.seq.ring.heldBytes(), int64(bufferBytes), "ring memory over its budget")
	require.Greater(t, ts.seq.ring.floorSeq(), int64(10), "the budget must have evicted by bytes")
	require.Less(t, src.largestPage(), int64(pageBytes+frameBytes+1024), "a replay page exceeded its byte budget by more than one frame")
}

// expectSeqs reads commits after..until from c, each the next seq, within a bound.
func expectSeqs(c *firehose.Conn, after, until int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for want := after + 1; want <= until; want++ {
		ev, err := c.Next(ctx)
		if err != nil {
			return fmt.Errorf("waiting for seq %d: %w", want, err)
		}
		if ev.Type != firehose.TypeCommit || ev.Seq != want {
			return fmt.Errorf("got %s seq %d, want commit seq %d", ev.Type, ev.Seq, want)
		}
	}
	return nil
}

package sequencer

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRing(t *testing.T) {
	t.Run("wraps and keeps the floor", func(t *testing.T) {
		r := newRing(4, 1<<20)
		r.reset(10)
		_, st, last, wake := r.read(10, nil, 10)
		require.Equal(t, ringCaughtUp, st)
		require.EqualValues(t, 10, last)
		for s := int64(11); s <= 16; s++ {
			r.append([]entry{{Seq: s}})
		}
		select {
		case <-wake:
		default:
			t.Fatal("append did not wake waiters")
		}
		require.EqualValues(t, 12, r.floorSeq()) // 11 and 12 evicted: 13..16 held
		_, st, _, _ = r.read(11, nil, 10)
		require.Equal(t, ringBehind, st)
		ents, st, last, _ := r.read(12, nil, 10)
		require.Equal(t, ringEntries, st)
		require.EqualValues(t, 16, last)
		require.Equal(t, []int64{13, 14, 15, 16}, seqsOf(ents))
		ents, _, _, _ = r.read(14, nil, 1)
		require.Equal(t, []int64{15}, seqsOf(ents))
		_, st, _, _ = r.read(16, nil, 10)
		require.Equal(t, ringCaughtUp, st)
	})
	t.Run("skips stale entries", func(t *testing.T) {
		r := newRing(4, 1<<20)
		r.reset(5)
		r.append([]entry{{Seq: 4}, {Seq: 5}, {Seq: 6}})
		ents, _, _, _ := r.read(5, nil, 10)
		require.Equal(t, []int64{6}, seqsOf(ents))
	})
}

func seqsOf(es []entry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

func TestLive(t *testing.T) {
	src := newFakeSource()
	src.add(t, 5) // history a live subscriber must not see
	ts := newTestServer(t, src, Config{BufferSize: 128})
	a := ts.dial(t, nil)
	b := ts.dial(t, nil)
	for i := 0; i < 10; i++ {
		src.add(t, 7)
	}
	t.Run("in order from now", func(t *testing.T) {
		readSeqs(t, a, 5, 75)
		readSeqs(t, b, 5, 75)
	})
	t.Run("one tail read per notify, none per subscriber", func(t *testing.T) {
		require.LessOrEqual(t, src.reads.Load(), int64(11))
	})
	t.Run("client close ends the subscriber", func(t *testing.T) {
		require.NoError(t, a.Close())
		require.NoError(t, b.Close())
		require.Eventually(t, func() bool {
			return ts.seq.srv.Subscribers() == 0
		}, 5*time.Second, 5*time.Millisecond)
	})
}

func TestCursorReplayThenLive(t *testing.T) {
	src := newFakeSource()
	src.add(t, 3000)
	// A small ring and page so replay pages the Source, crosses into the ring and
	// falls back out of it while the writer keeps going.
	ts := newTestServer(t, src, Config{BufferSize: 64, PageSize: 50, MaxLag: 1 << 20})
	const total = 6000

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for last := int64(3000); last < total; {
			last = src.add(t, 3)
			time.Sleep(100 * time.Microsecond)
		}
	}()
	defer wg.Wait()

	t.Run("group", func(t *testing.T) {
		for _, cursor := range []int64{0, 100, 2990} {
			t.Run("cursor", func(t *testing.T) {
				t.Parallel()
				c := ts.dial(t, ptr(cursor))
				readSeqs(t, c, cursor, total)
			})
		}
	})
}

func TestOutdatedCursor(t *testing.T) {
	old := time.Now().Add(-100 * time.Hour)
	src := newFakeSource()
	src.addAt(t, 49, old)
	src.add(t, 11) // 50..60
	n, err := src.PruneEvents(context.Background(), time.Now().Add(-72*time.Hour))
	require.NoError(t, err)
	require.EqualValues(t, 49, n)
	ts := newTestServer(t, src, Config{})

	t.Run("info then oldest", func(t *testing.T) {
		for _, cursor := range []int64{0, 10, 48} {
			c := ts.dial(t, ptr(cursor))
			ev := next(t, c)
			require.Equal(t, firehose.TypeInfo, ev.Type)
			require.Equal(t, firehose.InfoOutdatedCursor, ev.Info.Name)
			readSeqs(t, c, 49, 60)
		}
	})
	t.Run("cursor just before oldest is current", func(t *testing.T) {
		c := ts.dial(t, ptr(int64(49)))
		readSeqs(t, c, 49, 60)
	})
	t.Run("everything pruned", func(t *testing.T) {
		src := newFakeSource()
		src.addAt(t, 20, old)
		_, err := src.PruneEvents(context.Background(), time.Now().Add(-time.Hour))
		require.NoError(t, err)
		ts := newTestServer(t, src, Config{})
		c := ts.dial(t, ptr(int64(3)))
		ev := next(t, c)
		require.Equal(t, firehose.InfoOutdatedCursor, ev.Info.Name)
		src.add(t, 2)
		readSeqs(t, c, 20, 22)
	})
}

func TestFutureCursor(t *testing.T) {
	src := newFakeSource()
	src.add(t, 5)
	ts := newTestServer(t, src, Config{})
	c := ts.dial(t, ptr(int64(6)))
	ev := next(t, c)
	require.Equal(t, firehose.TypeError, ev.Type)
	require.Equal(t, firehose.ErrFutureCursor, ev.Error.Error)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Next(ctx)
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, websocket.ClosePolicyViolation, ce.Code)

	t.Run("cursor equal to last is fine", func(t *testing.T) {
		c := ts.dial(t, ptr(int64(5)))
		src.add(t, 1)
		readSeqs(t, c, 5, 6)
	})
}

func TestBadCursor(t *testing.T) {
	ts := newTestServer(t, newFakeSource(), Config{})
	client := &http.Client{Timeout: 5 * time.Second}
	for _, q := range []string{"abc", "-1", "1.5", "99999999999999999999"} {
		t.Run(q, func(t *testing.T) {
			resp, err := client.Get(ts.srv.URL + "/xrpc/com.atproto.sync.subscribeRepos?cursor=" + q)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusBadRequest, resp.StatusCode)
			require.Contains(t, resp.Header.Get("Content-Type"), "application/json")
			var body xrpc.Body
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			require.Equal(t, "InvalidRequest", body.Error)
		})
	}
	t.Run("dial reports the XRPC error", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := firehose.Dial(ctx, ts.url+"/xrpc/com.atproto.sync.subscribeRepos?cursor=x", nil)
		require.ErrorContains(t, err, "InvalidRequest")
	})
}

// TestSlowConsumer: a subscriber that stops reading is dropped; a fast one, on the same
// stream, receives everything.
func TestSlowConsumer(t *testing.T) {
	const pad = 64 << 10 // large frames fill the socket buffers quickly
	const total = 400    // ~26 MB, more than loopback buffers hold

	// run streams total events to a stalled and a fast subscriber and returns the stalled
	// one once the fast one has received everything.
	run := func(t *testing.T, cfg Config) (*firehose.Conn, *testServer) {
		src := newFakeSource()
		src.pad = pad
		ts := newTestServer(t, src, cfg)
		slow := ts.dial(t, nil)
		fast := ts.dial(t, nil)
		// Lockstep with the fast reader: it is never more than 4 events behind.
		for last := int64(0); last < total; {
			last = src.add(t, 4)
			readSeqs(t, fast, last-4, last)
		}
		return slow, ts
	}

	t.Run("lag past MaxLag gets ConsumerTooSlow", func(t *testing.T) {
		// The write timeout outlasts the stall, so when the slow reader drains its
		// socket the server sees it is too far behind and says so.
		slow, ts := run(t, Config{MaxLag: 16, WriteTimeout: 30 * time.Second})
		require.Zero(t, ts.seq.srv.SlowDrops())
		var last int64
		for {
			ev := next(t, slow)
			if ev.Type == firehose.TypeError {
				require.Equal(t, firehose.ErrConsumerTooSlow, ev.Error.Error)
				break
			}
			require.Equal(t, last+1, ev.Seq)
			last = ev.Seq
		}
		require.Less(t, last, int64(total))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := slow.Next(ctx)
		require.True(t, websocket.IsCloseError(err, websocket.ClosePolicyViolation), "got %v", err)
		require.EqualValues(t, 1, ts.seq.srv.SlowDrops())
	})

	t.Run("write timeout drops a stalled reader", func(t *testing.T) {
		slow, ts := run(t, Config{MaxLag: 1 << 20, WriteTimeout: time.Second})
		require.Eventually(t, func() bool { return ts.seq.srv.SlowDrops() == 1 }, 10*time.Second, 5*time.Millisecond)
		// The connection was cut: draining it ends in an error, never an event past total.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for {
			ev, err := slow.Next(ctx)
			if err != nil {
				require.NoError(t, ctx.Err(), "connection was not closed")
				break
			}
			require.LessOrEqual(t, ev.Seq, int64(total))
		}
	})
}

func TestShutdown(t *testing.T) {
	src := newFakeSource()
	src.add(t, 3)
	ts := newTestServer(t, src, Config{})
	conns := []*firehose.Conn{ts.dial(t, nil), ts.dial(t, ptr(int64(0))), ts.dial(t, ptr(int64(3)))}
	readSeqs(t, conns[1], 0, 3)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Drain concurrently so the clients answer the close handshake.
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := c.Next(ctx)
				assert.True(t, websocket.IsCloseError(err, websocket.CloseGoingAway), "got %v", err)
			}()
		}
		wg.Wait()
	}()
	began := time.Now()
	ts.seq.Shutdown(ctx)
	require.Less(t, time.Since(began), 3*time.Second)
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("clients did not see the close frame")
	}
	require.Zero(t, ts.seq.srv.Subscribers())

	t.Run("refuses new subscribers", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := firehose.Dial(ctx, ts.url, nil)
		require.ErrorContains(t, err, "503")
	})
}

// TestCommitNeverBlocks: the store's side of the event path (closing its Notify channel
// after a batch) never waits on the sequencer, idle or with a stalled subscriber and a
// failing source.
func TestCommitNeverBlocks(t *testing.T) {
	commitMany := func(t *testing.T, src *fakeSource) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; i < 200000; i++ {
				src.commit()
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("commit blocked")
		}
	}
	t.Run("no subscriber", func(t *testing.T) {
		src := newFakeSource()
		New(src, nil, Config{})
		commitMany(t, src)
	})
	t.Run("stalled subscriber and a failing source", func(t *testing.T) {
		src := newFakeSource()
		src.pad = 32 << 10
		ts := newTestServer(t, src, Config{WriteTimeout: 300 * time.Millisecond})
		ts.dial(t, nil) // never reads
		for i := 0; i < 20; i++ {
			src.add(t, 10)
		}
		src.mu.Lock()
		src.readErr = errors.New("disk on fire")
		src.mu.Unlock()
		commitMany(t, src)
	})
}

func TestPing(t *testing.T) {
	ts := newTestServer(t, newFakeSource(), Config{PingInterval: 20 * time.Millisecond, WriteTimeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, ts.url, nil)
	require.NoError(t, err)
	defer ws.Close()
	pings := make(chan struct{}, 100)
	ws.SetPingHandler(func(string) error {
		select {
		case pings <- struct{}{}:
		default:
		}
		return ws.WriteControl(websocket.PongMessage, nil, time.Now().Add(time.Second))
	})
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	for i := 0; i < 3; i++ {
		select {
		case <-pings:
		case <-ctx.Done():
			t.Fatal("no ping")
		}
	}
}

func TestRetention(t *testing.T) {
	src := newFakeSource()
	src.addAt(t, 10, time.Now().Add(-2*time.Hour))
	src.add(t, 5)
	s := New(src, nil, Config{Retention: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.RunRetention(ctx)
	}()
	select {
	case before := <-src.prunes:
		require.WithinDuration(t, time.Now().Add(-time.Hour), before, time.Minute)
	case <-time.After(5 * time.Second):
		t.Fatal("no prune at start")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunRetention did not stop")
	}
	oldest, _, err := src.OldestEvent(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 11, oldest)
}

package sequencer

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// BenchmarkFanout streams events appended at a target rate to N subscribers over
// loopback websockets and reports delivered events/s and append-to-delivery latency.
// Each b.Loop iteration appends one event; ns/op is therefore the pacing interval.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) { benchFanout(b, n, ringBatch) })
	}
	b.Run("subs=1000/batch=1", func(b *testing.B) { benchFanout(b, 1000, 1) })
}

const (
	benchRate     = 1000 // events appended per second
	benchFrameLen = 800  // padding per frame: frames are ~1 KB, a typical small commit
	benchMaxEvent = 1 << 20
)

func benchFanout(b *testing.B, subs, writeBatch int) {
	src := newFakeSource()
	src.pad = benchFrameLen
	ts := newTestServer(b, src, Config{writeBatch: writeBatch})

	// appended[seq] is the append time (unix ns) of each event.
	appended := make([]atomic.Int64, benchMaxEvent)
	type client struct {
		got     atomic.Int64 // last seq received
		lastAt  atomic.Int64 // unix ns of the last delivery
		samples []int64      // latencies, ns (owned by the reader goroutine until wg.Wait)
	}
	clients := make([]*client, subs)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dialer := websocket.Dialer{ReadBufferSize: 64 << 10}
	conns := make([]*websocket.Conn, subs)
	for i := range clients {
		ws, _, err := dialer.DialContext(ctx, ts.url, nil)
		if err != nil {
			b.Fatalf("dial %d: %v", i, err)
		}
		conns[i] = ws
		c := &client{samples: make([]int64, 0, 4096)}
		clients[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, r, err := ws.NextReader()
				if err != nil {
					return
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					return
				}
				now := time.Now().UnixNano()
				seq := c.got.Add(1) // delivery is in seq order from seq 1 (tests check it)
				c.samples = append(c.samples, now-appended[seq].Load())
				c.lastAt.Store(now)
			}
		}()
	}

	interval := time.Second / benchRate
	var last int64
	begin := time.Now()
	for b.Loop() {
		if last+1 >= benchMaxEvent {
			b.Fatal("too many events")
		}
		if d := time.Until(begin.Add(time.Duration(last) * interval)); d > 0 {
			time.Sleep(d)
		}
		appended[last+1].Store(time.Now().UnixNano())
		last = src.add(b, 1)
	}

	deadline := time.Now().Add(2 * time.Minute)
	for _, c := range clients {
		for c.got.Load() < last {
			if time.Now().After(deadline) {
				b.Fatalf("subscribers did not receive all %d events (one has %d)", last, c.got.Load())
			}
			time.Sleep(time.Millisecond)
		}
	}
	var end int64
	for _, c := range clients {
		end = max(end, c.lastAt.Load())
	}
	for _, ws := range conns {
		ws.Close()
	}
	wg.Wait()
	if d := ts.seq.srv.SlowDrops(); d > 0 {
		b.Fatalf("%d subscribers dropped as too slow", d)
	}

	var all []int64
	for _, c := range clients {
		all = append(all, c.samples...)
	}
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))]) / 1e6 }
	elapsed := time.Duration(end - begin.UnixNano())
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "delivered/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(last)/elapsed.Seconds(), "appended/s")
}

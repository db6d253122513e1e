package sequencer

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/pds/store"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"
)

// fakeSource is an in-memory event log with the store's semantics.
type fakeSource struct {
	mu      sync.Mutex
	evs     []store.Event
	created []time.Time
	last    int64
	pad     int // bytes of padding in each frame

	reads   atomic.Int64 // EventsPage calls
	maxPage int64        // most frame bytes returned by one EventsPage call
	prunes  chan time.Time
	readErr error
	notify  chan struct{} // closed and replaced by commit, like the store's
}

func newFakeSource() *fakeSource {
	return &fakeSource{prunes: make(chan time.Time, 16), notify: make(chan struct{})}
}

// Notify is the store's: a channel closed at the next commit.
func (f *fakeSource) Notify() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.notify
}

// commit wakes whoever waits on Notify, as the store does after a durable batch.
func (f *fakeSource) commit() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.notify)
	f.notify = make(chan struct{})
}

var testCID = func() lexutil.LexLink {
	h := sha256.Sum256([]byte("hearth"))
	mh, err := multihash.Encode(h[:], multihash.SHA2_256)
	if err != nil {
		panic(err)
	}
	return lexutil.LexLink(cid.NewCidV1(cid.DagCBOR, mh))
}()

// frame builds a #commit frame with the given seq.
func testFrame(tb testing.TB, seq int64, pad int) []byte {
	ev := &comatproto.SyncSubscribeRepos_Commit{
		Repo:   "did:plc:abcdefghijklmnopqrstuvwx",
		Commit: testCID,
		Rev:    fmt.Sprintf("3k%011d", seq),
		Blocks: make([]byte, pad),
		Ops:    []*comatproto.SyncSubscribeRepos_RepoOp{},
		Blobs:  []lexutil.LexLink{},
		Time:   "2026-01-01T00:00:00.000Z",
	}
	b, err := firehose.CommitFrame(ev, seq)
	require.NoError(tb, err)
	return b
}

// addAt appends n events created at `at`, commits, and returns the last seq.
func (f *fakeSource) addAt(tb testing.TB, n int, at time.Time) int64 {
	frames := make([][]byte, n)
	f.mu.Lock()
	first := f.last + 1
	pad := f.pad
	f.mu.Unlock()
	for i := range frames {
		frames[i] = testFrame(tb, first+int64(i), pad)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Equal(tb, first, f.last+1, "one writer at a time")
	for i, fr := range frames {
		f.evs = append(f.evs, store.Event{Seq: first + int64(i), Kind: firehose.TypeCommit, Frame: fr})
		f.created = append(f.created, at)
	}
	f.last += int64(n)
	close(f.notify)
	f.notify = make(chan struct{})
	return f.last
}

func (f *fakeSource) add(tb testing.TB, n int) int64 { return f.addAt(tb, n, time.Now()) }

func (f *fakeSource) EventsPage(ctx context.Context, after int64, limit int, maxBytes int64) ([]store.Event, error) {
	f.reads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.readErr != nil {
		return nil, f.readErr
	}
	var out []store.Event
	var total int64
	for _, e := range f.evs {
		if e.Seq > after {
			out = append(out, e)
			total += int64(len(e.Frame))
			if len(out) == limit || (maxBytes > 0 && total >= maxBytes) {
				break
			}
		}
	}
	if total > f.maxPage {
		f.maxPage = total
	}
	return out, nil
}

// largestPage is the most frame bytes one EventsPage call returned.
func (f *fakeSource) largestPage() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxPage
}

func (f *fakeSource) OldestEvent(ctx context.Context) (int64, time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.evs) == 0 {
		return 0, time.Time{}, store.ErrNotFound
	}
	return f.evs[0].Seq, f.created[0], nil
}

func (f *fakeSource) FirstSeqSince(ctx context.Context, t time.Time) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, c := range f.created {
		if !c.Before(t) {
			return f.evs[i].Seq, nil
		}
	}
	return 0, store.ErrNotFound
}

func (f *fakeSource) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := 0
	for i < len(f.evs) && f.created[i].Before(before) {
		i++
	}
	f.evs, f.created = f.evs[i:], f.created[i:]
	select {
	case f.prunes <- before:
	default:
	}
	return int64(i), nil
}

func (f *fakeSource) LastSeq(ctx context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last, nil
}

// testServer runs a Sequencer behind httptest on 127.0.0.1.
type testServer struct {
	seq *Sequencer
	srv *httptest.Server
	url string
}

func newTestServer(tb testing.TB, src Source, cfg Config) *testServer {
	tb.Helper()
	seq := New(src, slog.New(slog.DiscardHandler), cfg)
	srv := httptest.NewServer(seq)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		seq.Shutdown(ctx)
		srv.Close()
	})
	return &testServer{seq: seq, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http")}
}

func (ts *testServer) dial(tb testing.TB, cursor *int64) *firehose.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := firehose.Dial(ctx, ts.url, cursor)
	require.NoError(tb, err)
	tb.Cleanup(func() { c.Close() })
	return c
}

// next reads one event within a bounded time.
func next(tb testing.TB, c *firehose.Conn) *firehose.Event {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := c.Next(ctx)
	require.NoError(tb, err)
	return ev
}

// readSeqs reads events until seq `until`, requiring each to be the next seq after `after`.
func readSeqs(tb testing.TB, c *firehose.Conn, after, until int64) {
	tb.Helper()
	for want := after + 1; want <= until; want++ {
		ev := next(tb, c)
		require.Equal(tb, firehose.TypeCommit, ev.Type, "event %d: %+v", want, ev.Error)
		require.Equal(tb, want, ev.Seq)
	}
}

func ptr[T any](v T) *T { return &v }

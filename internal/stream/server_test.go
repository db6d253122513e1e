package stream

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/stretchr/testify/require"
)

// memSource is an in-memory log whose short pages carry the wake channel, as the
// labeler's do.
type memSource struct {
	mu      sync.Mutex
	frames  [][]byte // frames[i] has seq i+1
	oldest  int64
	wake    chan struct{}
	readErr error
}

func newMemSource() *memSource { return &memSource{oldest: 1, wake: make(chan struct{})} }

func (m *memSource) add(frames ...[]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.frames = append(m.frames, frames...)
	close(m.wake)
	m.wake = make(chan struct{})
}

func (m *memSource) Prepare(context.Context) error { return nil }

func (m *memSource) LastSeq(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.frames)), nil
}

func (m *memSource) OldestSeq(context.Context) (int64, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.oldest, true, nil
}

func (m *memSource) Read(_ context.Context, after int64, dst []Event, limit int) (Page, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.readErr != nil {
		return Page{}, m.readErr
	}
	last := int64(len(m.frames))
	p := Page{Pos: after, Last: last}
	for seq := max(after, m.oldest-1) + 1; seq <= last && len(dst) < limit; seq++ {
		dst = append(dst, Event{Seq: seq, Frame: m.frames[seq-1]})
		p.Pos = seq
	}
	p.Events = dst
	if len(dst) < limit {
		p.Wake = m.wake
	}
	return p, nil
}

// info is a distinct, decodable frame for seq n.
func info(t *testing.T, n int) []byte {
	t.Helper()
	f, err := firehose.InfoFrame("n", strings.Repeat("x", n))
	require.NoError(t, err)
	return f
}

func serve(t *testing.T, src Source, cfg Config) (*Server, string) {
	t.Helper()
	s := New(src, cfg)
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		hs.Close()
	})
	return s, "ws" + strings.TrimPrefix(hs.URL, "http")
}

func dialWS(t *testing.T, url string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, resp, err
}

func readEvent(t *testing.T, c *websocket.Conn) *firehose.Event {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, data, err := c.ReadMessage()
	require.NoError(t, err)
	ev, err := firehose.Decode(data)
	require.NoError(t, err)
	return ev
}

func TestServer(t *testing.T) {
	t.Run("replay then live in order, through short pages", func(t *testing.T) {
		src := newMemSource()
		for i := 1; i <= 5; i++ {
			src.add(info(t, i))
		}
		_, url := serve(t, src, Config{ReadBatch: 2})
		c, _, err := dialWS(t, url+"?cursor=1")
		require.NoError(t, err)
		for i := 2; i <= 5; i++ {
			require.Len(t, *readEvent(t, c).Info.Message, i)
		}
		src.add(info(t, 6), info(t, 7))
		require.Len(t, *readEvent(t, c).Info.Message, 6)
		require.Len(t, *readEvent(t, c).Info.Message, 7)
	})
	t.Run("outdated cursor gets #info then the oldest", func(t *testing.T) {
		src := newMemSource()
		for i := 1; i <= 5; i++ {
			src.add(info(t, i))
		}
		src.oldest = 4
		_, url := serve(t, src, Config{})
		c, _, err := dialWS(t, url+"?cursor=1")
		require.NoError(t, err)
		require.Equal(t, firehose.InfoOutdatedCursor, readEvent(t, c).Info.Name)
		require.Len(t, *readEvent(t, c).Info.Message, 4)
	})
	t.Run("future cursor", func(t *testing.T) {
		_, url := serve(t, newMemSource(), Config{})
		c, _, err := dialWS(t, url+"?cursor=1")
		require.NoError(t, err)
		ev := readEvent(t, c)
		require.Equal(t, firehose.ErrFutureCursor, ev.Error.Error)
		_, _, err = c.ReadMessage()
		require.True(t, websocket.IsCloseError(err, websocket.ClosePolicyViolation), "got %v", err)
	})
	t.Run("source error ends the stream with an error frame", func(t *testing.T) {
		src := newMemSource()
		src.readErr = errors.New("disk on fire")
		_, url := serve(t, src, Config{})
		c, _, err := dialWS(t, url)
		require.NoError(t, err)
		require.Equal(t, "InternalServerError", readEvent(t, c).Error.Error)
	})
	t.Run("subscriber cap", func(t *testing.T) {
		s, url := serve(t, newMemSource(), Config{MaxSubscribers: 1})
		_, _, err := dialWS(t, url)
		require.NoError(t, err)
		require.Eventually(t, func() bool { return s.Subscribers() == 1 }, 5*time.Second, time.Millisecond)
		_, resp, err := dialWS(t, url)
		require.Error(t, err)
		require.NotNil(t, resp)
		resp.Body.Close()
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	})
	t.Run("shutdown closes with going away and is bounded", func(t *testing.T) {
		s, url := serve(t, newMemSource(), Config{})
		c, _, err := dialWS(t, url)
		require.NoError(t, err)
		require.Eventually(t, func() bool { return s.Subscribers() == 1 }, 5*time.Second, time.Millisecond)
		got := make(chan error, 1)
		go func() {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _, err := c.ReadMessage() // answers the close
			got <- err
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		began := time.Now()
		require.NoError(t, s.Shutdown(ctx))
		require.Less(t, time.Since(began), 3*time.Second)
		require.True(t, websocket.IsCloseError(<-got, websocket.CloseGoingAway))
		require.Zero(t, s.Subscribers())
	})
}

// Package stream serves AT Protocol event streams (com.atproto.sync.subscribeRepos,
// com.atproto.label.subscribeLabels) over websockets. It owns everything the endpoints
// have in common: the upgrade and subscriber registry, the read pump, ping/pong, the
// close handshake, FutureCursor and OutdatedCursor, the slow-consumer cut-off, bounded
// shutdown and a batched frame writer. An endpoint supplies only a Source: where its
// events are, already framed.
//
// Each subscriber is one goroutine (the HTTP handler's) that reads pages from the Source
// and writes them, plus a read pump goroutine that gorilla/websocket reads control frames
// on. Nothing the Source's writer does ever waits on a subscriber: a subscriber that has
// caught up once and then falls more than MaxLag events behind, or whose write takes
// longer than WriteTimeout, is sent ConsumerTooSlow (when the connection can still take
// it) and closed.
package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/internal/xrpc"
)

// Event is one pre-encoded frame of a stream.
type Event struct {
	Seq int64
	// Header is the websocket header of Frame when the source computed it once for every
	// subscriber (BinaryHeader(len(Frame))); nil to compute it when written.
	Header []byte
	Frame  []byte
}

// Page is one Source.Read result.
type Page struct {
	// Events are the events read, in seq order (may be empty).
	Events []Event
	// Pos is the subscriber's position after Events: the last event's seq, or past a gap
	// the source knows is empty (events pruned meanwhile).
	Pos int64
	// Last is the newest seq the source knows of; Last minus the subscriber's position is
	// its lag.
	Last int64
	// Wake, when set, means nothing newer than Events is available yet: the subscriber
	// waits for Wake to be closed before it reads again.
	Wake <-chan struct{}
}

// Source is one stream's events.
type Source interface {
	// Prepare is called before each subscription is planned (after the request was
	// validated), so a source can start lazily. ErrClosed refuses the subscription with 503.
	Prepare(ctx context.Context) error
	// LastSeq is the newest seq (0 when there is none).
	LastSeq(ctx context.Context) (int64, error)
	// OldestSeq is the oldest seq still kept; ok is false when nothing is kept although
	// events existed (everything was pruned). A log that is never pruned returns 1.
	OldestSeq(ctx context.Context) (seq int64, ok bool, err error)
	// Read appends to dst at most max events with seq > after.
	Read(ctx context.Context, after int64, dst []Event, max int) (Page, error)
}

// ErrClosed is what a Source's Prepare returns once it is shutting down.
var ErrClosed = errors.New("stream is shut down")

// Config configures a Server. Zero fields take the defaults below.
type Config struct {
	// Method is the XRPC method name, for error messages ("subscribeRepos").
	Method string
	// Kind names the subscribers in logs ("firehose", "label").
	Kind string
	// PingInterval is how often subscribers are pinged; one silent for two intervals
	// (plus WriteTimeout) is dropped.
	PingInterval time.Duration
	// WriteTimeout bounds every websocket write.
	WriteTimeout time.Duration
	// MaxLag is how many events a live subscriber may fall behind before it is
	// disconnected with ConsumerTooSlow.
	MaxLag int
	// MaxSubscribers caps concurrent subscribers (0: no cap).
	MaxSubscribers int
	// ReadBatch is the most events asked of one Source.Read.
	ReadBatch int
	// WriteBatch is the most frames handed to one write.
	WriteBatch int
	// Log receives the server's logs (default: discarded).
	Log *slog.Logger
}

// Defaults for Config.
const (
	DefaultPingInterval = 30 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultMaxLag       = 10000
	DefaultReadBatch    = 128
	DefaultWriteBatch   = 128
)

func (c Config) withDefaults() Config {
	if c.Method == "" {
		c.Method = "subscription"
	}
	if c.Kind == "" {
		c.Kind = "stream"
	}
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.MaxLag <= 0 {
		c.MaxLag = DefaultMaxLag
	}
	if c.ReadBatch <= 0 {
		c.ReadBatch = DefaultReadBatch
	}
	if c.WriteBatch <= 0 {
		c.WriteBatch = DefaultWriteBatch
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// closeWait bounds how long a closing subscriber waits for the peer's close reply.
const closeWait = time.Second

// Server serves one event stream. New starts no goroutine; each subscriber runs on its
// HTTP handler's goroutine until it ends or Shutdown.
type Server struct {
	src      Source
	cfg      Config
	log      *slog.Logger
	upgrader websocket.Upgrader

	// base is cancelled by Shutdown; every subscriber context derives from it.
	base       context.Context
	cancelBase context.CancelFunc

	mu     sync.Mutex
	closed bool
	subs   map[*subscriber]struct{}
	nextID uint64
	wg     sync.WaitGroup // subscriber handlers

	nsubs     atomic.Int64 // len(subs), read without the lock
	slowDrops atomic.Int64
}

// New returns a Server for src.
func New(src Source, cfg Config) *Server {
	cfg = cfg.withDefaults()
	base, cancel := context.WithCancel(context.Background())
	return &Server{
		src: src,
		cfg: cfg,
		log: cfg.Log,
		upgrader: websocket.Upgrader{
			ReadBufferSize: 1024,
			// Frames are written by frameWriter, not gorilla: a pool means gorilla never
			// allocates its own write buffer.
			WriteBufferPool: &sync.Pool{},
			// Event streams are public and read-only; any origin may subscribe.
			CheckOrigin: func(*http.Request) bool { return true },
		},
		base:       base,
		cancelBase: cancel,
		subs:       make(map[*subscriber]struct{}),
	}
}

// Subscribers is how many subscribers are connected.
func (s *Server) Subscribers() int { return int(s.nsubs.Load()) }

// SlowDrops is how many subscribers were dropped as too slow.
func (s *Server) SlowDrops() int64 { return s.slowDrops.Load() }

// subscriber is one connection. gorilla/websocket reads from conn (the read pump);
// every write goes through w, on the subscriber's own goroutine.
type subscriber struct {
	id     uint64
	conn   *websocket.Conn
	w      *frameWriter
	remote string
	sent   int64
	// pings carries ping payloads from the read pump to the writer, which answers them.
	pings chan []byte
	// peerClose is the close code the peer sent (0 if none).
	peerClose atomic.Int64
}

// start is where a new subscriber begins.
type start struct {
	pos      int64 // last seq considered sent
	last     int64 // the source's last seq when planned
	outdated bool  // cursor older than the oldest kept event
	future   bool  // cursor newer than the last seq
}

// plan decides where a subscriber with the given cursor starts.
func (s *Server) plan(ctx context.Context, cursor *int64) (start, error) {
	last, err := s.src.LastSeq(ctx)
	if err != nil {
		return start{}, fmt.Errorf("reading last seq: %w", err)
	}
	if cursor == nil {
		return start{pos: last, last: last}, nil
	}
	c := *cursor
	if c > last {
		return start{future: true, last: last}, nil
	}
	oldest, ok, err := s.src.OldestSeq(ctx)
	switch {
	case err != nil:
		return start{}, fmt.Errorf("reading oldest seq: %w", err)
	case !ok:
		// Everything was pruned: the cursor is outdated unless it is already current.
		return start{pos: last, last: last, outdated: c < last}, nil
	case c < oldest-1:
		return start{pos: oldest - 1, last: last, outdated: true}, nil
	}
	return start{pos: c, last: last}, nil
}

// ServeHTTP serves the subscription's GET request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cursor, err := firehose.ParseCursor(r.URL.Query().Get("cursor"))
	if err != nil {
		xrpc.WriteError(w, r, s.log, xrpc.InvalidRequest("%v", err))
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		xrpc.WriteError(w, r, s.log, xrpc.InvalidRequest("%s is a websocket subscription", s.cfg.Method))
		return
	}
	sub := &subscriber{remote: r.RemoteAddr, pings: make(chan []byte, 1)}
	// Registering before the upgrade makes Shutdown wait for this handler and lets the
	// cap count connections being set up.
	if err := s.register(sub); err != nil {
		xrpc.WriteError(w, r, s.log, err)
		return
	}
	defer s.unregister(sub)

	ctx := r.Context()
	if err := s.src.Prepare(ctx); err != nil {
		if errors.Is(err, ErrClosed) {
			err = errShuttingDown
		}
		xrpc.WriteError(w, r, s.log, err)
		return
	}
	st, err := s.plan(ctx, cursor)
	if err != nil {
		xrpc.WriteError(w, r, s.log, err)
		return
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// The upgrader has answered already.
		s.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	s.mu.Lock()
	sub.conn = conn
	sub.w = &frameWriter{nc: conn.UnderlyingConn(), timeout: s.cfg.WriteTimeout}
	closed := s.closed
	s.mu.Unlock()
	if closed {
		// Shutdown began during the upgrade.
		s.closeConn(sub, websocket.CloseGoingAway, "server shutting down")
		return
	}

	log := s.log.With("sub", sub.id, "remote", sub.remote)
	if cursor != nil {
		log.Info(s.cfg.Kind+" subscriber connected", "cursor", *cursor, "from", st.pos)
	} else {
		log.Info(s.cfg.Kind+" subscriber connected", "from", st.pos)
	}
	began := time.Now()
	reason := s.serve(sub, cursor, st)
	log.Info(s.cfg.Kind+" subscriber disconnected", "reason", reason, "sent", sub.sent, "duration", time.Since(began).Round(time.Millisecond))
}

var (
	errShuttingDown = xrpc.Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "server is shutting down")
	errTooMany      = xrpc.Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "too many subscribers")
)

func (s *Server) register(sub *subscriber) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errShuttingDown
	case s.cfg.MaxSubscribers > 0 && len(s.subs) >= s.cfg.MaxSubscribers:
		return errTooMany
	}
	s.nextID++
	sub.id = s.nextID
	s.subs[sub] = struct{}{}
	s.nsubs.Add(1)
	s.wg.Add(1)
	return nil
}

func (s *Server) unregister(sub *subscriber) {
	s.mu.Lock()
	delete(s.subs, sub)
	s.nsubs.Add(-1)
	s.mu.Unlock()
	s.wg.Done()
}

// closeFrame is a close control frame payload (RFC 6455 limits it to 125 bytes).
func closeFrame(code int, text string) []byte {
	if len(text) > 100 {
		text = text[:100]
	}
	return websocket.FormatCloseMessage(code, text)
}

// closeConn sends a close frame and closes the connection (without waiting for a reply).
func (s *Server) closeConn(sub *subscriber, code int, text string) {
	sub.w.control(opClose, closeFrame(code, text))
	sub.conn.Close()
}

// serve runs one subscriber until it ends, and returns why it ended.
func (s *Server) serve(sub *subscriber, cursor *int64, st start) string {
	conn := sub.conn
	ctx, cancel := context.WithCancel(s.base)
	defer cancel()

	// Read pump: subscribers send nothing but control frames; reading processes pongs
	// and close frames, and notices a peer that went away. Its handlers never write (the
	// writer answers pings and closes), so one goroutine owns every write.
	readTimeout := 2*s.cfg.PingInterval + s.cfg.WriteTimeout
	conn.SetReadLimit(4 << 10)
	conn.SetReadDeadline(time.Now().Add(readTimeout))
	conn.SetPongHandler(func(string) error {
		return conn.SetReadDeadline(time.Now().Add(readTimeout))
	})
	conn.SetPingHandler(func(data string) error {
		select {
		case sub.pings <- []byte(data):
		default:
		}
		return conn.SetReadDeadline(time.Now().Add(readTimeout))
	})
	conn.SetCloseHandler(func(code int, _ string) error {
		sub.peerClose.Store(int64(code))
		return nil
	})
	pumpDone := make(chan struct{})
	go func() {
		defer close(pumpDone)
		defer cancel()
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()

	reason := s.pump(ctx, sub, cursor, st)
	switch {
	case reason != "":
	case s.base.Err() != nil:
		reason = "shutdown"
		if sub.w.control(opClose, closeFrame(websocket.CloseGoingAway, "server shutting down")) == nil {
			// Give the peer a moment to answer the close, then cut.
			t := time.NewTimer(closeWait)
			select {
			case <-pumpDone:
			case <-t.C:
			}
			t.Stop()
		}
	default:
		reason = "peer went away"
		if code := sub.peerClose.Load(); code != 0 {
			reason = fmt.Sprintf("peer closed (%d)", code)
			if code == websocket.CloseNoStatusReceived {
				code = websocket.CloseNormalClosure
			}
			sub.w.control(opClose, closeFrame(int(code), ""))
		}
	}
	conn.Close()
	<-pumpDone
	return reason
}

// sendError sends an error frame then a close frame. The caller closes the connection.
func (s *Server) sendError(sub *subscriber, name, message string) {
	frame, err := firehose.EncodeError(name, message)
	if err != nil {
		return
	}
	sub.w.addFrame(opBinary, frame)
	sub.w.control(opClose, closeFrame(websocket.ClosePolicyViolation, name))
}

// pump sends events until ctx is done (returning "") or the subscriber must go (returning
// the reason).
func (s *Server) pump(ctx context.Context, sub *subscriber, cursor *int64, st start) string {
	if st.future {
		s.sendError(sub, firehose.ErrFutureCursor, fmt.Sprintf("cursor %d is ahead of the stream (last seq %d)", *cursor, st.last))
		return firehose.ErrFutureCursor
	}
	if st.outdated {
		frame, err := firehose.InfoFrame(firehose.InfoOutdatedCursor, "cursor is older than the oldest kept event; replaying from the oldest")
		if err != nil {
			return err.Error()
		}
		sub.w.addFrame(opBinary, frame)
		if err := s.flush(sub); err != nil {
			return s.writeFailed(ctx, err)
		}
	}

	ping := time.NewTicker(s.cfg.PingInterval)
	defer ping.Stop()
	pos := st.pos
	live := false
	buf := make([]Event, 0, s.cfg.ReadBatch)
	// control handles pings due and pongs owed; it never blocks.
	control := func() error {
		select {
		case <-ping.C:
			return sub.w.control(opPing, nil)
		case p := <-sub.pings:
			return sub.w.control(opPong, p)
		default:
			return nil
		}
	}
	for {
		if ctx.Err() != nil {
			return ""
		}
		if err := control(); err != nil {
			return s.writeFailed(ctx, err)
		}

		page, err := s.src.Read(ctx, pos, buf[:0], s.cfg.ReadBatch)
		if err != nil {
			if ctx.Err() != nil {
				return ""
			}
			s.log.Warn("reading events", "sub", sub.id, "after", pos, "err", err)
			s.sendError(sub, "InternalServerError", "reading events failed")
			return "source error"
		}
		// A subscriber counts as live once it has been within MaxLag; only then does
		// falling behind cut it off (a replay from an old cursor starts far behind).
		if lag := page.Last - pos; lag <= int64(s.cfg.MaxLag) {
			live = true
		} else if live {
			s.slowDrops.Add(1)
			s.sendError(sub, firehose.ErrConsumerTooSlow, fmt.Sprintf("more than %d events behind", s.cfg.MaxLag))
			return firehose.ErrConsumerTooSlow
		}
		evs := page.Events
		for i := range evs {
			if evs[i].Header != nil {
				sub.w.add(evs[i].Header, evs[i].Frame)
			} else {
				sub.w.addFrame(opBinary, evs[i].Frame)
			}
			if sub.w.full(s.cfg.WriteBatch) || i == len(evs)-1 {
				if err := s.flush(sub); err != nil {
					return s.writeFailed(ctx, err)
				}
			}
		}
		pos = max(pos, page.Pos)
		// Keep the (possibly grown) buffer without pinning the frames it pointed to.
		clear(evs)
		buf = evs[:0]
		if page.Wake == nil {
			continue
		}
		if reason, ok := s.wait(ctx, sub, page.Wake, ping); !ok {
			return reason
		}
	}
}

// wait blocks until wake is closed, answering pings and pongs meanwhile. It reports
// false (with the reason, "" when ctx is done) when the subscriber must stop.
func (s *Server) wait(ctx context.Context, sub *subscriber, wake <-chan struct{}, ping *time.Ticker) (string, bool) {
	for {
		select {
		case <-ctx.Done():
			return "", false
		case <-wake:
			// With many subscribers, waiting a moment lets one write carry the events of
			// several commits: fewer wake-ups and syscalls per delivered event, at a
			// latency cost far below the lag anyone notices.
			if d := s.coalesceDelay(); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
					return "", false
				case <-t.C:
				}
			}
			return "", true
		case <-ping.C:
			if err := sub.w.control(opPing, nil); err != nil {
				return s.writeFailed(ctx, err), false
			}
		case p := <-sub.pings:
			if err := sub.w.control(opPong, p); err != nil {
				return s.writeFailed(ctx, err), false
			}
		}
	}
}

// flush writes the queued frames and counts them.
func (s *Server) flush(sub *subscriber) error {
	n, err := sub.w.flush()
	sub.sent += int64(n)
	return err
}

// writeFailed classifies a failed write: a timeout means the consumer is too slow (the
// connection can take no more writes, so no error frame can follow).
func (s *Server) writeFailed(ctx context.Context, err error) string {
	if ctx.Err() != nil {
		return ""
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		s.slowDrops.Add(1)
		return firehose.ErrConsumerTooSlow + " (write timeout)"
	}
	return "write failed: " + err.Error()
}

// coalesceDelay is how long a woken subscriber waits before reading new events: 5 µs
// per connected subscriber, at most 5 ms, none below 100 subscribers.
func (s *Server) coalesceDelay() time.Duration {
	n := s.nsubs.Load()
	if n < 100 {
		return 0
	}
	return min(time.Duration(n)*5*time.Microsecond, 5*time.Millisecond)
}

// Shutdown sends every subscriber a close frame (1001 going away) and waits for their
// goroutines to end, or for ctx; then it cuts the connections still open and returns
// ctx's error. New subscribers are refused from now on. Call it before the HTTP server's
// Shutdown, which does not track hijacked (websocket) connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	n := len(s.subs)
	s.mu.Unlock()
	s.log.Info("closing "+s.cfg.Kind+" subscribers", "subscribers", n)
	s.cancelBase()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	// Out of time: cut the connections still open so their goroutines end promptly.
	s.mu.Lock()
	for sub := range s.subs {
		if sub.conn != nil {
			sub.conn.Close()
		}
	}
	s.mu.Unlock()
	s.log.Warn(s.cfg.Kind+" shutdown timed out", "err", ctx.Err())
	return ctx.Err()
}

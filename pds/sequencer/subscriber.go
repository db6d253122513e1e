package sequencer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/store"
)

// ringBatch is how many ring entries a subscriber copies out per lock.
const ringBatch = 128

// closeWait bounds how long a subscriber waits for the peer's close reply.
const closeWait = time.Second

// subscriber is one subscribeRepos connection. gorilla/websocket reads from conn (the
// read pump); every write goes through w, on the subscriber's own goroutine.
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
	outdated bool  // cursor older than the oldest kept event
	future   bool  // cursor newer than the last seq
}

// plan decides where a subscriber with the given cursor starts.
func (s *Sequencer) plan(ctx context.Context, cursor *int64) (start, error) {
	last, err := s.src.LastSeq(ctx)
	if err != nil {
		return start{}, err
	}
	if cursor == nil {
		return start{pos: last}, nil
	}
	c := *cursor
	if c > last {
		return start{future: true}, nil
	}
	oldest, _, err := s.src.OldestEvent(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Everything was pruned: the cursor is outdated unless it is already current.
		return start{pos: last, outdated: c < last}, nil
	case err != nil:
		return start{}, err
	case c < oldest-1:
		return start{pos: oldest - 1, outdated: true}, nil
	}
	return start{pos: c}, nil
}

// ServeHTTP serves GET /xrpc/com.atproto.sync.subscribeRepos.
func (s *Sequencer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cursor, err := firehose.ParseCursor(r.URL.Query().Get("cursor"))
	if err != nil {
		xrpc.WriteError(w, r, s.log, xrpc.InvalidRequest("%v", err))
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		xrpc.WriteError(w, r, s.log, xrpc.InvalidRequest("subscribeRepos is a websocket subscription"))
		return
	}
	ctx := r.Context()
	if err := s.startTail(ctx); err != nil {
		if errors.Is(err, errClosed) {
			xrpc.WriteError(w, r, s.log, xrpc.Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "server is shutting down"))
			return
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
	sub := &subscriber{
		conn:   conn,
		w:      &frameWriter{nc: conn.UnderlyingConn(), timeout: s.cfg.WriteTimeout},
		remote: r.RemoteAddr,
		pings:  make(chan []byte, 1),
	}
	if !s.register(sub) {
		s.closeConn(sub, websocket.CloseGoingAway, "server shutting down")
		return
	}
	defer s.unregister(sub)

	log := s.log.With("sub", sub.id, "remote", sub.remote)
	if cursor != nil {
		log.Info("firehose subscriber connected", "cursor", *cursor, "from", st.pos)
	} else {
		log.Info("firehose subscriber connected", "from", st.pos)
	}
	began := time.Now()
	reason := s.serve(sub, st)
	log.Info("firehose subscriber disconnected", "reason", reason, "sent", sub.sent, "duration", time.Since(began).Round(time.Millisecond))
}

func (s *Sequencer) register(sub *subscriber) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.nextID++
	sub.id = s.nextID
	s.subs[sub] = struct{}{}
	s.nsubs.Add(1)
	s.wg.Add(1)
	return true
}

func (s *Sequencer) unregister(sub *subscriber) {
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
func (s *Sequencer) closeConn(sub *subscriber, code int, text string) {
	sub.w.control(opClose, closeFrame(code, text))
	sub.conn.Close()
}

// serve runs one subscriber until it ends, and returns why it ended.
func (s *Sequencer) serve(sub *subscriber, st start) string {
	conn := sub.conn
	ctx, cancel := context.WithCancel(s.base)
	defer cancel()

	// Read pump: subscribers send nothing but control frames; reading processes pongs
	// and close frames, and notices a peer that went away. Its handlers never write.
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

	reason := s.pump(ctx, sub, st)
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
func (s *Sequencer) sendError(sub *subscriber, name, message string) {
	frame, err := ErrorFrame(name, message)
	if err != nil {
		return
	}
	sub.w.addFrame(opBinary, frame)
	sub.w.control(opClose, closeFrame(websocket.ClosePolicyViolation, name))
}

// pump sends events until ctx is done (returning "") or the subscriber must go (returning
// the reason).
func (s *Sequencer) pump(ctx context.Context, sub *subscriber, st start) string {
	if st.future {
		s.sendError(sub, ErrFutureCursor, "cursor is ahead of the stream")
		return ErrFutureCursor
	}
	if st.outdated {
		frame, err := InfoFrame(InfoOutdatedCursor, "cursor is older than the oldest kept event; replaying from the oldest")
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
	buf := make([]entry, 0, ringBatch)
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

		ents, state, last, wake := s.ring.read(pos, buf[:0], ringBatch)
		if lag := last - pos; lag <= int64(s.cfg.MaxLag) {
			live = true
		} else if live {
			s.slowDrops.Add(1)
			s.sendError(sub, ErrConsumerTooSlow, fmt.Sprintf("more than %d events behind", s.cfg.MaxLag))
			return ErrConsumerTooSlow
		}
		switch state {
		case ringEntries:
			for i := range ents {
				sub.w.add(ents[i].hdr, ents[i].frame)
				if sub.w.full(s.writeBatch) || i == len(ents)-1 {
					if err := s.flush(sub); err != nil {
						return s.writeFailed(ctx, err)
					}
				}
			}
			pos = ents[len(ents)-1].seq
			clear(ents)
		case ringCaughtUp:
			select {
			case <-ctx.Done():
				return ""
			case <-wake:
				// With many subscribers, waiting a moment lets one write carry the events
				// of several commits: fewer wake-ups and syscalls per delivered event,
				// at a latency cost far below the lag anyone notices.
				if d := s.coalesceDelay(); d > 0 {
					t := time.NewTimer(d)
					select {
					case <-ctx.Done():
						t.Stop()
						return ""
					case <-t.C:
					}
				}
			case <-ping.C:
				if err := sub.w.control(opPing, nil); err != nil {
					return s.writeFailed(ctx, err)
				}
			case p := <-sub.pings:
				if err := sub.w.control(opPong, p); err != nil {
					return s.writeFailed(ctx, err)
				}
			}
		case ringBehind:
			evs, _, err := s.readPage(ctx, pos)
			if err != nil {
				if ctx.Err() != nil {
					return ""
				}
				s.log.Warn("replaying events", "sub", sub.id, "after", pos, "err", err)
				return "source error"
			}
			for i, ev := range evs {
				sub.w.addFrame(opBinary, ev.Frame)
				if sub.w.full(s.writeBatch) || i == len(evs)-1 {
					if err := s.flush(sub); err != nil {
						return s.writeFailed(ctx, err)
					}
				}
				pos = ev.Seq
			}
			if len(evs) == 0 {
				// Nothing after pos although the ring starts later: the gap was pruned
				// meanwhile. Continue from the ring rather than spin.
				pos = max(pos, s.ring.floorSeq())
			}
		}
	}
}

// flush writes the queued frames and counts them.
func (s *Sequencer) flush(sub *subscriber) error {
	n, err := sub.w.flush()
	sub.sent += int64(n)
	return err
}

// writeFailed classifies a failed write: a timeout means the consumer is too slow (the
// connection can take no more writes, so no error frame can follow).
func (s *Sequencer) writeFailed(ctx context.Context, err error) string {
	if ctx.Err() != nil {
		return ""
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		s.slowDrops.Add(1)
		return ErrConsumerTooSlow + " (write timeout)"
	}
	return "write failed: " + err.Error()
}

// coalesceDelay is how long a woken subscriber waits before reading new events: 5 µs
// per connected subscriber, at most 5 ms, none below 100 subscribers.
func (s *Sequencer) coalesceDelay() time.Duration {
	n := s.nsubs.Load()
	if n < 100 {
		return 0
	}
	return min(time.Duration(n)*5*time.Microsecond, 5*time.Millisecond)
}

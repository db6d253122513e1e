// Package sequencer serves com.atproto.sync.subscribeRepos: it fans the firehose events
// the store has made durable out to websocket subscribers.
//
// The store is the queue: every event is a row holding its complete, pre-serialized
// frame. The store closes its Notify channel after each durable batch that appended
// events; one tail goroutine waits on it, reads the new rows and appends them to an
// in-memory ring of recent frames, waking every subscriber by closing a channel. The
// event path runs one way, store to sequencer: the store knows nothing of who listens.
//
// The websocket side (subscribers, ping/pong, cursors, slow consumers, shutdown) is
// internal/stream; the sequencer is its Source. A subscriber is served from the ring
// while its position is inside it and pages from the store when it is behind (cursor
// replay, or a subscriber that fell out of the ring). Nothing on the write path ever
// waits on a subscriber.
package sequencer

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/hearth-social/hearth/internal/stream"
	"github.com/hearth-social/hearth/pds/store"
)

// Source is where events are read from; *store.Store satisfies it.
type Source interface {
	// EventsPage returns events with seq > after, in seq order: at most limit of them,
	// and none after the frames read so far total maxBytes or more (so a page holds at
	// most maxBytes plus one frame; the first event is returned however large it is).
	EventsPage(ctx context.Context, after int64, limit int, maxBytes int64) ([]store.Event, error)
	// OldestEvent returns the lowest kept seq and its time; store.ErrNotFound when empty.
	OldestEvent(ctx context.Context) (int64, time.Time, error)
	// PruneEvents deletes events created before the given time and returns how many.
	PruneEvents(ctx context.Context, before time.Time) (int64, error)
	// LastSeq returns the highest seq ever assigned (0 when none).
	LastSeq(ctx context.Context) (int64, error)
	// Notify returns a channel closed after the next durable batch that appends events
	// (a new channel each time). Take it before reading, so no batch is missed.
	Notify() <-chan struct{}
}

// Config tunes the sequencer. Zero fields take the defaults below.
type Config struct {
	// Retention is how long events are kept for cursor replay (default 72h).
	Retention time.Duration
	// PingInterval is how often subscribers are pinged (default 30s).
	PingInterval time.Duration
	// WriteTimeout bounds every websocket write (default 10s).
	WriteTimeout time.Duration
	// MaxLag is how many events a live subscriber may fall behind before it is
	// disconnected with ConsumerTooSlow (default 10000).
	MaxLag int
	// BufferSize is how many recent frames are kept in memory (default 4096).
	BufferSize int
	// BufferBytes caps the bytes of the frames kept in memory (default 8 MiB): with
	// commits of up to megabytes each, BufferSize alone could pin gigabytes. The oldest
	// frames are dropped first; subscribers behind them replay from the Source.
	BufferBytes int64
	// PageSize is how many events one replay read fetches from the Source (default 500).
	PageSize int
	// PageBytes caps the frame bytes of one read from the Source (default 4 MiB), for
	// the tail and for every replaying subscriber alike.
	PageBytes int64

	// writeBatch caps the frames a subscriber hands to one write (ringBatch unless a
	// benchmark changes it).
	writeBatch int
}

// Defaults for Config (PingInterval, WriteTimeout and MaxLag take internal/stream's).
const (
	DefaultRetention   = 72 * time.Hour
	DefaultBufferSize  = 4096
	DefaultBufferBytes = 8 << 20
	DefaultPageSize    = 500
	DefaultPageBytes   = 4 << 20
)

// retentionInterval is how often RunRetention prunes.
const retentionInterval = 10 * time.Minute

func (c Config) withDefaults() Config {
	if c.Retention <= 0 {
		c.Retention = DefaultRetention
	}
	if c.BufferSize <= 0 {
		c.BufferSize = DefaultBufferSize
	}
	if c.BufferBytes <= 0 {
		c.BufferBytes = DefaultBufferBytes
	}
	if c.PageSize <= 0 {
		c.PageSize = DefaultPageSize
	}
	if c.PageBytes <= 0 {
		c.PageBytes = DefaultPageBytes
	}
	if c.writeBatch <= 0 {
		c.writeBatch = ringBatch
	}
	return c
}

// readPage reads the next page of events after `after` within both page bounds, and
// reports whether the page was cut by a bound (more events may follow at once).
func (s *Sequencer) readPage(ctx context.Context, after int64) ([]store.Event, bool, error) {
	evs, err := s.src.EventsPage(ctx, after, s.cfg.PageSize, s.cfg.PageBytes)
	if err != nil {
		return nil, false, err
	}
	if len(evs) >= s.cfg.PageSize {
		return evs, true, nil
	}
	var n int64
	for i := range evs {
		n += int64(len(evs[i].Frame))
	}
	return evs, n >= s.cfg.PageBytes, nil
}

// ringBatch is how many ring entries a subscriber copies out per lock.
const ringBatch = 128

// Sequencer fans stored firehose events out to websocket subscribers.
type Sequencer struct {
	src  Source
	log  *slog.Logger
	cfg  Config
	srv  *stream.Server
	ring *ring

	// tailCtx is cancelled by Shutdown and stops the tail.
	tailCtx    context.Context
	cancelTail context.CancelFunc

	mu       sync.Mutex
	closed   bool
	tailDone chan struct{} // nil until the tail runs
}

// New returns a Sequencer reading from src. It starts no goroutine: the tail starts
// with the first subscriber and stops in Shutdown.
func New(src Source, log *slog.Logger, cfg Config) *Sequencer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sequencer{
		src:        src,
		log:        log,
		cfg:        cfg,
		ring:       newRing(cfg.BufferSize, cfg.BufferBytes),
		tailCtx:    ctx,
		cancelTail: cancel,
	}
	s.srv = stream.New(feed{s}, stream.Config{
		Method:       "subscribeRepos",
		Kind:         "firehose",
		PingInterval: cfg.PingInterval,
		WriteTimeout: cfg.WriteTimeout,
		MaxLag:       cfg.MaxLag,
		ReadBatch:    ringBatch,
		WriteBatch:   cfg.writeBatch,
		Log:          log,
	})
	return s
}

// ServeHTTP serves GET /xrpc/com.atproto.sync.subscribeRepos.
func (s *Sequencer) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.srv.ServeHTTP(w, r) }

// Subscribers is how many firehose subscribers are connected.
func (s *Sequencer) Subscribers() int { return s.srv.Subscribers() }

// SlowDrops is how many subscribers were disconnected as too slow (ConsumerTooSlow).
func (s *Sequencer) SlowDrops() int64 { return s.srv.SlowDrops() }

// DropThrough forgets the buffered copies of every event with seq <= seq, so subscribers
// read those events from the Source from now on. The PDS calls it after deleting an
// account's events from the store, so the deleted content is not replayed from memory.
func (s *Sequencer) DropThrough(seq int64) {
	s.ring.dropThrough(seq)
}

// startTail starts the tail goroutine on first use, positioning the ring at the current
// last seq. Callers hold no lock.
func (s *Sequencer) startTail(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return stream.ErrClosed
	}
	if s.tailDone != nil {
		return nil
	}
	last, err := s.src.LastSeq(ctx)
	if err != nil {
		return err
	}
	s.ring.reset(last)
	s.tailDone = make(chan struct{})
	go s.runTail(s.tailCtx, last, s.tailDone)
	return nil
}

// runTail reads new events after every durable batch and appends them to the ring.
func (s *Sequencer) runTail(ctx context.Context, after int64, done chan struct{}) {
	defer close(done)
	s.log.Debug("tail started", "seq", after)
	var batch []entry
	for {
		// Taken before reading: a batch committed during the read closes this channel,
		// so it is read at once rather than missed.
		wake := s.src.Notify()
		for {
			evs, full, err := s.readPage(ctx, after)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.log.Warn("reading new events", "after", after, "err", err)
				// Retry without waiting for another batch, but not in a hot loop.
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
				continue
			}
			batch = batch[:0]
			for _, ev := range evs {
				batch = append(batch, entry{Seq: ev.Seq, Header: stream.BinaryHeader(len(ev.Frame)), Frame: ev.Frame})
			}
			s.ring.append(batch)
			if len(evs) > 0 {
				after = evs[len(evs)-1].Seq
			}
			if !full {
				break
			}
		}
		clear(batch)
		select {
		case <-ctx.Done():
			return
		case <-wake:
		}
	}
}

// RunRetention deletes events older than Retention now and every ten minutes, until ctx
// is done.
func (s *Sequencer) RunRetention(ctx context.Context) {
	t := time.NewTicker(retentionInterval)
	defer t.Stop()
	for {
		s.prune(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Sequencer) prune(ctx context.Context) {
	before := time.Now().Add(-s.cfg.Retention)
	n, err := s.src.PruneEvents(ctx, before)
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("pruning events", "before", before, "deleted", n, "err", err)
	case n > 0:
		s.log.Info("pruned events", "before", before, "deleted", n)
	}
}

// Shutdown sends every subscriber a close frame (1001 going away) and waits for their
// goroutines and the tail to end, or for ctx. New subscribers are refused from now on.
func (s *Sequencer) Shutdown(ctx context.Context) {
	s.mu.Lock()
	s.closed = true
	tailDone := s.tailDone
	s.mu.Unlock()
	s.cancelTail()
	s.srv.Shutdown(ctx)
	if tailDone == nil {
		return
	}
	select {
	case <-tailDone:
	case <-ctx.Done():
		s.log.Warn("firehose tail did not stop in time", "err", ctx.Err())
	}
}

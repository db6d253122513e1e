// Package sequencer serves com.atproto.sync.subscribeRepos: it fans the firehose events
// the store has made durable out to websocket subscribers.
//
// The store is the queue: every event is a row holding its complete, pre-serialized
// frame. After each durable batch the store calls Notify. One tail goroutine then reads
// the new rows and appends them to an in-memory ring of recent frames, waking every
// subscriber by closing a channel. Each subscriber goroutine sends from the ring while its
// position is inside it and pages from the Source when it is behind (cursor replay, or a
// subscriber that fell out of the ring). Nothing on the write path ever waits on a
// subscriber: a subscriber more than MaxLag events behind, or whose write takes longer than
// WriteTimeout, is sent ConsumerTooSlow and closed.
package sequencer

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
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
	// BufferBytes caps the bytes of the frames kept in memory (default 32 MiB): with
	// commits of up to megabytes each, BufferSize alone could pin gigabytes. The oldest
	// frames are dropped first; subscribers behind them replay from the Source.
	BufferBytes int64
	// PageSize is how many events one replay read fetches from the Source (default 500).
	PageSize int
	// PageBytes caps the frame bytes of one read from the Source (default 4 MiB), for
	// the tail and for every replaying subscriber alike.
	PageBytes int64
}

// Defaults for Config.
const (
	DefaultRetention    = 72 * time.Hour
	DefaultPingInterval = 30 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultMaxLag       = 10000
	DefaultBufferSize   = 4096
	DefaultBufferBytes  = 32 << 20
	DefaultPageSize     = 500
	DefaultPageBytes    = 4 << 20
)

// Error and info names sent on the stream (subscribeRepos lexicon).
const (
	ErrFutureCursor    = "FutureCursor"
	ErrConsumerTooSlow = "ConsumerTooSlow"
	InfoOutdatedCursor = "OutdatedCursor"
)

// retentionInterval is how often RunRetention prunes.
const retentionInterval = 10 * time.Minute

func (c Config) withDefaults() Config {
	if c.Retention <= 0 {
		c.Retention = DefaultRetention
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

// Sequencer fans stored firehose events out to websocket subscribers.
type Sequencer struct {
	src      Source
	log      *slog.Logger
	cfg      Config
	upgrader websocket.Upgrader
	// writeBatch caps the frames a subscriber hands to one write (ringBatch unless a
	// benchmark changes it).
	writeBatch int

	// notify holds at most one pending wake-up for the tail (Notify never blocks).
	notify chan struct{}
	ring   *ring

	// base is cancelled by Shutdown; every subscriber context derives from it.
	base       context.Context
	cancelBase context.CancelFunc

	mu       sync.Mutex
	closed   bool
	tailDone chan struct{} // nil until the tail runs
	subs     map[*subscriber]struct{}
	nextID   uint64
	wg       sync.WaitGroup // subscriber handlers

	nsubs atomic.Int64 // len(subs), read without the lock

	// Counters (tests and logs).
	slowDrops atomic.Int64
}

// New returns a Sequencer reading from src. It starts no goroutine: the tail starts
// with the first subscriber and stops in Shutdown.
func New(src Source, log *slog.Logger, cfg Config) *Sequencer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	base, cancel := context.WithCancel(context.Background())
	return &Sequencer{
		src: src,
		log: log,
		cfg: cfg,
		upgrader: websocket.Upgrader{
			ReadBufferSize: 1024,
			// Frames are written by frameWriter, not gorilla: a pool means gorilla never
			// allocates its own write buffer.
			WriteBufferPool: &sync.Pool{},
			// The firehose is public and read-only; any origin may subscribe.
			CheckOrigin: func(*http.Request) bool { return true },
		},
		writeBatch: ringBatch,
		notify:     make(chan struct{}, 1),
		ring:       newRing(cfg.BufferSize, cfg.BufferBytes),
		base:       base,
		cancelBase: cancel,
		subs:       make(map[*subscriber]struct{}),
	}
}

// Notify tells the sequencer that events up to lastSeq are durable. It never blocks:
// notifications that arrive while the tail is busy are coalesced into one more read.
func (s *Sequencer) Notify(lastSeq int64) {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// DropThrough forgets the buffered copies of every event with seq <= seq, so subscribers
// read those events from the Source from now on. The PDS calls it after deleting an
// account's events from the store, so the deleted content is not replayed from memory.
func (s *Sequencer) DropThrough(seq int64) {
	s.ring.dropThrough(seq)
}

// errClosed is returned to new subscribers once Shutdown has begun.
var errClosed = errors.New("sequencer is shut down")

// startTail starts the tail goroutine on first use, positioning the ring at the current
// last seq. Callers hold no lock.
func (s *Sequencer) startTail(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
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
	go s.runTail(s.base, last, s.tailDone)
	return nil
}

// runTail reads new events after every notification and appends them to the ring.
func (s *Sequencer) runTail(ctx context.Context, after int64, done chan struct{}) {
	defer close(done)
	s.log.Debug("tail started", "seq", after)
	var batch []entry
	for {
		for {
			evs, full, err := s.readPage(ctx, after)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.log.Warn("reading new events", "after", after, "err", err)
				// Retry without waiting for another Notify, but not in a hot loop.
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
				continue
			}
			batch = batch[:0]
			for _, ev := range evs {
				batch = append(batch, entry{seq: ev.Seq, hdr: appendHeader(nil, opBinary, len(ev.Frame)), frame: ev.Frame})
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
		case <-s.notify:
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
	n := len(s.subs)
	s.mu.Unlock()
	s.log.Info("closing firehose subscribers", "subscribers", n)
	s.cancelBase()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		if tailDone != nil {
			<-tailDone
		}
		close(done)
	}()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	// Out of time: cut the connections still open so their goroutines end promptly.
	s.mu.Lock()
	for sub := range s.subs {
		sub.conn.Close()
	}
	s.mu.Unlock()
	s.log.Warn("firehose shutdown timed out", "err", ctx.Err())
}

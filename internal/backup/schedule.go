package backup

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Scheduler makes a backup every interval inside a running server. New starts nothing;
// the owner runs Run and, after it returned, Close.
type Scheduler struct {
	opts  Options
	every time.Duration
	log   *slog.Logger

	mu      sync.Mutex
	running context.CancelFunc // of the backup in progress, nil when idle
	closed  bool
}

// NewScheduler returns a scheduler that runs Create(opts) every `every`.
func NewScheduler(opts Options, every time.Duration) (*Scheduler, error) {
	if every <= 0 {
		return nil, fmt.Errorf("backup interval must be positive, got %s", every)
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{opts: opts, every: every, log: log}, nil
}

// Run makes the backups until ctx ends. The first one is due `every` after the newest
// backup already in the folder (at once when there is none, or it is older), so
// restarts do not delay backups nor multiply them. A failed backup is logged and
// retried at the next interval; it never stops the server.
func (s *Scheduler) Run(ctx context.Context) error {
	next := time.Now()
	if all, err := List(s.opts.To); err != nil {
		s.log.Warn("scheduled backups: reading the backup folder", "dir", s.opts.To, "err", err)
	} else if len(all) > 0 {
		next = all[len(all)-1].Created.Add(s.every)
	}
	s.log.Info("scheduled backups", "dir", s.opts.To, "every", s.every, "keep", s.opts.Keep, "next", next.UTC().Format(time.RFC3339))
	t := time.NewTimer(time.Until(next))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if !s.once(ctx) {
			return nil
		}
		t.Reset(s.every)
	}
}

// once runs one backup; it reports false when the scheduler was closed.
func (s *Scheduler) once(ctx context.Context) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	bctx, cancel := context.WithCancel(ctx)
	s.running = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = nil
		s.mu.Unlock()
		cancel()
	}()
	if _, err := Create(bctx, s.opts); err != nil && bctx.Err() == nil {
		s.log.Error("scheduled backup failed", "dir", s.opts.To, "err", err)
	}
	return true
}

// Close stops scheduling and cancels a backup in progress (which then leaves nothing
// behind). Run returns soon after.
func (s *Scheduler) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.running != nil {
		s.running()
	}
	return nil
}

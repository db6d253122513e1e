package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"
)

// drainTimeout bounds the whole shutdown: stream close frames, HTTP drain and the end
// of background work share it. Stores are closed after it either way.
const drainTimeout = 10 * time.Second

// runtime runs the components of one command and stops them in one documented order.
// Components are built (New, no goroutines) before they are added; the runtime owns
// every goroutine they run. Run returns when its context ends (SIGINT/SIGTERM) or a
// component fails, after draining:
//
//  1. streams: websocket owners send close frames (http.Server.Shutdown does not track
//     hijacked connections);
//  2. HTTP servers: stop accepting, finish in-flight requests;
//  3. background work (ingest, crawlers, retention): its context is cancelled and
//     the runtime waits for it;
//  4. stores: closed in the reverse of the order they were added.
type runtime struct {
	log      *slog.Logger
	servers  []namedServer
	streams  []namedFunc
	workers  []namedWorker
	closers  []namedCloser
	draining time.Duration
}

type namedServer struct {
	name string
	ln   net.Listener
	srv  *http.Server
}

type namedFunc struct {
	name string
	fn   func(context.Context)
}

type namedWorker struct {
	name string
	run  func(context.Context) error
}

type namedCloser struct {
	name  string
	close func() error
}

func newRuntime(log *slog.Logger) *runtime {
	return &runtime{log: log, draining: drainTimeout}
}

// serveHTTP serves h on ln (with newHTTPServer's timeouts) once Run starts.
func (rt *runtime) serveHTTP(name string, ln net.Listener, h http.Handler) {
	rt.servers = append(rt.servers, namedServer{name: name, ln: ln, srv: newHTTPServer(h)})
}

// stream registers a websocket owner's Shutdown (close frames, bounded by ctx).
func (rt *runtime) stream(name string, shutdown func(context.Context)) {
	rt.streams = append(rt.streams, namedFunc{name, shutdown})
}

// work registers background work: run until ctx ends; an error stops the command.
func (rt *runtime) work(name string, run func(context.Context) error) {
	rt.workers = append(rt.workers, namedWorker{name, run})
}

// closeLast registers a store (or anything holding files) to close at the very end.
func (rt *runtime) closeLast(name string, close func() error) {
	rt.closers = append(rt.closers, namedCloser{name, close})
}

// closeAll closes the registered stores, newest first (also used when start-up fails
// before Run).
func (rt *runtime) closeAll() error {
	var errs []error
	for i := len(rt.closers) - 1; i >= 0; i-- {
		c := rt.closers[i]
		if err := c.close(); err != nil {
			rt.log.Warn("closing", "component", c.name, "err", err)
			errs = append(errs, fmt.Errorf("closing %s: %w", c.name, err))
		}
	}
	rt.closers = nil
	return errors.Join(errs...)
}

// Run starts every server and worker, waits for ctx or the first failure, then drains
// in the order above. It returns the first component error (nil on a clean signal).
func (rt *runtime) Run(ctx context.Context) error {
	defer rt.closeAll()
	// Servers and workers run in one group; its context ends at the first failure.
	// Background work gets a context of its own so it keeps going while HTTP drains
	// (in-flight requests may still write).
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range rt.servers {
		g.Go(func() error {
			if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			return nil
		})
	}
	var work errgroup.Group
	failed := make(chan error, len(rt.workers))
	for _, w := range rt.workers {
		work.Go(func() error {
			err := w.run(workCtx)
			if err != nil && workCtx.Err() == nil {
				err = fmt.Errorf("%s: %w", w.name, err)
				failed <- err
				return err
			}
			return nil
		})
	}

	var cause error
	select {
	case <-gctx.Done():
		cause = context.Cause(gctx)
		if ctx.Err() != nil {
			cause = nil // a signal, not a failure
		}
	case cause = <-failed:
	}
	if cause != nil {
		rt.log.Error("stopping after a failure", "err", cause)
	} else {
		rt.log.Info("shutting down")
	}

	dctx, cancel := context.WithTimeout(context.Background(), rt.draining)
	defer cancel()
	for _, s := range rt.streams {
		s.fn(dctx)
	}
	for _, s := range rt.servers {
		if err := s.srv.Shutdown(dctx); err != nil {
			rt.log.Warn("http shutdown", "server", s.name, "err", err)
			s.srv.Close()
		}
	}
	if err := g.Wait(); err != nil && cause == nil && ctx.Err() == nil {
		cause = err
	}
	stopWork()
	done := make(chan struct{})
	go func() { work.Wait(); close(done) }()
	select {
	case <-done:
	case <-dctx.Done():
		rt.log.Warn("background work did not stop within the drain timeout", "timeout", rt.draining)
		<-done // workers honour their context; a store must not close under them
	}
	return cause
}

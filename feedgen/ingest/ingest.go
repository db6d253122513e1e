// Package ingest feeds the feed generator's index from a firehose.
//
// It dials com.atproto.sync.subscribeRepos (Hearth's own PDS on loopback, another PDS
// or a relay: it only speaks the protocol), verifies every #commit it indexes (the
// signature against the author's DID document with indigo's VerifyCommitSignature, the
// sync 1.1 inductive proof with VerifyCommitMessage, and that the CAR is rooted at the
// announced commit), and turns the ops on posts, likes, reposts, follows and profiles
// into index rows. #account events hide or drop an account's content; #identity purges
// the cached identity so the next commit is checked against the current key.
//
// # Pipeline
//
// One goroutine reads frames; a pool of workers verifies and decodes them in parallel
// (verification is the CPU cost); the calling goroutine takes results back in firehose
// order and writes them in batches: Apply stores a batch's rows and the cursor of its
// last event in one transaction. A batch is flushed as soon as no further event is
// waiting, so latency stays low when the stream is quiet and batches grow under load.
//
// # Failure handling
//
// An event that fails verification or decoding is logged and skipped (its seq still
// moves the cursor: replaying it would fail the same way). Anything else (a closed
// connection, an error frame, a failed write) ends the connection; Run then reconnects
// with capped exponential backoff and jitter, resuming from the stored cursor. Replays
// are harmless: the index skips commits whose rev is not newer than the last applied.
package ingest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/identity"
	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/feedgen/index"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/ipfs/go-cid"
	car "github.com/ipld/go-car"
)

// Config configures an Ingester.
type Config struct {
	// FirehoseURL is the subscribeRepos endpoint (or just the host) to read.
	FirehoseURL string
	// BackfillURL, when set, is a PDS whose repositories (listRepos + getRepo) are read
	// once, beside the live stream, when the index is empty.
	BackfillURL string
	// SkipVerify skips the signature and inductive-proof checks (benchmarks, trusted
	// sources). CAR block hashes and the commit root are still checked.
	SkipVerify bool
	// Workers verify and decode events in parallel (default GOMAXPROCS).
	Workers int
	// MaxBatch caps the events written per transaction (default 1000).
	MaxBatch int
	// Linger is how long a batch waits for more events once none is queued, so that a
	// steady stream of writes shares transactions instead of paying one each (default
	// 20ms; negative: flush as soon as the queue is empty). The index then trails the
	// stream by at most this much more.
	Linger time.Duration
	// MinBackoff and MaxBackoff bound the reconnect delay (defaults 250ms and 30s).
	MinBackoff, MaxBackoff time.Duration
}

// DefaultConfig returns the defaults (FirehoseURL still needs setting).
func DefaultConfig() Config {
	return Config{
		Workers:    runtime.GOMAXPROCS(0),
		MaxBatch:   1000,
		Linger:     20 * time.Millisecond,
		MinBackoff: 250 * time.Millisecond,
		MaxBackoff: 30 * time.Second,
	}
}

// Source yields firehose events; *firehose.Conn is one.
type Source interface {
	Next(ctx context.Context) (*firehose.Event, error)
}

var _ Source = (*firehose.Conn)(nil)

// StreamError is an error frame from the firehose.
type StreamError struct {
	Name    string
	Message string
}

func (e *StreamError) Error() string { return "firehose error frame: " + e.Name + ": " + e.Message }

// ErrInvalid wraps every reason an event is rejected.
var ErrInvalid = errors.New("invalid event")

// Ingester reads a firehose into the index.
type Ingester struct {
	cfg     Config
	idx     *index.Index
	dir     identity.Directory
	log     *slog.Logger
	service string

	written atomic.Int64 // events written to the index
	invalid atomic.Int64 // events rejected
	// applied is the seq of the last event written (or the stored cursor at start);
	// lag how long before its write the last written event with a time was made.
	applied atomic.Int64
	lag     atomic.Int64 // nanoseconds
}

// New builds an Ingester. dir resolves authors' keys (internal/resolve.New in a service).
func New(cfg Config, idx *index.Index, dir identity.Directory, log *slog.Logger) (*Ingester, error) {
	def := DefaultConfig()
	if cfg.Workers <= 0 {
		cfg.Workers = def.Workers
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = def.MaxBatch
	}
	if cfg.Linger == 0 {
		cfg.Linger = def.Linger
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = def.MinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(def.MaxBackoff, cfg.MinBackoff)
	}
	service, err := ServiceKey(cfg.FirehoseURL)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Ingester{cfg: cfg, idx: idx, dir: dir, log: log, service: service}, nil
}

// ServiceKey is the name the cursor of a firehose URL is stored under: the
// subscribeRepos URL without its cursor parameter.
func ServiceKey(firehoseURL string) (string, error) {
	s, err := firehose.SubscribeURL(firehoseURL, nil)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Del("cursor")
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Service is the key this ingester's cursor is stored under (the firehose it reads).
func (in *Ingester) Service() string { return in.service }

// Written is the number of events written to the index so far.
func (in *Ingester) Written() int64 { return in.written.Load() }

// Invalid is the number of events rejected so far.
func (in *Ingester) Invalid() int64 { return in.invalid.Load() }

// AppliedSeq is the firehose seq of the last event written to the index (at start, the
// stored cursor; 0 before either).
func (in *Ingester) AppliedSeq() int64 { return in.applied.Load() }

// Lag is, for the last written event that carries a time, how long after that time it
// was written: how far behind the firehose the index is.
func (in *Ingester) Lag() time.Duration { return time.Duration(in.lag.Load()) }

// eventTime is the time an event says it was made (zero when it has none).
func eventTime(ev *firehose.Event) time.Time {
	var s string
	switch {
	case ev.Commit != nil:
		s = ev.Commit.Time
	case ev.Sync != nil:
		s = ev.Sync.Time
	case ev.Identity != nil:
		s = ev.Identity.Time
	case ev.Account != nil:
		s = ev.Account.Time
	}
	t, err := syntax.ParseDatetimeLenient(s)
	if err != nil {
		return time.Time{}
	}
	return t.Time()
}

// Run reads the firehose until ctx is done, reconnecting after failures, and runs the
// backfill first when one is configured and needed. It returns nil when ctx ends.
func (in *Ingester) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	if in.cfg.BackfillURL != "" {
		need, err := in.needsBackfill(ctx)
		if err != nil {
			return err
		}
		if need {
			wg.Go(func() {
				if err := in.Backfill(ctx); err != nil && ctx.Err() == nil {
					in.log.Error("backfill failed", "pds", in.cfg.BackfillURL, "err", err)
				}
			})
		}
	}
	backoff := in.cfg.MinBackoff
	live := false
	for {
		var cursor *int64
		if !live {
			seq, ok, err := in.idx.Cursor(ctx, in.service)
			if err != nil && ctx.Err() == nil {
				return err
			}
			if ok {
				cursor = &seq
				in.applied.Store(seq)
			}
		}
		live = false
		before := in.written.Load()
		conn, err := firehose.Dial(ctx, in.cfg.FirehoseURL, cursor)
		if err == nil {
			in.log.Info("firehose connected", "url", in.cfg.FirehoseURL, "cursor", fmtCursor(cursor), "cursor_key", in.Service())
			err = in.Consume(ctx, conn)
			conn.Close()
		}
		if ctx.Err() != nil {
			in.log.Info("ingest stopped", "written", in.Written(), "invalid", in.Invalid())
			return nil
		}
		var se *StreamError
		if errors.As(err, &se) && se.Name == "FutureCursor" {
			// The server's sequence is behind our cursor (a reset PDS): start from live;
			// rev checks keep already-indexed commits from applying twice.
			in.log.Warn("firehose says our cursor is in its future; resuming live", "cursor", fmtCursor(cursor))
			live = true
		}
		if in.written.Load() > before {
			backoff = in.cfg.MinBackoff
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		in.log.Warn("firehose disconnected; reconnecting", "err", err, "in", wait.Round(time.Millisecond), "written", in.Written(), "invalid", in.Invalid())
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		backoff = min(2*backoff, in.cfg.MaxBackoff)
	}
}

func fmtCursor(c *int64) any {
	if c == nil {
		return "live"
	}
	return *c
}

// job is one event travelling through the pipeline.
type job struct {
	ev   *firehose.Event
	out  *index.Event
	err  error
	done chan struct{}
}

// Consume processes events from src until it fails or ctx ends, writing them to the
// index in order. It returns src's error (or the first write error); events read before
// the error are written first.
func (in *Ingester) Consume(ctx context.Context, src Source) error {
	writeCtx := ctx // outlives cancel below: a batch read before a failure is still written
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan *job, 4*in.cfg.Workers)
	order := make(chan *job, 2*in.cfg.MaxBatch)
	var readErr error
	var wg sync.WaitGroup
	for range in.cfg.Workers {
		wg.Go(func() {
			for j := range work {
				j.out, j.err = in.process(ctx, j.ev)
				close(j.done)
			}
		})
	}
	go func() {
		defer close(order)
		defer close(work)
		for {
			ev, err := src.Next(ctx)
			if err != nil {
				readErr = err
				return
			}
			j := &job{ev: ev, done: make(chan struct{})}
			select {
			case order <- j:
			case <-ctx.Done():
				readErr = ctx.Err()
				return
			}
			select {
			case work <- j:
			case <-ctx.Done():
				j.err = ctx.Err()
				close(j.done)
				readErr = ctx.Err()
				return
			}
		}
	}()
	defer wg.Wait()

	batch := make([]index.Event, 0, in.cfg.MaxBatch)
	var made time.Time // of the batch's newest event with a time
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := in.idx.Apply(writeCtx, in.service, batch); err != nil {
			return err
		}
		in.written.Add(int64(len(batch)))
		in.applied.Store(batch[len(batch)-1].Seq)
		if !made.IsZero() {
			in.lag.Store(int64(max(time.Since(made), 0)))
		}
		batch, made = batch[:0], time.Time{}
		return nil
	}
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	var started time.Time // when the batch's first event arrived
	for {
		var j *job
		var ok bool
		if len(batch) > 0 && in.cfg.Linger > 0 {
			// Wait for the next event until the batch's linger is over, then flush.
			linger.Reset(max(in.cfg.Linger-time.Since(started), 0))
			select {
			case j, ok = <-order:
				linger.Stop()
			case <-linger.C:
				if err := flush(); err != nil {
					cancel()
					for range order {
					}
					return err
				}
				continue
			}
		} else {
			j, ok = <-order
		}
		if !ok {
			break
		}
		if len(batch) == 0 {
			started = time.Now()
		}
		<-j.done
		if j.err != nil {
			cancel()
			ferr := flush()
			for range order { // let the reader finish
			}
			return errors.Join(j.err, ferr)
		}
		if j.out != nil {
			batch = append(batch, *j.out)
			if t := eventTime(j.ev); !t.IsZero() {
				made = t
			}
		}
		if len(batch) >= in.cfg.MaxBatch || (len(order) == 0 && (in.cfg.Linger <= 0 || time.Since(started) >= in.cfg.Linger)) {
			if err := flush(); err != nil {
				cancel()
				for range order {
				}
				return err
			}
		}
	}
	// order is closed: the reader has stopped and set readErr.
	if err := flush(); err != nil {
		return err
	}
	return readErr
}

// process verifies and decodes one event. It returns an error only for conditions that
// must end the connection; rejected events come back as cursor-only events.
func (in *Ingester) process(ctx context.Context, ev *firehose.Event) (*index.Event, error) {
	out := &index.Event{Seq: ev.Seq}
	switch ev.Type {
	case firehose.TypeError:
		return nil, &StreamError{Name: ev.Error.Error, Message: ev.Error.Message}
	case firehose.TypeInfo:
		msg := ""
		if ev.Info.Message != nil {
			msg = *ev.Info.Message
		}
		in.log.Warn("firehose info", "name", ev.Info.Name, "message", msg)
		return nil, nil
	}
	did, err := syntax.ParseDID(ev.DID())
	if err != nil {
		in.reject(ev, err)
		return out, nil
	}
	switch ev.Type {
	case firehose.TypeCommit:
		c, err := in.commit(ctx, did, ev.Commit)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			in.reject(ev, err)
			return out, nil
		}
		out.Commit = c
	case firehose.TypeSync:
		if !in.cfg.SkipVerify {
			if _, err := indigorepo.VerifySyncMessage(ctx, in.dir, ev.Sync); err != nil {
				in.reject(ev, err)
				return out, nil
			}
		}
		// Hearth does not re-read a reset repository yet: newer commits apply on top.
		in.log.Info("repository reset (#sync)", "did", did, "rev", ev.Sync.Rev)
		out.Sync = &index.Sync{DID: did.String(), Rev: ev.Sync.Rev}
	case firehose.TypeIdentity:
		if err := in.dir.Purge(ctx, did.AtIdentifier()); err != nil {
			in.log.Warn("purging identity", "did", did, "err", err)
		}
		id := &index.Identity{DID: did.String()}
		if ev.Identity.Handle != nil {
			id.Handle = *ev.Identity.Handle
		}
		out.Identity = id
	case firehose.TypeAccount:
		a := &index.Account{DID: did.String(), Active: ev.Account.Active}
		if ev.Account.Status != nil {
			a.Status = *ev.Account.Status
		}
		out.Account = a
	}
	return out, nil
}

func (in *Ingester) reject(ev *firehose.Event, err error) {
	in.invalid.Add(1)
	in.log.Warn("skipping invalid firehose event", "seq", ev.Seq, "type", ev.Type, "did", ev.DID(), "err", err)
}

// commit verifies a #commit and extracts its wanted ops. A commit that touches none of
// the indexed collections returns nil: it is neither verified nor recorded.
func (in *Ingester) commit(ctx context.Context, did syntax.DID, c *comatproto.SyncSubscribeRepos_Commit) (*index.Commit, error) {
	if _, err := syntax.ParseTID(c.Rev); err != nil {
		return nil, fmt.Errorf("%w: rev: %w", ErrInvalid, err)
	}
	wanted := false
	for _, op := range c.Ops {
		if coll, _, err := syntax.ParseRepoPath(op.Path); err == nil && Wanted(coll.String()) {
			wanted = true
			break
		}
	}
	if !wanted {
		return nil, nil
	}
	if c.TooBig {
		return nil, fmt.Errorf("%w: tooBig commits carry no blocks", ErrInvalid)
	}
	var get func(cid.Cid) ([]byte, bool)
	if in.cfg.SkipVerify {
		root, blocks, err := readCAR(c.Blocks)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if !root.Equals(cid.Cid(c.Commit)) {
			return nil, fmt.Errorf("%w: CAR root %s is not the commit %s", ErrInvalid, root, cid.Cid(c.Commit))
		}
		get = func(k cid.Cid) ([]byte, bool) { b, ok := blocks[k]; return b, ok }
	} else {
		root, err := carRoot(c.Blocks)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if !root.Equals(cid.Cid(c.Commit)) {
			return nil, fmt.Errorf("%w: CAR root %s is not the commit %s", ErrInvalid, root, cid.Cid(c.Commit))
		}
		if err := in.verifySignature(ctx, did, c); err != nil {
			return nil, fmt.Errorf("%w: signature: %w", ErrInvalid, err)
		}
		repo, err := indigorepo.VerifyCommitMessage(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		get = func(k cid.Cid) ([]byte, bool) {
			blk, err := repo.RecordStore.Get(ctx, k)
			if err != nil {
				return nil, false
			}
			return blk.RawData(), true
		}
	}
	out := &index.Commit{DID: did.String(), Rev: c.Rev}
	for _, op := range c.Ops {
		coll, rkey, err := syntax.ParseRepoPath(op.Path)
		if err != nil || !Wanted(coll.String()) {
			continue
		}
		o := index.Op{Action: index.Action(op.Action), Collection: coll.String(), RKey: rkey.String()}
		switch o.Action {
		case index.ActionCreate, index.ActionUpdate:
			if op.Cid == nil {
				continue
			}
			k := cid.Cid(*op.Cid)
			o.CID = k.String()
			data, ok := get(k)
			if !ok {
				in.log.Warn("commit op without its record block", "did", did, "path", op.Path)
				continue
			}
			rec, err := DecodeRecord(o.Collection, data)
			if err != nil {
				in.log.Debug("skipping undecodable record", "did", did, "path", op.Path, "err", err)
				if o.Action == index.ActionUpdate {
					o.Action, o.CID = index.ActionDelete, "" // do not keep serving the old version
					break
				}
				continue
			}
			o.Record = rec
		case index.ActionDelete:
		default:
			continue
		}
		out.Ops = append(out.Ops, o)
	}
	return out, nil
}

// verifySignature checks the commit signature. A failure purges the cached identity
// and tries again (the key may have rotated); resolution failures are retried a few
// times with backoff before the event is given up.
func (in *Ingester) verifySignature(ctx context.Context, did syntax.DID, c *comatproto.SyncSubscribeRepos_Commit) error {
	err := indigorepo.VerifyCommitSignature(ctx, in.dir, c)
	for attempt := 0; err != nil && attempt < 4; attempt++ {
		if attempt > 0 {
			if !errors.Is(err, identity.ErrDIDResolutionFailed) {
				return err
			}
			t := time.NewTimer(time.Duration(100<<attempt) * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		in.dir.Purge(ctx, did.AtIdentifier())
		err = indigorepo.VerifyCommitSignature(ctx, in.dir, c)
	}
	return err
}

// carRoot reads the root CID from a CAR header.
func carRoot(b []byte) (cid.Cid, error) {
	h, err := car.ReadHeader(bufio.NewReaderSize(bytes.NewReader(b), 256))
	if err != nil {
		return cid.Undef, fmt.Errorf("reading CAR header: %w", err)
	}
	if h.Version != 1 || len(h.Roots) != 1 {
		return cid.Undef, fmt.Errorf("CAR header: version %d with %d roots, want 1 and 1", h.Version, len(h.Roots))
	}
	return h.Roots[0], nil
}

// readCAR reads every block of a CAR; go-car checks each block against its CID.
func readCAR(b []byte) (cid.Cid, map[cid.Cid][]byte, error) {
	cr, err := car.NewCarReader(bytes.NewReader(b))
	if err != nil {
		return cid.Undef, nil, fmt.Errorf("reading CAR: %w", err)
	}
	if len(cr.Header.Roots) != 1 {
		return cid.Undef, nil, fmt.Errorf("CAR has %d roots, want 1", len(cr.Header.Roots))
	}
	blocks := make(map[cid.Cid][]byte, 8)
	for {
		blk, err := cr.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return cid.Undef, nil, fmt.Errorf("reading CAR: %w", err)
		}
		blocks[blk.Cid()] = blk.RawData()
	}
	return cr.Header.Roots[0], blocks, nil
}

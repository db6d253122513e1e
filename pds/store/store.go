// Package store is the PDS's SQLite storage and the only PDS package that writes SQL.
//
// Writes go through one goroutine that group-commits: concurrent callers' write
// functions run in order inside one BEGIN IMMEDIATE transaction and the batch is made
// durable with a single COMMIT (one WAL fsync at synchronous=FULL). There are no
// savepoints: when one job fails, the batch is rolled back and redone without it (see
// runBatch). A caller's Write returns only after that
// COMMIT, so an acknowledged write is durable. Firehose events are appended in the same
// transaction as the repo change they announce; their seq is assigned here, by the one
// writer, so the stored frame can carry its own seq.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	"github.com/hearth-social/hearth/internal/sqlitedb"
	"github.com/prometheus/client_golang/prometheus"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrClosed is returned for writes submitted after Close.
var ErrClosed = errors.New("store is closed")

// Store is the PDS database.
type Store struct {
	db  *sqlitedb.DB
	log *slog.Logger

	jobs    chan *job
	done    chan struct{}
	closeMu sync.RWMutex
	closed  bool

	// lastSeq is owned by the writer goroutine.
	lastSeq int64
	// notify is closed, and replaced, by the writer after each durable batch that
	// appended events (see Notify).
	notifyMu sync.Mutex
	notify   chan struct{}
	// recent is the newest durable events in memory (events_recent.go; under notifyMu).
	recent recentWindow

	rd readStmts
	// wstmts are prepared statements on the writer connection (writer goroutine only).
	wstmts    map[string]*sql.Stmt
	toPrepare []string

	ckStop context.CancelFunc
	ckDone chan struct{}

	metrics *storeMetrics
}

// Options configures Open.
type Options struct {
	// Synchronous is passed to SQLite ("FULL" unless set).
	Synchronous string
	// MaxBatch caps how many jobs share one transaction (default 256).
	MaxBatch int
	// Metrics receives the group-commit metrics (nil: a private registry).
	Metrics prometheus.Registerer
}

type job struct {
	ctx  context.Context
	fn   func(*Tx) error
	done chan error
}

// Open opens the database at path, applying migrations, and starts the writer.
func Open(ctx context.Context, path string, log *slog.Logger, opts Options) (*Store, error) {
	mig, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	db, err := sqlitedb.Open(ctx, path, mig, sqlitedb.Options{Synchronous: opts.Synchronous, BackgroundCheckpoint: true})
	if err != nil {
		return nil, err
	}
	s := &Store{
		db:     db,
		log:    log,
		jobs:   make(chan *job, 1024),
		done:   make(chan struct{}),
		notify: make(chan struct{}),
		wstmts: map[string]*sql.Stmt{},
	}
	if err := db.Write.QueryRowContext(ctx, `SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)`).Scan(&s.lastSeq); err != nil {
		db.Close()
		return nil, fmt.Errorf("reading last seq: %w", err)
	}
	s.recent.durable = s.lastSeq
	s.metrics = newStoreMetrics(opts.Metrics, s.DurableSeq)
	if err := s.rd.prepare(ctx, db.Read); err != nil {
		db.Close()
		return nil, err
	}
	maxBatch := opts.MaxBatch
	if maxBatch <= 0 {
		maxBatch = 256
	}
	go s.writer(maxBatch)
	s.ckDone = make(chan struct{})
	ckctx, cancel := context.WithCancel(context.Background())
	s.ckStop = cancel
	go s.checkpointer(ckctx)
	return s, nil
}

// checkpointer moves committed WAL pages into the database file in the background, so
// commits never pay for it; hot pages rewritten by many commits are copied once per
// pass. If the WAL still grows past walTruncateBytes (readers kept it from resetting), it
// waits for readers and truncates it.
func (s *Store) checkpointer(ctx context.Context) {
	defer close(s.ckDone)
	const walCheckpointBytes = 16 << 20
	const walTruncateBytes = 256 << 20
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		size := s.db.WALSize()
		if size < walCheckpointBytes {
			continue
		}
		if err := s.db.Checkpoint(ctx, size > walTruncateBytes); err != nil && ctx.Err() == nil {
			s.log.Warn("WAL checkpoint", "err", err)
		}
	}
}

// Notify returns a channel that is closed after the next durable batch that appends
// firehose events; each batch swaps in a new channel (litestream's db.Notify pattern).
// Readers take the channel before reading the events, so a batch committed meanwhile
// wakes them instead of being missed. The store never waits on anyone to announce a
// batch, and needs to know nothing about who listens.
func (s *Store) Notify() <-chan struct{} {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	return s.notify
}

// Close stops the writer (after pending jobs finish) and closes the database.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.jobs)
	s.closeMu.Unlock()
	<-s.done
	s.ckStop()
	<-s.ckDone
	s.rd.close()
	for _, st := range s.wstmts {
		if st != nil {
			st.Close()
		}
	}
	return s.db.Close()
}

// LastSeq returns the highest event seq ever assigned (durable).
func (s *Store) LastSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := s.db.Read.QueryRowContext(ctx, `SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)`).Scan(&seq)
	return seq, err
}

// Write runs fn inside a group-committed transaction and returns once the transaction is
// durable (or fn / the commit failed). fn must only use the Tx; it may run on another
// goroutine. If fn returns an error, its changes are rolled back and the error returned.
func (s *Store) Write(ctx context.Context, fn func(*Tx) error) error {
	j := &job{ctx: ctx, fn: fn, done: make(chan error, 1)}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	select {
	case s.jobs <- j:
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return ctx.Err()
	}
	s.closeMu.RUnlock()
	// Once queued, the job runs to completion: waiting here regardless of ctx keeps the
	// caller's view (error or success) equal to what is on disk.
	return <-j.done
}

func (s *Store) writer(maxBatch int) {
	defer close(s.done)
	batch := make([]*job, 0, maxBatch)
	for {
		j, ok := <-s.jobs
		if !ok {
			return
		}
		batch = append(batch[:0], j)
	fill:
		for len(batch) < maxBatch {
			select {
			case j, ok := <-s.jobs:
				if !ok {
					break fill
				}
				batch = append(batch, j)
			default:
				break fill
			}
		}
		s.runBatch(batch)
		if len(s.toPrepare) > 0 {
			s.prepareQueued()
		}
	}
}

// runBatch commits jobs in as few transactions as possible. Jobs run in order inside one
// transaction without savepoints (a savepoint makes SQLite journal every page it
// touches); if job i fails, the transaction is rolled back, the jobs before it are
// committed again as a batch, job i gets its error (it would fail the same way on the
// same state), and the jobs after it form the next batch. Job functions must therefore
// depend only on the database state, which holds for every Write caller.
func (s *Store) runBatch(jobs []*job) {
	for len(jobs) > 0 {
		failed, err := s.tryBatch(jobs)
		switch {
		case failed < 0 && err == nil:
			return
		case failed < 0:
			for _, j := range jobs {
				j.done <- err
			}
			return
		}
		s.runBatch(jobs[:failed])
		jobs[failed].done <- err
		jobs = jobs[failed+1:]
	}
}

// tryBatch runs jobs in one transaction. It returns (-1, nil) when everything committed
// (results delivered), (i, err) when job i failed (all rolled back, nothing delivered),
// or (-1, err) when the transaction itself failed.
func (s *Store) tryBatch(jobs []*job) (int, error) {
	ctx := context.Background()
	startSeq := s.lastSeq
	s.recent.reset()
	begun := time.Now()
	tx, err := s.db.Write.BeginTx(ctx, nil)
	if err != nil {
		s.metrics.failures.Inc()
		return -1, fmt.Errorf("begin: %w", err)
	}
	results := make([]error, len(jobs))
	wrote := false
	now := time.Now()
	for i, j := range jobs {
		if err := j.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		t := &Tx{tx: tx, s: s, ctx: ctx, now: now}
		if err := safeRun(j.fn, t); err != nil {
			tx.Rollback()
			s.lastSeq = startSeq
			return i, err
		}
		wrote = true
	}
	if !wrote {
		tx.Rollback()
	} else if err := tx.Commit(); err != nil {
		s.lastSeq = startSeq
		s.metrics.failures.Inc()
		s.log.Error("group commit failed", "jobs", len(jobs), "err", err)
		return -1, fmt.Errorf("commit: %w", err)
	} else {
		s.metrics.committed(len(jobs), begun)
	}
	// Published before the jobs hear they are done: a writer that reads the log right
	// after its Write returns must find its events (the window would otherwise still
	// claim the old durable seq and answer "nothing new").
	if s.lastSeq > startSeq || len(s.recent.purged) > 0 || s.recent.pruned > 0 {
		s.notifyMu.Lock()
		s.recent.publish(s.lastSeq)
		if s.lastSeq > startSeq {
			close(s.notify)
			s.notify = make(chan struct{})
		}
		s.notifyMu.Unlock()
	}
	for i, j := range jobs {
		j.done <- results[i]
	}
	return -1, nil
}

func safeRun(fn func(*Tx) error, t *Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in write job: %v", r)
		}
	}()
	return fn(t)
}

// Tx is a write transaction handed to a Write job.
type Tx struct {
	tx  *sql.Tx
	s   *Store
	ctx context.Context
	now time.Time
}

// Now is the time the job started; use it for created_at values.
func (t *Tx) Now() time.Time { return t.now }

func (t *Tx) exec(query string, args ...any) (sql.Result, error) {
	if st := t.s.writeStmt(query); st != nil {
		return t.tx.StmtContext(t.ctx, st).ExecContext(t.ctx, args...)
	}
	return t.tx.ExecContext(t.ctx, query, args...)
}

func (t *Tx) queryRow(query string, args ...any) *sql.Row {
	if st := t.s.writeStmt(query); st != nil {
		return t.tx.StmtContext(t.ctx, st).QueryRowContext(t.ctx, args...)
	}
	return t.tx.QueryRowContext(t.ctx, query, args...)
}

// writeStmt returns the writer connection's prepared statement for query, or nil the
// first time a query is seen: it cannot be prepared then, because the transaction holds
// the only writer connection. The query is queued and prepared between transactions
// (prepareQueued). Only the writer goroutine calls these.
func (s *Store) writeStmt(query string) *sql.Stmt {
	st, ok := s.wstmts[query]
	if !ok {
		s.wstmts[query] = nil
		s.toPrepare = append(s.toPrepare, query)
	}
	return st
}

func (s *Store) prepareQueued() {
	for _, q := range s.toPrepare {
		st, err := s.db.Write.PrepareContext(context.Background(), q)
		if err != nil {
			s.log.Warn("preparing statement", "query", q, "err", err)
			continue
		}
		s.wstmts[q] = st
	}
	s.toPrepare = s.toPrepare[:0]
}

// AppendEvent appends a firehose event. encode receives the event's seq and returns
// the stored frame bytes.
func (t *Tx) AppendEvent(did, kind string, encode func(seq int64) ([]byte, error)) (int64, error) {
	seq := t.s.lastSeq + 1
	frame, err := encode(seq)
	if err != nil {
		return 0, fmt.Errorf("encoding %s event: %w", kind, err)
	}
	if _, err := t.exec(`INSERT INTO events (seq, did, kind, created_ms, frame) VALUES (?, ?, ?, ?, ?)`,
		seq, did, kind, t.now.UnixMilli(), frame); err != nil {
		return 0, fmt.Errorf("appending %s event: %w", kind, err)
	}
	t.s.lastSeq = seq
	t.s.recent.stage(did, Event{Seq: seq, Kind: kind, Frame: frame})
	return seq, nil
}

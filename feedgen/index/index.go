// Package index is the feed generator's own SQLite database: posts, likes, reposts,
// follows, profiles, account status, classifications and the firehose cursor.
//
// # Writes
//
// Apply writes a batch of firehose events and the cursor that covers them in one
// transaction, so a crash either keeps both or neither: the cursor never passes an event
// that was not indexed, and an event is never indexed twice under a stale cursor.
// Replays are harmless anyway: a commit whose rev is not newer than the last rev applied
// for that repository is skipped, and every row is keyed by its AT-URI.
//
// Per-post like, repost and reply counts change only when a row is really inserted or
// deleted, so they stay exact under replay. A post that arrives after its likes (another
// PDS, backfill order) counts the likes already stored when it is inserted.
//
// # Reads
//
// Feed queries page by posts.seq, a sequence that only grows: new posts get larger
// values, so a keyset cursor "seq < N" never repeats or skips a post while the index
// keeps growing (see feedgen/rank for the cursor encoding).
package index

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearth-social/hearth/internal/sqlitedb"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// timeLayout is how timestamps are stored: fixed width, so they sort as text.
const timeLayout = "2006-01-02T15:04:05.000Z"

// Options tunes Open.
type Options struct {
	// Synchronous is SQLite's synchronous level. The default, NORMAL, cannot corrupt or
	// split a transaction (WAL), and a power cut can only roll back the last
	// transactions, cursor included, which are then replayed from the firehose.
	Synchronous string
	// Readers is the size of the read pool (0: sqlitedb's default).
	Readers int
	// ClassifyText, when set, classifies posts without media as they are indexed
	// (TextClassifier); the others wait for the classification worker.
	ClassifyText TextClassifier
}

// Index is an open index database. Its methods are safe for concurrent use; writes are
// serialised on one connection.
type Index struct {
	db *sqlitedb.DB
	// now is the clock used for indexed_at; tests replace it.
	now func() time.Time
	// follow is the following feed's memory index (following.go).
	follow *followIndex
	// lessViewers holds the viewers who have asked to see less (interactions.go).
	lessViewers sync.Map
	// recentFirst is the kept first page of RecentPosts (read.go).
	recentFirst atomic.Pointer[recentPage]
	// changes wakes the classification worker after each Apply (see Changed).
	changes notifier
	// writeStmts are Apply's statements, prepared once on the write connection and
	// bound to each transaction (preparing them per batch cost more than running them).
	stmtMu     sync.Mutex
	writeStmts map[string]*sql.Stmt
	// classifyText is Options.ClassifyText.
	classifyText TextClassifier
}

// writeStmt returns q prepared on the write connection, if it has been.
func (ix *Index) writeStmt(q string) *sql.Stmt {
	ix.stmtMu.Lock()
	defer ix.stmtMu.Unlock()
	return ix.writeStmts[q]
}

// prepareWrites prepares qs on the write connection for later transactions. It must run
// outside a transaction: the write pool has one connection, which a transaction holds.
func (ix *Index) prepareWrites(ctx context.Context, qs []string) {
	for _, q := range qs {
		if ix.writeStmt(q) != nil {
			continue
		}
		s, err := ix.db.Write.PrepareContext(ctx, q)
		if err != nil {
			continue // the transaction that wanted it prepared it itself, and will again
		}
		ix.stmtMu.Lock()
		if ix.writeStmts == nil {
			ix.writeStmts = map[string]*sql.Stmt{}
		}
		if ix.writeStmts[q] == nil {
			ix.writeStmts[q] = s
		} else {
			s.Close()
		}
		ix.stmtMu.Unlock()
	}
}

// Open opens or creates the index at path and applies the migrations.
func Open(ctx context.Context, path string, opts Options) (*Index, error) {
	sync := opts.Synchronous
	if sync == "" {
		sync = "NORMAL"
	}
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	db, err := sqlitedb.Open(ctx, path, sub, sqlitedb.Options{Synchronous: sync, Readers: opts.Readers, ReaderMmapBytes: 1 << 30})
	if err != nil {
		return nil, fmt.Errorf("feed index: %w", err)
	}
	// Ingest writes batches that touch many pages: checkpoint the WAL every ~32 MiB
	// rather than every 4 MiB, so a page rewritten by many batches is copied back once.
	// The writer pool is one long-lived connection, so the setting sticks; if that
	// connection were ever replaced, the default would only cost speed.
	if _, err := db.Write.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 8000`); err != nil {
		db.Close()
		return nil, fmt.Errorf("feed index: %w", err)
	}
	ix := &Index{db: db, now: time.Now, classifyText: opts.ClassifyText}
	if ix.follow, err = loadFollowIndex(ctx, ix); err != nil {
		db.Close()
		return nil, err
	}
	if err := ix.loadLessViewers(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return ix, nil
}

// Close closes the database.
func (ix *Index) Close() error {
	ix.stmtMu.Lock()
	for _, s := range ix.writeStmts {
		s.Close()
	}
	ix.writeStmts = nil
	ix.stmtMu.Unlock()
	return ix.db.Close()
}

// DB exposes the underlying database to packages that add their own tables' queries
// (the classifier writes the classifications table).
func (ix *Index) DB() *sqlitedb.DB { return ix.db }

// Cursor returns the last firehose seq stored for service, and false when none is.
func (ix *Index) Cursor(ctx context.Context, service string) (int64, bool, error) {
	var seq int64
	err := ix.db.Read.QueryRowContext(ctx, `SELECT seq FROM cursors WHERE service = ?`, service).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("reading cursor: %w", err)
	}
	return seq, true, nil
}

// IsEmpty reports whether the index has never stored a cursor or an account.
func (ix *Index) IsEmpty(ctx context.Context) (bool, error) {
	var n int
	err := ix.db.Read.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM cursors) + (SELECT count(*) FROM (SELECT 1 FROM accounts LIMIT 1))`).Scan(&n)
	if err != nil {
		return false, err
	}
	return n == 0, nil
}

// Meta returns a value from the meta table ("" when unset).
func (ix *Index) Meta(ctx context.Context, key string) (string, error) {
	var v string
	err := ix.db.Read.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// SetMeta stores a value in the meta table.
func (ix *Index) SetMeta(ctx context.Context, key, value string) error {
	_, err := ix.db.Write.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return err
}

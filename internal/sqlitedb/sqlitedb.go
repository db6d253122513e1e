// Package sqlitedb opens SQLite databases the way every Hearth component wants them:
// WAL, synchronous=FULL, foreign keys and a busy timeout set in the DSN (so every pooled
// connection gets them), one writer connection and a separate reader pool, and embedded
// SQL migrations applied in order, each in its own transaction.
package sqlitedb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"

	"github.com/hearth-social/hearth/internal/datadir"
	"github.com/mattn/go-sqlite3" // also registers the "sqlite3" driver
)

// DB is a SQLite database with a single-connection writer and a reader pool.
type DB struct {
	// Write is the only connection that writes; transactions on it are BEGIN IMMEDIATE.
	Write *sql.DB
	// Read is a pool of read-only connections (WAL lets them run beside the writer).
	Read *sql.DB
	// Checkpointer is a connection for background WAL checkpoints (nil unless
	// Options.BackgroundCheckpoint).
	Checkpointer *sql.DB

	file string
}

// Options tunes Open. The zero value is durable (synchronous=FULL).
type Options struct {
	// Synchronous is the SQLite synchronous level: "FULL" (default) or "NORMAL".
	Synchronous string
	// Readers is the size of the read pool (default 2*GOMAXPROCS, at least 4).
	Readers int
	// CacheKiB is the page cache of the writer connection in KiB (default 4096); each
	// reader gets an eighth of it (readers share the OS page cache anyway).
	CacheKiB int
	// BackgroundCheckpoint turns off SQLite's automatic checkpoints on the writer (which
	// run inside a committing transaction) and opens DB.Checkpointer, a separate
	// connection for running them from a background goroutine (see Checkpoint).
	BackgroundCheckpoint bool
	// ReaderMmapBytes, when non-zero, lets each reader connection read the file through
	// a shared memory map of up to that many bytes (PRAGMA mmap_size) instead of read()
	// calls into its own page cache: faster random reads of a large database, at the
	// price of mapped pages counting in the process's resident size.
	ReaderMmapBytes int64
}

// connector opens connections of one DSN on the sqlite3 driver, running setup on each
// new connection (pragmas that cannot be set in the DSN).
type connector struct {
	drv *sqlite3.SQLiteDriver
	dsn string
}

func (c connector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c connector) Driver() driver.Driver                        { return c.drv }

func openReaders(dsn string, mmap int64) *sql.DB {
	drv := &sqlite3.SQLiteDriver{}
	if mmap > 0 {
		drv.ConnectHook = func(conn *sqlite3.SQLiteConn) error {
			_, err := conn.Exec(fmt.Sprintf("PRAGMA mmap_size = %d", mmap), nil)
			return err
		}
	}
	return sql.OpenDB(connector{drv: drv, dsn: dsn})
}

func dsn(file string, opts Options, readOnly bool) string {
	return dsnCache(file, opts, readOnly, 0)
}

// dsnCache builds the DSN; cacheKiB overrides the page cache size when non-zero.
func dsnCache(file string, opts Options, readOnly bool, cacheKiB int) string {
	sync := opts.Synchronous
	if sync == "" {
		sync = "FULL"
	}
	cache := opts.CacheKiB
	if cache == 0 {
		cache = 4096
	}
	if readOnly {
		cache /= 8
	}
	if cacheKiB > 0 {
		cache = cacheKiB
	}
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", sync)
	q.Set("_foreign_keys", "on")
	q.Set("_busy_timeout", "10000")
	q.Set("_cache_size", fmt.Sprintf("-%d", cache))
	// Each connection keeps its most recent statements prepared (the driver's statement
	// cache, keyed by the SQL text): a query run through database/sql without Prepare
	// is otherwise parsed and planned by SQLite on every call, which cost more than
	// running it for the small lookups that make up most reads.
	q.Set("_stmt_cache_size", "64")
	if readOnly {
		q.Set("mode", "ro")
		q.Set("_query_only", "true")
	} else {
		q.Set("_txlock", "immediate")
	}
	return "file:" + file + "?" + q.Encode()
}

// Open opens (creating if needed) the database file and applies the migrations found
// in migrations (files named NNN_name.sql, applied in lexical order, each once).
//
// The file and its -wal and -shm companions are created 0600 (and tightened to it when
// they already exist): a Hearth database holds keys and password hashes.
func Open(ctx context.Context, file string, migrations fs.FS, opts Options) (*DB, error) {
	if err := datadir.CreatePrivate(file); err != nil {
		return nil, fmt.Errorf("open %s: %w", file, err)
	}
	w, err := sql.Open("sqlite3", dsn(file, opts, false))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", file, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", file, err)
	}
	if !strings.EqualFold(mode, "wal") {
		w.Close()
		return nil, fmt.Errorf("open %s: journal_mode is %q, want wal", file, mode)
	}
	// SQLite gives new -wal/-shm files the database file's mode; files left by an earlier
	// run with looser modes are tightened here.
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := datadir.TightenIfExists(file + suffix); err != nil {
			w.Close()
			return nil, fmt.Errorf("open %s: %w", file, err)
		}
	}
	if opts.BackgroundCheckpoint {
		// The writer has exactly one long-lived connection, so this reaches it for good.
		if _, err := w.ExecContext(ctx, "PRAGMA wal_autocheckpoint=0"); err != nil {
			w.Close()
			return nil, fmt.Errorf("open %s: %w", file, err)
		}
	}
	if migrations != nil {
		if err := migrate(ctx, w, migrations); err != nil {
			w.Close()
			return nil, fmt.Errorf("migrate %s: %w", file, err)
		}
	}
	r := openReaders(dsn(file, opts, true), opts.ReaderMmapBytes)
	n := opts.Readers
	if n == 0 {
		n = max(4, 2*runtime.GOMAXPROCS(0))
	}
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	db := &DB{Write: w, Read: r, file: file}
	if opts.BackgroundCheckpoint {
		// Checkpointing streams WAL frames into the file; it needs almost no cache.
		c, err := sql.Open("sqlite3", dsnCache(file, opts, false, 256))
		if err != nil {
			w.Close()
			r.Close()
			return nil, fmt.Errorf("open %s: %w", file, err)
		}
		c.SetMaxOpenConns(1)
		c.SetMaxIdleConns(1)
		db.Checkpointer = c
	}
	return db, nil
}

// WALSize returns the current size of the write-ahead log file in bytes.
func (db *DB) WALSize() int64 {
	fi, err := os.Stat(db.file + "-wal")
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Checkpoint copies committed WAL pages into the database file without blocking the
// writer or readers (PASSIVE), or, with truncate, waits for readers and resets the WAL.
func (db *DB) Checkpoint(ctx context.Context, truncate bool) error {
	if db.Checkpointer == nil {
		return nil
	}
	mode := "PASSIVE"
	if truncate {
		mode = "TRUNCATE"
	}
	_, err := db.Checkpointer.ExecContext(ctx, "PRAGMA wal_checkpoint("+mode+")")
	return err
}

// Close closes both pools.
func (db *DB) Close() error {
	if db.Checkpointer != nil {
		db.Checkpointer.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)")
		db.Checkpointer.Close()
	}
	err1 := db.Read.Close()
	err2 := db.Write.Close()
	if err1 != nil {
		return err1
	}
	return err2
}

func migrate(ctx context.Context, db *sql.DB, migrations fs.FS) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))`); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		base := path.Base(name)
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE name = ?`, base).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		body, err := fs.ReadFile(migrations, name)
		if err != nil {
			return err
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("%s: %w", base, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name) VALUES (?)`, base); err != nil {
			tx.Rollback()
			return fmt.Errorf("%s: %w", base, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("%s: %w", base, err)
		}
	}
	return nil
}

// IsUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY constraint failure,
// matched by SQLite's extended error code. With columns ("table.column"), it must be a
// failure on one of them: SQLite reports the columns only in the message
// ("UNIQUE constraint failed: accounts.handle"), so that part is read from it.
func IsUniqueViolation(err error, columns ...string) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) || (se.ExtendedCode != sqlite3.ErrConstraintUnique && se.ExtendedCode != sqlite3.ErrConstraintPrimaryKey) {
		return false
	}
	if len(columns) == 0 {
		return true
	}
	_, failed, _ := strings.Cut(se.Error(), "constraint failed: ")
	for _, f := range strings.Split(failed, ",") {
		for _, c := range columns {
			if strings.TrimSpace(f) == c {
				return true
			}
		}
	}
	return false
}

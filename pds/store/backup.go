package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
)

// SnapshotStats is what a backup records about a snapshot of the PDS database.
type SnapshotStats struct {
	// Seq is the highest firehose seq ever assigned.
	Seq int64
	// SeqPerHour is how fast seq grew over the events kept (0 with fewer than two).
	SeqPerHour float64
	Accounts   int64
	Records    int64
	Blobs      int64
}

// openFile opens a database file that no Store has open (a backup snapshot, a data dir
// being restored), on one connection.
func openFile(path string) (*sql.DB, error) {
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	db, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// InspectSnapshot reads the stats of the database file at path (a backup's snapshot,
// never the live database).
func InspectSnapshot(ctx context.Context, path string) (SnapshotStats, error) {
	db, err := openFile(path)
	if err != nil {
		return SnapshotStats{}, err
	}
	defer db.Close()
	var st SnapshotStats
	var minSeq, maxSeq, minMs, maxMs sql.NullInt64
	err = db.QueryRowContext(ctx, `SELECT
		coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
		(SELECT count(*) FROM accounts),
		(SELECT count(*) FROM records),
		(SELECT count(*) FROM blobs)`).Scan(&st.Seq, &st.Accounts, &st.Records, &st.Blobs)
	if err != nil {
		return SnapshotStats{}, fmt.Errorf("reading %s: %w", path, err)
	}
	if err := db.QueryRowContext(ctx, `SELECT min(seq), max(seq), min(created_ms), max(created_ms) FROM events`).Scan(&minSeq, &maxSeq, &minMs, &maxMs); err != nil {
		return SnapshotStats{}, fmt.Errorf("reading %s: %w", path, err)
	}
	if maxMs.Int64 > minMs.Int64 && maxSeq.Int64 > minSeq.Int64 {
		st.SeqPerHour = float64(maxSeq.Int64-minSeq.Int64) / (float64(maxMs.Int64-minMs.Int64) / 3_600_000)
	}
	return st, nil
}

// RaiseSeq makes the database file at path (a restored data dir, no server running on
// it) assign firehose seqs above floor from now on, and returns the last seq it would
// otherwise have continued from. Seqs are assigned from sqlite_sequence (see Open and
// AppendEvent), so that is the one value moved; it never moves back.
func RaiseSeq(ctx context.Context, path string, floor int64) (int64, error) {
	db, err := openFile(path)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var old int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)`).Scan(&old); err != nil {
		return 0, fmt.Errorf("reading last seq: %w", err)
	}
	if floor > old {
		res, err := tx.ExecContext(ctx, `UPDATE sqlite_sequence SET seq = ? WHERE name = 'events'`, floor)
		if err != nil {
			return 0, fmt.Errorf("raising seq: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)`, floor); err != nil {
				return 0, fmt.Errorf("raising seq: %w", err)
			}
		}
	}
	return old, tx.Commit()
}

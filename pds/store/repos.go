package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/hearth-social/hearth/repo"
	"github.com/ipfs/go-cid"
)

// ErrHeadMoved is returned when a commit's expected previous head is not the stored one
// (another commit won the race); nothing is written.
var ErrHeadMoved = errors.New("repository head moved")

// Head returns the current head of a repository.
func (s *Store) Head(ctx context.Context, did string) (repo.Head, error) {
	var c, d []byte
	var h repo.Head
	err := s.rd.head.QueryRowContext(ctx, did).Scan(&c, &h.Rev, &d)
	if errors.Is(err, sql.ErrNoRows) {
		return h, ErrNotFound
	}
	if err != nil {
		return h, err
	}
	if h.Commit, err = cid.Cast(c); err != nil {
		return h, fmt.Errorf("stored commit cid: %w", err)
	}
	if h.Data, err = cid.Cast(d); err != nil {
		return h, fmt.Errorf("stored data cid: %w", err)
	}
	return h, nil
}

// RecordWrite is one change to the records index, applied with a commit.
type RecordWrite struct {
	Collection string
	RKey       string
	CID        cid.Cid // undefined for delete
	Value      []byte  // nil for delete
}

// Commit is a repository commit to make durable: the new head with its signed commit
// block, the records index changes, and the expected previous head. MST nodes are not
// stored: the tree is rebuilt from the records (see RepoRecords).
type Commit struct {
	DID        string
	Prev       repo.Head // the head the commit was computed from; zero for genesis
	Head       repo.Head
	CommitData []byte // the signed commit block
	Records    []RecordWrite
	Genesis    bool
}

// PutCommit writes a commit: compare-and-swap of the head, blocks, records. Events are
// appended by the caller in the same Tx.
func (t *Tx) PutCommit(c *Commit) error {
	if c.Genesis {
		if _, err := t.exec(`INSERT INTO repos (did, commit_cid, rev, data_cid, commit_data) VALUES (?, ?, ?, ?, ?)`,
			c.DID, c.Head.Commit.Bytes(), c.Head.Rev, c.Head.Data.Bytes(), c.CommitData); err != nil {
			return fmt.Errorf("inserting repo head: %w", err)
		}
	} else {
		res, err := t.exec(`UPDATE repos SET commit_cid = ?, rev = ?, data_cid = ?, commit_data = ? WHERE did = ? AND commit_cid = ?`,
			c.Head.Commit.Bytes(), c.Head.Rev, c.Head.Data.Bytes(), c.CommitData, c.DID, c.Prev.Commit.Bytes())
		if err != nil {
			return fmt.Errorf("updating repo head: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrHeadMoved
		}
	}
	for _, r := range c.Records {
		if r.Value == nil {
			if _, err := t.exec(`DELETE FROM records WHERE did = ? AND collection = ? AND rkey = ?`, c.DID, r.Collection, r.RKey); err != nil {
				return fmt.Errorf("deleting record: %w", err)
			}
			continue
		}
		if _, err := t.exec(`INSERT INTO records (did, collection, rkey, cid, rev, value) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (did, collection, rkey) DO UPDATE SET cid = excluded.cid, rev = excluded.rev, value = excluded.value`,
			c.DID, r.Collection, r.RKey, r.CID.Bytes(), c.Head.Rev, r.Value); err != nil {
			return fmt.Errorf("upserting record: %w", err)
		}
	}
	return nil
}

// Record returns a record's CID and DAG-CBOR bytes.
func (s *Store) Record(ctx context.Context, did, collection, rkey string) (cid.Cid, []byte, error) {
	var c, v []byte
	err := s.rd.record.QueryRowContext(ctx, did, collection, rkey).Scan(&c, &v)
	if errors.Is(err, sql.ErrNoRows) {
		return cid.Undef, nil, ErrNotFound
	}
	if err != nil {
		return cid.Undef, nil, err
	}
	cc, err := cid.Cast(c)
	return cc, v, err
}

// StoredRecord is one row of a records listing.
type StoredRecord struct {
	RKey  string
	CID   cid.Cid
	Value []byte
}

// ListRecords pages through a collection by rkey: descending by default, ascending when
// reverse; cursor is the last rkey of the previous page.
func (s *Store) ListRecords(ctx context.Context, did, collection, cursor string, limit int, reverse bool) ([]StoredRecord, error) {
	var q string
	args := []any{did, collection}
	switch {
	case reverse && cursor != "":
		q = `SELECT rkey, cid, value FROM records WHERE did = ? AND collection = ? AND rkey > ? ORDER BY rkey ASC LIMIT ?`
		args = append(args, cursor)
	case reverse:
		q = `SELECT rkey, cid, value FROM records WHERE did = ? AND collection = ? ORDER BY rkey ASC LIMIT ?`
	case cursor != "":
		q = `SELECT rkey, cid, value FROM records WHERE did = ? AND collection = ? AND rkey < ? ORDER BY rkey DESC LIMIT ?`
		args = append(args, cursor)
	default:
		q = `SELECT rkey, cid, value FROM records WHERE did = ? AND collection = ? ORDER BY rkey DESC LIMIT ?`
	}
	args = append(args, limit)
	rows, err := s.db.Read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StoredRecord
	for rows.Next() {
		var r StoredRecord
		var c []byte
		if err := rows.Scan(&r.RKey, &c, &r.Value); err != nil {
			return nil, err
		}
		if r.CID, err = cid.Cast(c); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// RevRecord is a record written in a given revision.
type RevRecord struct {
	Collection, RKey, Rev string
	CID                   cid.Cid
	Value                 []byte
}

// RecordsSinceRev returns up to limit of did's records in the given collections written
// after rev, oldest first (read-after-write: what an AppView behind rev has not seen).
// It returns none when no record is at or before rev: a rev older than everything here
// (an imported repository, another server's clock) says nothing about what is new.
func (s *Store) RecordsSinceRev(ctx context.Context, did, rev string, collections []string, limit int) ([]RevRecord, error) {
	if len(collections) == 0 {
		return nil, nil
	}
	q := `SELECT collection, rkey, rev, cid, value FROM records WHERE did = ? AND rev > ? AND collection IN (?` +
		strings.Repeat(", ?", len(collections)-1) + `) ORDER BY rev ASC LIMIT ?`
	args := []any{did, rev}
	for _, c := range collections {
		args = append(args, c)
	}
	args = append(args, limit)
	rows, err := s.db.Read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RevRecord
	for rows.Next() {
		var r RevRecord
		var c []byte
		if err := rows.Scan(&r.Collection, &r.RKey, &r.Rev, &c, &r.Value); err != nil {
			return nil, err
		}
		if r.CID, err = cid.Cast(c); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil || len(out) == 0 {
		return nil, err
	}
	var one int
	err = s.db.Read.QueryRowContext(ctx, `SELECT 1 FROM records WHERE did = ? AND rev <= ? LIMIT 1`, did, rev).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Collections lists the collections a repository has records in.
func (s *Store) Collections(ctx context.Context, did string) ([]string, error) {
	// A loose index scan: jump from collection to collection instead of reading every record.
	rows, err := s.db.Read.QueryContext(ctx, `WITH RECURSIVE c(name) AS (
		SELECT (SELECT min(collection) FROM records WHERE did = ?1)
		UNION ALL
		SELECT (SELECT min(collection) FROM records WHERE did = ?1 AND collection > c.name) FROM c WHERE c.name IS NOT NULL
	) SELECT name FROM c WHERE name IS NOT NULL`, did)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// RecordBlock returns a record block of a repository by CID.
func (s *Store) RecordBlock(ctx context.Context, did string, c cid.Cid) ([]byte, error) {
	var data []byte
	err := s.rd.recordBlock.QueryRowContext(ctx, did, c.Bytes()).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return data, err
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/hearth-social/hearth/repo"
	"github.com/ipfs/go-cid"
)

// Snapshot is a consistent read view of one repository: a read transaction, so WAL keeps
// it stable while commits continue. Close it when done.
type Snapshot struct {
	ctx context.Context
	tx  *sql.Tx
	did string
	// Head is the repository head at the snapshot.
	Head repo.Head
	// CommitData is the signed head commit block.
	CommitData []byte
}

// Snapshot opens a read snapshot of did's repository.
func (s *Store) Snapshot(ctx context.Context, did string) (*Snapshot, error) {
	tx, err := s.db.Read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	sn := &Snapshot{ctx: ctx, tx: tx, did: did}
	var c, d []byte
	err = tx.QueryRowContext(ctx, `SELECT commit_cid, rev, data_cid, commit_data FROM repos WHERE did = ?`, did).Scan(&c, &sn.Head.Rev, &d, &sn.CommitData)
	if err == nil {
		if sn.Head.Commit, err = cid.Cast(c); err == nil {
			sn.Head.Data, err = cid.Cast(d)
		}
	}
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		tx.Rollback()
		return nil, err
	}
	return sn, nil
}

// Close ends the snapshot.
func (sn *Snapshot) Close() error { return sn.tx.Rollback() }

// RecordCIDs returns every record path and CID: the input that rebuilds the MST.
func (sn *Snapshot) RecordCIDs() (map[string]cid.Cid, error) {
	rows, err := sn.tx.QueryContext(sn.ctx, `SELECT collection, rkey, cid FROM records WHERE did = ?`, sn.did)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]cid.Cid{}
	var coll, rkey string
	var raw sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&coll, &rkey, &raw); err != nil {
			return nil, err
		}
		c, err := cid.Cast(raw)
		if err != nil {
			return nil, fmt.Errorf("record %s/%s: %w", coll, rkey, err)
		}
		out[coll+"/"+rkey] = c
	}
	return out, rows.Err()
}

// EachRecord streams the record blocks, optionally only those written after since.
func (sn *Snapshot) EachRecord(since string, emit func(c cid.Cid, data []byte) error) error {
	rows, err := sn.tx.QueryContext(sn.ctx, `SELECT cid, value FROM records WHERE did = ? AND rev > ?`, sn.did, since)
	if err != nil {
		return err
	}
	defer rows.Close()
	var raw, val sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&raw, &val); err != nil {
			return err
		}
		c, err := cid.Cast(raw)
		if err != nil {
			return err
		}
		if err := emit(c, val); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Record returns one record's CID and block at the snapshot.
func (sn *Snapshot) Record(collection, rkey string) (cid.Cid, []byte, error) {
	var c, v []byte
	err := sn.tx.QueryRowContext(sn.ctx, `SELECT cid, value FROM records WHERE did = ? AND collection = ? AND rkey = ?`, sn.did, collection, rkey).Scan(&c, &v)
	if errors.Is(err, sql.ErrNoRows) {
		return cid.Undef, nil, ErrNotFound
	}
	if err != nil {
		return cid.Undef, nil, err
	}
	cc, err := cid.Cast(c)
	return cc, v, err
}

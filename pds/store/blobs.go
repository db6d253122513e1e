package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/ipfs/go-cid"
)

// BlobMeta describes a stored blob.
type BlobMeta struct {
	CID  cid.Cid
	MIME string
	Size int64
}

// PutBlob records an uploaded blob and returns the metadata stored for it. It is
// idempotent: re-uploading restarts the grace period but keeps the first row's MIME
// type, which records may already name, so callers must report the returned metadata
// rather than what they computed for this upload.
func (t *Tx) PutBlob(did string, b BlobMeta) (BlobMeta, error) {
	stored := BlobMeta{CID: b.CID}
	err := t.queryRow(`INSERT INTO blobs (did, cid, mime, size, created_ms) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (did, cid) DO UPDATE SET created_ms = excluded.created_ms
		RETURNING mime, size`,
		did, b.CID.Bytes(), b.MIME, b.Size, t.now.UnixMilli()).Scan(&stored.MIME, &stored.Size)
	if err != nil {
		return BlobMeta{}, err
	}
	return stored, nil
}

// HasBlob reports whether did uploaded the blob.
func (t *Tx) HasBlob(did string, c cid.Cid) (bool, error) {
	var n int
	err := t.queryRow(`SELECT count(*) FROM blobs WHERE did = ? AND cid = ?`, did, c.Bytes()).Scan(&n)
	return n > 0, err
}

// BlobMeta returns the stored metadata of a blob did uploaded; ErrNotFound if none.
func (t *Tx) BlobMeta(did string, c cid.Cid) (*BlobMeta, error) {
	m := BlobMeta{CID: c}
	err := t.queryRow(`SELECT mime, size FROM blobs WHERE did = ? AND cid = ?`, did, c.Bytes()).Scan(&m.MIME, &m.Size)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, err
	}
	return &m, nil
}

// HasBlob reports whether a blobs row for did's blob c is committed, outside any write
// transaction (the blob store asks it under the blob's lock before removing bytes).
func (s *Store) HasBlob(ctx context.Context, did string, c cid.Cid) (bool, error) {
	var n int
	err := s.db.Read.QueryRowContext(ctx, `SELECT count(*) FROM blobs WHERE did = ? AND cid = ?`, did, c.Bytes()).Scan(&n)
	return n > 0, err
}

// SetRecordBlobs replaces the blob references of one record path (nil clears them).
func (t *Tx) SetRecordBlobs(did, path, rev string, cids []cid.Cid) error {
	if _, err := t.exec(`DELETE FROM record_blobs WHERE did = ? AND path = ?`, did, path); err != nil {
		return err
	}
	for _, c := range cids {
		if _, err := t.exec(`INSERT OR IGNORE INTO record_blobs (did, path, cid, rev) VALUES (?, ?, ?, ?)`, did, path, c.Bytes(), rev); err != nil {
			return err
		}
	}
	return nil
}

// ReferencedBlob returns a blob's metadata if did uploaded it and a record references it.
func (s *Store) ReferencedBlob(ctx context.Context, did string, c cid.Cid) (*BlobMeta, error) {
	var m BlobMeta
	err := s.db.Read.QueryRowContext(ctx, `SELECT mime, size FROM blobs b WHERE did = ?1 AND cid = ?2
		AND EXISTS (SELECT 1 FROM record_blobs r WHERE r.did = ?1 AND r.cid = ?2)`, did, c.Bytes()).Scan(&m.MIME, &m.Size)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	m.CID = c
	return &m, err
}

// ListBlobs pages through the CIDs of blobs referenced by did's records, ordered by CID
// bytes, optionally only those referenced by records written after since.
func (s *Store) ListBlobs(ctx context.Context, did, since string, after []byte, limit int) ([]cid.Cid, error) {
	if after == nil {
		after = []byte{} // NULL would compare as unknown and match nothing
	}
	rows, err := s.db.Read.QueryContext(ctx, `SELECT DISTINCT cid FROM record_blobs WHERE did = ? AND rev > ? AND cid > ? ORDER BY cid LIMIT ?`,
		did, since, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []cid.Cid
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}
		c, err := cid.Cast(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// MissingBlob is a blob a record references that was never uploaded (after an import).
type MissingBlob struct {
	CID  cid.Cid
	Path string
}

// MissingBlobs pages through referenced blobs that are not stored.
func (s *Store) MissingBlobs(ctx context.Context, did string, after []byte, limit int) ([]MissingBlob, error) {
	if after == nil {
		after = []byte{}
	}
	rows, err := s.db.Read.QueryContext(ctx, `SELECT r.cid, min(r.path) FROM record_blobs r WHERE r.did = ?1 AND r.cid > ?2
		AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.did = ?1 AND b.cid = r.cid) GROUP BY r.cid ORDER BY r.cid LIMIT ?3`, did, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []MissingBlob
	for rows.Next() {
		var raw []byte
		var m MissingBlob
		if err := rows.Scan(&raw, &m.Path); err != nil {
			return nil, err
		}
		if m.CID, err = cid.Cast(raw); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// GarbageBlob is an unreferenced blob past its grace period.
type GarbageBlob struct {
	DID string
	CID cid.Cid
}

// TakeGarbageBlobs deletes up to limit rows of blobs that no record references and that
// were uploaded before cutoff, returning them so their bytes can be removed.
func (t *Tx) TakeGarbageBlobs(cutoff time.Time, limit int) ([]GarbageBlob, error) {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT did, cid FROM blobs b WHERE created_ms < ?
		AND NOT EXISTS (SELECT 1 FROM record_blobs r WHERE r.did = b.did AND r.cid = b.cid) LIMIT ?`, cutoff.UnixMilli(), limit)
	if err != nil {
		return nil, err
	}
	var out []GarbageBlob
	for rows.Next() {
		var g GarbageBlob
		var raw []byte
		if err := rows.Scan(&g.DID, &raw); err != nil {
			rows.Close()
			return nil, err
		}
		if g.CID, err = cid.Cast(raw); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, g := range out {
		if _, err := t.exec(`DELETE FROM blobs WHERE did = ? AND cid = ?`, g.DID, g.CID.Bytes()); err != nil {
			return nil, err
		}
	}
	return out, nil
}

package store

import "context"

// RepoCounts are the counts checkAccountStatus reports: records, the distinct blobs
// the records reference, and how many of those this PDS holds.
type RepoCounts struct {
	Records       int64
	ExpectedBlobs int64
	ImportedBlobs int64
}

// CountRepo counts an account's records and blobs.
func (s *Store) CountRepo(ctx context.Context, did string) (RepoCounts, error) {
	var c RepoCounts
	err := s.db.Read.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM records WHERE did = ?1),
		(SELECT count(DISTINCT cid) FROM record_blobs WHERE did = ?1),
		(SELECT count(DISTINCT rb.cid) FROM record_blobs rb JOIN blobs b ON b.did = rb.did AND b.cid = rb.cid WHERE rb.did = ?1)`, did).
		Scan(&c.Records, &c.ExpectedBlobs, &c.ImportedBlobs)
	return c, err
}

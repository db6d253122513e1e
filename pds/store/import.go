package store

import (
	"fmt"

	"github.com/hearth-social/hearth/repo"
	"github.com/ipfs/go-cid"
)

// ImportedRecord is one record of an imported repository.
type ImportedRecord struct {
	Collection, RKey string
	CID              cid.Cid
	Value            []byte
	// Blobs are the blob CIDs the record references.
	Blobs []cid.Cid
}

// ReplaceRepo replaces an account's whole repository (records, blob references and
// head) with an imported one, in this transaction: the previous contents are gone and
// the new head is head with its signed commit block commitData.
func (t *Tx) ReplaceRepo(did string, head repo.Head, commitData []byte, recs []ImportedRecord) error {
	for _, q := range []string{`DELETE FROM records WHERE did = ?`, `DELETE FROM record_blobs WHERE did = ?`} {
		if _, err := t.exec(q, did); err != nil {
			return fmt.Errorf("clearing the repo: %w", err)
		}
	}
	for _, r := range recs {
		if _, err := t.exec(`INSERT INTO records (did, collection, rkey, cid, rev, value) VALUES (?, ?, ?, ?, ?, ?)`,
			did, r.Collection, r.RKey, r.CID.Bytes(), head.Rev, r.Value); err != nil {
			return fmt.Errorf("importing record %s/%s: %w", r.Collection, r.RKey, err)
		}
		if err := t.SetRecordBlobs(did, r.Collection+"/"+r.RKey, head.Rev, r.Blobs); err != nil {
			return err
		}
	}
	res, err := t.exec(`UPDATE repos SET commit_cid = ?, rev = ?, data_cid = ?, commit_data = ? WHERE did = ?`,
		head.Commit.Bytes(), head.Rev, head.Data.Bytes(), commitData, did)
	if err != nil {
		return fmt.Errorf("updating the repo head: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrNotFound
	}
	return nil
}

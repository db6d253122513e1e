package pds

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/store"
	"github.com/hearth-social/hearth/repo"
	"github.com/ipfs/go-cid"
)

// handleImportRepo replaces an arriving (deactivated) account's repository with the CAR
// in the body, exported from its old PDS. Nothing is written until the whole CAR has
// been checked: every block's hash, a complete MST matching the commit, every record
// decoding, the commit's DID the caller's, its signature by the key in the DID
// document. The records then replace the repo in one transaction under a head re-signed
// with the account's Hearth key at a fresh rev (the old PDS's signature is not kept as
// this PDS's head); the firehose hears of it as a #sync when the account activates. A
// retried import, or a second one of a newer CAR, replaces the first.
func (s *Server) handleImportRepo(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c := callerFrom(ctx)
	if err := requireFullAccess(c); err != nil {
		return err
	}
	acct, err := s.store.AccountByDID(ctx, c.DID)
	if err != nil {
		return err
	}
	if acct.Status == store.StatusActive {
		return xrpc.InvalidRequest("importRepo replaces the repository of an arriving account: deactivate the account first")
	}
	if r.ContentLength > s.cfg.MaxImportBytes {
		return xrpc.Errorf(http.StatusRequestEntityTooLarge, "PayloadTooLarge", "the CAR is larger than the import limit of %d bytes", s.cfg.MaxImportBytes)
	}
	imp, err := repo.ReadImport(ctx, http.MaxBytesReader(w, r.Body, s.cfg.MaxImportBytes))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return xrpc.Errorf(http.StatusRequestEntityTooLarge, "PayloadTooLarge", "the CAR is larger than the import limit of %d bytes", s.cfg.MaxImportBytes)
	case errors.Is(err, repo.ErrBadImport):
		return xrpc.InvalidRequest("%v", err)
	case err != nil:
		return err
	}
	if imp.Commit.DID != c.DID {
		return xrpc.InvalidRequest("the CAR is the repository of %s, not of %s", imp.Commit.DID, c.DID)
	}
	ident, err := s.freshDir.LookupDID(ctx, syntax.DID(c.DID))
	if err != nil {
		return xrpc.Errorf(http.StatusBadGateway, "UpstreamFailure", "resolving %s failed: %v", c.DID, err)
	}
	pub, err := ident.PublicKey()
	if err != nil {
		return xrpc.InvalidRequest("the DID document has no atproto signing key: %v", err)
	}
	if err := imp.Commit.VerifySignature(pub); err != nil {
		// The account's own Hearth key (a re-import of what this PDS signed) also counts.
		bad := xrpc.InvalidRequest("the commit's signature does not verify against the DID document's key")
		own, err := s.accountSigningKey(ctx, c.DID)
		if err != nil {
			return bad
		}
		ownPub, err := own.PublicKey()
		if err != nil || imp.Commit.VerifySignature(ownPub) != nil {
			return bad
		}
	}
	recs := make([]store.ImportedRecord, 0, len(imp.Records))
	for _, ir := range imp.Records {
		coll, rkey, ok := strings.Cut(ir.Path, "/")
		if _, err := syntax.ParseNSID(coll); !ok || err != nil {
			return xrpc.InvalidRequest("record path %q is not collection/rkey", ir.Path)
		}
		if _, err := syntax.ParseRecordKey(rkey); err != nil {
			return xrpc.InvalidRequest("record path %q has an invalid key", ir.Path)
		}
		data, err := atdata.UnmarshalCBOR(ir.Data)
		if err != nil {
			return xrpc.InvalidRequest("record %s does not decode: %v", ir.Path, err)
		}
		var blobs []cid.Cid
		for _, b := range atdata.ExtractBlobs(data) {
			blobs = append(blobs, cid.Cid(b.Ref))
		}
		recs = append(recs, store.ImportedRecord{Collection: coll, RKey: rkey, CID: ir.CID, Value: ir.Data, Blobs: blobs})
	}
	if err := s.checkRepoReplace(c.DID, recs); err != nil {
		return err
	}
	key, err := s.accountSigningKey(ctx, c.DID)
	if err != nil {
		return err
	}
	prev, err := s.store.Head(ctx, c.DID)
	if err != nil {
		return err
	}
	rev := repo.NextRev(max(prev.Rev, imp.Commit.Rev), time.Now())
	_, cc, block, err := repo.SignCommit(c.DID, imp.Commit.Data, rev, key)
	if err != nil {
		return err
	}
	head := repo.Head{Commit: cc, Rev: rev, Data: imp.Commit.Data}
	err = s.store.Write(ctx, func(tx *store.Tx) error { return tx.ReplaceRepo(c.DID, head, block, recs) })
	s.forgetRepo(c.DID)
	if err != nil {
		return err
	}
	s.log.Info("repo imported", "did", c.DID, "records", len(recs), "rev", rev)
	w.WriteHeader(http.StatusOK)
	return nil
}

package pds

import (
	"context"
	"net/http"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/auth"
	"github.com/hearth-social/hearth/pds/mail"
	"github.com/hearth-social/hearth/pds/store"
	"github.com/ipfs/go-cid"
)

// deleteAccount removes an account's data, firehose events and blobs, frees its
// handle and emits #account deleted, all in one transaction (with check, when given,
// run first inside it: the user's emailed token is consumed only if the deletion
// commits). Admin and user deletion both come here.
func (s *Server) deleteAccount(ctx context.Context, did string, check func(*store.Tx) error) error {
	var blobs [][]byte
	var deletedSeq int64
	err := s.store.Write(ctx, func(tx *store.Tx) error {
		if check != nil {
			if err := check(tx); err != nil {
				return err
			}
		}
		var err error
		if blobs, err = tx.DeleteAccountData(did); err != nil {
			return err
		}
		deletedSeq, err = appendAccountEvent(tx, did, store.StatusDeleted)
		return err
	})
	s.accounts.forget(did)
	s.forgetRepo(did)
	if err != nil {
		return err
	}
	s.takedowns.dropAccount(did) // the rows went with the data
	s.usage.forget(did)
	// The account's events are gone from the store; drop the buffered copies too, so
	// subscribers replaying from a cursor read them from the store (where they no longer
	// are) instead of from memory.
	s.seq.DropThrough(deletedSeq - 1)
	for _, raw := range blobs {
		if c, err := cid.Cast(raw); err == nil {
			if err := s.blobs.Delete(ctx, did, c); err != nil {
				s.log.Warn("deleting blob of deleted account", "did", did, "cid", c, "err", err)
			}
		}
	}
	s.log.Info("account deleted", "did", did)
	return nil
}

// handleRequestAccountDelete mails the account a token for deleteAccount.
func (s *Server) handleRequestAccountDelete(w http.ResponseWriter, r *http.Request) error {
	c := callerFrom(r.Context())
	if err := requireFullAccess(c); err != nil {
		return err
	}
	if err := s.mailToken(r.Context(), c.DID, mail.PurposeDeleteAccount); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// handleDeleteAccount deletes an account given its DID, password and the mailed token.
func (s *Server) handleDeleteAccount(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		DID      string `json:"did"`
		Password string `json:"password"`
		Token    string `json:"token"`
	}
	if err := xrpc.DecodeJSON(w, r, 16<<10, &in); err != nil {
		return err
	}
	did, err := syntax.ParseDID(in.DID)
	if err != nil || in.Password == "" || in.Token == "" {
		return xrpc.InvalidRequest("did, password and token are required")
	}
	acct, _, scope, err := s.checkLogin(r.Context(), did.String(), in.Password)
	if err != nil {
		return err
	}
	if scope != auth.ScopeAccess {
		return xrpc.Errorf(http.StatusUnauthorized, "AuthenticationRequired", "the account password is required, not an app password")
	}
	err = s.deleteAccount(r.Context(), acct.DID, func(tx *store.Tx) error {
		return takeToken(tx, acct.DID, mail.PurposeDeleteAccount, in.Token)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

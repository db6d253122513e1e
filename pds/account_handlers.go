package pds

import (
	"context"
	"errors"
	"net/http"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/store"
)

// setAccountStatus changes an account's status and emits the #account event in the same
// transaction, so relays and feed generators learn of it exactly when it happens; also
// runs in that transaction too (the moderation log entry of a takedown).
func (s *Server) setAccountStatus(ctx context.Context, did, status string, also ...func(*store.Tx) error) error {
	err := s.store.Write(ctx, func(tx *store.Tx) error {
		for _, fn := range also {
			if err := fn(tx); err != nil {
				return err
			}
		}
		if err := tx.SetAccountStatus(did, status); err != nil {
			return err
		}
		if status == store.StatusTakendown {
			// A takedown ends every session and app password; access tokens already
			// issued are refused by the status check on every route.
			if err := tx.RevokeSessions(did); err != nil {
				return err
			}
		}
		_, err := appendAccountEvent(tx, did, status)
		return err
	})
	s.accounts.forget(did)
	s.forgetRepo(did)
	return err
}

func appendAccountEvent(tx *store.Tx, did, status string) (int64, error) {
	ev := &comatproto.SyncSubscribeRepos_Account{Did: did, Active: status == store.StatusActive,
		Time: tx.Now().UTC().Format(syntax.AtprotoDatetimeLayout)}
	if status != store.StatusActive {
		st := status
		ev.Status = &st
	}
	return tx.AppendEvent(did, firehose.TypeAccount, func(seq int64) ([]byte, error) {
		return firehose.AccountFrame(ev, seq)
	})
}

// handleDeactivateAccount deactivates the caller's account: its repo, records and
// blobs stop being served and the firehose says #account deactivated. With deleteAfter
// the account is deleted at that time unless it reactivates first.
func (s *Server) handleDeactivateAccount(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c := callerFrom(ctx)
	if err := requireFullAccess(c); err != nil {
		return err
	}
	var in struct {
		DeleteAfter string `json:"deleteAfter"`
	}
	if r.ContentLength != 0 { // the input is optional
		if err := xrpc.DecodeJSON(w, r, 16<<10, &in); err != nil {
			return err
		}
	}
	var deleteAt time.Time
	if in.DeleteAfter != "" {
		dt, err := syntax.ParseDatetimeLenient(in.DeleteAfter)
		if err != nil {
			return xrpc.InvalidRequest("deleteAfter is not a datetime: %q", in.DeleteAfter)
		}
		deleteAt = dt.Time()
	}
	acct, err := s.store.AccountByDID(ctx, c.DID)
	if err != nil {
		return err
	}
	if acct.Status == store.StatusTakendown {
		return xrpc.Errorf(http.StatusBadRequest, "AccountTakedown", "account has been taken down")
	}
	if acct.Status != store.StatusDeactivated {
		if err := s.setAccountStatus(ctx, c.DID, store.StatusDeactivated); err != nil {
			return err
		}
	}
	if err := s.store.Write(ctx, func(tx *store.Tx) error { return tx.SetDeleteAfter(c.DID, deleteAt) }); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// deleteDueAccounts deletes the deactivated accounts whose deleteAfter has passed.
func (s *Server) deleteDueAccounts(ctx context.Context) (int, error) {
	dids, err := s.store.DeletionDue(ctx, time.Now(), 100)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, did := range dids {
		errNotDue := errors.New("no longer due")
		err := s.deleteAccount(ctx, did, func(tx *store.Tx) error {
			if due, err := tx.StillDueForDeletion(did); err != nil {
				return err
			} else if !due {
				return errNotDue
			}
			return nil
		})
		switch {
		case errors.Is(err, errNotDue):
		case err != nil:
			return n, err
		default:
			n++
		}
	}
	return n, nil
}

func (s *Server) adminAccount(ctx context.Context, raw string) (*store.Account, error) {
	did, err := syntax.ParseDID(raw)
	if err != nil {
		return nil, xrpc.InvalidRequest("invalid did %q", raw)
	}
	acct, err := s.store.AccountByDID(ctx, did.String())
	if errors.Is(err, store.ErrNotFound) || (err == nil && acct.Status == store.StatusDeleted) {
		return nil, xrpc.Errorf(http.StatusBadRequest, "AccountNotFound", "no account %s", did)
	}
	return acct, err
}

// handleAdminDeleteAccount deletes an account's data and emits #account deleted.
func (s *Server) handleAdminDeleteAccount(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		DID string `json:"did"`
	}
	if err := xrpc.DecodeJSON(w, r, 16<<10, &in); err != nil {
		return err
	}
	acct, err := s.adminAccount(r.Context(), in.DID)
	if err != nil {
		return err
	}
	if err := s.deleteAccount(r.Context(), acct.DID, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

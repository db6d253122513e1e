package pds

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/atcrypto"
	indigoauth "github.com/bluesky-social/indigo/atproto/auth"
	indigoid "github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/auth"
	"github.com/hearth-social/hearth/pds/store"
	"github.com/hearth-social/hearth/repo"
)

// Arriving accounts (atproto.com/guides/account-migration, steps on the new PDS): an
// account that exists elsewhere signs up here with its DID, authorised by a
// service-auth JWT its current PDS signed; it starts deactivated, with an empty repo
// and no firehose events, until its repo is imported and its DID document points here.

// checkArrivalAuth verifies the service-auth JWT that authorises bringing did here:
// iss = did, aud = this PDS's service DID, lxm = createAccount, signed by the atproto
// key in did's current DID document.
func (s *Server) checkArrivalAuth(ctx context.Context, r *http.Request, raw string) (syntax.DID, error) {
	did, err := syntax.ParseDID(raw)
	if err != nil {
		return "", xrpc.InvalidRequest("invalid did %q", raw)
	}
	if _, err := s.store.AccountByDID(ctx, did.String()); err == nil {
		return "", xrpc.InvalidRequest("an account with DID %s already exists on this PDS", did)
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	tok, err := auth.BearerToken(r)
	if err != nil {
		return "", xrpc.Errorf(http.StatusUnauthorized, "AuthenticationRequired", "bringing an existing DID needs a service-auth token from its current PDS (getServiceAuth with aud %s, lxm com.atproto.server.createAccount)", s.cfg.ServerDID())
	}
	dir := s.freshDir
	if _, err := dir.LookupDID(ctx, did); err != nil {
		if errors.Is(err, indigoid.ErrDIDNotFound) {
			return "", xrpc.InvalidRequest("DID %s is not registered", did)
		}
		return "", xrpc.Errorf(http.StatusBadGateway, "UpstreamFailure", "resolving %s failed: %v", did, err)
	}
	lxm := syntax.NSID("com.atproto.server.createAccount")
	v := indigoauth.ServiceAuthValidator{Audience: s.cfg.ServerDID(), Dir: dir}
	iss, err := v.Validate(ctx, tok, &lxm)
	if err != nil {
		return "", xrpc.Errorf(http.StatusUnauthorized, "InvalidToken", "service auth token rejected: %v", err)
	}
	if iss != did {
		return "", xrpc.Errorf(http.StatusUnauthorized, "InvalidToken", "the service auth token was issued by %s, not %s", iss, did)
	}
	return did, nil
}

// createArrivingAccount creates the account for an existing DID: a fresh Hearth signing
// key (the DID document is pointed at it later), status deactivated, an empty repo
// signed with the new key, and no firehose event until activation.
func (s *Server) createArrivingAccount(ctx context.Context, w http.ResponseWriter, did syntax.DID, handle syntax.Handle, in createAccountInput, passwordHash string) error {
	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		return err
	}
	pair, err := s.sessions.Issue(did.String(), auth.ScopeAccess)
	if err != nil {
		return err
	}
	acct := &store.Account{DID: did.String(), Handle: handle.String(), Email: in.Email, PasswordHash: passwordHash, SigningKey: key.Bytes()}
	err = s.store.Write(ctx, func(tx *store.Tx) error {
		if err := tx.CreateAccount(acct); err != nil {
			return err
		}
		if err := tx.SetAccountStatus(did.String(), store.StatusDeactivated); err != nil {
			return err
		}
		if s.cfg.InviteRequired {
			if err := tx.UseInviteCode(in.InviteCode, did.String(), tx.Now().UTC().Format(syntax.AtprotoDatetimeLayout)); err != nil {
				return err
			}
		}
		res, err := repo.Apply(ctx, repo.Input{DID: did, Key: key, Now: tx.Now()})
		if err != nil {
			return err
		}
		if err := tx.PutCommit(storeCommit(did.String(), repo.Head{}, res, nil)); err != nil {
			return err
		}
		return tx.PutRefreshToken(store.RefreshToken{ID: pair.RefreshID, DID: did.String(), Scope: auth.ScopeAccess, Expires: pair.RefreshExpires})
	})
	if err := signupError(err, handle); err != nil {
		return err
	}
	s.log.Info("arriving account created (deactivated)", "did", did, "handle", handle)
	out := map[string]any{"handle": handle.String(), "did": did.String(), "accessJwt": pair.Access, "refreshJwt": pair.Refresh}
	if doc, err := s.plc.Resolve(ctx, did); err == nil {
		out["didDoc"] = doc
	}
	xrpc.WriteJSON(w, http.StatusOK, out)
	return nil
}

// signupError maps the store's sign-up conflicts to XRPC errors.
func signupError(err error, handle syntax.Handle) error {
	switch {
	case errors.Is(err, store.ErrHandleTaken):
		return xrpc.Errorf(http.StatusBadRequest, "HandleNotAvailable", "handle already taken: %s", handle)
	case errors.Is(err, store.ErrEmailTaken):
		return xrpc.InvalidRequest("email already taken")
	case errors.Is(err, store.ErrInviteUnavailable):
		return xrpc.Errorf(http.StatusBadRequest, "InvalidInviteCode", "invite code not available")
	}
	return err
}

// didPointsHere reports whether did's current DID document names this PDS as its
// atproto_pds and the account's Hearth signing key as its atproto key.
func (s *Server) didPointsHere(ctx context.Context, did string) (bool, error) {
	ident, err := s.freshDir.LookupDID(ctx, syntax.DID(did))
	if err != nil {
		return false, err
	}
	key, err := s.accountSigningKey(ctx, did)
	if err != nil {
		return false, err
	}
	pub, err := key.PublicKey()
	if err != nil {
		return false, err
	}
	got, err := ident.PublicKey()
	if err != nil {
		return false, nil
	}
	return ident.PDSEndpoint() == s.cfg.PublicURL && got.DIDKey() == pub.DIDKey(), nil
}

// handleCheckAccountStatus reports how far an account's arrival has come: whether it
// is active, whether its DID document points here, its head, and real counts of its
// repo blocks, records, private state and blobs.
func (s *Server) handleCheckAccountStatus(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c := callerFrom(ctx)
	acct, err := s.store.AccountByDID(ctx, c.DID)
	if err != nil {
		return err
	}
	valid, err := s.didPointsHere(ctx, c.DID)
	if err != nil {
		s.log.Warn("checkAccountStatus: resolving the DID", "did", c.DID, "err", err)
	}
	counts, err := s.store.CountRepo(ctx, c.DID)
	if err != nil {
		return err
	}
	v, _, err := s.repos.view(ctx, c.DID, "")
	if err != nil {
		return err
	}
	head := v.Head
	blocks := int64(len(v.Nodes)) + counts.Records + 1 // MST nodes, record blocks, the commit
	v.Close()
	var prefs []any
	if raw, err := s.store.Preferences(ctx, c.DID); err == nil && len(raw) > 0 {
		_ = json.Unmarshal(raw, &prefs)
	}
	xrpc.WriteJSON(w, http.StatusOK, comatproto.ServerCheckAccountStatus_Output{
		Activated:          acct.Status == store.StatusActive,
		ValidDid:           valid,
		RepoCommit:         head.Commit.String(),
		RepoRev:            head.Rev,
		RepoBlocks:         blocks,
		IndexedRecords:     counts.Records,
		PrivateStateValues: int64(len(prefs)),
		ExpectedBlobs:      counts.ExpectedBlobs,
		ImportedBlobs:      counts.ImportedBlobs,
	})
	return nil
}

// handleActivateAccount reactivates the caller's account. An account arriving from
// another PDS may activate only once its DID document names this PDS and the
// account's Hearth signing key; activation then tells the network, in order: #identity
// (its handle), #account active, and #sync with the current head (signed by the
// Hearth key), so relays re-read the repo from here.
func (s *Server) handleActivateAccount(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c := callerFrom(ctx)
	if err := requireFullAccess(c); err != nil {
		return err
	}
	acct, err := s.store.AccountByDID(ctx, c.DID)
	if err != nil {
		return err
	}
	switch acct.Status {
	case store.StatusTakendown:
		return xrpc.Errorf(http.StatusBadRequest, "AccountTakedown", "account has been taken down")
	case store.StatusActive:
		w.WriteHeader(http.StatusOK)
		return nil
	}
	ok, err := s.didPointsHere(ctx, c.DID)
	if err != nil {
		return xrpc.Errorf(http.StatusBadGateway, "UpstreamFailure", "resolving the account's DID failed: %v", err)
	}
	if !ok {
		return xrpc.InvalidRequest("the DID document does not yet name this PDS (%s) and the account's signing key here; submit the PLC operation first", s.cfg.PublicURL)
	}
	sn, err := s.store.Snapshot(ctx, c.DID)
	if err != nil {
		return err
	}
	head, commitData := sn.Head, sn.CommitData
	sn.Close()
	err = s.store.Write(ctx, func(tx *store.Tx) error {
		if err := tx.SetAccountStatus(c.DID, store.StatusActive); err != nil {
			return err
		}
		if err := tx.SetDeleteAfter(c.DID, time.Time{}); err != nil {
			return err
		}
		at := tx.Now().UTC().Format(syntax.AtprotoDatetimeLayout)
		handle := acct.Handle
		if _, err := tx.AppendEvent(c.DID, firehose.TypeIdentity, func(seq int64) ([]byte, error) {
			return firehose.IdentityFrame(&comatproto.SyncSubscribeRepos_Identity{Did: c.DID, Handle: &handle, Time: at}, seq)
		}); err != nil {
			return err
		}
		if _, err := appendAccountEvent(tx, c.DID, store.StatusActive); err != nil {
			return err
		}
		return appendSyncEvent(tx, c.DID, head, commitData)
	})
	s.accounts.forget(c.DID)
	s.forgetRepo(c.DID)
	if err != nil {
		return err
	}
	s.announceActivation()
	w.WriteHeader(http.StatusOK)
	return nil
}

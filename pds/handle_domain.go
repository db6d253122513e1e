package pds

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	indigoid "github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/store"
)

// Handles on the account's own domain (atproto.com/specs/handle). A handle outside this
// PDS's HandleDomains is accepted once it resolves to the account's DID, by DNS TXT
// _atproto.HANDLE = "did=DID" or by https://HANDLE/.well-known/atproto-did answering the
// DID (internal/resolve, indigo underneath); the DID document then names it (a PLC
// operation). It is verified again every HandleRecheckInterval and on demand
// (refreshIdentity, or the operator's updateAccountHandle).
//
// A handle that stops verifying: as in the reference PDS and the spec, the DID document
// keeps claiming it (only its owner's DNS or web server can make it true again) and the
// account keeps it in this PDS's table, so no other account can take it; what changes is
// what this PDS tells the network. It emits an #identity event with handle
// "handle.invalid" (the subscribeRepos lexicon: "the current handle for the account, or
// 'handle.invalid' if validation fails"), refreshIdentity answers handle.invalid, and
// resolveHandle stops answering the DID from its own table. Nothing else about the
// account changes. When the handle verifies again, an #identity event with the handle
// brings it back.

// DefaultHandleRecheckInterval is how often a custom-domain handle is verified again.
const DefaultHandleRecheckInterval = 24 * time.Hour

const (
	// handleCheckBatch bounds the lookups of one pass of the re-check loop.
	handleCheckBatch = 100
	// handleCheckMaxFailures is how many checks in a row may get no answer (DNS
	// SERVFAIL, timeouts, TLS errors) before the handle counts as invalid.
	handleCheckMaxFailures = 3
	// handleRefreshSpacing is the least time between two on-demand checks of one handle.
	handleRefreshSpacing = time.Second
)

func (s *Server) handleRecheckInterval() time.Duration {
	if s.cfg.HandleRecheckInterval > 0 {
		return s.cfg.HandleRecheckInterval
	}
	return DefaultHandleRecheckInterval
}

// isServiceHandle reports whether h is under one of this PDS's handle domains.
func (s *Server) isServiceHandle(h string) bool {
	for _, d := range s.cfg.HandleDomains {
		if strings.HasSuffix(h, d) {
			return true
		}
	}
	return false
}

// checkHandleSyntax checks a requested handle's form: under this PDS's domains, the
// domain rules of validateNewHandle; outside them (custom is true), a valid handle on an
// allowed TLD, which must then verify for the account (verifyHandle).
func (s *Server) checkHandleSyntax(raw string) (h syntax.Handle, custom bool, err error) {
	h, err = syntax.ParseHandle(strings.ToLower(strings.TrimSpace(raw)))
	if err != nil {
		return "", false, xrpc.Errorf(http.StatusBadRequest, "InvalidHandle", "invalid handle %q: %v", raw, err)
	}
	if s.isServiceHandle(h.String()) {
		h, err = s.validateNewHandle(raw)
		return h, false, err
	}
	if h.IsInvalidHandle() || !h.AllowedTLD() {
		return "", false, xrpc.Errorf(http.StatusBadRequest, "InvalidHandle", "Handle TLD is invalid or disallowed")
	}
	return h, true, nil
}

// errHandleUnverified is a definitive answer that a handle does not point at the DID
// (no record, or a record naming another DID); other verification errors are failures
// to get an answer.
var errHandleUnverified = errors.New("handle does not resolve to the DID")

// verifyHandle resolves handle now (uncached) and checks it names did.
func (s *Server) verifyHandle(ctx context.Context, handle syntax.Handle, did syntax.DID) error {
	got, err := s.handleDir.ResolveHandle(ctx, handle)
	switch {
	case err == nil && got == did:
		return nil
	case err == nil:
		return fmt.Errorf("%w: %s resolves to %s", errHandleUnverified, handle, got)
	case errors.Is(err, indigoid.ErrHandleNotFound), errors.Is(err, indigoid.ErrHandleReservedTLD), errors.Is(err, indigoid.ErrInvalidHandle):
		return fmt.Errorf("%w: %w", errHandleUnverified, err)
	}
	return err
}

// refuseUnverified is the XRPC error for a custom handle that did not verify (the
// reference PDS's InvalidRequest "External handle did not resolve to DID").
func refuseUnverified(handle syntax.Handle, did syntax.DID, err error) error {
	return xrpc.InvalidRequest("External handle did not resolve to DID: %s: %v (set DNS TXT _atproto.%s to \"did=%s\", or serve %s as text/plain at https://%s/.well-known/atproto-did)",
		handle, err, handle, did, did, handle)
}

// setHandle changes did's handle (updateHandle and the admin's updateAccountHandle): the
// DID document (the source of truth) by a PLC operation, then the account row, the
// handle's check state and an #identity event in one transaction. The new handle is
// reserved against concurrent sign-ups and handle changes for the whole exchange, and
// the account's handle changes one at a time, so no race can leave a DID document
// claiming a handle another account holds; if the row cannot be written after the PLC
// operation, a second operation restores the old handle. Setting the handle an account
// already has verifies it again and announces it again.
func (s *Server) setHandle(ctx context.Context, did syntax.DID, raw string) error {
	h, custom, err := s.checkHandleSyntax(raw)
	if err != nil {
		return err
	}
	handle := h.String()
	taken := xrpc.Errorf(http.StatusBadRequest, "HandleNotAvailable", "handle already taken: %s", h)
	if !s.signups.reserve("handle:"+handle, 1) {
		return taken
	}
	defer s.signups.release("handle:" + handle)
	if !s.signups.reserve("identity:"+did.String(), 1) {
		return xrpc.Errorf(http.StatusConflict, "InvalidRequest", "another identity change of this account is in progress")
	}
	defer s.signups.release("identity:" + did.String())
	if other, err := s.store.DIDForHandle(ctx, handle); err == nil && other != did.String() {
		return taken
	}
	acct, err := s.store.AccountByDID(ctx, did.String())
	if errors.Is(err, store.ErrNotFound) || (err == nil && acct.Status == store.StatusDeleted) {
		return xrpc.Errorf(http.StatusBadRequest, "AccountNotFound", "no account %s here", did)
	} else if err != nil {
		return err
	}
	if custom {
		if err := s.verifyHandle(ctx, h, did); err != nil {
			return refuseUnverified(h, did, err)
		}
	}
	// The DID document already names the account's current handle.
	same := acct.Handle == handle
	if !same {
		if err := s.submitHandle(ctx, did, handle); err != nil {
			return err
		}
	}
	err = s.store.Write(ctx, func(tx *store.Tx) error {
		if err := tx.SetHandle(did.String(), handle); err != nil {
			return err
		}
		if custom {
			if err := tx.WatchHandle(did.String(), handle); err != nil {
				return err
			}
		} else if err := tx.UnwatchHandle(did.String()); err != nil {
			return err
		}
		return appendIdentity(tx, did.String(), handle)
	})
	s.accounts.forget(did.String())
	if err != nil && !same {
		// Put the DID document back as it was (with a context of its own: the request's
		// may be what failed).
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		if rerr := s.submitHandle(rctx, did, acct.Handle); rerr != nil {
			s.log.Error("restoring the DID document's handle after a failed update", "did", did, "handle", acct.Handle, "err", rerr)
		}
	}
	if errors.Is(err, store.ErrHandleTaken) {
		return taken
	}
	return err
}

// appendIdentity appends an #identity event announcing handle for did.
func appendIdentity(tx *store.Tx, did, handle string) error {
	at := tx.Now().UTC().Format(syntax.AtprotoDatetimeLayout)
	_, err := tx.AppendEvent(did, firehose.TypeIdentity, func(seq int64) ([]byte, error) {
		return firehose.IdentityFrame(&comatproto.SyncSubscribeRepos_Identity{Did: did, Handle: &handle, Time: at}, seq)
	})
	return err
}

// handleAdminUpdateAccountHandle is com.atproto.admin.updateAccountHandle: the operator
// sets an account's handle, under the same rules as updateHandle (a custom-domain
// handle must verify for the account).
func (s *Server) handleAdminUpdateAccountHandle(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		DID    string `json:"did"`
		Handle string `json:"handle"`
	}
	if err := xrpc.DecodeJSON(w, r, 16<<10, &in); err != nil {
		return err
	}
	did, err := syntax.ParseDID(in.DID)
	if err != nil {
		return xrpc.InvalidRequest("invalid did %q", in.DID)
	}
	if err := s.setHandle(r.Context(), did, in.Handle); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// recheckHandle verifies did's watched custom-domain handle again and records the
// outcome, announcing a change between valid and invalid with an #identity event. It
// reports whether the handle is now shown as invalid. An identity change in progress
// for the account makes it skip the check (ok false).
func (s *Server) recheckHandle(ctx context.Context, c store.HandleCheck) (invalid, ok bool, err error) {
	if !s.signups.reserve("identity:"+c.DID, 1) {
		return c.Invalid, false, nil
	}
	defer s.signups.release("identity:" + c.DID)
	h, err := syntax.ParseHandle(c.Handle)
	if err != nil {
		return c.Invalid, false, err
	}
	verr := s.verifyHandle(ctx, h, syntax.DID(c.DID))
	if ctx.Err() != nil {
		return c.Invalid, false, ctx.Err()
	}
	now := time.Now()
	invalid, failures, checked := false, 0, now.UnixMilli()
	switch {
	case verr == nil:
	case errors.Is(verr, errHandleUnverified):
		invalid = true
	default:
		// No answer: keep the current state until it happens handleCheckMaxFailures times
		// in a row, and ask again sooner than usual.
		failures = c.Failures + 1
		invalid = c.Invalid || failures >= handleCheckMaxFailures
		every := s.handleRecheckInterval()
		checked = now.Add(-every + every/8).UnixMilli()
	}
	var changed bool
	err = s.store.Write(ctx, func(tx *store.Tx) error {
		var err error
		if changed, err = tx.RecordHandleCheck(c.DID, c.Handle, invalid, failures, checked); err != nil || !changed {
			return err
		}
		shown := c.Handle
		if invalid {
			shown = syntax.HandleInvalid.String()
		}
		return appendIdentity(tx, c.DID, shown)
	})
	if err != nil {
		return c.Invalid, false, err
	}
	if changed && invalid {
		s.log.Warn("handle no longer verifies; shown as handle.invalid", "did", c.DID, "handle", c.Handle, "err", verr)
	} else if changed {
		s.log.Info("handle verifies again", "did", c.DID, "handle", c.Handle)
	}
	return invalid, true, nil
}

// runHandleChecks verifies custom-domain handles again until ctx ends: each pass checks
// at most handleCheckBatch handles last checked more than the recheck interval ago, the
// oldest first, so checks spread out over the interval as the handles were set.
func (s *Server) runHandleChecks(ctx context.Context) {
	every := s.handleRecheckInterval()
	pause := min(max(every/144, 50*time.Millisecond), 10*time.Minute)
	t := time.NewTimer(pause)
	defer t.Stop()
	for {
		due, err := s.store.HandleChecksDue(ctx, time.Now().Add(-every).UnixMilli(), handleCheckBatch)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("listing handles to verify", "err", err)
		}
		for _, c := range due {
			if _, _, err := s.recheckHandle(ctx, c); err != nil && ctx.Err() == nil {
				s.log.Warn("verifying a handle", "did", c.DID, "handle", c.Handle, "err", err)
			}
		}
		t.Reset(pause)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// shownHandle is the handle this PDS tells the network for an account: its handle, or
// handle.invalid when its custom-domain handle no longer verifies.
func (s *Server) shownHandle(ctx context.Context, did, handle string) string {
	if s.isServiceHandle(handle) {
		return handle
	}
	if c, err := s.store.HandleCheckFor(ctx, did); err == nil && c.Invalid {
		return syntax.HandleInvalid.String()
	}
	return handle
}

// handleRefreshIdentity is com.atproto.identity.refreshIdentity. For an account hosted
// here (by DID or handle) anyone may ask: its custom-domain handle is verified again now
// (at most once per handleRefreshSpacing) and the answer says what the network is told.
// For other identities the caller must be signed in: the cached resolution is dropped
// and the identity resolved afresh, its handle checked both ways.
func (s *Server) handleRefreshIdentity(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in struct {
		Identifier string `json:"identifier"`
	}
	if err := xrpc.DecodeJSON(w, r, 16<<10, &in); err != nil {
		return err
	}
	atid, err := syntax.ParseAtIdentifier(strings.TrimPrefix(strings.TrimSpace(in.Identifier), "@"))
	if err != nil {
		return xrpc.InvalidRequest("invalid identifier %q", in.Identifier)
	}
	var acct *store.Account
	if h, herr := atid.AsHandle(); herr == nil {
		acct, err = s.store.AccountByHandle(ctx, h.Normalize().String())
	} else {
		did, _ := atid.AsDID()
		acct, err = s.store.AccountByDID(ctx, did.String())
	}
	if errors.Is(err, store.ErrNotFound) || (err == nil && acct.Status == store.StatusDeleted) {
		return s.refreshRemoteIdentity(w, r, atid)
	} else if err != nil {
		return err
	}
	handle := acct.Handle
	if c, err := s.store.HandleCheckFor(ctx, acct.DID); err == nil {
		invalid := c.Invalid
		if time.Since(time.UnixMilli(c.CheckedMs)) >= handleRefreshSpacing {
			if invalid, _, err = s.recheckHandle(ctx, *c); err != nil {
				return err
			}
		}
		if invalid {
			handle = syntax.HandleInvalid.String()
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	doc, err := s.plc.Resolve(ctx, syntax.DID(acct.DID))
	if err != nil {
		return xrpc.Errorf(http.StatusBadGateway, "UpstreamFailure", "resolving the DID document failed: %v", err)
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]any{"did": acct.DID, "handle": handle, "didDoc": doc})
	return nil
}

// refreshRemoteIdentity answers refreshIdentity for an identity not hosted here.
func (s *Server) refreshRemoteIdentity(w http.ResponseWriter, r *http.Request, atid syntax.AtIdentifier) error {
	ctx := r.Context()
	if callerFrom(ctx) == nil {
		return xrpc.Errorf(http.StatusUnauthorized, "AuthenticationRequired", "refreshing an identity not hosted here needs a signed-in caller")
	}
	var did syntax.DID
	if h, err := atid.AsHandle(); err == nil {
		ident, err := s.handleDir.LookupHandle(ctx, h)
		if errors.Is(err, indigoid.ErrHandleNotFound) || errors.Is(err, indigoid.ErrHandleMismatch) || errors.Is(err, indigoid.ErrHandleReservedTLD) {
			return xrpc.Errorf(http.StatusBadRequest, "HandleNotFound", "handle %s does not resolve to a DID: %v", h, err)
		} else if err != nil {
			return xrpc.Errorf(http.StatusBadGateway, "UpstreamFailure", "resolving %s failed: %v", h, err)
		}
		did = ident.DID
		_ = s.dir.Purge(ctx, atid)
	} else {
		did, _ = atid.AsDID()
	}
	_ = s.dir.Purge(ctx, did.AtIdentifier())
	if did.Method() != "plc" {
		return xrpc.InvalidRequest("only did:plc identities not hosted here are refreshed")
	}
	doc, err := s.plc.Resolve(ctx, did)
	if err != nil {
		return xrpc.Errorf(http.StatusBadRequest, "DidNotFound", "DID %s not found: %v", did, err)
	}
	ident := indigoid.ParseIdentity(doc)
	handle := syntax.HandleInvalid
	if h, err := ident.DeclaredHandle(); err == nil && s.verifyHandle(ctx, h, did) == nil {
		handle = h
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]any{"did": did.String(), "handle": handle.String(), "didDoc": doc})
	return nil
}

package pds

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/plc"
	"github.com/hearth-social/hearth/pds/store"
)

func (s *Server) handleResolveHandle(w http.ResponseWriter, r *http.Request) error {
	raw := r.URL.Query().Get("handle")
	h, err := syntax.ParseHandle(raw)
	if err != nil {
		return xrpc.InvalidRequest("invalid handle %q", raw)
	}
	did, err := s.store.DIDForHandle(r.Context(), h.Normalize().String())
	if errors.Is(err, store.ErrNotFound) {
		// Not a handle of this PDS: resolve it as anyone would (DNS TXT _atproto, then
		// https://HANDLE/.well-known/atproto-did), checked against the DID document.
		// Under this PDS's own domains there is nothing more to find.
		for _, d := range s.cfg.HandleDomains {
			if strings.HasSuffix(h.Normalize().String(), d) {
				return xrpc.Errorf(http.StatusBadRequest, "HandleNotFound", "unable to resolve handle %s", h)
			}
		}
		ident, lerr := s.dir.LookupHandle(r.Context(), h)
		if lerr != nil {
			return xrpc.Errorf(http.StatusBadRequest, "HandleNotFound", "unable to resolve handle %s", h)
		}
		did = ident.DID.String()
	} else if err != nil {
		return err
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]string{"did": did})
	return nil
}

// handleUpdateHandle changes the caller's handle: the DID document (the source of
// truth) by a PLC operation, then the account row and an #identity event in one
// transaction. The new handle is reserved against concurrent sign-ups and handle changes
// for the whole exchange, and the account's handle changes one at a time, so no race can
// leave a DID document claiming a handle another account holds; if the row cannot be
// written after the PLC operation, a second operation restores the old handle.
func (s *Server) handleUpdateHandle(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c := callerFrom(ctx)
	if err := requireFullAccess(c); err != nil {
		return err
	}
	var in struct {
		Handle string `json:"handle"`
	}
	if err := xrpc.DecodeJSON(w, r, 16<<10, &in); err != nil {
		return err
	}
	h, err := s.validateNewHandle(in.Handle)
	if err != nil {
		return err
	}
	handle := h.String()
	taken := xrpc.Errorf(http.StatusBadRequest, "HandleNotAvailable", "handle already taken: %s", h)
	if !s.signups.reserve("handle:"+handle, 1) {
		return taken
	}
	defer s.signups.release("handle:" + handle)
	if !s.signups.reserve("identity:"+c.DID, 1) {
		return xrpc.Errorf(http.StatusConflict, "InvalidRequest", "another identity change of this account is in progress")
	}
	defer s.signups.release("identity:" + c.DID)
	if other, err := s.store.DIDForHandle(ctx, handle); err == nil && other != c.DID {
		return taken
	}
	acct, err := s.store.AccountByDID(ctx, c.DID)
	if err != nil {
		return err
	}
	did := syntax.DID(c.DID)
	if err := s.submitHandle(ctx, did, handle); err != nil {
		return err
	}
	err = s.store.Write(ctx, func(tx *store.Tx) error {
		if err := tx.SetHandle(c.DID, handle); err != nil {
			return err
		}
		at := tx.Now().UTC().Format(syntax.AtprotoDatetimeLayout)
		_, err := tx.AppendEvent(c.DID, firehose.TypeIdentity, func(seq int64) ([]byte, error) {
			return firehose.IdentityFrame(&comatproto.SyncSubscribeRepos_Identity{Did: c.DID, Handle: &handle, Time: at}, seq)
		})
		return err
	})
	s.accounts.forget(c.DID)
	if err != nil {
		// Put the DID document back as it was (with a context of its own: the request's
		// may be what failed).
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		if rerr := s.submitHandle(rctx, did, acct.Handle); rerr != nil {
			s.log.Error("restoring the DID document's handle after a failed update", "did", did, "handle", acct.Handle, "err", rerr)
		}
		if errors.Is(err, store.ErrHandleTaken) {
			return taken
		}
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// submitHandle signs and submits a PLC operation setting did's handle.
func (s *Server) submitHandle(ctx context.Context, did syntax.DID, handle string) error {
	last, err := s.plc.LastOp(ctx, did)
	if err != nil {
		return xrpc.Errorf(http.StatusBadGateway, "UpstreamFailure", "reading the PLC log failed: %v", err)
	}
	op, err := plc.NewUpdate(last, "", plc.WithHandle(handle), s.rotation)
	if err != nil {
		return err
	}
	if err := s.plc.Submit(ctx, did, op); err != nil {
		return xrpc.Errorf(http.StatusBadGateway, "UpstreamFailure", "updating the DID document failed: %v", err)
	}
	return nil
}

// handleWellKnownAtprotoDID answers handle verification for local handles by Host.
func (s *Server) handleWellKnownAtprotoDID(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	did, err := s.store.DIDForHandle(r.Context(), host)
	if err != nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte("no user by that handle\n"))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(did))
}

// handleWellKnownDIDJSON serves the PDS's own did:web document.
func (s *Server) handleWellKnownDIDJSON(w http.ResponseWriter, r *http.Request) {
	did := s.cfg.ServerDID()
	xrpc.WriteJSON(w, http.StatusOK, map[string]any{
		"@context": []string{"https://www.w3.org/ns/did/v1"},
		"id":       did,
		"service": []map[string]string{{
			"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": s.cfg.PublicURL,
		}},
	})
}

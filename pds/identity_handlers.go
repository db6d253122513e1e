package pds

import (
	"errors"
	"net"
	"net/http"
	"strings"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/identity"
	"github.com/hearth-social/hearth/pds/sequencer"
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
		return xrpc.Errorf(http.StatusBadRequest, "HandleNotFound", "unable to resolve handle %s", h)
	} else if err != nil {
		return err
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]string{"did": did})
	return nil
}

// handleUpdateHandle changes the caller's handle: PLC op first (the DID document is the
// source of truth), then the account row and an #identity event in one transaction.
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
	if other, err := s.store.DIDForHandle(ctx, h.String()); err == nil && other != c.DID {
		return xrpc.Errorf(http.StatusBadRequest, "HandleNotAvailable", "handle already taken: %s", h)
	}
	did := syntax.DID(c.DID)
	last, err := s.plc.LastOp(ctx, did)
	if err != nil {
		return xrpc.Errorf(http.StatusBadGateway, "UpstreamFailure", "reading the PLC log failed: %v", err)
	}
	op, err := identity.NewUpdate(last, "", identity.WithHandle(h.String()), s.rotation)
	if err != nil {
		return err
	}
	if err := s.plc.Submit(ctx, did, op); err != nil {
		return xrpc.Errorf(http.StatusBadGateway, "UpstreamFailure", "updating the DID document failed: %v", err)
	}
	handle := h.String()
	err = s.store.Write(ctx, func(tx *store.Tx) error {
		if err := tx.SetHandle(c.DID, handle); err != nil {
			return err
		}
		at := tx.Now().UTC().Format(syntax.AtprotoDatetimeLayout)
		_, err := tx.AppendEvent(c.DID, sequencer.TypeIdentity, func(seq int64) ([]byte, error) {
			return sequencer.IdentityFrame(&comatproto.SyncSubscribeRepos_Identity{Did: c.DID, Handle: &handle, Time: at}, seq)
		})
		return err
	})
	s.accounts.forget(c.DID)
	if errors.Is(err, store.ErrHandleTaken) {
		return xrpc.Errorf(http.StatusBadRequest, "HandleNotAvailable", "handle already taken: %s", h)
	} else if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
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

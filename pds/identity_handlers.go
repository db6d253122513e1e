package pds

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
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
	if err == nil && s.shownHandle(r.Context(), did, h.Normalize().String()) == syntax.HandleInvalid.String() {
		// A custom-domain handle of an account here that no longer verifies: the
		// table is no authority for it, the handle's DNS or web server is.
		err = store.ErrNotFound
	}
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

// handleUpdateHandle changes the caller's handle (setHandle, handle_domain.go): one under
// this PDS's domains, or one on the caller's own domain that verifies for the caller.
func (s *Server) handleUpdateHandle(w http.ResponseWriter, r *http.Request) error {
	c := callerFrom(r.Context())
	if err := requireFullAccess(c); err != nil {
		return err
	}
	var in struct {
		Handle string `json:"handle"`
	}
	if err := xrpc.DecodeJSON(w, r, 16<<10, &in); err != nil {
		return err
	}
	if err := s.setHandle(r.Context(), syntax.DID(c.DID), in.Handle); err != nil {
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

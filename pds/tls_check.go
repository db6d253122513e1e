package pds

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/store"
)

// CertificatePolicy decides whether a TLS certificate may be obtained for host: the PDS's
// own host name, or a handle host under one of the handle domains (alice.example.com for
// the domain .example.com) that is the handle of an active account here. Everything else
// is refused, so nobody can make this server (or a Caddy asking /tls-check) request
// certificates for names of their choosing. It is the one policy behind both /tls-check
// and the built-in ACME client's HostPolicy (its signature is autocert.HostPolicy's).
// Refusals are XRPC errors: InvalidRequest (400) for a name this PDS never serves,
// NotFound (404) for a handle host without an active account, as the reference PDS's
// /tls-check answers.
func (s *Server) CertificatePolicy(ctx context.Context, host string) error {
	host = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(host)), ".")
	if host == "" {
		return xrpc.InvalidRequest("bad or missing domain query param")
	}
	if host == s.cfg.Hostname {
		return nil
	}
	if !s.isServiceHandle(host) {
		return xrpc.InvalidRequest("handles are not provided on this domain")
	}
	notFound := xrpc.Errorf(http.StatusNotFound, "NotFound", "handle not found for this domain")
	did, err := s.store.DIDForHandle(ctx, host)
	if errors.Is(err, store.ErrNotFound) {
		return notFound
	} else if err != nil {
		return err
	}
	acct, err := s.accounts.get(ctx, s.store, did)
	if errors.Is(err, store.ErrNotFound) {
		return notFound
	} else if err != nil {
		return err
	}
	if !acct.Active() { // deactivated, taken down or deleted: no certificate
		return notFound
	}
	return nil
}

// handleTLSCheck is GET /tls-check?domain=D, for Caddy's on-demand TLS "ask": 200 when
// CertificatePolicy allows D, its error otherwise.
func (s *Server) handleTLSCheck(w http.ResponseWriter, r *http.Request) {
	if err := s.CertificatePolicy(r.Context(), r.URL.Query().Get("domain")); err != nil {
		s.fail(w, r, err)
		return
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]bool{"success": true})
}

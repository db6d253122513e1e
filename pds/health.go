package pds

import (
	"context"
	"net/http"
	"time"

	"github.com/hearth-social/hearth/internal/xrpc"
)

// healthTimeout bounds the health check's database read.
const healthTimeout = 5 * time.Second

// handleHealth serves GET /xrpc/_health as the reference PDS does: {"version"} when the
// database answers, 503 {"version", "error": "Service Unavailable"} when it does not
// (the cause is logged, not sent).
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	if err := s.store.Check(ctx); err != nil {
		s.log.Error("health check failed", "err", err)
		xrpc.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"version": s.cfg.Version, "error": "Service Unavailable"})
		return
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]string{"version": s.cfg.Version})
}

package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
)

// Error is an OAuth error answer (RFC 6749 section 5.2): {"error", "error_description"}.
type Error struct {
	Status      int
	Code        string
	Description string
	// WWWAuthenticate, when set, is sent as the WWW-Authenticate header.
	WWWAuthenticate string
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

func oerr(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Description: fmt.Sprintf(format, args...)}
}

func invalidRequest(format string, args ...any) *Error {
	return oerr(http.StatusBadRequest, "invalid_request", format, args...)
}

func invalidGrant(format string, args ...any) *Error {
	return oerr(http.StatusBadRequest, "invalid_grant", format, args...)
}

func invalidClient(format string, args ...any) *Error {
	return oerr(http.StatusUnauthorized, "invalid_client", format, args...)
}

func invalidDPoP(format string, args ...any) *Error {
	return oerr(http.StatusBadRequest, "invalid_dpop_proof", format, args...)
}

// errUseNonce is the answer to a DPoP proof without the current server nonce.
var errUseNonce = &Error{Status: http.StatusBadRequest, Code: "use_dpop_nonce", Description: "the DPoP proof must carry the nonce in the DPoP-Nonce header"}

// writeError answers err as an OAuth error; anything that is not an *Error is a 500
// (logged, never shown).
func writeError(w http.ResponseWriter, log *slog.Logger, err error) {
	var e *Error
	if !errors.As(err, &e) {
		log.Error("oauth request failed", "err", err)
		e = &Error{Status: http.StatusInternalServerError, Code: "server_error", Description: "internal error"}
	}
	if e.WWWAuthenticate != "" {
		w.Header().Set("WWW-Authenticate", e.WWWAuthenticate)
	}
	writeJSON(w, e.Status, map[string]string{"error": e.Code, "error_description": e.Description})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

package oauth

import (
	"errors"
	"net/http"
	"strings"

	"github.com/hearth-social/hearth/pds/store"
)

// Grant is what a verified DPoP-bound access token lets its bearer do.
type Grant struct {
	DID      string
	ClientID string
	Session  string
	Scope    string
	Perms    *Permissions
}

// ResourceError is a refused DPoP-authenticated call: the XRPC error name and message,
// the HTTP status and the WWW-Authenticate header to send.
type ResourceError struct {
	Status          int
	Name            string
	Message         string
	WWWAuthenticate string
}

func (e *ResourceError) Error() string { return e.Name + ": " + e.Message }

func resourceErr(code, name, msg string) *ResourceError {
	return &ResourceError{Status: http.StatusUnauthorized, Name: name, Message: msg,
		WWWAuthenticate: `DPoP algs="ES256", error="` + code + `", error_description="` + strings.ReplaceAll(msg, `"`, `'`) + `"`}
}

// IsDPoP reports whether a request authenticates with a DPoP-bound token.
func IsDPoP(r *http.Request) bool {
	scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return strings.EqualFold(scheme, "DPoP")
}

// Authenticate checks an XRPC call's `Authorization: DPoP <token>` and its DPoP proof
// (htu: this server's public URL and the request path). The caller sets DPoP-Nonce on
// the answer (SetNonce) whatever the outcome.
func (p *Provider) Authenticate(r *http.Request) (*Grant, error) {
	_, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return nil, resourceErr("invalid_token", "AuthenticationRequired", "DPoP access token missing")
	}
	c, err := p.parseAccess(tok)
	if err != nil {
		if strings.Contains(err.Error(), "exp") {
			return nil, resourceErr("invalid_token", "ExpiredToken", "access token has expired")
		}
		return nil, resourceErr("invalid_token", "InvalidToken", "access token could not be verified")
	}
	proof, perr := p.checkProof(r, p.cfg.Issuer+r.URL.EscapedPath(), tok)
	if perr != nil {
		if perr == errUseNonce {
			return nil, resourceErr("use_dpop_nonce", "use_dpop_nonce", "DPoP nonce required: retry with the DPoP-Nonce header's value")
		}
		return nil, resourceErr("invalid_dpop_proof", "InvalidToken", perr.Description)
	}
	if proof.JKT != c.Cnf.JKT {
		return nil, resourceErr("invalid_dpop_proof", "InvalidToken", "DPoP proof key is not the one the token is bound to")
	}
	sess, err := p.store.OAuthTokenByID(r.Context(), c.Session)
	if errors.Is(err, store.ErrNotFound) {
		return nil, resourceErr("invalid_token", "InvalidToken", "access token has been revoked")
	} else if err != nil {
		return nil, err
	}
	if sess.DID != c.Subject {
		return nil, resourceErr("invalid_token", "InvalidToken", "access token does not match its session")
	}
	return &Grant{DID: c.Subject, ClientID: c.ClientID, Session: c.Session, Scope: c.Scope, Perms: ParseScope(c.Scope)}, nil
}

// SetNonce puts the current DPoP nonce on an answer.
func (p *Provider) SetNonce(w http.ResponseWriter) { p.setNonce(w) }

package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/hearth-social/hearth/pds/store"
)

const requestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// AuthRequest is a pushed authorization request as stored.
type AuthRequest struct {
	ClientID      string `json:"client_id"`
	RedirectURI   string `json:"redirect_uri"`
	Scope         string `json:"scope"`
	State         string `json:"state"`
	CodeChallenge string `json:"code_challenge"`
	ResponseMode  string `json:"response_mode"`
	LoginHint     string `json:"login_hint,omitempty"`
	Prompt        string `json:"prompt,omitempty"`
}

var pkceChallenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

func (p *Provider) handlePAR(w http.ResponseWriter, r *http.Request) {
	p.setNonce(w)
	if err := p.par(w, r); err != nil {
		writeError(w, p.log, err)
	}
}

func (p *Provider) par(w http.ResponseWriter, r *http.Request) error {
	form, err := readForm(w, r)
	if err != nil {
		return err
	}
	if form.Get("request") != "" {
		return oerr(http.StatusBadRequest, "request_not_supported", "request objects are not supported; push the parameters")
	}
	if form.Get("request_uri") != "" {
		return invalidRequest("request_uri must not be pushed")
	}
	proof, perr := p.checkProof(r, p.endpoint("/oauth/par"), "")
	if perr != nil {
		return perr
	}
	md, ca, err := p.authenticateClient(r.Context(), form)
	if err != nil {
		return err
	}
	if jkt := form.Get("dpop_jkt"); jkt != "" && jkt != proof.JKT {
		return invalidDPoP("dpop_jkt does not match the DPoP proof key")
	}
	if form.Get("response_type") != "code" {
		return oerr(http.StatusBadRequest, "unsupported_response_type", "response_type must be code")
	}
	challenge, method := form.Get("code_challenge"), form.Get("code_challenge_method")
	if challenge == "" {
		return invalidRequest("code_challenge is required (PKCE)")
	}
	if method != "S256" {
		return invalidRequest("code_challenge_method must be S256")
	}
	if !pkceChallenge.MatchString(challenge) {
		return invalidRequest("code_challenge must be a base64url SHA-256")
	}
	req := AuthRequest{ClientID: md.ClientID, State: form.Get("state"), CodeChallenge: challenge,
		LoginHint: form.Get("login_hint"), Prompt: form.Get("prompt")}
	if req.State == "" {
		return invalidRequest("state is required")
	}
	switch req.ResponseMode = form.Get("response_mode"); req.ResponseMode {
	case "":
		req.ResponseMode = "query"
	case "query", "fragment":
	default:
		return invalidRequest("response_mode must be query or fragment")
	}
	req.RedirectURI = form.Get("redirect_uri")
	if req.RedirectURI == "" {
		if len(md.RedirectURIs) != 1 {
			return invalidRequest("redirect_uri is required")
		}
		req.RedirectURI = md.RedirectURIs[0]
	} else if !redirectAllowed(md, req.RedirectURI) {
		return invalidRequest("redirect_uri %q is not registered for this client", req.RedirectURI)
	}
	if req.Scope, err = requestedScope(md, form.Get("scope")); err != nil {
		return err
	}
	if err := p.checkIncludes(r.Context(), req.Scope); err != nil {
		return err
	}
	// Last, so a request refused for another reason does not use up its challenge.
	if !p.replay.add("pkce " + challenge) {
		return invalidRequest("code_challenge was already used")
	}
	id, err := randomToken("req-", 24)
	if err != nil {
		return err
	}
	params, _ := json.Marshal(req)
	if err := p.store.Write(r.Context(), func(tx *store.Tx) error {
		return tx.PutOAuthRequest(store.OAuthRequest{ID: id, ClientID: md.ClientID, Params: params, DPoPJKT: proof.JKT,
			ClientAuth: ca.String(), Expires: p.now().Add(requestTTL)})
	}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"request_uri": requestURIPrefix + id, "expires_in": int(requestTTL.Seconds())})
	return nil
}

// requestedScope checks the scope asked for against what the client declares: every
// requested scope must be declared, atproto must be among them. Unset asks for all the
// client declares.
func requestedScope(md *ClientMetadata, scope string) (string, error) {
	if strings.TrimSpace(scope) == "" {
		scope = md.Scope
	}
	declared := strings.Fields(md.Scope)
	var out []string
	for _, s := range strings.Fields(scope) {
		found := false
		for _, d := range declared {
			if d == s {
				found = true
				break
			}
		}
		if !found {
			return "", oerr(http.StatusBadRequest, "invalid_scope", "scope %q is not declared by the client", s)
		}
		out = append(out, s)
	}
	if !hasScope(scope, "atproto") {
		return "", oerr(http.StatusBadRequest, "invalid_scope", "the atproto scope is required")
	}
	return strings.Join(out, " "), nil
}

// Pending is an authorization request waiting for the account holder (what the
// sign-in and consent pages show).
type Pending struct {
	RequestURI string
	Request    AuthRequest
	Client     *ClientMetadata
}

// ErrUnknownRequest: the request_uri is unknown, expired, or already decided.
var ErrUnknownRequest = errors.New("authorization request is unknown or has expired")

// Pending looks up the request an /oauth/authorize visit names.
func (p *Provider) Pending(ctx context.Context, clientID, requestURI string) (*Pending, error) {
	id, ok := strings.CutPrefix(requestURI, requestURIPrefix)
	if !ok || id == "" {
		return nil, ErrUnknownRequest
	}
	row, err := p.store.OAuthRequest(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownRequest
	} else if err != nil {
		return nil, err
	}
	if row.CodeHash != nil || (clientID != "" && clientID != row.ClientID) {
		return nil, ErrUnknownRequest
	}
	var req AuthRequest
	if err := json.Unmarshal(row.Params, &req); err != nil {
		return nil, err
	}
	md, err := p.clients.get(ctx, row.ClientID)
	if err != nil {
		return nil, err
	}
	return &Pending{RequestURI: requestURI, Request: req, Client: md}, nil
}

// Approve records the account holder's consent and returns the URL to send the browser
// to: the client's redirect_uri with code, state and iss.
func (p *Provider) Approve(ctx context.Context, pd *Pending, did, deviceID string) (string, error) {
	code, err := randomToken("cod-", 32)
	if err != nil {
		return "", err
	}
	id := strings.TrimPrefix(pd.RequestURI, requestURIPrefix)
	err = p.store.Write(ctx, func(tx *store.Tx) error {
		return tx.AuthorizeOAuthRequest(id, did, deviceID, hashSecret(code), p.now().Add(codeTTL))
	})
	if errors.Is(err, store.ErrNotFound) {
		return "", ErrUnknownRequest
	} else if err != nil {
		return "", err
	}
	return p.redirect(pd, url.Values{"code": {code}}), nil
}

// Deny drops the request and returns the redirect carrying access_denied.
func (p *Provider) Deny(ctx context.Context, pd *Pending) (string, error) {
	id := strings.TrimPrefix(pd.RequestURI, requestURIPrefix)
	if err := p.store.Write(ctx, func(tx *store.Tx) error { return tx.DeleteOAuthRequest(id) }); err != nil {
		return "", err
	}
	return p.redirect(pd, url.Values{"error": {"access_denied"}, "error_description": {"the account holder declined"}}), nil
}

func (p *Provider) redirect(pd *Pending, v url.Values) string {
	v.Set("state", pd.Request.State)
	v.Set("iss", p.cfg.Issuer)
	u := pd.Request.RedirectURI
	if pd.Request.ResponseMode == "fragment" {
		return u + "#" + v.Encode()
	}
	if strings.Contains(u, "?") {
		return u + "&" + v.Encode()
	}
	return u + "?" + v.Encode()
}

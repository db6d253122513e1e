package oauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// clientAuth is how a client authenticated; a session's refresh must use the same.
type clientAuth struct {
	Method string `json:"method"`
	KID    string `json:"kid,omitempty"`
}

func (a clientAuth) String() string {
	b, _ := json.Marshal(a)
	return string(b)
}

func parseClientAuth(s string) clientAuth {
	var a clientAuth
	_ = json.Unmarshal([]byte(s), &a)
	return a
}

// authenticateClient resolves the request's client_id and checks its authentication:
// none for public clients (no assertion allowed), a private_key_jwt assertion signed by
// a key of the client's jwks for confidential ones.
func (p *Provider) authenticateClient(ctx context.Context, form url.Values) (*ClientMetadata, clientAuth, error) {
	clientID := form.Get("client_id")
	if clientID == "" {
		return nil, clientAuth{}, invalidRequest("client_id is required")
	}
	md, err := p.clients.get(ctx, clientID)
	if err != nil {
		return nil, clientAuth{}, err
	}
	typ, assertion := form.Get("client_assertion_type"), form.Get("client_assertion")
	if !md.Confidential() {
		if typ != "" || assertion != "" {
			return nil, clientAuth{}, invalidClient("client %s is public (token_endpoint_auth_method none) and must not send a client assertion", clientID)
		}
		return md, clientAuth{Method: "none"}, nil
	}
	if typ != assertionType || assertion == "" {
		return nil, clientAuth{}, invalidClient("client %s must authenticate with private_key_jwt", clientID)
	}
	kid, err := p.verifyAssertion(ctx, md, assertion)
	if err != nil {
		return nil, clientAuth{}, err
	}
	return md, clientAuth{Method: "private_key_jwt", KID: kid}, nil
}

// verifyAssertion checks a client assertion (RFC 7523): ES256, signed by the jwks key
// its kid names, iss and sub the client_id, aud this issuer, short-lived, jti unused.
func (p *Provider) verifyAssertion(ctx context.Context, md *ClientMetadata, assertion string) (string, error) {
	tok, err := jwt.ParseSigned(assertion, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(tok.Headers) != 1 {
		return "", invalidClient("client assertion is not an ES256 JWT")
	}
	kid := tok.Headers[0].KeyID
	if kid == "" {
		return "", invalidClient("client assertion must name its key (kid)")
	}
	set, err := p.clients.clientJWKS(ctx, md)
	if err != nil {
		return "", err
	}
	keys := set.Key(kid)
	if len(keys) != 1 || !keys[0].IsPublic() {
		return "", invalidClient("client assertion key %q is not in the client's jwks", kid)
	}
	var c jwt.Claims
	if err := tok.Claims(keys[0].Key, &c); err != nil {
		return "", invalidClient("client assertion signature does not verify")
	}
	now := p.now()
	if c.Issuer != md.ClientID || c.Subject != md.ClientID {
		return "", invalidClient("client assertion iss and sub must be the client_id")
	}
	if !slices.ContainsFunc([]string{p.cfg.Issuer, p.endpoint("/oauth/token"), p.endpoint("/oauth/par")}, c.Audience.Contains) {
		return "", invalidClient("client assertion aud must be this issuer")
	}
	if c.ID == "" {
		return "", invalidClient("client assertion needs a jti")
	}
	if c.IssuedAt == nil || c.IssuedAt.Time().After(now.Add(proofMaxSkew)) || c.IssuedAt.Time().Before(now.Add(-proofMaxAge)) {
		return "", invalidClient("client assertion iat is too old or in the future")
	}
	if c.Expiry != nil && !now.Before(c.Expiry.Time()) {
		return "", invalidClient("client assertion has expired")
	}
	if !p.replay.add("assertion " + md.ClientID + " " + c.ID) {
		return "", invalidClient("client assertion jti was already used")
	}
	return kid, nil
}

// readForm parses an application/x-www-form-urlencoded or JSON body (bounded).
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	ct := r.Header.Get("Content-Type")
	if len(ct) >= 16 && ct[:16] == "application/json" {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			return nil, invalidRequest("body is not JSON")
		}
		form := url.Values{}
		for k, v := range m {
			switch v := v.(type) {
			case string:
				form.Set(k, v)
			case float64, bool:
				b, _ := json.Marshal(v)
				form.Set(k, string(b))
			}
		}
		return form, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, invalidRequest("body is not a form")
	}
	return r.PostForm, nil
}

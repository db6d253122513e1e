package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// ClientMetadata is an OAuth client's metadata document (the atproto profile's subset of
// RFC 7591), fetched from its client_id URL or, for loopback development clients,
// derived from the client_id itself.
type ClientMetadata struct {
	ClientID                    string              `json:"client_id"`
	ClientName                  string              `json:"client_name,omitempty"`
	ClientURI                   string              `json:"client_uri,omitempty"`
	LogoURI                     string              `json:"logo_uri,omitempty"`
	TOSURI                      string              `json:"tos_uri,omitempty"`
	PolicyURI                   string              `json:"policy_uri,omitempty"`
	RedirectURIs                []string            `json:"redirect_uris"`
	GrantTypes                  []string            `json:"grant_types"`
	ResponseTypes               []string            `json:"response_types"`
	Scope                       string              `json:"scope"`
	TokenEndpointAuthMethod     string              `json:"token_endpoint_auth_method"`
	TokenEndpointAuthSigningAlg string              `json:"token_endpoint_auth_signing_alg,omitempty"`
	ApplicationType             string              `json:"application_type,omitempty"`
	DPoPBoundAccessTokens       bool                `json:"dpop_bound_access_tokens"`
	JWKS                        *jose.JSONWebKeySet `json:"jwks,omitempty"`
	JWKSURI                     string              `json:"jwks_uri,omitempty"`
}

// Confidential reports whether the client authenticates with private_key_jwt.
func (m *ClientMetadata) Confidential() bool { return m.TokenEndpointAuthMethod == "private_key_jwt" }

// Loopback reports whether this is a loopback development client (http://localhost).
func (m *ClientMetadata) Loopback() bool { return strings.HasPrefix(m.ClientID, loopbackClientID) }

const (
	loopbackClientID   = "http://localhost"
	maxMetadataBytes   = 64 << 10
	clientCacheTTL     = 10 * time.Minute
	clientCacheEntries = 1000
)

func invalidClientMetadata(format string, args ...any) *Error {
	return oerr(http.StatusBadRequest, "invalid_client_metadata", format, args...)
}

// clients resolves client_ids to validated metadata, caching fetched documents.
type clients struct {
	http *http.Client
	now  func() time.Time
	mu   sync.Mutex
	docs map[string]cachedClient
	jwks map[string]cachedJWKS
}

type cachedClient struct {
	md  *ClientMetadata
	exp time.Time
}

type cachedJWKS struct {
	set *jose.JSONWebKeySet
	exp time.Time
}

// get returns the validated metadata of clientID.
func (c *clients) get(ctx context.Context, clientID string) (*ClientMetadata, error) {
	if strings.HasPrefix(clientID, loopbackClientID) {
		return loopbackMetadata(clientID)
	}
	u, err := url.Parse(clientID)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Fragment != "" || u.User != nil || u.RawQuery != "" {
		return nil, invalidClientMetadata("client_id must be an https URL without query or fragment, or a loopback client id")
	}
	if h := u.Hostname(); h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return nil, invalidClientMetadata("client_id must not be on localhost")
	}
	c.mu.Lock()
	if e, ok := c.docs[clientID]; ok && c.now().Before(e.exp) {
		c.mu.Unlock()
		return e.md, nil
	}
	c.mu.Unlock()
	var md ClientMetadata
	if err := c.fetchJSON(ctx, clientID, &md); err != nil {
		return nil, invalidClientMetadata("client metadata could not be fetched from %s: %v", clientID, err)
	}
	if md.ClientID != clientID {
		return nil, invalidClientMetadata("client metadata client_id %q does not match the URL it came from", md.ClientID)
	}
	if err := validateMetadata(&md); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.docs == nil || len(c.docs) >= clientCacheEntries {
		c.docs = make(map[string]cachedClient)
	}
	c.docs[clientID] = cachedClient{md: &md, exp: c.now().Add(clientCacheTTL)}
	c.mu.Unlock()
	return &md, nil
}

// fetchJSON GETs an https URL through the guarded client: 200 only, JSON only, bounded
// in size (and in time by the client's timeout and ctx).
func (c *clients) fetchJSON(ctx context.Context, raw string, into any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return fmt.Errorf("content type %q is not application/json", mt)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return err
	}
	if len(body) > maxMetadataBytes {
		return errors.New("document is too large")
	}
	return json.Unmarshal(body, into)
}

// clientJWKS is a confidential client's key set: inline, or fetched from jwks_uri.
func (c *clients) clientJWKS(ctx context.Context, md *ClientMetadata) (*jose.JSONWebKeySet, error) {
	if md.JWKS != nil {
		return md.JWKS, nil
	}
	c.mu.Lock()
	if e, ok := c.jwks[md.JWKSURI]; ok && c.now().Before(e.exp) {
		c.mu.Unlock()
		return e.set, nil
	}
	c.mu.Unlock()
	var set jose.JSONWebKeySet
	if err := c.fetchJSON(ctx, md.JWKSURI, &set); err != nil {
		return nil, invalidClient("client jwks_uri could not be fetched: %v", err)
	}
	c.mu.Lock()
	if c.jwks == nil || len(c.jwks) >= clientCacheEntries {
		c.jwks = make(map[string]cachedJWKS)
	}
	c.jwks[md.JWKSURI] = cachedJWKS{set: &set, exp: c.now().Add(clientCacheTTL)}
	c.mu.Unlock()
	return &set, nil
}

func validateMetadata(md *ClientMetadata) error {
	if !md.DPoPBoundAccessTokens {
		return invalidClientMetadata("dpop_bound_access_tokens must be true")
	}
	if !hasScope(md.Scope, "atproto") {
		return invalidClientMetadata("client scope must include atproto")
	}
	if !slices.Contains(md.ResponseTypes, "code") {
		return invalidClientMetadata("response_types must include code")
	}
	if !slices.Contains(md.GrantTypes, "authorization_code") {
		return invalidClientMetadata("grant_types must include authorization_code")
	}
	if len(md.RedirectURIs) == 0 {
		return invalidClientMetadata("redirect_uris is required")
	}
	switch md.ApplicationType {
	case "", "web", "native":
	default:
		return invalidClientMetadata("application_type must be web or native")
	}
	for _, ru := range md.RedirectURIs {
		if err := validRedirectURI(md, ru); err != nil {
			return err
		}
	}
	switch md.TokenEndpointAuthMethod {
	case "none":
	case "private_key_jwt":
		if (md.JWKS == nil) == (md.JWKSURI == "") {
			return invalidClientMetadata("private_key_jwt clients declare exactly one of jwks and jwks_uri")
		}
		if md.JWKSURI != "" && !strings.HasPrefix(md.JWKSURI, "https://") {
			return invalidClientMetadata("jwks_uri must be https")
		}
		if md.TokenEndpointAuthSigningAlg != "" && md.TokenEndpointAuthSigningAlg != string(jose.ES256) {
			return invalidClientMetadata("token_endpoint_auth_signing_alg must be ES256")
		}
	default:
		return invalidClientMetadata("token_endpoint_auth_method must be none or private_key_jwt")
	}
	for _, u := range []string{md.ClientURI, md.LogoURI, md.TOSURI, md.PolicyURI} {
		if u != "" && !strings.HasPrefix(u, "https://") {
			return invalidClientMetadata("client_uri, logo_uri, tos_uri and policy_uri must be https URLs")
		}
	}
	return nil
}

func validRedirectURI(md *ClientMetadata, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Fragment != "" || u.Scheme == "" {
		return invalidClientMetadata("redirect_uri %q is not a URL without fragment", raw)
	}
	switch {
	case u.Scheme == "https" && u.Host != "":
		return nil
	case u.Scheme == "http":
		// Loopback IPs only (RFC 8252 section 7.3), for native and loopback clients.
		if isLoopbackIP(u.Hostname()) && (md.ApplicationType == "native" || md.Loopback()) {
			return nil
		}
		return invalidClientMetadata("http redirect_uri %q must be on 127.0.0.1 or [::1] for a native client", raw)
	default:
		// A private-use scheme: the reverse of the client_id's host (RFC 8252 section 7.1).
		cu, err := url.Parse(md.ClientID)
		if md.ApplicationType != "native" || err != nil || u.Host != "" {
			return invalidClientMetadata("redirect_uri %q is not allowed", raw)
		}
		parts := strings.Split(cu.Hostname(), ".")
		slices.Reverse(parts)
		if u.Scheme != strings.Join(parts, ".") {
			return invalidClientMetadata("redirect_uri scheme %q must be the client_id host reversed", u.Scheme)
		}
		return nil
	}
}

func isLoopbackIP(host string) bool {
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// loopbackMetadata is the metadata of a loopback development client: http://localhost
// with no port and no path, and only scope (once) and redirect_uri (repeatable) in its
// query; redirect URIs on 127.0.0.1 or [::1]; the scopes it declares, atproto included.
func loopbackMetadata(clientID string) (*ClientMetadata, error) {
	rest := strings.TrimPrefix(clientID, loopbackClientID)
	rest = strings.TrimPrefix(rest, "/")
	if rest != "" && rest[0] != '?' {
		return nil, invalidClientMetadata("loopback client_id must be http://localhost with no port or path")
	}
	if strings.Contains(rest, "#") {
		return nil, invalidClientMetadata("loopback client_id must not have a fragment")
	}
	q, err := url.ParseQuery(strings.TrimPrefix(rest, "?"))
	if err != nil {
		return nil, invalidClientMetadata("loopback client_id query: %v", err)
	}
	md := &ClientMetadata{
		ClientID: clientID, Scope: "atproto", RedirectURIs: []string{"http://127.0.0.1/", "http://[::1]/"},
		ResponseTypes: []string{"code"}, GrantTypes: []string{"authorization_code", "refresh_token"},
		TokenEndpointAuthMethod: "none", ApplicationType: "native", DPoPBoundAccessTokens: true,
	}
	for k, vs := range q {
		switch k {
		case "scope":
			if len(vs) != 1 {
				return nil, invalidClientMetadata("loopback client_id has more than one scope")
			}
			md.Scope = vs[0]
		case "redirect_uri":
			md.RedirectURIs = nil
			for _, v := range vs {
				u, err := url.Parse(v)
				if err != nil || u.Scheme != "http" || !isLoopbackIP(u.Hostname()) || u.Fragment != "" {
					return nil, invalidClientMetadata("loopback redirect_uri %q must be http on 127.0.0.1 or [::1]", v)
				}
				md.RedirectURIs = append(md.RedirectURIs, v)
			}
		default:
			return nil, invalidClientMetadata("unexpected loopback client_id parameter %q", k)
		}
	}
	if !hasScope(md.Scope, "atproto") {
		return nil, invalidClientMetadata("loopback client scope must include atproto")
	}
	return md, nil
}

// redirectAllowed matches a requested redirect_uri against the registered ones: exactly,
// or for loopback IPs with any port when the registered one names none (RFC 8252
// section 7.3) and everything else equal.
func redirectAllowed(md *ClientMetadata, req string) bool {
	if slices.Contains(md.RedirectURIs, req) {
		return true
	}
	r, err := url.Parse(req)
	if err != nil {
		return false
	}
	for _, allowed := range md.RedirectURIs {
		a, err := url.Parse(allowed)
		if err != nil || !isLoopbackIP(a.Hostname()) {
			continue
		}
		if (a.Port() == "" || a.Port() == r.Port()) && a.Hostname() == r.Hostname() && a.Scheme == r.Scheme &&
			a.EscapedPath() == r.EscapedPath() && a.RawQuery == r.RawQuery && r.Fragment == "" && r.User == nil {
			return true
		}
	}
	return false
}

func hasScope(scope, want string) bool {
	return slices.Contains(strings.Fields(scope), want)
}

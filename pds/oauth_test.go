package pds_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hearth-social/hearth/internal/testnet"
)

func TestOAuthMetadata(t *testing.T) {
	n := testnet.Start(t)
	c := newOAuthClient(t, n, "atproto")
	pr := c.page(http.MethodGet, "/.well-known/oauth-protected-resource", nil)
	if pr.status != 200 || pr.str("resource") != n.URL() || strings.HasSuffix(pr.str("resource"), "/") {
		t.Fatalf("protected resource: %d %s", pr.status, pr.raw)
	}
	as := c.page(http.MethodGet, "/.well-known/oauth-authorization-server", nil)
	if as.status != 200 || as.str("issuer") != n.URL() {
		t.Fatalf("server metadata: %d %s", as.status, as.raw)
	}
	for k, want := range map[string]any{
		"require_pushed_authorization_requests":          true,
		"client_id_metadata_document_supported":          true,
		"authorization_response_iss_parameter_supported": true,
	} {
		if as.body[k] != want {
			t.Errorf("%s = %v, want %v", k, as.body[k], want)
		}
	}
	for k, want := range map[string]string{
		"code_challenge_methods_supported":      `["S256"]`,
		"dpop_signing_alg_values_supported":     `["ES256"]`,
		"token_endpoint_auth_methods_supported": `["none","private_key_jwt"]`,
		"response_modes_supported":              `["query","fragment"]`,
	} {
		if b, _ := json.Marshal(as.body[k]); string(b) != want {
			t.Errorf("%s = %s, want %s", k, b, want)
		}
	}
	if jw := c.page(http.MethodGet, "/oauth/jwks", nil); jw.status != 200 || !strings.Contains(jw.raw, `"crv":"P-256"`) || strings.Contains(jw.raw, `"d":`) {
		t.Fatalf("jwks: %s", jw.raw)
	}
}

// TestOAuthFlow: PAR, sign-in, consent, token, DPoP-authenticated XRPC, scope limits,
// refresh with rotation (a second use of the old refresh token ends the session),
// revocation, and legacy sessions untouched.
func TestOAuthFlow(t *testing.T) {
	n := testnet.Start(t)
	acct := n.Client.CreateAccount(t, "alice")
	c := newOAuthClient(t, n, "atproto transition:generic")
	verifier, challenge := pkce()
	code := c.authorize(acct.Handle, acct.Password, challenge)
	tok := c.exchange(code, verifier)
	if tok.status != 200 || tok.str("token_type") != "DPoP" || tok.str("sub") != acct.DID || tok.str("scope") != "atproto transition:generic" {
		t.Fatalf("token: %d %s", tok.status, tok.raw)
	}
	at, rt := tok.str("access_token"), tok.str("refresh_token")

	s := c.xrpc(http.MethodGet, "com.atproto.server.getSession", nil, at, nil)
	if s.status != 200 || s.str("did") != acct.DID || s.header.Get("DPoP-Nonce") == "" {
		t.Fatalf("getSession: %d %s", s.status, s.raw)
	}
	if _, ok := s.body["email"]; ok {
		t.Fatalf("getSession shows the email without transition:email: %s", s.raw)
	}
	rec := map[string]any{"repo": acct.DID, "collection": "app.bsky.feed.post", "record": testnet.Post("via oauth")}
	cr := c.xrpc(http.MethodPost, "com.atproto.repo.createRecord", rec, at, nil)
	if cr.status != 200 || cr.str("uri") == "" || cr.header.Get("DPoP-Nonce") == "" {
		t.Fatalf("createRecord: %d %s", cr.status, cr.raw)
	}
	// transition:generic is app-password power: no app-password management.
	if ap := c.xrpc(http.MethodPost, "com.atproto.server.createAppPassword", map[string]any{"name": "x"}, at, nil); ap.status != 403 {
		t.Fatalf("createAppPassword with an OAuth token: %d %s", ap.status, ap.raw)
	}

	// Refresh rotates; the new access token works; the old refresh token used again
	// revokes the session.
	ref := c.send("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.clientID}}, nil)
	if ref.status != 200 || ref.str("refresh_token") == rt || ref.str("access_token") == "" {
		t.Fatalf("refresh: %d %s", ref.status, ref.raw)
	}
	at2 := ref.str("access_token")
	if g := c.xrpc(http.MethodGet, "com.atproto.server.getSession", nil, at2, nil); g.status != 200 {
		t.Fatalf("getSession after refresh: %d %s", g.status, g.raw)
	}
	again := c.send("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.clientID}}, nil)
	if again.status != 400 || again.str("error") != "invalid_grant" {
		t.Fatalf("reused refresh token: %d %s", again.status, again.raw)
	}
	if g := c.xrpc(http.MethodGet, "com.atproto.server.getSession", nil, at2, nil); g.status != 401 || !strings.Contains(g.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("session still usable after refresh replay: %d %s", g.status, g.raw)
	}
	if ref2 := c.send("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ref.str("refresh_token")}, "client_id": {c.clientID}}, nil); ref2.status != 400 {
		t.Fatalf("rotated-to refresh token still works after replay: %d %s", ref2.status, ref2.raw)
	}

	// A new sign-in (the browser is still signed in: consent only), then revoke.
	verifier, challenge = pkce()
	code = c.authorize(acct.Handle, acct.Password, challenge)
	tok = c.exchange(code, verifier)
	at = tok.str("access_token")
	if rv := c.send("/oauth/revoke", url.Values{"token": {tok.str("refresh_token")}, "client_id": {c.clientID}}, nil); rv.status != 200 {
		t.Fatalf("revoke: %d %s", rv.status, rv.raw)
	}
	if g := c.xrpc(http.MethodGet, "com.atproto.server.getSession", nil, at, nil); g.status != 401 {
		t.Fatalf("revoked token accepted: %d %s", g.status, g.raw)
	}

	// Legacy sessions keep working.
	testnet.RequireOK(t, n.Client.Get(t, "com.atproto.server.getSession", nil, acct.Access))
}

// TestOAuthScopes: atproto alone reads the session but cannot write; granular repo:
// permissions name collection and action; blob: names MIME types.
func TestOAuthScopes(t *testing.T) {
	n := testnet.Start(t)
	acct := n.Client.CreateAccount(t, "bob")
	token := func(scope string) (*oauthClient, string) {
		c := newOAuthClient(t, n, scope)
		v, ch := pkce()
		tok := c.exchange(c.authorize(acct.Handle, acct.Password, ch), v)
		if tok.status != 200 {
			t.Fatalf("token for %q: %s", scope, tok.raw)
		}
		return c, tok.str("access_token")
	}
	post := map[string]any{"repo": acct.DID, "collection": "app.bsky.feed.post", "record": testnet.Post("scoped")}
	like := map[string]any{"repo": acct.DID, "collection": "app.bsky.feed.like", "record": map[string]any{
		"$type": "app.bsky.feed.like", "createdAt": time.Now().UTC().Format(time.RFC3339),
		"subject": map[string]any{"uri": "at://" + acct.DID + "/app.bsky.feed.post/3kabc", "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}}}

	c, at := token("atproto")
	if g := c.xrpc(http.MethodGet, "com.atproto.server.getSession", nil, at, nil); g.status != 200 {
		t.Fatalf("getSession with atproto: %d %s", g.status, g.raw)
	}
	if r := c.xrpc(http.MethodPost, "com.atproto.repo.createRecord", post, at, nil); r.status != 403 || r.str("error") != "ScopeMissingError" {
		t.Fatalf("createRecord with atproto alone: %d %s", r.status, r.raw)
	}

	c, at = token("atproto repo:app.bsky.feed.post?action=create blob:image/*")
	if r := c.xrpc(http.MethodPost, "com.atproto.repo.createRecord", post, at, nil); r.status != 200 {
		t.Fatalf("createRecord with repo:app.bsky.feed.post?action=create: %d %s", r.status, r.raw)
	}
	if r := c.xrpc(http.MethodPost, "com.atproto.repo.createRecord", like, at, nil); r.status != 403 || r.str("error") != "ScopeMissingError" {
		t.Fatalf("like without its scope: %d %s", r.status, r.raw)
	}
	del := map[string]any{"repo": acct.DID, "collection": "app.bsky.feed.post", "rkey": "3kabc"}
	if r := c.xrpc(http.MethodPost, "com.atproto.repo.deleteRecord", del, at, nil); r.status != 403 {
		t.Fatalf("delete without action=delete: %d %s", r.status, r.raw)
	}
	if r := c.xrpc(http.MethodPost, "com.atproto.repo.uploadBlob", nil, at, func(o *proofOpts, req *http.Request) {
		req.Header.Set("Content-Type", "video/mp4")
	}); r.status != 403 || r.str("error") != "ScopeMissingError" {
		t.Fatalf("video upload with blob:image/*: %d %s", r.status, r.raw)
	}
	if r := c.xrpc(http.MethodPost, "com.atproto.identity.updateHandle", map[string]any{"handle": "bob2.test"}, at, nil); r.status != 403 {
		t.Fatalf("updateHandle without identity:handle: %d %s", r.status, r.raw)
	}
}

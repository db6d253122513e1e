package pds_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/hearth-social/hearth/pds"
)

// TestOAuthRefusals: each way a request can break the profile is refused with the
// profile's error.
func TestOAuthRefusals(t *testing.T) {
	n := testnet.Start(t)
	acct := n.Client.CreateAccount(t, "dave")
	c := newOAuthClient(t, n, "atproto transition:generic")
	_, challenge := pkce()

	// A session to break things with.
	verifier, ch := pkce()
	code := c.authorize(acct.Handle, acct.Password, ch)
	tok := c.exchange(code, verifier)
	if tok.status != 200 {
		t.Fatalf("token: %s", tok.raw)
	}
	at := tok.str("access_token")
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	oauthCases := []struct {
		name   string
		path   string
		form   url.Values
		mutate func(*proofOpts)
		status int
		err    string
	}{
		{"PAR without PKCE", "/oauth/par", without(c.parForm(challenge), "code_challenge", "code_challenge_method"), nil, 400, "invalid_request"},
		{"PAR with plain PKCE", "/oauth/par", with(c.parForm(challenge), "code_challenge_method", "plain"), nil, 400, "invalid_request"},
		{"PAR with an unregistered redirect_uri", "/oauth/par", with(c.parForm(challenge), "redirect_uri", "http://127.0.0.1/elsewhere"), nil, 400, "invalid_request"},
		{"PAR with an undeclared scope", "/oauth/par", with(c.parForm(challenge), "scope", "atproto transition:chat.bsky"), nil, 400, "invalid_scope"},
		{"PAR with the wrong htm", "/oauth/par", c.parForm(challenge), func(o *proofOpts) { o.htm = "GET" }, 400, "invalid_dpop_proof"},
		{"PAR with the wrong htu", "/oauth/par", c.parForm(challenge), func(o *proofOpts) { o.htu = n.URL() + "/oauth/token" }, 400, "invalid_dpop_proof"},
		{"PAR with an old proof", "/oauth/par", c.parForm(challenge), func(o *proofOpts) { o.iat = time.Now().Add(-time.Hour) }, 400, "invalid_dpop_proof"},
		{"PAR with a made-up nonce", "/oauth/par", c.parForm(challenge), func(o *proofOpts) { o.nonce = "not-a-nonce" }, 400, "use_dpop_nonce"},
		{"token with the wrong code_verifier", "/oauth/token", tokenForm(c, "", "wrong-verifier-wrong-verifier-wrong-verifier"), nil, 400, "invalid_grant"},
		{"refresh with another DPoP key", "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.str("refresh_token")}, "client_id": {c.clientID}},
			func(o *proofOpts) { o.key = other }, 400, "invalid_dpop_proof"},
		{"token with a reused code", "/oauth/token", tokenForm(c, code, verifier), nil, 400, "invalid_grant"},
	}
	for _, tc := range oauthCases {
		t.Run(tc.name, func(t *testing.T) {
			form := tc.form
			if tc.name == "token with the wrong code_verifier" {
				_, ch := pkce()
				form = tokenForm(c, c.authorize(acct.Handle, acct.Password, ch), "wrong-verifier-wrong-verifier-wrong-verifier")
			}
			r := c.send(tc.path, form, tc.mutate)
			if tc.err == "use_dpop_nonce" { // send retries once with the real nonce; do it raw
				r = c.sendRaw(tc.path, form, tc.mutate)
			}
			if r.status != tc.status || r.str("error") != tc.err || r.str("error_description") == "" {
				t.Fatalf("got %d %s, want %d %s", r.status, r.raw, tc.status, tc.err)
			}
		})
	}
	// The reused code revoked the tokens its first use issued.
	if g := c.xrpc(http.MethodGet, "com.atproto.server.getSession", nil, at, nil); g.status != 401 {
		t.Fatalf("tokens of a replayed code still work: %d %s", g.status, g.raw)
	}

	// Resource server refusals, with a fresh session.
	verifier, ch = pkce()
	at = c.exchange(c.authorize(acct.Handle, acct.Password, ch), verifier).str("access_token")
	replayJTI := "replayed-jti-1"
	if g := c.xrpc(http.MethodGet, "com.atproto.server.getSession", nil, at, func(o *proofOpts, _ *http.Request) { o.jti = replayJTI }); g.status != 200 {
		t.Fatalf("getSession: %d %s", g.status, g.raw)
	}
	xrpcCases := []struct {
		name   string
		nsid   string
		mutate func(*proofOpts, *http.Request)
		status int
		err    string
		www    string
	}{
		{"access token without its DPoP proof", "com.atproto.server.getSession", func(o *proofOpts, _ *http.Request) { o.htm = "-" }, 401, "InvalidToken", "invalid_dpop_proof"},
		{"DPoP access token as Bearer", "com.atproto.server.getSession", func(o *proofOpts, r *http.Request) { r.Header.Set("Authorization", "Bearer "+at) }, 401, "InvalidToken", ""},
		{"proof with the wrong htm", "com.atproto.server.getSession", func(o *proofOpts, _ *http.Request) { o.htm = "POST" }, 401, "InvalidToken", "invalid_dpop_proof"},
		{"proof with the wrong htu", "com.atproto.server.getSession", func(o *proofOpts, _ *http.Request) { o.htu = n.URL() + "/xrpc/com.atproto.repo.createRecord" }, 401, "InvalidToken", "invalid_dpop_proof"},
		{"replayed jti", "com.atproto.server.getSession", func(o *proofOpts, _ *http.Request) { o.jti = replayJTI }, 401, "InvalidToken", "invalid_dpop_proof"},
		{"proof without ath", "com.atproto.server.getSession", func(o *proofOpts, _ *http.Request) { o.ath = "" }, 401, "InvalidToken", "invalid_dpop_proof"},
		{"proof from another key", "com.atproto.server.getSession", func(o *proofOpts, _ *http.Request) { o.key = other }, 401, "InvalidToken", "invalid_dpop_proof"},
		{"tampered token", "com.atproto.server.getSession", func(o *proofOpts, r *http.Request) { r.Header.Set("Authorization", "DPoP "+at[:len(at)-4]+"AAAA") }, 401, "InvalidToken", "invalid_token"},
		{"scope does not cover the call", "com.atproto.server.createAppPassword", nil, 403, "Forbidden", ""},
	}
	for _, tc := range xrpcCases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.xrpc(http.MethodGet, tc.nsid, nil, at, tc.mutate)
			if tc.nsid == "com.atproto.server.createAppPassword" {
				r = c.xrpc(http.MethodPost, tc.nsid, map[string]any{"name": "x"}, at, nil)
			}
			if r.status != tc.status || r.str("error") != tc.err || r.str("message") == "" {
				t.Fatalf("got %d %s, want %d %s", r.status, r.raw, tc.status, tc.err)
			}
			if tc.www != "" && !strings.Contains(r.header.Get("WWW-Authenticate"), `error="`+tc.www+`"`) {
				t.Fatalf("WWW-Authenticate %q, want error=%q", r.header.Get("WWW-Authenticate"), tc.www)
			}
			if r.header.Get("DPoP-Nonce") == "" && strings.HasPrefix(r.raw, "{") && tc.name != "DPoP access token as Bearer" {
				t.Fatal("no DPoP-Nonce on a DPoP-authenticated answer")
			}
		})
	}
}

func (c *oauthClient) sendRaw(path string, form url.Values, mutate func(*proofOpts)) *oauthResp {
	o := proofOpts{htm: http.MethodPost, htu: c.base + path, nonce: c.nonce}
	if mutate != nil {
		mutate(&o)
	}
	req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", c.proof(o))
	return c.do(req)
}

func tokenForm(c *oauthClient, code, verifier string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {c.redirect}, "client_id": {c.clientID}}
}

func with(v url.Values, k, val string) url.Values {
	out := url.Values{}
	for kk, vv := range v {
		out[kk] = vv
	}
	out.Set(k, val)
	return out
}

func without(v url.Values, keys ...string) url.Values {
	out := with(v, "x", "")
	out.Del("x")
	for _, k := range keys {
		out.Del(k)
	}
	return out
}

// confidentialClient serves a private_key_jwt client's metadata over TLS on 127.0.0.1.
func confidentialClient(t *testing.T) (*httptest.Server, *ecdsa.PrivateKey, string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var clientID string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/client-metadata.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"client_id": clientID, "client_name": "Confidential Test App", "client_uri": strings.TrimSuffix(clientID, "/client-metadata.json"),
			"redirect_uris": []string{strings.Replace(clientID, "/client-metadata.json", "/callback", 1)},
			"grant_types":   []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
			"scope": "atproto transition:generic", "token_endpoint_auth_method": "private_key_jwt", "token_endpoint_auth_signing_alg": "ES256",
			"application_type": "web", "dpop_bound_access_tokens": true,
			"jwks": jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}},
		})
	}))
	t.Cleanup(srv.Close)
	clientID = srv.URL + "/client-metadata.json"
	return srv, key, clientID
}

func assertion(t *testing.T, key *ecdsa.PrivateKey, kid, clientID, aud string) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 12)
	rand.Read(b)
	s, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: clientID, Subject: clientID, Audience: jwt.Audience{aud},
		ID: string(b[:6]) + time.Now().String(), IssuedAt: jwt.NewNumericDate(time.Now()), Expiry: jwt.NewNumericDate(time.Now().Add(time.Minute))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOAuthClientMetadata: a confidential client authenticates with private_key_jwt
// against its metadata document; the same document on a private address is refused by
// the SSRF guard when the default (guarded) client fetches it.
func TestOAuthClientMetadata(t *testing.T) {
	srv, key, clientID := confidentialClient(t)
	redirect := strings.Replace(clientID, "/client-metadata.json", "/callback", 1)
	parForm := func(challenge string) url.Values {
		return url.Values{"client_id": {clientID}, "response_type": {"code"}, "code_challenge": {challenge},
			"code_challenge_method": {"S256"}, "redirect_uri": {redirect}, "state": {"s1"}, "scope": {"atproto transition:generic"}}
	}

	t.Run("private address refused", func(t *testing.T) {
		n := testnet.Start(t) // default OAuth client fetcher: netguard, no private addresses
		c := newOAuthClient(t, n, "atproto")
		_, ch := pkce()
		form := parForm(ch)
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", assertion(t, key, "k1", clientID, n.URL()))
		r := c.send("/oauth/par", form, nil)
		if r.status != 400 || r.str("error") != "invalid_client_metadata" || !strings.Contains(r.str("error_description"), "non-public") {
			t.Fatalf("client metadata on 127.0.0.1: %d %s", r.status, r.raw)
		}
	})

	n := testnet.Start(t, func(cfg *pds.Config) { cfg.OAuthClientHTTP = srv.Client() })
	acct := n.Client.CreateAccount(t, "erin")
	c := newOAuthClient(t, n, "atproto")
	c.clientID, c.redirect = clientID, redirect
	assertionCases := []struct {
		name, kid, aud string
		key            *ecdsa.PrivateKey
		want           string
	}{
		{"no assertion", "", "", nil, "invalid_client"},
		{"unknown kid", "k2", n.URL(), key, "invalid_client"},
		{"wrong aud", "k1", "https://elsewhere.example", key, "invalid_client"},
		{"wrong key", "k1", n.URL(), mustKey(), "invalid_client"},
	}
	for _, tc := range assertionCases {
		t.Run(tc.name, func(t *testing.T) {
			_, ch := pkce()
			form := parForm(ch)
			if tc.key != nil {
				form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
				form.Set("client_assertion", assertion(t, tc.key, tc.kid, clientID, tc.aud))
			}
			if r := c.send("/oauth/par", form, nil); r.status != 401 || r.str("error") != tc.want {
				t.Fatalf("got %d %s, want %s", r.status, r.raw, tc.want)
			}
		})
	}

	v, ch := pkce()
	form := parForm(ch)
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", assertion(t, key, "k1", clientID, n.URL()))
	par := c.send("/oauth/par", form, nil)
	if par.status != 201 {
		t.Fatalf("confidential PAR: %d %s", par.status, par.raw)
	}
	pg := c.page(http.MethodGet, "/oauth/authorize?"+url.Values{"client_id": {clientID}, "request_uri": {par.str("request_uri")}}.Encode(), nil)
	if !strings.Contains(pg.raw, "Confidential Test App") {
		t.Fatalf("sign-in page does not name the client: %s", pg.raw)
	}
	m := csrfField.FindStringSubmatch(pg.raw)
	c.page(http.MethodPost, "/oauth/authorize/sign-in", url.Values{"csrf": {m[1]}, "request_uri": {par.str("request_uri")}, "client_id": {clientID},
		"identifier": {acct.Handle}, "password": {acct.Password}})
	cons := c.page(http.MethodPost, "/oauth/authorize/consent", url.Values{"csrf": {m[1]}, "request_uri": {par.str("request_uri")}, "client_id": {clientID}, "decision": {"allow"}})
	loc, _ := url.Parse(cons.header.Get("Location"))
	tf := tokenForm(c, loc.Query().Get("code"), v)
	tf.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	tf.Set("client_assertion", assertion(t, key, "k1", clientID, n.URL()))
	tok := c.send("/oauth/token", tf, nil)
	if tok.status != 200 || tok.str("sub") != acct.DID {
		t.Fatalf("confidential token: %d %s", tok.status, tok.raw)
	}
	// Refresh without the assertion is refused: the session was made with private_key_jwt.
	if r := c.send("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.str("refresh_token")}, "client_id": {clientID}}, nil); r.status != 401 || r.str("error") != "invalid_client" {
		t.Fatalf("refresh without client auth: %d %s", r.status, r.raw)
	}
}

func mustKey() *ecdsa.PrivateKey {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return k
}

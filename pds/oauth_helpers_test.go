package pds_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/hearth-social/hearth/internal/testnet"
)

// oauthClient is a minimal atproto OAuth client for tests: one DPoP key, the server's
// latest nonce, a browser cookie jar for the pages.
type oauthClient struct {
	t        testing.TB
	base     string
	key      *ecdsa.PrivateKey
	nonce    string
	http     *http.Client
	clientID string
	redirect string
}

func newOAuthClient(t testing.TB, n *testnet.Net, scope string) *oauthClient {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	redirect := "http://127.0.0.1/callback"
	cid := "http://localhost?" + url.Values{"redirect_uri": {redirect}, "scope": {scope}}.Encode()
	return &oauthClient{t: t, base: n.URL(), key: key, clientID: cid, redirect: redirect, http: &http.Client{
		Timeout: 10 * time.Second, Jar: jar,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !strings.HasPrefix(req.URL.String(), n.URL()) {
				return http.ErrUseLastResponse
			}
			return nil
		}}}
}

type proofOpts struct {
	htm, htu, jti, nonce, ath string
	iat                       time.Time
	key                       *ecdsa.PrivateKey
}

func (c *oauthClient) proof(o proofOpts) string {
	key := o.key
	if key == nil {
		key = c.key
	}
	if o.jti == "" {
		b := make([]byte, 12)
		rand.Read(b)
		o.jti = base64.RawURLEncoding.EncodeToString(b)
	}
	if o.iat.IsZero() {
		o.iat = time.Now()
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		c.t.Fatal(err)
	}
	claims := map[string]any{"jti": o.jti, "htm": o.htm, "htu": o.htu, "iat": o.iat.Unix()}
	if o.nonce != "" {
		claims["nonce"] = o.nonce
	}
	if o.ath != "" {
		claims["ath"] = o.ath
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		c.t.Fatal(err)
	}
	s, _ := jws.CompactSerialize()
	return s
}

type oauthResp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r *oauthResp) str(k string) string { s, _ := r.body[k].(string); return s }

// send posts a form with a DPoP proof, retrying once when told to use a nonce.
func (c *oauthClient) send(path string, form url.Values, mutate func(*proofOpts)) *oauthResp {
	for attempt := 0; ; attempt++ {
		o := proofOpts{htm: http.MethodPost, htu: c.base + path, nonce: c.nonce}
		if mutate != nil {
			mutate(&o)
		}
		req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("DPoP", c.proof(o))
		resp := c.do(req)
		if resp.str("error") == "use_dpop_nonce" && attempt == 0 {
			continue
		}
		return resp
	}
}

func (c *oauthClient) do(req *http.Request) *oauthResp {
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if n := resp.Header.Get("DPoP-Nonce"); n != "" {
		c.nonce = n
	}
	out := &oauthResp{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	_ = json.Unmarshal(b, &out.body)
	return out
}

func pkce() (verifier, challenge string) {
	b := make([]byte, 32)
	rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func (c *oauthClient) parForm(challenge string) url.Values {
	return url.Values{"client_id": {c.clientID}, "response_type": {"code"}, "code_challenge": {challenge},
		"code_challenge_method": {"S256"}, "redirect_uri": {c.redirect}, "state": {"st-123"}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// page GETs or POSTs a page and returns its body (no DPoP: these are the browser's).
func (c *oauthClient) page(method, path string, form url.Values) *oauthResp {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", c.base)
	}
	return c.do(req)
}

// authorize runs PAR, sign-in and consent and returns the code from the redirect.
func (c *oauthClient) authorize(handle, password, challenge string) string {
	t := c.t
	par := c.send("/oauth/par", c.parForm(challenge), nil)
	if par.status != http.StatusCreated {
		t.Fatalf("PAR: %d %s", par.status, par.raw)
	}
	ru := par.str("request_uri")
	q := url.Values{"client_id": {c.clientID}, "request_uri": {ru}}
	pg := c.page(http.MethodGet, "/oauth/authorize?"+q.Encode(), nil)
	m := csrfField.FindStringSubmatch(pg.raw)
	if pg.status != 200 || m == nil {
		t.Fatalf("authorize page: %d %s", pg.status, pg.raw)
	}
	if !strings.Contains(pg.raw, "wants to use your account") { // not signed in yet
		form := url.Values{"csrf": {m[1]}, "request_uri": {ru}, "client_id": {c.clientID}, "identifier": {handle}, "password": {password}}
		pg = c.page(http.MethodPost, "/oauth/authorize/sign-in", form)
	}
	if pg.status != 200 || !strings.Contains(pg.raw, "wants to use your account") {
		t.Fatalf("consent page after sign-in: %d %s", pg.status, pg.raw)
	}
	form := url.Values{"csrf": {m[1]}, "request_uri": {ru}, "client_id": {c.clientID}, "decision": {"allow"}}
	pg = c.page(http.MethodPost, "/oauth/authorize/consent", form)
	loc, _ := url.Parse(pg.header.Get("Location"))
	if pg.status != http.StatusSeeOther || loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("consent: %d %v %s", pg.status, pg.header, pg.raw)
	}
	if loc.Query().Get("iss") != c.base || loc.Query().Get("state") != "st-123" {
		t.Fatalf("redirect lacks iss/state: %s", loc)
	}
	return loc.Query().Get("code")
}

func (c *oauthClient) exchange(code, verifier string) *oauthResp {
	return c.send("/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
		"redirect_uri": {c.redirect}, "client_id": {c.clientID}}, nil)
}

// xrpc calls a PDS method with the DPoP-bound token, retrying once for a nonce.
func (c *oauthClient) xrpc(method, nsid string, body any, token string, mutate func(*proofOpts, *http.Request)) *oauthResp {
	for attempt := 0; ; attempt++ {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = strings.NewReader(string(b))
		}
		u := c.base + "/xrpc/" + nsid
		req, _ := http.NewRequest(method, u, rd)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		sum := sha256.Sum256([]byte(token))
		o := proofOpts{htm: method, htu: u, nonce: c.nonce, ath: base64.RawURLEncoding.EncodeToString(sum[:])}
		req.Header.Set("Authorization", "DPoP "+token)
		if mutate != nil {
			mutate(&o, req)
		}
		if o.htm != "-" {
			req.Header.Set("DPoP", c.proof(o))
		}
		resp := c.do(req)
		if resp.status == 401 && strings.Contains(resp.header.Get("WWW-Authenticate"), "use_dpop_nonce") && attempt == 0 {
			continue
		}
		return resp
	}
}

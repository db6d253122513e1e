package dashboard_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hearth-social/hearth/internal/dashboard"
	"github.com/hearth-social/hearth/internal/ratelimit"
	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/stretchr/testify/require"
)

// env is a PDS (internal/testnet) with a dashboard in front of its admin code.
type env struct {
	n    *testnet.Net
	ts   *httptest.Server
	http *http.Client
}

func start(t *testing.T, mutate ...func(*dashboard.Config)) *env {
	t.Helper()
	n := testnet.Start(t)
	cfg := dashboard.Config{Admin: n.PDS, Password: testnet.AdminPassword, Version: "test"}
	for _, m := range mutate {
		m(&cfg)
	}
	d, err := dashboard.New(cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(d.Handler())
	t.Cleanup(ts.Close)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &env{n: n, ts: ts, http: c}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// get fetches path and returns the status, body and the page's CSRF token.
func (e *env) get(t *testing.T, path string) (int, string, string) {
	t.Helper()
	res, err := e.http.Get(e.ts.URL + path)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	tok := ""
	if m := csrfRe.FindStringSubmatch(string(b)); m != nil {
		tok = m[1]
	}
	return res.StatusCode, string(b), tok
}

func (e *env) post(t *testing.T, path string, form url.Values, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.ts.URL+path, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := e.http.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

func (e *env) signIn(t *testing.T, password string) *http.Response {
	t.Helper()
	_, _, tok := e.get(t, "/sign-in")
	require.NotEmpty(t, tok)
	return e.post(t, "/sign-in", url.Values{"csrf": {tok}, "password": {password}, "next": {"/accounts"}}, nil)
}

func (e *env) status(t *testing.T, did string) string {
	t.Helper()
	r := e.n.Client.Get(t, "com.atproto.admin.getAccountInfo", url.Values{"did": {did}}, "admin")
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	return r.Str("status")
}

// TestSignIn: no session redirects to the sign-in page; a wrong password is refused
// with no session; the right one signs in with a Strict, HttpOnly cookie.
func TestSignIn(t *testing.T) {
	e := start(t)
	for _, path := range []string{"/", "/accounts", "/health", "/feed", "/moderation"} {
		res, err := e.http.Get(e.ts.URL + path)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusSeeOther, res.StatusCode, path)
		require.Equal(t, "/sign-in?next="+url.QueryEscape(path), res.Header.Get("Location"), path)
	}
	res := e.signIn(t, "not-the-password")
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	for _, c := range res.Cookies() {
		require.NotEqual(t, "hearth_dashboard", c.Name, "a wrong password got a session")
	}
	code, _, _ := e.get(t, "/accounts")
	require.Equal(t, http.StatusSeeOther, code)

	res = e.signIn(t, testnet.AdminPassword)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/accounts", res.Header.Get("Location"))
	var sess *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "hearth_dashboard" {
			sess = c
		}
	}
	require.NotNil(t, sess)
	require.True(t, sess.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, sess.SameSite)
	require.False(t, sess.Secure, "plain http on loopback")
	code, body, _ := e.get(t, "/accounts")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "<h1>Accounts</h1>")
}

// TestSignInRateLimited: past the sign-in budget, even the right password is refused.
func TestSignInRateLimited(t *testing.T) {
	e := start(t, func(c *dashboard.Config) { c.SignInLimits = []ratelimit.Limit{{Points: 2, Window: time.Minute}} })
	require.Equal(t, http.StatusUnauthorized, e.signIn(t, "wrong").StatusCode)
	require.Equal(t, http.StatusUnauthorized, e.signIn(t, "wrong").StatusCode)
	res := e.signIn(t, testnet.AdminPassword)
	require.Equal(t, http.StatusTooManyRequests, res.StatusCode)
	require.NotEmpty(t, res.Header.Get("Retry-After"))
}

// TestCSRF: a takedown without the session's token, with a wrong one, or sent from
// another site is refused with 403 and changes nothing; with the token it works.
func TestCSRF(t *testing.T) {
	e := start(t)
	acct := e.n.Client.CreateAccount(t, "dora")
	path := "/accounts/" + acct.DID + "/takedown"
	// Without a session a form is refused too (there is no token to check it against).
	require.Equal(t, http.StatusForbidden, e.post(t, path, url.Values{"reason": {"spam"}}, nil).StatusCode)
	require.Equal(t, http.StatusSeeOther, e.signIn(t, testnet.AdminPassword).StatusCode)
	code, _, tok := e.get(t, "/accounts/"+acct.DID)
	require.Equal(t, http.StatusOK, code)
	require.NotEmpty(t, tok)
	// The token with its last character changed (rand.Text's alphabet is A-Z2-7: one in
	// 32 tokens ends in A, so replacing it with A would not always change it).
	last := "A"
	if strings.HasSuffix(tok, last) {
		last = "B"
	}
	cases := []struct {
		name   string
		form   url.Values
		header map[string]string
	}{
		{"no token", url.Values{"reason": {"spam"}}, nil},
		{"wrong token", url.Values{"reason": {"spam"}, "csrf": {tok[:len(tok)-1] + last}}, nil},
		{"empty token", url.Values{"reason": {"spam"}, "csrf": {""}}, nil},
		{"other origin", url.Values{"reason": {"spam"}, "csrf": {tok}}, map[string]string{"Origin": "https://evil.example"}},
		{"cross-site fetch", url.Values{"reason": {"spam"}, "csrf": {tok}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, http.StatusForbidden, e.post(t, path, tc.form, tc.header).StatusCode)
			require.Equal(t, "active", e.status(t, acct.DID))
		})
	}
	res := e.post(t, path, url.Values{"reason": {"spam"}, "csrf": {tok}}, map[string]string{"Origin": e.ts.URL, "Sec-Fetch-Site": "same-origin"})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "takendown", e.status(t, acct.DID))
	// The reason is in the moderation log, as getModerationLog serves it.
	r := e.n.Client.Get(t, "social.hearth.admin.getModerationLog", url.Values{"did": {acct.DID}}, "admin")
	require.Contains(t, string(r.Body), `"reason":"spam"`)
	require.Contains(t, string(r.Body), `(dashboard)`)
	_, body, _ := e.get(t, "/moderation")
	require.Contains(t, body, "spam")
}

// TestResetPasswordAndInvites: the generated password is shown once and works; invite
// codes are created, listed and disabled through the admin code.
func TestResetPasswordAndInvites(t *testing.T) {
	e := start(t)
	acct := e.n.Client.CreateAccount(t, "erin")
	require.Equal(t, http.StatusSeeOther, e.signIn(t, testnet.AdminPassword).StatusCode)
	_, _, tok := e.get(t, "/accounts/"+acct.DID)
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/accounts/"+acct.DID+"/reset-password", strings.NewReader(url.Values{"csrf": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := e.http.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	m := regexp.MustCompile(`id="new-password">([^<]+)<`).FindStringSubmatch(string(b))
	require.NotNil(t, m, string(b))
	r := e.n.Client.Post(t, "com.atproto.server.createSession", map[string]any{"identifier": acct.Handle, "password": acct.Password}, "")
	require.Equal(t, http.StatusUnauthorized, r.Status, "the old password still works")
	r = e.n.Client.Post(t, "com.atproto.server.createSession", map[string]any{"identifier": acct.Handle, "password": m[1]}, "")
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	_, body, _ := e.get(t, "/accounts/"+acct.DID)
	require.NotContains(t, body, m[1], "the password is shown again")

	_, _, tok = e.get(t, "/invites")
	req, _ = http.NewRequest(http.MethodPost, e.ts.URL+"/invites", strings.NewReader(url.Values{"csrf": {tok}, "uses": {"3"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err = e.http.Do(req)
	require.NoError(t, err)
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	code := regexp.MustCompile(`id="new-code">([^<]+)<`).FindStringSubmatch(string(b))
	require.NotNil(t, code, string(b))
	require.Equal(t, http.StatusSeeOther, e.post(t, "/invites/disable", url.Values{"csrf": {tok}, "code": {code[1]}}, nil).StatusCode)
	r = e.n.Client.Get(t, "com.atproto.admin.getInviteCodes", nil, "admin")
	require.Contains(t, string(r.Body), `"code":"`+code[1]+`","available":3,"disabled":true`)
}

// TestCheckListen: only loopback addresses unless remote access is allowed.
func TestCheckListen(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		remote bool
		ok     bool
	}{
		{"127.0.0.1:2585", false, true},
		{"[::1]:2585", false, true},
		{"localhost:2585", false, true},
		{"127.0.0.2:0", false, true},
		{"0.0.0.0:2585", false, false},
		{":2585", false, false},
		{"[::]:2585", false, false},
		{"192.168.1.5:2585", false, false},
		{"dashboard.example.com:2585", false, false},
		{"0.0.0.0:2585", true, true},
		{"no-port", false, false},
		{"no-port", true, false},
	} {
		err := dashboard.CheckListen(tc.addr, tc.remote)
		require.Equal(t, tc.ok, err == nil, "%s remote=%v: %v", tc.addr, tc.remote, err)
	}
}

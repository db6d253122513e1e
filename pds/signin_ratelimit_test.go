package pds_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hearth-social/hearth/internal/ratelimit"
	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/hearth-social/hearth/pds"
)

// signInPage is one of the two pages with a password form: the OAuth sign-in (for a
// pushed request) and the account page's.
type signInPage struct {
	name string
	// open returns the form's path and its hidden fields for browser c.
	open func(t *testing.T, c *oauthClient) (string, url.Values)
	// signedIn is in the answer to HANDLE's right password (redirects followed).
	signedIn string
}

var signInPages = []signInPage{
	{name: "oauth authorize", signedIn: "Signed in as <strong>@%s</strong>", open: func(t *testing.T, c *oauthClient) (string, url.Values) {
		_, challenge := pkce()
		par := c.send("/oauth/par", c.parForm(challenge), nil)
		if par.status != http.StatusCreated {
			t.Fatalf("PAR: %d %s", par.status, par.raw)
		}
		q := url.Values{"client_id": {c.clientID}, "request_uri": {par.str("request_uri")}}
		return "/oauth/authorize/sign-in", c.csrf(t, "/oauth/authorize?"+q.Encode(), q)
	}},
	{name: "account", signedIn: "<h1>@%s</h1>", open: func(t *testing.T, c *oauthClient) (string, url.Values) {
		return "/account/sign-in", c.csrf(t, "/account", url.Values{})
	}},
}

// csrf opens a page and returns fields with the page's CSRF token added.
func (c *oauthClient) csrf(t *testing.T, path string, fields url.Values) url.Values {
	pg := c.page(http.MethodGet, path, nil)
	m := csrfField.FindStringSubmatch(pg.raw)
	if pg.status != http.StatusOK || m == nil {
		t.Fatalf("GET %s: %d %s", path, pg.status, pg.raw)
	}
	fields.Set("csrf", m[1])
	return fields
}

func (p signInPage) try(c *oauthClient, path string, fields url.Values, ident, password string) *oauthResp {
	f := url.Values{"identifier": {ident}, "password": {password}}
	for k, v := range fields {
		f[k] = v
	}
	return c.page(http.MethodPost, path, f)
}

// ok: the answer is the page HANDLE sees once signed in.
func (p signInPage) ok(r *oauthResp, handle string) bool {
	return r.status == http.StatusOK && strings.Contains(r.raw, fmt.Sprintf(p.signedIn, handle))
}

func requireSignInRefused(t *testing.T, r *oauthResp, window time.Duration) {
	t.Helper()
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.raw, "Too many sign-in attempts") {
		t.Fatalf("want the 429 sign-in page, got %d %s", r.status, r.raw)
	}
	if !strings.Contains(r.header.Get("Content-Type"), "text/html") || r.header.Get("Content-Security-Policy") == "" {
		t.Fatalf("the refusal is not the page: %v", r.header)
	}
	retry, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > int(window/time.Second) {
		t.Fatalf("Retry-After %q, want 1..%d", r.header.Get("Retry-After"), int(window/time.Second))
	}
}

// TestSignInRateLimit: password sign-ins through the pages count per identifier (one
// budget with createSession) and per client IP. A brute-force loop on one account is
// refused after the identifier's budget, even with the right password, while another
// account still signs in; createSession is refused for that identifier too; after the
// window the right password works again; a sweep over many identifiers from one IP is
// refused after the IP's budget. Loopback bypass is the same as createSession's.
func TestSignInRateLimit(t *testing.T) {
	const perID, perIP = 3, 12
	idWindow := 2 * time.Second
	for _, p := range signInPages {
		t.Run(p.name, func(t *testing.T) {
			n := testnet.Start(t, limited(func(rl *pds.RateLimits) {
				rl.CreateSession = []ratelimit.Limit{{Points: perID, Window: idWindow}}
				rl.PageSignIn = perMinute(perIP)
			}))
			alice := n.Client.CreateAccount(t, "alice")
			bob := n.Client.CreateAccount(t, "bob")
			c := newOAuthClient(t, n, "atproto")
			path, fields := p.open(t, c)
			used := 0 // the IP's page sign-ins so far
			for i := range perID {
				r := p.try(c, path, fields, alice.Handle, "wrong-"+strconv.Itoa(i))
				used++
				if r.status != http.StatusUnauthorized || !strings.Contains(r.raw, "wrong handle, email or password") {
					t.Fatalf("wrong password %d: %d %s", i, r.status, r.raw)
				}
			}
			start := time.Now()
			// Past the identifier's budget: refused, with the right password too, in
			// another letter case, and through createSession.
			for _, ident := range []string{alice.Handle, strings.ToUpper(alice.Handle)} {
				requireSignInRefused(t, p.try(c, path, fields, ident, "wrong-again"), idWindow)
				requireSignInRefused(t, p.try(c, path, fields, ident, alice.Password), idWindow)
				used += 2
			}
			testnet.RequireXRPCError(t, n.Client.Post(t, "com.atproto.server.createSession",
				map[string]any{"identifier": alice.Handle, "password": alice.Password}, ""), http.StatusTooManyRequests, "RateLimitExceeded")

			// Another account signs in from the same browser and IP.
			other := newOAuthClient(t, n, "atproto")
			opath, ofields := p.open(t, other)
			if r := p.try(other, opath, ofields, bob.Handle, bob.Password); !p.ok(r, bob.Handle) {
				t.Fatalf("bob's sign-in while alice is limited: %d %s", r.status, r.raw)
			}
			used++

			// After the window, alice's right password works again.
			time.Sleep(time.Until(start.Add(idWindow + 200*time.Millisecond)))
			again := newOAuthClient(t, n, "atproto")
			apath, afields := p.open(t, again)
			if r := p.try(again, apath, afields, alice.Handle, alice.Password); !p.ok(r, alice.Handle) {
				t.Fatalf("alice after the window: %d %s", r.status, r.raw)
			}
			used++

			// A sweep over identifiers from one IP: refused once the IP's budget is used.
			for i := 0; used < perIP; i++ {
				if r := p.try(c, path, fields, "nobody"+strconv.Itoa(i)+".test", "guess"); r.status != http.StatusUnauthorized {
					t.Fatalf("sweep attempt %d (%d of %d): %d %s", i, used+1, perIP, r.status, r.raw)
				}
				used++
			}
			requireSignInRefused(t, p.try(c, path, fields, "nobody-next.test", "guess"), time.Minute)
			requireSignInRefused(t, p.try(other, opath, ofields, bob.Handle, bob.Password), time.Minute)
		})
	}

	t.Run("loopback bypass", func(t *testing.T) {
		// testnet bypasses loopback, as for createSession: never refused.
		n := testnet.Start(t, func(c *pds.Config) {
			c.RateLimits.CreateSession = perMinute(1)
			c.RateLimits.PageSignIn = perMinute(1)
		})
		alice := n.Client.CreateAccount(t, "alice")
		for _, p := range signInPages {
			c := newOAuthClient(t, n, "atproto")
			path, fields := p.open(t, c)
			for i := range 4 {
				if r := p.try(c, path, fields, alice.Handle, "wrong"); r.status != http.StatusUnauthorized {
					t.Fatalf("%s attempt %d from a bypassed address: %d %s", p.name, i, r.status, r.raw)
				}
			}
			if r := p.try(c, path, fields, alice.Handle, alice.Password); !p.ok(r, alice.Handle) {
				t.Fatalf("%s: %d %s", p.name, r.status, r.raw)
			}
		}
	})
}

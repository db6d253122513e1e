package pds_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/hearth-social/hearth/internal/ratelimit"
	"github.com/hearth-social/hearth/pds"
	"github.com/stretchr/testify/require"
)

// limited is a newEnv mutator: rate limits on for loopback (newEnv bypasses it), with
// the given changes.
func limited(change func(*pds.RateLimits)) func(*pds.Config) {
	return func(c *pds.Config) {
		c.RateLimits.Bypass = nil
		change(&c.RateLimits)
	}
}

func perMinute(n int) []ratelimit.Limit { return []ratelimit.Limit{{Points: n, Window: time.Minute}} }

// requireLimitHeaders checks the RateLimit-* headers of a response.
func requireLimitHeaders(t *testing.T, r *resp, limit, remaining int, window time.Duration) {
	t.Helper()
	require.Equal(t, strconv.Itoa(limit), r.Header.Get("RateLimit-Limit"), "headers %v", r.Header)
	require.Equal(t, strconv.Itoa(remaining), r.Header.Get("RateLimit-Remaining"), "headers %v", r.Header)
	require.Equal(t, fmt.Sprintf("%d;w=%d", limit, int(window/time.Second)), r.Header.Get("RateLimit-Policy"))
	reset, err := strconv.Atoi(r.Header.Get("RateLimit-Reset"))
	require.NoError(t, err, "RateLimit-Reset %q", r.Header.Get("RateLimit-Reset"))
	require.True(t, reset >= 1 && reset <= int(window/time.Second), "RateLimit-Reset %d is seconds until the window ends", reset)
}

// requireRefused checks a 429 RateLimitExceeded with a Retry-After within the window.
func requireRefused(t *testing.T, r *resp, window time.Duration) {
	t.Helper()
	requireXRPCError(t, r, http.StatusTooManyRequests, "RateLimitExceeded")
	retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", r.Header.Get("Retry-After"))
	// Tests are quick: the refusal's window has most of its length left.
	require.True(t, retry > int(window/time.Second)/2 && retry <= int(window/time.Second), "Retry-After %d", retry)
}

func requireUnlimited(t *testing.T, r *resp) {
	t.Helper()
	requireOK(t, r)
	for _, h := range ratelimit.ExposedHeaders() {
		require.Empty(t, r.Header.Get(h), "a bypassed request went through no limiter: %s", h)
	}
}

func TestRateLimitGlobalPerIP(t *testing.T) {
	e := newEnv(t, limited(func(rl *pds.RateLimits) { rl.Global = perMinute(5) }))
	for i := range 4 {
		r := e.get("com.atproto.server.describeServer", nil, "")
		requireOK(t, r)
		requireLimitHeaders(t, r, 5, 4-i, time.Minute)
	}
	// Every XRPC request counts, errors and methods served elsewhere included.
	r := e.get("app.bsky.feed.getTimeline", nil, "")
	requireXRPCError(t, r, http.StatusNotImplemented, "MethodNotImplemented")
	requireLimitHeaders(t, r, 5, 0, time.Minute)

	for _, nsid := range []string{"com.atproto.server.describeServer", "app.bsky.feed.getTimeline", "_health"} {
		r = e.get(nsid, nil, "")
		requireRefused(t, r, time.Minute)
		requireLimitHeaders(t, r, 5, 0, time.Minute)
		require.Contains(t, r.Str("message"), "5/1m")
	}
	// Not XRPC: not limited.
	res, err := e.client.Get(e.http.URL + "/robots.txt")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Empty(t, res.Header.Get("RateLimit-Limit"))
}

func TestRateLimitBypassByAddress(t *testing.T) {
	cases := []struct {
		name   string
		bypass []string
		exempt bool
	}{
		{"ip", []string{"127.0.0.1"}, true},
		{"cidr", []string{"10.0.0.0/8", "127.0.0.0/8"}, true},
		{"ipv4-mapped ipv6", []string{"::ffff:127.0.0.1"}, true},
		{"other addresses only", []string{"10.0.0.0/8", "192.0.2.1"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, limited(func(rl *pds.RateLimits) {
				rl.Global = perMinute(3)
				rl.Bypass = tc.bypass
			}))
			for i := range 6 {
				r := e.get("com.atproto.server.describeServer", nil, "")
				switch {
				case tc.exempt:
					requireUnlimited(t, r)
				case i < 3:
					requireLimitHeaders(t, r, 3, 2-i, time.Minute)
				default:
					requireRefused(t, r, time.Minute)
				}
			}
		})
	}
}

func TestRateLimitBypassSecret(t *testing.T) {
	const secret = "migration-secret-0123456789"
	e := newEnv(t, limited(func(rl *pds.RateLimits) {
		rl.Global = perMinute(3)
		rl.BypassSecret = secret
	}))
	for range 6 {
		requireUnlimited(t, e.raw("GET", "com.atproto.server.describeServer", "", nil, "", map[string]string{"x-ratelimit-bypass": secret}))
	}
	for i, wrong := range []string{"migration-secret-012345678", secret + "x", "", "MIGRATION-SECRET-0123456789"} {
		r := e.raw("GET", "com.atproto.server.describeServer", "", nil, "", map[string]string{"x-ratelimit-bypass": wrong})
		if i < 3 {
			requireLimitHeaders(t, r, 3, 2-i, time.Minute)
		} else {
			requireRefused(t, r, time.Minute)
		}
	}
}

func TestRateLimitRepoWritePoints(t *testing.T) {
	e := newEnv(t, limited(func(rl *pds.RateLimits) {
		rl.Global = perMinute(1000)
		rl.RepoWrites = []ratelimit.Limit{{Points: 20, Window: time.Hour}, {Points: 1000, Window: 24 * time.Hour}}
	}))
	alice, bob := e.createAccount("alice"), e.createAccount("bob")
	const coll = "app.bsky.feed.post"
	write := func(nsid string, body map[string]any) *resp {
		body["repo"] = alice.DID
		return e.post(nsid, body, alice.Access)
	}
	steps := []struct {
		name      string
		nsid      string
		body      map[string]any
		remaining int
	}{
		{"create costs 3", "com.atproto.repo.createRecord", map[string]any{"collection": coll, "rkey": "3aaaaaaaaaa22", "record": post("one")}, 17},
		{"put over a record costs 2", "com.atproto.repo.putRecord", map[string]any{"collection": coll, "rkey": "3aaaaaaaaaa22", "record": post("one, edited")}, 15},
		{"put that creates costs 3", "com.atproto.repo.putRecord", map[string]any{"collection": coll, "rkey": "3aaaaaaaaab22", "record": post("two")}, 12},
		{"applyWrites costs the sum of its ops", "com.atproto.repo.applyWrites", map[string]any{"writes": []any{
			map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": coll, "rkey": "3aaaaaaaaac22", "value": post("three")},
			map[string]any{"$type": "com.atproto.repo.applyWrites#update", "collection": coll, "rkey": "3aaaaaaaaaa22", "value": post("one, again")},
			map[string]any{"$type": "com.atproto.repo.applyWrites#delete", "collection": coll, "rkey": "3aaaaaaaaab22"},
		}}, 6},
		{"delete costs 1", "com.atproto.repo.deleteRecord", map[string]any{"collection": coll, "rkey": "3aaaaaaaaac22"}, 5},
	}
	for _, s := range steps {
		r := write(s.nsid, s.body)
		requireOK(t, r)
		requireLimitHeaders(t, r, 20, s.remaining, time.Hour)
	}

	// Two creates (6 points) do not fit in 5: refused, nothing written, nothing counted.
	r := write("com.atproto.repo.applyWrites", map[string]any{"writes": []any{
		map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": coll, "rkey": "3aaaaaaaaad22", "value": post("four")},
		map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": coll, "rkey": "3aaaaaaaaae22", "value": post("five")},
	}})
	requireRefused(t, r, time.Hour)
	requireLimitHeaders(t, r, 20, 5, time.Hour)
	got := e.get("com.atproto.repo.getRecord", map[string][]string{"repo": {alice.DID}, "collection": {coll}, "rkey": {"3aaaaaaaaad22"}}, "")
	requireXRPCError(t, got, http.StatusBadRequest, "RecordNotFound")
	r = write("com.atproto.repo.createRecord", map[string]any{"collection": coll, "record": post("six")})
	requireOK(t, r)
	requireLimitHeaders(t, r, 20, 2, time.Hour)
	requireRefused(t, write("com.atproto.repo.createRecord", map[string]any{"collection": coll, "record": post("seven")}), time.Hour)

	// The budget is the account's: bob still has all of his.
	r = e.post("com.atproto.repo.createRecord", map[string]any{"repo": bob.DID, "collection": coll, "record": post("bob")}, bob.Access)
	requireOK(t, r)
	requireLimitHeaders(t, r, 20, 17, time.Hour)
}

func TestRateLimitCreateSessionByIdentifier(t *testing.T) {
	e := newEnv(t, limited(func(rl *pds.RateLimits) {
		rl.Global = perMinute(1000)
		rl.CreateSession = []ratelimit.Limit{{Points: 3, Window: 5 * time.Minute}, {Points: 100, Window: 24 * time.Hour}}
	}))
	alice, bob := e.createAccount("alice"), e.createAccount("bob")
	login := func(id, pw string) *resp {
		return e.post("com.atproto.server.createSession", map[string]any{"identifier": id, "password": pw}, "")
	}
	for i, id := range []string{alice.Handle, "ALICE.test", " Alice.Test "} {
		r := login(id, "wrong password")
		requireXRPCError(t, r, http.StatusUnauthorized, "AuthenticationRequired")
		requireLimitHeaders(t, r, 3, 2-i, 5*time.Minute)
	}
	// The identifier's budget is spent, whatever the password and the case.
	requireRefused(t, login(alice.Handle, alice.Password), 5*time.Minute)
	requireRefused(t, login("alice.TEST", alice.Password), 5*time.Minute)
	// Another identifier is counted apart, from the same IP.
	r := login(bob.Handle, bob.Password)
	requireOK(t, r)
	requireLimitHeaders(t, r, 3, 2, 5*time.Minute)
	// A body without an identifier is the handler's to refuse.
	requireXRPCError(t, e.post("com.atproto.server.createSession", map[string]any{"password": "x"}, ""), http.StatusBadRequest, "InvalidRequest")
}

func TestRateLimitCreateAccountAndUploadBlob(t *testing.T) {
	e := newEnv(t, limited(func(rl *pds.RateLimits) {
		rl.Global = perMinute(1000)
		rl.CreateAccount = perMinute(2)
		rl.UploadBlob = perMinute(2)
	}))
	a := e.createAccount("alice")
	e.createAccount("bob")
	r := e.post("com.atproto.server.createAccount", map[string]any{"handle": "carol.test", "password": "pw-carol", "email": "carol@example.com"}, "")
	requireRefused(t, r, time.Minute)
	require.Equal(t, "2", r.Header.Get("RateLimit-Limit"))

	for i := range 2 {
		r := e.upload(a.Access, "text/plain", []byte("blob "+strconv.Itoa(i)))
		requireOK(t, r)
		requireLimitHeaders(t, r, 2, 1-i, time.Minute)
	}
	requireRefused(t, e.upload(a.Access, "text/plain", []byte("one too many")), time.Minute)
}

func TestRateLimitsOff(t *testing.T) {
	cases := []struct {
		name   string
		change func(*pds.RateLimits)
	}{
		{"all", func(rl *pds.RateLimits) { rl.Global, rl.RepoWrites, rl.Disabled = perMinute(1), perMinute(1), true }},
		{"one kind at a time", func(rl *pds.RateLimits) { rl.Global, rl.RepoWrites = nil, nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, limited(tc.change))
			a := e.createAccount("alice")
			for range 5 {
				requireUnlimited(t, e.get("com.atproto.server.describeServer", nil, ""))
				requireUnlimited(t, e.post("com.atproto.repo.createRecord", map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "record": post("hi")}, a.Access))
			}
		})
	}
}

// serveFrom answers one request from the given client address through h, in process.
func serveFrom(t *testing.T, h http.Handler, remoteAddr string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", "/xrpc/_health", nil)
	req.RemoteAddr = remoteAddr
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRateLimitClientKeys(t *testing.T) {
	cases := []struct {
		name     string
		trustXFF bool
		// requests from these (remote address, X-Forwarded-For) pairs share one budget of 2
		same  [][2]string
		other [2]string
	}{
		{"ipv4 by address", false, [][2]string{{"192.0.2.1:1000", ""}, {"192.0.2.1:2000", ""}}, [2]string{"192.0.2.2:1000", ""}},
		{"ipv6 by /64", false, [][2]string{{"[2001:db8:1:2::1]:1", ""}, {"[2001:db8:1:2:ffff::9]:1", ""}}, [2]string{"[2001:db8:1:3::1]:1", ""}},
		{"forwarded-for ignored unless trusted", false, [][2]string{{"192.0.2.1:1", "198.51.100.1"}, {"192.0.2.1:1", "198.51.100.2"}}, [2]string{"192.0.2.3:1", "198.51.100.1"}},
		{"trusted forwarded-for: its last entry", true, [][2]string{{"192.0.2.1:1", "198.51.100.1"}, {"192.0.2.2:1", "203.0.113.9, 198.51.100.1"}}, [2]string{"192.0.2.1:1", "198.51.100.1, 203.0.113.9"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, limited(func(rl *pds.RateLimits) {
				rl.Global = perMinute(2)
				rl.TrustForwardedFor = tc.trustXFF
			}))
			h := e.srv.Handler() // a handler chain of its own, with fresh counters
			xff := func(v string) map[string]string {
				if v == "" {
					return nil
				}
				return map[string]string{"X-Forwarded-For": v}
			}
			for _, c := range tc.same {
				require.Equal(t, http.StatusOK, serveFrom(t, h, c[0], xff(c[1])).Code)
			}
			third := serveFrom(t, h, tc.same[0][0], xff(tc.same[0][1]))
			require.Equal(t, http.StatusTooManyRequests, third.Code)
			rec := serveFrom(t, h, tc.other[0], xff(tc.other[1]))
			require.Equal(t, http.StatusOK, rec.Code, "another client has its own budget")
			require.Equal(t, "1", rec.Header().Get("RateLimit-Remaining"))
		})
	}
}

// TestRateLimitMemoryBounded sends requests from 100,000 distinct client IPs: each gets
// its own budget, and with the tracked keys capped the heap stays small.
func TestRateLimitMemoryBounded(t *testing.T) {
	const clients, maxKeys = 100_000, 5_000
	e := newEnv(t, limited(func(rl *pds.RateLimits) {
		rl.Global = []ratelimit.Limit{{Points: 3000, Window: 5 * time.Minute}}
		rl.MaxKeys = maxKeys
	}))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	h := e.srv.Handler()
	deadline := time.Now().Add(2 * time.Minute)
	for i := range clients {
		addr := fmt.Sprintf("10.%d.%d.%d:4000", i>>16&255, i>>8&255, i&255)
		rec := serveFrom(t, h, addr, nil)
		if rec.Code != http.StatusOK || rec.Header().Get("RateLimit-Remaining") != "2999" {
			t.Fatalf("client %d: status %d, remaining %q", i, rec.Code, rec.Header().Get("RateLimit-Remaining"))
		}
		if i%10_000 == 0 && time.Now().After(deadline) {
			t.Fatalf("too slow: %d requests in 2 minutes", i)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d clients; heap grew %d KB", clients, grown/1024)
	// 5,000 tracked keys are well under a megabyte; 100,000 would be ~15 MB.
	require.Less(t, grown, int64(8<<20))
	runtime.KeepAlive(h)
}

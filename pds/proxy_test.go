package pds_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	indigoauth "github.com/bluesky-social/indigo/atproto/auth"
	indigoid "github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/resolve"
	"github.com/hearth-social/hearth/pds"
	"github.com/stretchr/testify/require"
)

// directory resolves DIDs through the env's embedded PLC directory, as a service would.
func (e *env) directory() indigoid.Directory {
	return resolve.New(resolve.Config{PLCURL: e.plc.URL})
}

// jwtClaims decodes (without verifying) a JWT's header and claims.
func jwtClaims(t *testing.T, tok string) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	dec := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		return m
	}
	return dec(parts[0]), dec(parts[1])
}

func TestGetServiceAuth(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	alice := e.createAccount("alice")
	const aud = "did:web:feed.example.com"
	lxm := syntax.NSID("app.bsky.feed.getFeedSkeleton")

	r := e.get("com.atproto.server.getServiceAuth", url.Values{"aud": {aud}, "lxm": {lxm.String()}}, alice.Access)
	requireOK(t, r)
	tok := r.Str("token")
	hdr, claims := jwtClaims(t, tok)
	require.Equal(t, "ES256K", hdr["alg"])
	require.Equal(t, alice.DID, claims["iss"])
	require.Equal(t, aud, claims["aud"])
	require.Equal(t, lxm.String(), claims["lxm"])
	exp := int64(claims["exp"].(float64))
	require.InDelta(t, time.Now().Add(time.Minute).Unix(), exp, 3, "default lifetime is 60 s")

	// indigo's validator checks it against alice's DID document at the PLC directory.
	v := &indigoauth.ServiceAuthValidator{Audience: aud, Dir: e.directory()}
	did, err := v.Validate(ctx, tok, &lxm)
	require.NoError(t, err)
	require.Equal(t, alice.DID, did.String())
	other := syntax.NSID("app.bsky.feed.getTimeline")
	_, err = v.Validate(ctx, tok, &other)
	require.Error(t, err, "wrong lxm must fail")
	_, err = (&indigoauth.ServiceAuthValidator{Audience: "did:web:other.example.com", Dir: e.directory()}).Validate(ctx, tok, &lxm)
	require.Error(t, err, "wrong aud must fail")
	// Another account's key does not verify alice's token.
	bob := e.createAccount("bob")
	bobTok := e.get("com.atproto.server.getServiceAuth", url.Values{"aud": {aud}, "lxm": {lxm.String()}}, bob.Access).Str("token")
	_, bobClaims := jwtClaims(t, bobTok)
	require.Equal(t, bob.DID, bobClaims["iss"])
	forged := strings.Split(tok, ".")
	forged[2] = strings.Split(bobTok, ".")[2]
	_, err = v.Validate(ctx, strings.Join(forged, "."), &lxm)
	require.Error(t, err, "a signature by another key must fail")

	// A chosen exp up to an hour ahead; a method-less token lives at most a minute.
	want := time.Now().Add(30 * time.Minute).Unix()
	r = e.get("com.atproto.server.getServiceAuth", url.Values{"aud": {aud}, "lxm": {lxm.String()}, "exp": {strconv.FormatInt(want, 10)}}, alice.Access)
	requireOK(t, r)
	_, claims = jwtClaims(t, r.Str("token"))
	require.InDelta(t, want, int64(claims["exp"].(float64)), 1)
	r = e.get("com.atproto.server.getServiceAuth", url.Values{"aud": {aud}}, alice.Access)
	requireOK(t, r)
	_, claims = jwtClaims(t, r.Str("token"))
	require.NotContains(t, claims, "lxm")
	did, err = v.Validate(ctx, r.Str("token"), nil)
	require.NoError(t, err)
	require.Equal(t, alice.DID, did.String())

	for name, q := range map[string]url.Values{
		"exp too far":         {"aud": {aud}, "lxm": {lxm.String()}, "exp": {strconv.FormatInt(time.Now().Add(61*time.Minute).Unix(), 10)}},
		"exp in the past":     {"aud": {aud}, "lxm": {lxm.String()}, "exp": {strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10)}},
		"method-less and far": {"aud": {aud}, "exp": {strconv.FormatInt(time.Now().Add(5*time.Minute).Unix(), 10)}},
	} {
		t.Run(name, func(t *testing.T) {
			requireXRPCError(t, e.get("com.atproto.server.getServiceAuth", q, alice.Access), 400, "BadExpiration")
		})
	}
	for name, q := range map[string]url.Values{
		"no aud":           {"lxm": {lxm.String()}},
		"aud not a DID":    {"aud": {"feed.example.com"}},
		"bad lxm":          {"aud": {aud}, "lxm": {"not an nsid"}},
		"bad exp":          {"aud": {aud}, "exp": {"soon"}},
		"protected method": {"aud": {aud}, "lxm": {"com.atproto.server.createAppPassword"}},
	} {
		t.Run(name, func(t *testing.T) {
			requireXRPCError(t, e.get("com.atproto.server.getServiceAuth", q, alice.Access), 400, "InvalidRequest")
		})
	}
	requireXRPCError(t, e.get("com.atproto.server.getServiceAuth", url.Values{"aud": {aud}}, ""), 401, "AuthenticationRequired")

	// Privileged methods need a full session or a privileged app password.
	chat := url.Values{"aud": {"did:web:api.bsky.chat"}, "lxm": {"chat.bsky.convo.sendMessage"}}
	requireXRPCError(t, e.get("com.atproto.server.getServiceAuth", chat, e.appPasswordSession(alice, "plain", false)), 400, "InvalidRequest")
	requireOK(t, e.get("com.atproto.server.getServiceAuth", chat, e.appPasswordSession(alice, "priv", true)))
	requireOK(t, e.get("com.atproto.server.getServiceAuth", chat, alice.Access))
}

// fakeService is an XRPC service on 127.0.0.1 named did:web:127.0.0.1%3APORT, serving its
// did.json (unless noDoc) and recording every XRPC call with its verified service auth.
type fakeService struct {
	t     *testing.T
	srv   *httptest.Server
	did   string
	dir   indigoid.Directory // set once the env is up
	noDoc bool
	extra []map[string]string // more did.json services

	mu    sync.Mutex
	calls []fakeCall
	reply func(w http.ResponseWriter, r *http.Request)
}

type fakeCall struct {
	Method, NSID, RawQuery string
	Header                 http.Header
	Body                   []byte
	Issuer                 string // verified token issuer; "" without a token
	Claims                 map[string]any
	AuthErr                error
}

func newFakeService(t *testing.T) *fakeService {
	f := &fakeService{t: t}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	f.did = "did:web:" + strings.ReplaceAll(f.srv.Listener.Addr().String(), ":", "%3A")
	f.reply = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}
	return f
}

func (f *fakeService) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/.well-known/did.json" && !f.noDoc {
		svcs := []map[string]string{{"id": "#svc", "type": "TestService", "serviceEndpoint": f.srv.URL}}
		json.NewEncoder(w).Encode(map[string]any{
			"@context": []string{"https://www.w3.org/ns/did/v1"},
			"id":       f.did,
			"service":  append(svcs, f.extra...),
		})
		return
	}
	nsid, ok := strings.CutPrefix(r.URL.Path, "/xrpc/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	c := fakeCall{Method: r.Method, NSID: nsid, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		lxm := syntax.NSID(nsid)
		v := &indigoauth.ServiceAuthValidator{Audience: f.did, Dir: f.dir}
		did, err := v.Validate(r.Context(), tok, &lxm)
		c.Issuer, c.AuthErr = did.String(), err
		_, c.Claims = jwtClaims(f.t, tok)
	}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	reply := f.reply
	f.mu.Unlock()
	reply(w, r)
}

func (f *fakeService) last() fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	require.NotEmpty(f.t, f.calls, "the service got no call")
	return f.calls[len(f.calls)-1]
}

func (f *fakeService) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// raw sends a request with extra headers and returns the raw answer.
func (e *env) raw(method, nsid, query string, body []byte, token string, hdr map[string]string) *resp {
	e.t.Helper()
	u := e.http.URL + "/xrpc/" + nsid
	if query != "" {
		u += "?" + query
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	require.NoError(e.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := e.client.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	out := &resp{Status: res.StatusCode, Body: b, Header: res.Header}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		json.Unmarshal(b, &out.JSON)
	}
	return out
}

// closedAddr returns a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestProxyDefaultAppView(t *testing.T) {
	av := newFakeService(t)
	e := newEnv(t, func(c *pds.Config) { c.AppViewURL, c.AppViewDID = av.srv.URL, av.did })
	av.dir = e.directory()
	alice := e.createAccount("alice")

	timeline := `{"feed": [ {"post": {"uri": "at://did:plc:x/app.bsky.feed.post/1"}} ],  "cursor":"c2"}`
	av.reply = func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		switch r.URL.Path {
		case "/xrpc/app.bsky.feed.getTimeline":
			h.Set("Content-Type", "application/json; charset=utf-8")
			h.Set("Content-Language", "fr")
			h.Set("Atproto-Content-Labelers", "did:plc:ar7c4by46qjdydhdevvrndac;redact")
			h.Set("Atproto-Repo-Rev", "3lbbbbbbbbbbb")
			h.Set("X-Internal", "not for clients")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, timeline)
		case "/xrpc/app.bsky.feed.getAuthorFeed":
			h.Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"BlockedActor","message":"Profile not found"}`)
		case "/xrpc/app.bsky.unspecced.slow":
			h.Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusTeapot)
			io.WriteString(w, "short and stout")
		default:
			h.Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok":true}`)
		}
	}

	// A proxied getTimeline: query and headers forwarded, a fresh service-auth token for
	// alice verified by the AppView against her DID document, the answer unchanged.
	r := e.raw("GET", "app.bsky.feed.getTimeline", "limit=5&cursor=c1", nil, alice.Access, map[string]string{
		"Accept-Language":         "fr, en;q=0.5",
		"Atproto-Accept-Labelers": "did:plc:ar7c4by46qjdydhdevvrndac",
	})
	require.Equal(t, http.StatusOK, r.Status, "body %s", r.Body)
	require.Equal(t, timeline, string(r.Body))
	require.Equal(t, "application/json; charset=utf-8", r.Header.Get("Content-Type"))
	require.Equal(t, "fr", r.Header.Get("Content-Language"))
	require.Equal(t, "did:plc:ar7c4by46qjdydhdevvrndac;redact", r.Header.Get("Atproto-Content-Labelers"))
	require.Equal(t, "3lbbbbbbbbbbb", r.Header.Get("Atproto-Repo-Rev"))
	require.Equal(t, strconv.Itoa(len(timeline)), r.Header.Get("Content-Length"))
	require.Empty(t, r.Header.Get("X-Internal"))
	c := av.last()
	require.Equal(t, "GET", c.Method)
	require.Equal(t, "app.bsky.feed.getTimeline", c.NSID)
	require.Equal(t, "limit=5&cursor=c1", c.RawQuery)
	require.Equal(t, "fr, en;q=0.5", c.Header.Get("Accept-Language"))
	require.Equal(t, "did:plc:ar7c4by46qjdydhdevvrndac", c.Header.Get("Atproto-Accept-Labelers"))
	require.NoError(t, c.AuthErr)
	require.Equal(t, alice.DID, c.Issuer)
	require.Equal(t, av.did, c.Claims["aud"], "aud is the bare service DID")
	require.Equal(t, "app.bsky.feed.getTimeline", c.Claims["lxm"])
	require.NotContains(t, c.Header.Get("Authorization"), alice.Access, "the access token never leaves the PDS")

	// Errors pass through unchanged.
	r = e.raw("GET", "app.bsky.feed.getAuthorFeed", "actor=bob.test", nil, alice.Access, nil)
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Equal(t, `{"error":"BlockedActor","message":"Profile not found"}`, string(r.Body))
	r = e.raw("GET", "app.bsky.unspecced.slow", "", nil, alice.Access, nil)
	require.Equal(t, http.StatusTeapot, r.Status)
	require.Equal(t, "short and stout", string(r.Body))
	require.Equal(t, "text/plain", r.Header.Get("Content-Type"))

	// A procedure: body and content type forwarded.
	in := []byte(`{"interactions":[{"item":"at://x","event":"app.bsky.feed.defs#interactionLike"}]}`)
	r = e.raw("POST", "app.bsky.feed.sendInteractions", "", in, alice.Access, map[string]string{"Content-Type": "application/json"})
	require.Equal(t, http.StatusOK, r.Status, "body %s", r.Body)
	c = av.last()
	require.Equal(t, "POST", c.Method)
	require.Equal(t, in, c.Body)
	require.Equal(t, "application/json", c.Header.Get("Content-Type"))
	require.Equal(t, alice.DID, c.Issuer)
	big := bytes.Repeat([]byte("x"), int(e.cfg.MaxBodyBytes)+1)
	requireXRPCError(t, e.raw("POST", "app.bsky.feed.sendInteractions", "", big, alice.Access, map[string]string{"Content-Type": "application/json"}), 413, "PayloadTooLarge")

	// Anonymous calls go to the default AppView without a token; a bad token is refused here.
	n := av.count()
	r = e.raw("GET", "app.bsky.actor.getProfile", "actor=alice.test", nil, "", nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Empty(t, av.last().Header.Get("Authorization"))
	requireXRPCError(t, e.raw("GET", "app.bsky.actor.getProfile", "actor=alice.test", nil, "garbage", nil), 401, "InvalidToken")

	// Protected methods are never proxied (sendEmail, the last one not served here, is now
	// the admin's); privileged ones need a full session or a privileged app password; only
	// GET and POST.
	requireXRPCError(t, e.raw("POST", "com.atproto.admin.sendEmail", "", []byte(`{}`), alice.Access, nil), 401, "AuthenticationRequired")
	requireXRPCError(t, e.raw("GET", "chat.bsky.convo.listConvos", "", nil, e.appPasswordSession(alice, "phone", false), nil), 400, "InvalidToken")
	requireXRPCError(t, e.raw("PUT", "app.bsky.feed.getTimeline", "", nil, alice.Access, nil), 400, "InvalidRequest")
	require.Equal(t, n+1, av.count(), "refused calls never reach the AppView")
	r = e.raw("GET", "chat.bsky.convo.listConvos", "", nil, alice.Access, nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "chat.bsky.convo.listConvos", av.last().Claims["lxm"])

	// Methods served here are not proxied.
	requireOK(t, e.get("app.bsky.actor.getPreferences", nil, alice.Access))
	require.Equal(t, n+2, av.count())
}

func TestProxyHeaderRouting(t *testing.T) {
	svc := newFakeService(t)
	dead := closedAddr(t)
	svc.extra = []map[string]string{
		{"id": "#dead", "type": "TestService", "serviceEndpoint": "http://" + dead},
		{"id": "#bad", "type": "TestService", "serviceEndpoint": "ftp://example.com"},
	}
	nodoc := newFakeService(t)
	nodoc.noDoc = true
	// No default AppView here: only the header routes.
	e := newEnv(t, func(c *pds.Config) { c.ProxyAllowPrivate = true })
	svc.dir = e.directory()
	alice := e.createAccount("alice")

	requireXRPCError(t, e.get("app.bsky.feed.getTimeline", nil, alice.Access), 501, "MethodNotImplemented")

	svc.reply = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Atproto-Content-Labelers", "did:plc:labeler")
		io.WriteString(w, `{"convos":[]}`)
	}
	r := e.raw("GET", "chat.bsky.convo.listConvos", "limit=3", nil, alice.Access, map[string]string{"atproto-proxy": svc.did + "#svc"})
	require.Equal(t, http.StatusOK, r.Status, "body %s", r.Body)
	require.Equal(t, `{"convos":[]}`, string(r.Body))
	require.Equal(t, "did:plc:labeler", r.Header.Get("Atproto-Content-Labelers"))
	c := svc.last()
	require.Equal(t, "limit=3", c.RawQuery)
	require.NoError(t, c.AuthErr)
	require.Equal(t, alice.DID, c.Issuer)
	require.Equal(t, svc.did, c.Claims["aud"])
	require.Equal(t, "chat.bsky.convo.listConvos", c.Claims["lxm"])

	// Header routing needs a session.
	requireXRPCError(t, e.raw("GET", "chat.bsky.convo.listConvos", "", nil, "", map[string]string{"atproto-proxy": svc.did + "#svc"}), 401, "AuthenticationRequired")

	// Bad headers and unknown services are 400s; unreachable ones are quick 502s.
	for _, h := range []string{"nohash", "#svc", svc.did + "#", svc.did + "#a#b", "not-a-did#svc", svc.did + " #svc"} {
		requireXRPCError(t, e.raw("GET", "app.bsky.feed.getTimeline", "", nil, alice.Access, map[string]string{"atproto-proxy": h}), 400, "InvalidRequest")
	}
	for _, h := range []string{
		svc.did + "#nosuch",                    // no such service in the document
		svc.did + "#bad",                       // endpoint is not http(s)
		nodoc.did + "#svc",                     // did.json is 404
		alice.DID + "#bsky_appview",            // did:plc without that service
		"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa#svc", // unknown did:plc
		"did:example:123#svc",                  // unsupported method
	} {
		requireXRPCError(t, e.raw("GET", "app.bsky.feed.getTimeline", "", nil, alice.Access, map[string]string{"atproto-proxy": h}), 400, "InvalidRequest")
	}
	for _, h := range []string{
		svc.did + "#dead", // endpoint refuses connections
		"did:web:" + strings.ReplaceAll(dead, ":", "%3A") + "#svc", // did.json host unreachable
	} {
		start := time.Now()
		requireXRPCError(t, e.raw("GET", "app.bsky.feed.getTimeline", "", nil, alice.Access, map[string]string{"atproto-proxy": h}), 502, "UpstreamFailure")
		require.Less(t, time.Since(start), 5*time.Second)
	}
}

func TestProxyUnreachableAndPrivate(t *testing.T) {
	svc := newFakeService(t)
	e := newEnv(t, func(c *pds.Config) {
		c.AppViewURL, c.AppViewDID = "http://"+closedAddr(t), "did:web:appview.example.com"
	})
	svc.dir = e.directory()
	alice := e.createAccount("alice")

	start := time.Now()
	requireXRPCError(t, e.raw("GET", "app.bsky.feed.getTimeline", "", nil, alice.Access, nil), 502, "UpstreamFailure")
	require.Less(t, time.Since(start), 5*time.Second)

	// Without ProxyAllowPrivate, services named by DID documents must be on public
	// addresses (no SSRF through the atproto-proxy header).
	r := e.raw("GET", "app.bsky.feed.getTimeline", "", nil, alice.Access, map[string]string{"atproto-proxy": svc.did + "#svc"})
	requireXRPCError(t, r, 502, "UpstreamFailure")
	require.Contains(t, r.Str("message"), "not at a public address")
	require.Zero(t, svc.count())
}

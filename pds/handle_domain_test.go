package pds_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/hearth-social/hearth/pds"
	"github.com/hearth-social/hearth/pds/plc"
	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// handleWorld is the internet a custom-domain handle lives on, on 127.0.0.1: a real DNS
// server (miekg/dns over UDP) answering TXT records for _atproto names, and an HTTPS
// server answering /.well-known/atproto-did by host name. The PDS's resolver is pointed
// at both through pds.Config.HandleDNS / HandleHTTP.
type handleWorld struct {
	mu  sync.Mutex
	txt map[string]string // handle -> TXT value of _atproto.HANDLE
	lex map[string]string // _lexicon.AUTHORITY -> its TXT value (lexicon resolution)
	web map[string]string // host -> body of /.well-known/atproto-did
	dns *net.Resolver
	cli *http.Client
}

func startHandleWorld(t *testing.T) *handleWorld {
	t.Helper()
	w := &handleWorld{txt: map[string]string{}, lex: map[string]string{}, web: map[string]string{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) }, Handler: dns.HandlerFunc(func(rw dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Rcode = dns.RcodeNameError
		if len(q.Question) == 1 && q.Question[0].Qtype == dns.TypeTXT {
			name := strings.TrimSuffix(strings.ToLower(q.Question[0].Name), ".")
			w.mu.Lock()
			v, ok := w.txt[strings.TrimPrefix(name, "_atproto.")]
			if lex, isLex := w.lex[name]; isLex {
				v, ok = lex, true
			}
			w.mu.Unlock()
			if ok && (strings.HasPrefix(name, "_atproto.") || strings.HasPrefix(name, "_lexicon.")) {
				m.Rcode = dns.RcodeSuccess
				m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 1}, Txt: []string{v}})
			}
		}
		rw.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("DNS server did not start")
	}
	t.Cleanup(func() { srv.Shutdown() })
	dnsAddr := pc.LocalAddr().String()
	w.dns = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		d := net.Dialer{Timeout: 2 * time.Second}
		return d.DialContext(ctx, "udp", dnsAddr)
	}}

	ts := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		w.mu.Lock()
		body, ok := w.web[host]
		w.mu.Unlock()
		if !ok || r.URL.Path != "/.well-known/atproto-did" {
			http.NotFound(rw, r)
			return
		}
		rw.Header().Set("Content-Type", "text/plain")
		rw.Write([]byte(body))
	}))
	t.Cleanup(ts.Close)
	// Every host name is routed to the test server, which the client trusts (its
	// certificate is for example.com, so that is the name verified).
	tr := ts.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		d := net.Dialer{Timeout: 2 * time.Second}
		return d.DialContext(ctx, "tcp", ts.Listener.Addr().String())
	}
	tr.TLSClientConfig = &tls.Config{RootCAs: tr.TLSClientConfig.RootCAs, ServerName: "example.com"}
	w.cli = &http.Client{Transport: tr, Timeout: 5 * time.Second}
	return w
}

func (w *handleWorld) setTXT(handle, val string) { w.mu.Lock(); w.txt[handle] = val; w.mu.Unlock() }
func (w *handleWorld) setWeb(host, val string)   { w.mu.Lock(); w.web[host] = val; w.mu.Unlock() }

// setLexicon publishes DNS TXT _lexicon.AUTHORITY = did=DID.
func (w *handleWorld) setLexicon(authority, did string) {
	w.mu.Lock()
	w.lex["_lexicon."+authority] = "did=" + did
	w.mu.Unlock()
}
func (w *handleWorld) del(name string) {
	w.mu.Lock()
	delete(w.txt, name)
	delete(w.web, name)
	w.mu.Unlock()
}

// configure points the PDS's handle resolution at w and re-checks handles every
// interval.
func (w *handleWorld) configure(interval time.Duration) func(*pds.Config) {
	return func(c *pds.Config) {
		c.HandleDNS, c.HandleHTTP, c.HandleRecheckInterval = w.dns, w.cli, interval
	}
}

// identityEvent matches an #identity event for did announcing handle.
func identityEvent(did, handle string) func([]*firehose.Event) bool {
	return func(evs []*firehose.Event) bool {
		for _, ev := range evs {
			if ev.Identity != nil && ev.Identity.Did == did && ev.Identity.Handle != nil && *ev.Identity.Handle == handle {
				return true
			}
		}
		return false
	}
}

// alsoKnownAs is the DID document's handle list at the PLC directory.
func (e *env) alsoKnownAs(did string) []string {
	e.t.Helper()
	res, err := e.client.Get(e.plc.URL + "/" + did)
	require.NoError(e.t, err)
	defer res.Body.Close()
	var doc struct {
		AlsoKnownAs []string `json:"alsoKnownAs"`
	}
	require.NoError(e.t, json.NewDecoder(res.Body).Decode(&doc))
	return doc.AlsoKnownAs
}

func (e *env) resolveHandle(h string) *resp {
	return e.get("com.atproto.identity.resolveHandle", url.Values{"handle": {h}}, "")
}

// A handle on the account's own domain, verified by DNS TXT through a real DNS server:
// refused until the record names the account, then in the DID document, the session,
// resolveHandle and an #identity event; when the record goes the periodic re-check
// shows handle.invalid with an #identity event, and nothing else about the account
// changes; when it comes back, so does the handle.
func TestCustomHandleDNS(t *testing.T) {
	w := startHandleWorld(t)
	e := newEnv(t, w.configure(300*time.Millisecond))
	fh := subscribe(t, e.http.URL, nil)
	alice := e.createAccount("alice")
	bob := e.createAccount("bobby")
	const h = "alice.example.com"
	update := func(a *account, handle string) *resp {
		return e.post("com.atproto.identity.updateHandle", map[string]any{"handle": handle}, a.Access)
	}

	r := update(alice, h)
	requireXRPCError(t, r, 400, "InvalidRequest")
	require.Contains(t, r.Str("message"), "External handle did not resolve to DID")
	w.setTXT(h, "did="+bob.DID)
	requireXRPCError(t, update(alice, h), 400, "InvalidRequest")
	requireXRPCError(t, update(alice, "alice.example"), 400, "InvalidHandle") // a disallowed TLD
	w.setTXT(h, "did="+alice.DID)
	requireOK(t, update(alice, "Alice.Example.com"))
	require.Contains(t, e.alsoKnownAs(alice.DID), "at://"+h)
	require.Equal(t, h, e.get("com.atproto.server.getSession", nil, alice.Access).Str("handle"))
	require.Equal(t, alice.DID, e.resolveHandle(h).Str("did"))
	fh.waitFor(t, "#identity "+h, identityEvent(alice.DID, h))
	r = e.post("com.atproto.identity.refreshIdentity", map[string]any{"identifier": alice.DID}, "")
	requireOK(t, r)
	require.Equal(t, h, r.Str("handle"))
	require.NotNil(t, r.JSON["didDoc"])

	// The TXT record is removed: the re-check notices.
	w.del(h)
	fh.waitFor(t, "#identity handle.invalid", identityEvent(alice.DID, "handle.invalid"))
	r = e.post("com.atproto.identity.refreshIdentity", map[string]any{"identifier": h}, "")
	requireOK(t, r)
	require.Equal(t, "handle.invalid", r.Str("handle"))
	requireXRPCError(t, e.resolveHandle(h), 400, "HandleNotFound")
	require.Contains(t, e.alsoKnownAs(alice.DID), "at://"+h, "the DID document keeps the claimed handle")
	_, _ = e.net.Client.CreateRecord(t, alice, "app.bsky.feed.post", post("still here"))
	sess := e.post("com.atproto.server.createSession", map[string]any{"identifier": h, "password": alice.Password}, "")
	requireOK(t, sess)
	require.Equal(t, "handle.invalid", sess.Str("handle"), "createSession shows what the network is told")
	require.Equal(t, "handle.invalid", e.get("com.atproto.server.getSession", nil, alice.Access).Str("handle"))
	desc := e.get("com.atproto.repo.describeRepo", url.Values{"repo": {alice.DID}}, "")
	require.Equal(t, "handle.invalid", desc.Str("handle"))
	require.Equal(t, false, desc.JSON["handleIsCorrect"])
	requireXRPCError(t, update(bob, h), 400, "HandleNotAvailable")

	// The record comes back, and so does the handle.
	w.setTXT(h, "did="+alice.DID)
	fh.waitFor(t, "#identity "+h+" again", func(evs []*firehose.Event) bool {
		for i, ev := range evs {
			if identityEvent(alice.DID, "handle.invalid")([]*firehose.Event{ev}) {
				return identityEvent(alice.DID, h)(evs[i+1:])
			}
		}
		return false
	})
	require.Equal(t, alice.DID, e.resolveHandle(h).Str("did"))

	// Back to a handle under the PDS's domain: no more checks, no DNS needed.
	requireOK(t, update(alice, "alice2.test"))
	require.Contains(t, e.alsoKnownAs(alice.DID), "at://alice2.test")
	requireXRPCError(t, e.resolveHandle(h), 400, "HandleNotFound")
}

// A handle verified by https://HANDLE/.well-known/atproto-did through a real TLS server,
// checked again on demand by refreshIdentity.
func TestCustomHandleWellKnown(t *testing.T) {
	w := startHandleWorld(t)
	e := newEnv(t, w.configure(time.Hour))
	fh := subscribe(t, e.http.URL, nil)
	bob := e.createAccount("bobby")
	const h = "bob.example.net"
	w.setWeb(h, bob.DID+"\n")
	requireOK(t, e.post("com.atproto.identity.updateHandle", map[string]any{"handle": h}, bob.Access))
	require.Contains(t, e.alsoKnownAs(bob.DID), "at://"+h)
	fh.waitFor(t, "#identity "+h, identityEvent(bob.DID, h))

	refresh := func() string {
		r := e.post("com.atproto.identity.refreshIdentity", map[string]any{"identifier": bob.DID}, "")
		requireOK(t, r)
		return r.Str("handle")
	}
	w.setWeb(h, "did:plc:someoneelsesomeoneelseso")
	time.Sleep(1100 * time.Millisecond) // on-demand checks of one handle are spaced
	require.Equal(t, "handle.invalid", refresh())
	fh.waitFor(t, "#identity handle.invalid", identityEvent(bob.DID, "handle.invalid"))
	w.setWeb(h, bob.DID)
	time.Sleep(1100 * time.Millisecond)
	require.Equal(t, h, refresh())
	require.Equal(t, bob.DID, e.resolveHandle(h).Str("did"))

	// Identities not hosted here: only for a signed-in caller; unknown ones are errors.
	r := e.post("com.atproto.identity.refreshIdentity", map[string]any{"identifier": "nobody.example.org"}, "")
	requireXRPCError(t, r, 401, "AuthenticationRequired")
	r = e.post("com.atproto.identity.refreshIdentity", map[string]any{"identifier": "nobody.example.org"}, bob.Access)
	requireXRPCError(t, r, 400, "HandleNotFound")
}

// resolveHandle answers for handles hosted elsewhere (DNS, checked against the DID
// document), and HandleNotFound for those that resolve nowhere.
func TestResolveNonLocalHandle(t *testing.T) {
	w := startHandleWorld(t)
	e := newEnv(t, w.configure(time.Hour))
	// carol's DID is registered at the directory by some other PDS.
	key, err := atcrypto.GeneratePrivateKeyK256()
	require.NoError(t, err)
	pub, err := key.PublicKey()
	require.NoError(t, err)
	op, did, err := plc.NewGenesis("carol.example.org", "https://elsewhere.example.org", pub, []atcrypto.PublicKey{pub}, key)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, (&plc.Client{BaseURL: e.plc.URL, HTTP: e.client}).Submit(ctx, did, op))

	requireXRPCError(t, e.resolveHandle("carol.example.org"), 400, "HandleNotFound")
	w.setTXT("carol.example.org", "did="+did.String())
	// (a failed lookup is remembered for a moment)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := e.resolveHandle("carol.example.org")
		if r.Status == 200 {
			require.Equal(t, did.String(), r.Str("did"))
			break
		}
		require.True(t, time.Now().Before(deadline), "carol.example.org never resolved: %s", r.Body)
		time.Sleep(200 * time.Millisecond)
	}
	// A record pointing at a DID whose document does not claim the handle is no answer.
	w.setTXT("dave.example.org", "did="+did.String())
	requireXRPCError(t, e.resolveHandle("dave.example.org"), 400, "HandleNotFound")
}

// createAccount takes a custom-domain handle only with an existing DID it resolves to
// (an account arriving from another PDS), as the reference PDS does.
func TestCreateAccountCustomHandle(t *testing.T) {
	w := startHandleWorld(t)
	old := newEnv(t)
	alice := old.createAccount("alice")
	newNet := testnet.Start(t, w.configure(time.Hour), func(c *pds.Config) {
		c.PLCURL = old.plc.URL
		c.Hostname = "pds-two.test"
	})
	dst := &env{t: t, net: newNet, srv: newNet.PDS, http: newNet.PDSServer, plc: old.plc, dir: old.dir, cfg: newNet.Config, client: newNet.Client.HTTP}
	const h = "alice.example.com"
	create := func(did string) *resp {
		in := map[string]any{"handle": h, "password": "pw", "email": "alice@example.com"}
		token := ""
		if did != "" {
			in["did"] = did
			r := old.get("com.atproto.server.getServiceAuth", url.Values{"aud": {dst.cfg.ServerDID()}, "lxm": {"com.atproto.server.createAccount"}}, alice.Access)
			requireOK(t, r)
			token = r.Str("token")
		}
		return dst.post("com.atproto.server.createAccount", in, token)
	}
	requireXRPCError(t, create(""), 400, "UnsupportedDomain")
	r := create(alice.DID)
	requireXRPCError(t, r, 400, "InvalidRequest")
	require.Contains(t, r.Str("message"), "External handle did not resolve to DID")
	w.setTXT(h, "did="+alice.DID)
	r = create(alice.DID)
	requireOK(t, r)
	require.Equal(t, h, r.Str("handle"))
}

package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/hearth-social/hearth/pds"
	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// TestAdminHandle drives `hearth admin handle DID HANDLE` against a running PDS whose
// handle lookups go to a DNS server the test runs on 127.0.0.1: a handle under the
// PDS's domain, a custom-domain handle refused until its TXT record names the account
// and then set, and bad arguments.
func TestAdminHandle(t *testing.T) {
	var mu sync.Mutex
	txt := map[string]string{}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Rcode = dns.RcodeNameError
		mu.Lock()
		v, ok := txt[strings.ToLower(q.Question[0].Name)]
		mu.Unlock()
		if ok && q.Question[0].Qtype == dns.TypeTXT {
			m.Rcode = dns.RcodeSuccess
			m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 1}, Txt: []string{v}}}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	n := testnet.Start(t, func(c *pds.Config) {
		c.HandleDNS = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			d := net.Dialer{Timeout: 2 * time.Second}
			return d.DialContext(ctx, "udp", pc.LocalAddr().String())
		}}
	})
	alice := n.Client.CreateAccount(t, "alice")
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		full := append([]string{"hearth", "admin", "handle", "--pds", n.URL(), "--admin-password", testnet.AdminPassword}, args...)
		err := newApp(&out, &errOut).RunContext(ctx, full)
		return strings.TrimSpace(out.String()), err
	}
	session := func() string {
		r := n.Client.Get(t, "com.atproto.server.getSession", nil, alice.Access)
		testnet.RequireOK(t, r)
		return r.Str("handle")
	}

	out, err := run(alice.DID, "alice-renamed.test")
	require.NoError(t, err)
	require.Equal(t, alice.DID+" is now alice-renamed.test", out)
	require.Equal(t, "alice-renamed.test", session())

	_, err = run(alice.DID, "alice.example.com")
	require.ErrorContains(t, err, "External handle did not resolve to DID")
	require.Equal(t, "alice-renamed.test", session())
	mu.Lock()
	txt["_atproto.alice.example.com."] = "did=" + alice.DID
	mu.Unlock()
	out, err = run(alice.DID, "Alice.Example.com")
	require.NoError(t, err)
	require.Equal(t, alice.DID+" is now alice.example.com", out)
	require.Equal(t, "alice.example.com", session())
	// The same handle again is verified again: refused once the record is gone.
	mu.Lock()
	delete(txt, "_atproto.alice.example.com.")
	mu.Unlock()
	_, err = run(alice.DID, "alice.example.com")
	require.ErrorContains(t, err, "External handle did not resolve to DID")
	require.Equal(t, "alice.example.com", session())

	_, err = run(alice.DID)
	require.ErrorContains(t, err, "two arguments")
	_, err = run("not-a-did", "x.test")
	require.Error(t, err)
	_, err = run("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "nobody.test")
	require.ErrorContains(t, err, "AccountNotFound")
}

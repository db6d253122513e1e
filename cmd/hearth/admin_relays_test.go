package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sync/atomic"
	"testing"

	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/hearth-social/hearth/pds"
	"github.com/stretchr/testify/require"
)

// TestAdminRelays drives social.hearth.admin.getRelayStatus/requestCrawl through
// `hearth admin relays [--crawl]` against a running PDS whose crawlers are a relay on
// 127.0.0.1 implementing getHostStatus and requestCrawl per their lexicons (one that
// knows this PDS one event behind), a relay without getHostStatus and one that is down.
func TestAdminRelays(t *testing.T) {
	// Set by the test, read by the relay's handler goroutines.
	var pdsHostV atomic.Value
	var relaySeq atomic.Int64
	pdsHostV.Store("")
	crawled := make(chan string, 4)
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		pdsHost := pdsHostV.Load().(string)
		switch r.URL.Path {
		case "/xrpc/com.atproto.sync.getHostStatus":
			if r.Method != http.MethodGet || r.URL.Query().Get("hostname") != pdsHost {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"error":"HostNotFound","message":"no host %q"}`, r.URL.Query().Get("hostname"))
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"hostname": pdsHost, "seq": relaySeq.Load(), "accountCount": 1, "status": "active"})
		case "/xrpc/com.atproto.sync.requestCrawl":
			var in struct{ Hostname string }
			json.NewDecoder(r.Body).Decode(&in)
			crawled <- r.Method + " " + in.Hostname
			w.Write([]byte(`{}`))
		default:
			w.WriteHeader(http.StatusNotImplemented)
			w.Write([]byte(`{"error":"MethodNotImplemented"}`))
		}
	}))
	defer relay.Close()
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	n := testnet.Start(t, func(c *pds.Config) { c.Crawlers = []string{relay.URL, plain.URL, down.URL} })
	u, _ := url.Parse(n.URL())
	pdsHost := u.Host
	pdsHostV.Store(pdsHost)
	testnet.RequireXRPCError(t, testnet.NewClient(n.URL(), "").Get(t, "social.hearth.admin.getRelayStatus", nil, ""), http.StatusUnauthorized, "AuthenticationRequired")
	testnet.RequireXRPCError(t, testnet.NewClient(n.URL(), "wrong").Post(t, "social.hearth.admin.requestCrawl", nil, ""), http.StatusUnauthorized, "AuthenticationRequired")

	a := n.Client.CreateAccount(t, "relayed")
	n.Client.CreateRecord(t, a, "app.bsky.feed.post", testnet.Post("hello relay"))
	seq := n.PDS.FirehoseSeq()
	require.Positive(t, seq)
	relaySeq.Store(seq - 1)

	admin := adminRunner(t, n)
	out, err := admin(cmd("relays"))
	require.NoError(t, err, out)
	t.Log("\n" + out)
	require.Contains(t, out, fmt.Sprintf("host %s, firehose seq %d", pdsHost, seq))
	require.Regexp(t, regexp.MustCompile(regexp.QuoteMeta(relay.URL)+fmt.Sprintf(`\s+active\s+yes\s+%d\s+1\s+1\s*\n`, seq-1)), out+"\n")
	require.Regexp(t, regexp.MustCompile(regexp.QuoteMeta(plain.URL)+`\s+unsupported\s+no\s+-\s+-\s+-\s+the relay does not serve com.atproto.sync.getHostStatus`), out)
	require.Regexp(t, regexp.MustCompile(regexp.QuoteMeta(down.URL)+`\s+unknown\s+no\s+-\s+-\s+-\s+.*connect`), out)

	// The relay catches up after a crawl request.
	relaySeq.Store(seq)
	out, err = admin(cmd("relays"), "--crawl")
	require.Error(t, err, "two of the three relays refuse: the command fails")
	require.Contains(t, out, fmt.Sprintf("requestCrawl %s to %s: accepted", pdsHost, relay.URL))
	require.Contains(t, out, fmt.Sprintf("requestCrawl %s to %s failed: HTTP 404", pdsHost, plain.URL))
	require.Regexp(t, regexp.MustCompile(regexp.QuoteMeta(relay.URL)+fmt.Sprintf(`\s+active\s+yes\s+%d\s+0\s+1`, seq)), out)
	require.Equal(t, "POST "+pdsHost, <-crawled)

	// The dashboard's in-process view is the same type the admin API serves.
	st, err := n.PDS.Relays().Status(t.Context())
	require.NoError(t, err)
	require.Len(t, st, 3)
	require.True(t, st[0].Active)
	require.EqualValues(t, 0, *st[0].Behind)
}

// Without --crawler, `hearth admin relays` says so.
func TestAdminRelaysNone(t *testing.T) {
	n := testnet.Start(t)
	out, err := adminRunner(t, n)(cmd("relays"))
	require.NoError(t, err)
	require.Equal(t, "no relays configured (hearth serve --crawler URL)", out)
}

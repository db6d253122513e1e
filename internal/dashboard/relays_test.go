package dashboard_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hearth-social/hearth/internal/dashboard"
	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/hearth-social/hearth/pds/crawler"
	"github.com/stretchr/testify/require"
)

// TestRelaysPage: the Firehose & relays page shows each relay's getHostStatus answer
// through pds/crawler, and its button sends requestCrawl to every relay (CSRF-checked)
// and shows which relay refused. The relays are HTTP servers on 127.0.0.1 speaking the
// two lexicon methods.
func TestRelaysPage(t *testing.T) {
	var crawls atomic.Int32
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/xrpc/com.atproto.sync.getHostStatus":
			require.Equal(t, "pds.example.com", r.URL.Query().Get("hostname"))
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"hostname": "pds.example.com", "status": "active", "seq": 41, "accountCount": 2})
		case "/xrpc/com.atproto.sync.requestCrawl":
			require.Equal(t, http.MethodPost, r.Method)
			var body struct{ Hostname string }
			require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
			require.Equal(t, "pds.example.com", body.Hostname)
			crawls.Add(1)
			w.WriteHeader(http.StatusOK)
		default:
			http.NotFound(w, r)
		}
	}))
	defer good.Close()
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": "BadRequest", "message": "can not configure localhost via public endpoint"})
	}))
	defer refusing.Close()
	relays := &crawler.Relays{Hostname: "pds.example.com", Crawlers: []string{good.URL, refusing.URL}, Seq: func() int64 { return 43 }}
	e := start(t, func(c *dashboard.Config) { c.Relays = dashboard.CrawlerRelays{Relays: relays} })
	e.signIn(t, testnet.AdminPassword)

	st, body, tok := e.get(t, "/firehose")
	require.Equal(t, http.StatusOK, st)
	require.Contains(t, body, good.URL)
	require.Contains(t, body, ">active<")
	require.Contains(t, body, ">41<")
	require.Contains(t, body, refusing.URL)
	require.Contains(t, body, "Ask the relays to crawl again")

	res := e.post(t, "/firehose/crawl", url.Values{"csrf": {"wrong"}}, nil)
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	require.EqualValues(t, 0, crawls.Load(), "no crawl request without the CSRF token")

	req, err := http.NewRequest(http.MethodPost, e.ts.URL+"/firehose/crawl", strings.NewReader(url.Values{"csrf": {tok}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	out, err := e.http.Do(req)
	require.NoError(t, err)
	defer out.Body.Close()
	require.Equal(t, http.StatusOK, out.StatusCode)
	b, err := io.ReadAll(out.Body)
	require.NoError(t, err)
	page := string(b)
	require.EqualValues(t, 1, crawls.Load())
	require.Contains(t, page, "asked to crawl this PDS")
	require.Contains(t, page, "can not configure localhost via public endpoint")
}

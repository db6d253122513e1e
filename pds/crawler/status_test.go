package crawler

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// lexRelay is a relay on 127.0.0.1 serving com.atproto.sync.getHostStatus and
// requestCrawl as their lexicons (indigo's pinned copies) define them, and checking
// each request: a GET with the required hostname parameter, a POST with a JSON
// {hostname} body. known maps hostnames to their answer; others get HostNotFound.
type lexRelay struct {
	*httptest.Server
	mu      sync.Mutex
	bad     []string
	crawled []string
}

func newLexRelay(t *testing.T, known map[string]map[string]any) *lexRelay {
	f := &lexRelay{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/xrpc/com.atproto.sync.getHostStatus":
			host := r.URL.Query().Get("hostname")
			if r.Method != http.MethodGet || host == "" || r.Header.Get("User-Agent") != "hearth-pds" {
				f.note(r.Method + " " + r.URL.String())
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`{"error":"InvalidRequest","message":"hostname is required"}`))
				return
			}
			ans, ok := known[host]
			if !ok {
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`{"error":"HostNotFound","message":"host not found"}`))
				return
			}
			json.NewEncoder(w).Encode(ans)
		case "/xrpc/com.atproto.sync.requestCrawl":
			var in struct {
				Hostname string `json:"hostname"`
			}
			if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&in) != nil || in.Hostname == "" {
				f.note(r.Method + " " + r.URL.String())
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`{"error":"InvalidRequest","message":"bad input"}`))
				return
			}
			f.mu.Lock()
			f.crawled = append(f.crawled, in.Hostname)
			f.mu.Unlock()
			w.Write([]byte(`{}`))
		default:
			w.WriteHeader(http.StatusNotImplemented)
			w.Write([]byte(`{"error":"MethodNotImplemented","message":"Method Not Implemented"}`))
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *lexRelay) note(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bad = append(f.bad, s)
}

func ptr(n int64) *int64 { return &n }

func TestRelaysStatus(t *testing.T) {
	const host = "pds.example.com"
	active := newLexRelay(t, map[string]map[string]any{host: {"hostname": host, "seq": 40, "accountCount": 3, "status": "active"}})
	banned := newLexRelay(t, map[string]map[string]any{host: {"hostname": host, "status": "banned"}})
	stranger := newLexRelay(t, nil)
	// An older relay (or anything else) that has no getHostStatus: plain 404.
	old := httptest.NewServer(http.NotFoundHandler())
	defer old.Close()
	// A relay answering MethodNotImplemented as the reference services do.
	unimpl := newLexRelay(t, nil)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()

	r := &Relays{Hostname: host, Seq: func() int64 { return 42 },
		Crawlers: []string{active.URL, banned.URL, stranger.URL, old.URL, unimpl.URL + "/nothing-here", downURL}}
	got, err := r.Status(context.Background())
	require.NoError(t, err)
	require.Len(t, got, 6)
	require.Equal(t, RelayStatus{URL: active.URL, Supported: true, Known: true, Status: "active", Active: true,
		RelaySeq: ptr(40), LocalSeq: 42, Behind: ptr(2), AccountCount: ptr(3)}, got[0])
	require.Equal(t, RelayStatus{URL: banned.URL, Supported: true, Known: true, Status: "banned", LocalSeq: 42}, got[1])
	require.Equal(t, stranger.URL, got[2].URL)
	require.True(t, got[2].Supported)
	require.False(t, got[2].Known)
	require.Contains(t, got[2].Error, "HostNotFound")
	for _, i := range []int{3, 4} {
		require.False(t, got[i].Supported, got[i].URL)
		require.Equal(t, "the relay does not serve com.atproto.sync.getHostStatus", got[i].Error)
	}
	require.True(t, got[5].Supported)
	require.False(t, got[5].Known)
	require.Contains(t, got[5].Error, "connect")
	for _, f := range []*lexRelay{active, banned, stranger} {
		require.Empty(t, f.bad)
	}

	res := r.RequestCrawl(context.Background())
	require.Len(t, res, 6)
	require.Equal(t, CrawlResult{URL: active.URL}, res[0])
	require.Equal(t, CrawlResult{URL: stranger.URL}, res[2])
	require.Contains(t, res[3].Error, "404")
	require.Contains(t, res[5].Error, "connect")
	require.Equal(t, []string{host}, stranger.crawled)
	require.Empty(t, stranger.bad)

	none, err := (&Relays{Hostname: host}).Status(context.Background())
	require.NoError(t, err)
	require.Empty(t, none)
}

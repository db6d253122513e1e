package xrpc

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hearth-social/hearth/internal/netguard"
	"github.com/stretchr/testify/require"
)

func TestClientErrorsAndCaps(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/xrpc/x.limited":
			w.Header().Set("Retry-After", "7")
			WriteError(w, r, nil, &Error{Status: http.StatusTooManyRequests, Name: "RateLimitExceeded", Message: "slow down", RetryAfter: "7"})
		case "/xrpc/x.plain":
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "  upstream down\n")
		case "/xrpc/x.big":
			io.WriteString(w, strings.Repeat("a", 100))
		case "/xrpc/x.bigchunked":
			w.(http.Flusher).Flush() // no Content-Length: the cap applies while reading
			io.WriteString(w, strings.Repeat("a", 100))
		case "/xrpc/x.json":
			require.Equal(t, "hearth-test", r.Header.Get("User-Agent"))
			WriteJSON(w, http.StatusOK, map[string]int{"n": 1})
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	c, err := NewClient(srv.URL, WithMaxBodyBytes(50))
	c.UserAgent = "hearth-test"
	require.NoError(t, err)

	for _, tc := range []struct {
		nsid    string
		status  int
		name    string
		message string
		text    string
	}{
		{"x.limited", 429, "RateLimitExceeded", "slow down", "HTTP 429 RateLimitExceeded: slow down"},
		{"x.plain", 502, "", "upstream down", "HTTP 502: upstream down"},
	} {
		err := c.Query(ctx, tc.nsid, "", nil, nil)
		var re *ResponseError
		require.ErrorAs(t, err, &re, tc.nsid)
		require.Equal(t, tc.status, re.Status)
		require.Equal(t, tc.name, re.Name)
		require.Equal(t, tc.message, re.Message)
		require.EqualError(t, err, tc.text)
		if tc.status == 429 {
			require.Equal(t, "7", re.RetryAfter)
		}
	}

	for _, nsid := range []string{"x.big", "x.bigchunked"} {
		err = c.Query(ctx, nsid, "", nil, nil)
		require.ErrorIs(t, err, ErrResponseTooLarge, nsid)
		b, err := c.QueryBytes(ctx, nsid, "", nil, 100)
		require.NoError(t, err, nsid)
		require.Len(t, b, 100)
	}

	var out struct{ N int }
	require.NoError(t, c.Query(ctx, "x.json", "", nil, &out))
	require.Equal(t, 1, out.N)
	var raw json.RawMessage
	require.NoError(t, c.Query(ctx, "x.json", "", nil, &raw))
	require.JSONEq(t, `{"n":1}`, string(raw))
}

// With a netguard HTTP client the XRPC client does not reach a loopback service.
func TestClientGuard(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]int{})
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL, WithHTTPClient(netguard.NewClient(netguard.Options{Timeout: 2 * time.Second})))
	require.NoError(t, err)
	require.ErrorIs(t, c.Query(context.Background(), "x.y", "", nil, nil), netguard.ErrRefused)
	c, err = NewClient(srv.URL, WithHTTPClient(netguard.NewClient(netguard.Options{AllowPrivate: true, Timeout: 2 * time.Second})))
	require.NoError(t, err)
	require.NoError(t, c.Query(context.Background(), "x.y", "", nil, nil))
}

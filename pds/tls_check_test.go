package pds_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/hearth-social/hearth/pds"
	"github.com/stretchr/testify/require"
)

// TestTLSCheck: /tls-check (Caddy's on-demand TLS ask) allows the PDS host and handle
// hosts of active accounts only, with the reference PDS's statuses and error names; a
// taken-down or deactivated account's handle loses its certificate permission, and a
// restored one gets it back.
func TestTLSCheck(t *testing.T) {
	e := newEnv(t, func(c *pds.Config) { c.Hostname = "pds.example.org" })
	e.createAccount("alice")
	bob := e.createAccount("bob")
	carol := e.createAccount("carol")
	requireOK(t, e.setStatus(map[string]any{"$type": "com.atproto.admin.defs#repoRef", "did": bob.DID}, true, "spam"))
	requireOK(t, e.post("com.atproto.server.deactivateAccount", map[string]any{}, carol.Access))

	check := func(t *testing.T, query string) (int, map[string]any) {
		t.Helper()
		res, err := e.client.Get(e.http.URL + "/tls-check" + query)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		var body map[string]any
		require.NoError(t, json.Unmarshal(b, &body), "body %s", b)
		return res.StatusCode, body
	}
	for _, tc := range []struct {
		name, query string
		status      int
		errName     string
	}{
		{"PDS host", "?domain=pds.example.org", 200, ""},
		{"PDS host, upper case and a trailing dot", "?domain=PDS.Example.ORG.", 200, ""},
		{"active account's handle", "?domain=alice.test", 200, ""},
		{"handle in upper case", "?domain=Alice.TEST", 200, ""},
		{"no account", "?domain=nobody.test", 404, "NotFound"},
		{"taken-down account", "?domain=bob.test", 404, "NotFound"},
		{"deactivated account", "?domain=carol.test", 404, "NotFound"},
		{"the handle domain itself", "?domain=test", 400, "InvalidRequest"},
		{"another domain", "?domain=alice.example.com", 400, "InvalidRequest"},
		{"a subdomain of the PDS host", "?domain=x.pds.example.org", 400, "InvalidRequest"},
		{"an IP address", "?domain=127.0.0.1", 400, "InvalidRequest"},
		{"empty", "?domain=", 400, "InvalidRequest"},
		{"missing", "", 400, "InvalidRequest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := check(t, tc.query)
			require.Equal(t, tc.status, status, "body %v", body)
			if tc.status == 200 {
				require.Equal(t, map[string]any{"success": true}, body)
				return
			}
			require.Equal(t, tc.errName, body["error"])
			require.NotEmpty(t, body["message"])
		})
	}

	// Lifting the takedown and reactivating give both hosts their permission back (the
	// account cache is not left answering the old status).
	requireOK(t, e.setStatus(map[string]any{"$type": "com.atproto.admin.defs#repoRef", "did": bob.DID}, false, ""))
	requireOK(t, e.post("com.atproto.server.activateAccount", map[string]any{}, carol.Access))
	for _, h := range []string{"bob.test", "carol.test"} {
		status, body := check(t, "?domain="+url.QueryEscape(h))
		require.Equal(t, 200, status, "%s: %v", h, body)
	}
	// Only GET is served.
	res, err := e.client.Post(e.http.URL+"/tls-check?domain=alice.test", "text/plain", nil)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
}

package pds_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/hearth-social/hearth/pds"
	"github.com/stretchr/testify/require"
)

// /xrpc/_health answers {"version"} as the reference PDS does, and 503 with
// {"version", "error"} once the database cannot be read.
func TestHealth(t *testing.T) {
	n := testnet.Start(t, func(c *pds.Config) { c.Version = "9.9.9-test" })
	get := func() (int, map[string]string) {
		res, err := http.Get(n.URL() + "/xrpc/_health")
		require.NoError(t, err)
		defer res.Body.Close()
		require.Contains(t, res.Header.Get("Content-Type"), "application/json")
		var body map[string]string
		require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
		return res.StatusCode, body
	}
	status, body := get()
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, map[string]string{"version": "9.9.9-test"}, body)

	require.NoError(t, n.PDS.Store().Close()) // the cleanup's second Close is a no-op
	status, body = get()
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, map[string]string{"version": "9.9.9-test", "error": "Service Unavailable"}, body)
}

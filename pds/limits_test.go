package pds_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A commit whose blocks exceed the firehose's 2,000,000-byte limit is refused with a 400
// naming the limit (it used to be a bare 500), and nothing is written.
func TestApplyWritesCommitSizeLimit(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	big := strings.Repeat("x", 280_000)
	var writes []map[string]any
	for i := 0; i < 8; i++ {
		writes = append(writes, map[string]any{
			"$type":      "com.atproto.repo.applyWrites#create",
			"collection": "com.example.blob",
			"value":      map[string]any{"$type": "com.example.blob", "data": fmt.Sprint(i) + big},
		})
	}
	head, _ := e.latest(alice.DID)
	r := e.post("com.atproto.repo.applyWrites", map[string]any{"repo": alice.DID, "writes": writes}, alice.Access)
	requireXRPCError(t, r, 400, "InvalidRequest")
	if !strings.Contains(r.Str("message"), "2000000") && !strings.Contains(r.Str("message"), "2,000,000") {
		t.Fatalf("message does not name the limit: %s", r.Body)
	}
	after, _ := e.latest(alice.DID)
	if after != head {
		t.Fatalf("head moved from %s to %s after a refused commit", head, after)
	}
	// Half of it is fine.
	r = e.post("com.atproto.repo.applyWrites", map[string]any{"repo": alice.DID, "writes": writes[:4]}, alice.Access)
	requireOK(t, r)
}

// Records nested deeper than 32 levels are refused as invalid input, not a crash.
func TestRecordNestingDepth(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	nest := func(depth int) map[string]any {
		v := map[string]any{"leaf": true}
		for i := 1; i < depth; i++ {
			v = map[string]any{"child": v}
		}
		v["$type"] = "com.example.deep"
		return v
	}
	requireOK(t, e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "com.example.deep", "record": nest(32)}, alice.Access))
	for _, depth := range []int{33, 500, 5000} {
		r := e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "com.example.deep", "record": nest(depth)}, alice.Access)
		requireXRPCError(t, r, 400, "InvalidRequest")
	}
}

// A browser's preflight for an authenticated, proxied call is allowed: the headers are
// listed (a wildcard does not cover Authorization).
func TestCORSPreflight(t *testing.T) {
	e := newEnv(t)
	req, err := http.NewRequest(http.MethodOptions, e.http.URL+"/xrpc/app.bsky.actor.getPreferences", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", "https://bsky.app")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "authorization,atproto-proxy,atproto-accept-labelers")
	res, err := e.client.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	allow := strings.ToLower(res.Header.Get("Access-Control-Allow-Headers"))
	for _, h := range []string{"authorization", "atproto-proxy", "atproto-accept-labelers"} {
		require.Contains(t, allow, h)
	}
	r := e.get("com.atproto.server.describeServer", nil, "")
	require.Contains(t, strings.ToLower(r.Header.Get("Access-Control-Expose-Headers")), "ratelimit-remaining")
}

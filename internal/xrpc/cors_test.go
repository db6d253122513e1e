package xrpc

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCORS(t *testing.T) {
	h := CORS("GET, POST, OPTIONS", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("RateLimit-Remaining", "9")
		w.WriteHeader(http.StatusOK)
	}))
	pre := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodOptions, "/xrpc/com.atproto.server.getSession", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Headers", "authorization,atproto-proxy")
	h.ServeHTTP(pre, req)
	if pre.Code != http.StatusNoContent {
		t.Fatalf("preflight status %d", pre.Code)
	}
	allow := strings.ToLower(pre.Header().Get("Access-Control-Allow-Headers"))
	if strings.Contains(allow, "*") {
		t.Errorf("a wildcard does not cover Authorization: %q", allow)
	}
	for _, want := range []string{"authorization", "content-type", "atproto-proxy", "atproto-accept-labelers", "dpop"} {
		if !strings.Contains(allow, want) {
			t.Errorf("Access-Control-Allow-Headers %q lacks %s", allow, want)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/xrpc/x", nil))
	expose := strings.ToLower(rec.Header().Get("Access-Control-Expose-Headers"))
	for _, want := range []string{"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "ratelimit-policy", "retry-after", "atproto-repo-rev", "atproto-content-labelers"} {
		if !strings.Contains(expose, want) {
			t.Errorf("Access-Control-Expose-Headers %q lacks %s", expose, want)
		}
	}
	if rec.Header().Get("Access-Control-Allow-Origin") != "*" {
		t.Error("no Access-Control-Allow-Origin")
	}
}

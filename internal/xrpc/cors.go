package xrpc

import (
	"net/http"
	"strings"

	"github.com/hearth-social/hearth/internal/ratelimit"
)

// corsAllowHeaders are the request headers browser clients may send. They are listed:
// under the Fetch standard "Access-Control-Allow-Headers: *" never covers Authorization.
var corsAllowHeaders = strings.Join([]string{
	"Authorization", "Content-Type", "Content-Encoding", "Accept-Language",
	"atproto-proxy", "atproto-accept-labelers", "DPoP",
	"x-bsky-topics", "x-ratelimit-bypass",
}, ", ")

// corsExposeHeaders are the response headers browser clients may read.
var corsExposeHeaders = strings.Join(append(ratelimit.ExposedHeaders(),
	"atproto-repo-rev", "atproto-content-labelers", "atproto-proxy",
	"DPoP-Nonce", "WWW-Authenticate", "Content-Usage",
), ", ")

// CORS lets any origin call the API (XRPC is public; credentials travel in headers, not
// cookies): preflights are answered with the allowed methods and headers, every response
// names the headers a browser may read.
func CORS(methods string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", methods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

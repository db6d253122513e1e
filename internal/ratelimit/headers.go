package ratelimit

import (
	"net/http"
	"strconv"
)

// The response headers of draft-ietf-httpapi-ratelimit-headers (the revision the
// reference PDS follows), plus Retry-After on refusals.
const (
	HeaderLimit      = "RateLimit-Limit"
	HeaderRemaining  = "RateLimit-Remaining"
	HeaderReset      = "RateLimit-Reset"
	HeaderPolicy     = "RateLimit-Policy"
	HeaderRetryAfter = "Retry-After"
)

// ExposedHeaders are the headers a browser client must be allowed to read (CORS
// Access-Control-Expose-Headers).
func ExposedHeaders() []string {
	return []string{HeaderLimit, HeaderRemaining, HeaderReset, HeaderPolicy, HeaderRetryAfter}
}

// SetHeaders writes res as RateLimit-Limit, -Remaining, -Reset (whole seconds until the
// window ends, rounded up) and -Policy ("POINTS;w=SECONDS"). A zero Result writes none.
func SetHeaders(h http.Header, res Result) {
	if !res.Limited() {
		return
	}
	h.Set(HeaderLimit, strconv.Itoa(res.Limit.Points))
	h.Set(HeaderRemaining, strconv.Itoa(res.Remaining))
	h.Set(HeaderReset, strconv.FormatInt(ceilSeconds(res.Reset), 10))
	h.Set(HeaderPolicy, res.Limit.Policy())
}

// RetryAfter is the Retry-After value for a refusal: whole seconds until the window
// ends, at least 1.
func RetryAfter(res Result) string {
	return strconv.FormatInt(max(1, ceilSeconds(res.Reset)), 10)
}

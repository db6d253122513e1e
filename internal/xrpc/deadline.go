package xrpc

import (
	"io"
	"net/http"
	"time"
)

// BodyIdleTimeout is how long a request body may stall before the connection is cut.
const BodyIdleTimeout = 30 * time.Second

// BodyDeadline bounds the reading of request bodies by progress, not by total time: the
// read deadline is idle from now and moves on with every read that returns bytes. A
// client that stops sending (slowloris) is cut after idle, while a 300 MB blob upload
// on a slow link keeps going. http.Server.ReadTimeout cannot do this: it bounds the whole
// body, and would also cut long-lived websockets. Requests without a body (websocket
// upgrades among them) are left alone.
func BodyDeadline(idle time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			rc := http.NewResponseController(w)
			// Errors mean the connection cannot take deadlines (HTTP/2, tests): then
			// the server's own limits apply.
			if err := rc.SetReadDeadline(time.Now().Add(idle)); err == nil {
				r.Body = &progressBody{ReadCloser: r.Body, rc: rc, idle: idle}
			}
		}
		next.ServeHTTP(w, r)
	})
}

type progressBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
}

func (b *progressBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
	return n, err
}

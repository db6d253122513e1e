package xrpc

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestBodyDeadline(t *testing.T) {
	h := BodyDeadline(300*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, "body read failed", http.StatusRequestTimeout)
			return
		}
		fmt.Fprintf(w, "%d", n)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	send := func(chunks int, gap time.Duration) (string, error) {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
		for i := 0; i < chunks; i++ {
			time.Sleep(gap)
			if _, err := c.Write(make([]byte, 100)); err != nil {
				return "", err
			}
		}
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return "", err
		}
		b, _ := io.ReadAll(res.Body)
		return fmt.Sprintf("%d %s", res.StatusCode, b), nil
	}
	// Steady progress for longer than the idle timeout in total: served.
	got, err := send(10, 100*time.Millisecond)
	if err != nil || got != "200 1000" {
		t.Fatalf("slow but steady upload: %q, %v", got, err)
	}
	// A client that stalls mid-body is cut.
	start := time.Now()
	got, _ = send(3, 0)
	if got == "200 1000" || time.Since(start) > 5*time.Second {
		t.Fatalf("stalled upload: %q after %v", got, time.Since(start))
	}
}

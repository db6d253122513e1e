package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestServeAnnouncesToCrawlers runs `hearth serve` in-process with crawlers given by
// flag or by HEARTH_CRAWLERS and checks each fake relay is asked to crawl the PDS's
// public host, and that serve still stops cleanly.
func TestServeAnnouncesToCrawlers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		byEnv bool
	}{
		{name: "flags"},
		{name: "env", byEnv: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan string, 10)
			relay := func() *httptest.Server {
				s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					var body struct{ Hostname string }
					json.NewDecoder(r.Body).Decode(&body)
					got <- r.URL.Path + " " + body.Hostname
				}))
				t.Cleanup(s.Close)
				return s
			}
			r1, r2 := relay(), relay()
			port, plcPort := freePort(t), freePort(t)
			args := []string{"hearth", "--log-level", "error", "serve", "--data-dir", t.TempDir(),
				"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--plc-listen", fmt.Sprintf("127.0.0.1:%d", plcPort), "--admin-password", "x"}
			if tc.byEnv {
				t.Setenv("HEARTH_CRAWLERS", r1.URL+","+r2.URL)
			} else {
				args = append(args, "--crawler", r1.URL, "--crawler", r2.URL)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out lockedBuffer
			done := runApp(ctx, &out, args[3:]...) // runApp adds hearth --log-level error
			want := fmt.Sprintf("/xrpc/com.atproto.sync.requestCrawl localhost:%d", port)
			for i := 0; i < 2; i++ {
				select {
				case s := <-got:
					require.Equal(t, want, s)
				case err := <-done:
					t.Fatalf("serve exited: %v\n%s", err, out.String())
				case <-time.After(20 * time.Second):
					t.Fatalf("no requestCrawl within 20s\n%s", out.String())
				}
			}
			require.Contains(t, out.String(), "crawlers:")
			stopApp(t, cancel, done)
		})
	}
}

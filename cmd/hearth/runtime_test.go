package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The runtime drains in its documented order, whatever stops it.
func TestRuntimeOrder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		failing bool
	}{{"signal", false}, {"worker fails", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var order []string
			note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
			rt := newRuntime(slog.New(slog.NewTextHandler(io.Discard, nil)))
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			rt.closeLast("first store", func() error { note("close first store"); return nil })
			rt.closeLast("second store", func() error { note("close second store"); return nil })
			rt.serveHTTP("api", ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			rt.stream("stream", func(context.Context) { note("stream close frames") })
			boom := errors.New("boom")
			started := make(chan struct{})
			rt.work("ingest", func(ctx context.Context) error {
				close(started)
				if tc.failing {
					return boom
				}
				<-ctx.Done()
				note("work stopped")
				return nil
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- rt.Run(ctx) }()
			<-started
			if !tc.failing {
				// The server answers while running.
				res, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + ln.Addr().String())
				require.NoError(t, err)
				res.Body.Close()
				cancel()
			}
			select {
			case err := <-done:
				if tc.failing {
					require.ErrorIs(t, err, boom)
				} else {
					require.NoError(t, err)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("Run did not return")
			}
			want := []string{"stream close frames", "work stopped", "close second store", "close first store"}
			if tc.failing {
				want = []string{"stream close frames", "close second store", "close first store"}
			}
			require.Equal(t, want, order)
			_, err = net.DialTimeout("tcp", ln.Addr().String(), time.Second)
			require.Error(t, err, "the listener is closed after Run")
		})
	}
}

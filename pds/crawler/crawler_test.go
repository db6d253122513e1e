package crawler

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeRelay records requestCrawl calls; fail says how many first calls get a 500.
type fakeRelay struct {
	*httptest.Server
	mu        sync.Mutex
	hostnames []string
	bad       []string
	fail      int
	calls     chan struct{}
}

func newFakeRelay(t *testing.T, fail int) *fakeRelay {
	f := &fakeRelay{fail: fail, calls: make(chan struct{}, 100)}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Hostname string `json:"hostname"`
		}
		err := json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		switch {
		case r.Method != http.MethodPost || r.URL.Path != "/xrpc/com.atproto.sync.requestCrawl" ||
			r.Header.Get("Content-Type") != "application/json" || err != nil:
			f.bad = append(f.bad, r.Method+" "+r.URL.Path)
		default:
			f.hostnames = append(f.hostnames, body.Hostname)
		}
		failing := len(f.hostnames) <= f.fail
		f.mu.Unlock()
		if failing {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"error":"InternalServerError","message":"try later"}`))
		}
		select {
		case f.calls <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeRelay) waitCalls(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-f.calls:
		case <-deadline:
			t.Fatalf("relay got %d of %d requestCrawl calls", i, n)
		}
	}
}

func (f *fakeRelay) seen() (hostnames, bad []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.hostnames...), append([]string(nil), f.bad...)
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs run in the background and returns a stop func that cancels it and checks
// that it returns promptly.
func start(t *testing.T, log *slog.Logger, crawlers []string, every, retry time.Duration, client *http.Client) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(ctx, log, "pds.example.com", crawlers, every, retry, client, nil)
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

func TestRunAnnouncesAtStartAndPeriodically(t *testing.T) {
	relay := newFakeRelay(t, 0)
	stop := start(t, nil, []string{relay.URL}, 50*time.Millisecond, time.Second, relay.Client())
	relay.waitCalls(t, 3)
	stop()
	hostnames, bad := relay.seen()
	require.Empty(t, bad)
	require.GreaterOrEqual(t, len(hostnames), 3)
	for _, h := range hostnames {
		require.Equal(t, "pds.example.com", h, "the PDS's hostname, not the crawler's")
	}
}

func TestRunRetriesFailuresAndLogsThem(t *testing.T) {
	relay := newFakeRelay(t, 2)
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// The interval is long: the second and third calls come from the retry back-off.
	stop := start(t, log, []string{relay.URL}, time.Hour, 20*time.Millisecond, relay.Client())
	relay.waitCalls(t, 3)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "announced to crawler") }, 5*time.Second, 5*time.Millisecond)
	stop()
	hostnames, _ := relay.seen()
	require.Len(t, hostnames, 3)
	require.Contains(t, logs.String(), "requestCrawl failed")
	require.Contains(t, logs.String(), "InternalServerError: try later")
}

func TestRunOneDeadCrawlerDoesNotBlockOthers(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // connection refused from now on
	// A relay that never answers: only the client timeout or ctx ends the request.
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(hang) })
	relay := newFakeRelay(t, 0)
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	stop := start(t, log, []string{deadURL, slow.URL, "ftp://nope.example", relay.URL}, time.Hour, time.Hour, &http.Client{Timeout: time.Minute})
	relay.waitCalls(t, 1)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "connection refused") }, 5*time.Second, 5*time.Millisecond)
	// Cancelling ends the hanging request too.
	stop()
	require.Contains(t, logs.String(), "skipping crawler")
}

func TestRunPublic(t *testing.T) {
	relay := newFakeRelay(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), "pds.example.com:8443", []string{relay.URL + "/"}, 0, nil)
	}()
	relay.waitCalls(t, 1)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	hostnames, bad := relay.seen()
	require.Empty(t, bad)
	require.Equal(t, []string{"pds.example.com:8443"}, hostnames)
}

func TestAnnounceErrors(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "no such method", http.StatusNotImplemented)
	}))
	t.Cleanup(srv.Close)
	err := Announce(context.Background(), srv.Client(), srv.URL, "pds.example.com")
	require.ErrorContains(t, err, "HTTP 501: no such method")
	require.EqualValues(t, 1, calls.Load())
}

func TestNormalizeURL(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "bsky.network", want: "https://bsky.network"},
		{in: "https://bsky.network/", want: "https://bsky.network"},
		{in: " http://127.0.0.1:2470 ", want: "http://127.0.0.1:2470"},
		{in: "https://relay.example.com/base/", want: "https://relay.example.com/base"},
		{in: "", err: "empty"},
		{in: "ws://relay.example.com", err: "want http or https"},
		{in: "https://", err: "no host"},
		{in: "https://relay.example.com/?x=1", err: "scheme://host"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := NormalizeURL(tc.in)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// An activation wakes the crawler announcers at once, long before the next periodic
// announcement.
func TestRunAnnouncesOnWake(t *testing.T) {
	r1 := newFakeRelay(t, 0)
	var mu sync.Mutex
	wakeCh := make(chan struct{})
	wake := func() <-chan struct{} { mu.Lock(); defer mu.Unlock(); return wakeCh }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(ctx, nil, "pds.example.com", []string{r1.URL}, time.Hour, time.Second, r1.Client(), wake)
	}()
	r1.waitCalls(t, 1)
	mu.Lock()
	close(wakeCh)
	wakeCh = make(chan struct{})
	mu.Unlock()
	r1.waitCalls(t, 1) // the second announcement, an hour early
	cancel()
	<-done
}

// Package testnet is the one harness end-to-end tests start Hearth with: the embedded
// PLC directory and a PDS on 127.0.0.1:0 with temporary data dirs, optionally a feed
// generator reading that PDS's firehose, torn down in order when the test ends, and an
// XRPC client with the account and post helpers tests share. Tests talk to the servers
// over HTTP and websockets as any client would.
//
// It is imported by tests only (it imports both pds and feedgen, which never import
// each other).
package testnet

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hearth-social/hearth/feedgen"
	"github.com/hearth-social/hearth/pds"
	"github.com/hearth-social/hearth/pds/mail"
	"github.com/hearth-social/hearth/pds/plc"
)

// AdminPassword is the PDS admin password of every harness network.
const AdminPassword = "test-admin-password"

// Net is a running PLC directory and PDS.
type Net struct {
	// PLC is the embedded directory and PLCServer the HTTP server in front of it.
	PLC       *plc.Server
	PLCServer *httptest.Server
	// PDS is the server, PDSServer its listener, Config what it was started with.
	PDS       *pds.Server
	PDSServer *httptest.Server
	Config    pds.Config
	// Client talks to the PDS.
	Client *Client
	log    *slog.Logger
	// stopRun ends the PDS's Run; runDone is closed when it returned.
	stopRun context.CancelFunc
	runDone chan struct{}
}

// Quiet is a logger that discards everything (tests that want logs pass their own).
func Quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Start runs a PLC directory and a PDS for the test, configured for tests (loopback
// rate-limit bypass, cheap password hashing) and then by mutate.
func Start(t testing.TB, mutate ...func(*pds.Config)) *Net {
	t.Helper()
	ctx := context.Background()
	tmp := t.TempDir()
	log := Quiet()
	dir, err := plc.OpenServer(ctx, filepath.Join(tmp, "plc.sqlite"), log)
	if err != nil {
		t.Fatalf("opening the PLC directory: %v", err)
	}
	plc := httptest.NewServer(dir.Handler())
	ts := httptest.NewUnstartedServer(nil)
	cfg := pds.DefaultConfig()
	cfg.DataDir = filepath.Join(tmp, "data")
	cfg.PLCURL = plc.URL
	cfg.PublicURL = "http://" + ts.Listener.Addr().String()
	cfg.AdminPassword = AdminPassword
	cfg.PasswordCost = 1 << 10
	// Test clients are on loopback; the rate-limit tests clear this.
	cfg.RateLimits.Bypass = []string{"127.0.0.1", "::1"}
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := pds.New(ctx, cfg, log)
	if err != nil {
		plc.Close()
		dir.Close()
		t.Fatalf("starting the PDS: %v", err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	// The PDS's background work runs as under serve, stopped before the store closes.
	runCtx, stopRun := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { defer close(runDone); srv.Run(runCtx) }()
	n := &Net{stopRun: stopRun, runDone: runDone, PLC: dir, PLCServer: plc, PDS: srv, PDSServer: ts, Config: cfg, log: log,
		Client: NewClient(ts.URL, AdminPassword)}
	// Cleanups run last-registered first: a feed generator started later stops before
	// the PDS it reads.
	t.Cleanup(n.close)
	return n
}

// URL is the PDS's base URL.
func (n *Net) URL() string { return n.PDSServer.URL }

func (n *Net) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.PDS.Shutdown(ctx) // firehose close frames before the listener goes
	n.PDSServer.Close()
	n.stopRun()
	<-n.runDone
	n.PDS.Close()
	n.PLCServer.Close()
	n.PLC.Close()
}

// Feed is a running feed generator.
type Feed struct {
	Svc    *feedgen.Service
	Server *httptest.Server
	cancel context.CancelFunc
	done   chan error
	closed bool
}

// FeedConfig is the configuration StartFeed uses before mutate: a local feed generator
// reading n's firehose, its index at indexPath.
func (n *Net) FeedConfig(indexPath string) feedgen.Config {
	cfg := feedgen.DefaultConfig()
	cfg.Hostname = "localhost"
	cfg.IndexPath = indexPath
	cfg.PLCURL = n.PLCServer.URL
	cfg.AllowPrivate = true
	cfg.Ingest.FirehoseURL = n.URL()
	cfg.Ingest.MinBackoff = 20 * time.Millisecond
	cfg.Ingest.MaxBackoff = 200 * time.Millisecond
	return cfg
}

// StartFeed starts a feed generator on n's firehose (index at indexPath, "" for a temp
// file); it is stopped when the test ends unless Stop was called first.
func (n *Net) StartFeed(t testing.TB, indexPath string, mutate ...func(*feedgen.Config)) *Feed {
	t.Helper()
	if indexPath == "" {
		indexPath = filepath.Join(t.TempDir(), "feedgen.sqlite")
	}
	cfg := n.FeedConfig(indexPath)
	for _, m := range mutate {
		m(&cfg)
	}
	svc, err := feedgen.New(context.Background(), cfg, n.log)
	if err != nil {
		t.Fatalf("starting the feed generator: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Feed{Svc: svc, Server: httptest.NewServer(svc.Handler()), cancel: cancel, done: make(chan error, 1)}
	go func() { f.done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		if err := f.Stop(); err != nil {
			t.Errorf("stopping the feed generator: %v", err)
		}
	})
	return f
}

// Stop ends ingestion (bounded), closes the listener and the stores. It returns Run's
// error; calling it again does nothing.
func (f *Feed) Stop() error {
	if f.closed {
		return nil
	}
	f.closed = true
	f.cancel()
	var err error
	select {
	case err = <-f.done:
	case <-time.After(10 * time.Second):
		err = context.DeadlineExceeded
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f.Svc.Shutdown(ctx)
	f.Server.Close()
	if cerr := f.Svc.Close(); err == nil {
		err = cerr
	}
	return err
}

// MailedToken returns the newest token the PDS mailed to did for purpose (the embedded
// default writes mail to the outbox in its data dir), waiting for it up to wait.
func (n *Net) MailedToken(t testing.TB, did, purpose string, wait time.Duration) string {
	t.Helper()
	m, ok := n.waitMailedToken(did, purpose, wait)
	if !ok {
		t.Fatalf("no %s mail for %s", purpose, did)
	}
	if !strings.Contains(m.Body, m.Token) {
		t.Fatalf("the %s mail does not carry its token: %q", purpose, m.Body)
	}
	return m.Token
}

// TypeMailedToken returns a reader that, like a user reading the mail and typing the
// token, yields the token once the PDS has mailed it (nothing within 30 s: EOF).
func (n *Net) TypeMailedToken(did, purpose string) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		defer pw.Close()
		if m, ok := n.waitMailedToken(did, purpose, 30*time.Second); ok {
			io.WriteString(pw, m.Token+"\n")
		}
	}()
	return pr
}

func (n *Net) waitMailedToken(did, purpose string, wait time.Duration) (mail.Message, bool) {
	deadline := time.Now().Add(wait)
	for {
		msgs, _ := mail.ReadOutbox(pds.OutboxPath(n.Config.DataDir))
		for i := len(msgs) - 1; i >= 0; i-- {
			if msgs[i].DID == did && msgs[i].Purpose == purpose {
				return msgs[i], true
			}
		}
		if !time.Now().Before(deadline) {
			return mail.Message{}, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Command looprelay runs indigo's relay (cmd/relay/relay at the pinned indigo: the code
// bsky.network's relays run) against one PDS on loopback, for cmd/hearth's
// TestIndigoRelay, and prints every event the relay passes on as a JSON line.
//
// The relay keeps its strict Sync 1.1 validation (each commit's signature against the
// account's DID document; prevData and the MST operations inverted against the previous
// root) and its host check (an account's DID document must name the host its events
// came from); an event that fails them is dropped, and only logged (stderr). The one
// change from the relay binary: its new-host check goes through a plain HTTP client,
// since the binary's refuses loopback and private addresses (an SSRF guard), so it
// cannot crawl a PDS on 127.0.0.1. The relay code is used as it is, not copied: this
// file only wires it, as cmd/relay's main does.
//
// Usage: looprelay --plc-url http://127.0.0.1:2582 --host localhost:2583 --persist-dir DIR [--debug]
// It prints {"ready":true} once subscribed, then one line per event, until killed.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/cmd/relay/relay"
	relaystream "github.com/bluesky-social/indigo/cmd/relay/stream"
	"github.com/bluesky-social/indigo/cmd/relay/stream/eventmgr"
	"github.com/bluesky-social/indigo/cmd/relay/stream/persist/diskpersist"
	"github.com/bluesky-social/indigo/util/cliutil"
)

// line is one event the relay passed on.
type line struct {
	Ready  bool     `json:"ready,omitempty"`
	Kind   string   `json:"kind,omitempty"` // commit, sync, identity, account, other
	Seq    int64    `json:"seq,omitempty"`  // the relay's own sequence number
	DID    string   `json:"did,omitempty"`
	Rev    string   `json:"rev,omitempty"`
	Ops    []string `json:"ops,omitempty"` // commit: "create at://...", "update ...", "delete ..."
	Active *bool    `json:"active,omitempty"`
	Handle string   `json:"handle,omitempty"`
}

func main() {
	plcURL := flag.String("plc-url", "", "the PLC directory the relay resolves DIDs with")
	host := flag.String("host", "", "the PDS, as the relay names hosts: localhost:PORT (plain ws://)")
	persistDir := flag.String("persist-dir", "", "folder for the relay's event log")
	debug := flag.Bool("debug", false, "log the relay's checks of every event (stderr)")
	flag.Parse()
	if *plcURL == "" || *host == "" || *persistDir == "" {
		fmt.Fprintln(os.Stderr, "looprelay: --plc-url, --host and --persist-dir are required")
		os.Exit(2)
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	// The relay logs through slog's default logger.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *plcURL, *host, *persistDir); err != nil {
		fmt.Fprintln(os.Stderr, "looprelay:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, plcURL, host, persistDir string) error {
	db, err := cliutil.SetupDatabase("sqlite://:memory:", 1)
	if err != nil {
		return fmt.Errorf("relay database: %w", err)
	}
	persister, err := diskpersist.NewDiskPersistence(persistDir, "", db, diskpersist.DefaultDiskPersistOptions())
	if err != nil {
		return fmt.Errorf("relay event log: %w", err)
	}
	events := eventmgr.NewEventManager(persister)
	dir := identity.BaseDirectory{PLCURL: plcURL, SkipHandleVerification: true}
	r, err := relay.NewRelay(db, events, &dir, relay.DefaultRelayConfig())
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	persister.SetUidSource(r)
	r.HostChecker = &relay.HostClient{Client: &http.Client{Timeout: 5 * time.Second}, UserAgent: "hearth-looprelay"}
	defer func() {
		r.Slurper.Shutdown()
		events.Shutdown(context.Background())
	}()

	out, unsubscribe, err := events.Subscribe(ctx, "looprelay", func(*relaystream.XRPCStreamEvent) bool { return true }, nil)
	if err != nil {
		return fmt.Errorf("subscribing to the relay's events: %w", err)
	}
	defer unsubscribe()
	// What the relay's requestCrawl does: describeServer on the host, then subscribe.
	if err := r.HostChecker.CheckHost(ctx, "http://"+host); err != nil {
		return fmt.Errorf("host check: %w", err)
	}
	if err := r.SubscribeToHost(ctx, host, true, true); err != nil {
		return fmt.Errorf("subscribing to %s: %w", host, err)
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(line{Ready: true}); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-out:
			if !ok {
				return fmt.Errorf("the relay's event stream closed")
			}
			if err := enc.Encode(describe(ev)); err != nil {
				return err
			}
		}
	}
}

func describe(ev *relaystream.XRPCStreamEvent) line {
	switch {
	case ev.RepoCommit != nil:
		c := ev.RepoCommit
		l := line{Kind: "commit", Seq: c.Seq, DID: c.Repo, Rev: c.Rev, Ops: []string{}}
		for _, op := range c.Ops {
			l.Ops = append(l.Ops, op.Action+" at://"+c.Repo+"/"+op.Path)
		}
		return l
	case ev.RepoSync != nil:
		return line{Kind: "sync", Seq: ev.RepoSync.Seq, DID: ev.RepoSync.Did, Rev: ev.RepoSync.Rev}
	case ev.RepoIdentity != nil:
		l := line{Kind: "identity", Seq: ev.RepoIdentity.Seq, DID: ev.RepoIdentity.Did}
		if ev.RepoIdentity.Handle != nil {
			l.Handle = *ev.RepoIdentity.Handle
		}
		return l
	case ev.RepoAccount != nil:
		active := ev.RepoAccount.Active
		return line{Kind: "account", Seq: ev.RepoAccount.Seq, DID: ev.RepoAccount.Did, Active: &active}
	}
	return line{Kind: "other"}
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/stretchr/testify/require"
)

// relayLine is one event indigo's relay passed on (internal/tools/looprelay's output).
type relayLine struct {
	Ready  bool     `json:"ready"`
	Kind   string   `json:"kind"`
	DID    string   `json:"did"`
	Rev    string   `json:"rev"`
	Ops    []string `json:"ops"`
	Active *bool    `json:"active"`
}

// TestIndigoRelay: indigo's relay (cmd/relay/relay, run by internal/tools/looprelay with
// its strict Sync 1.1 validation and host check; it drops any event that fails them)
// crawls `hearth serve` and passes on, in order, an account's #identity and #account,
// every commit (create, update, a two-record applyWrites, delete) with its operations,
// and a handle change. The relay cannot be linked into this test: its metrics collide
// with indigo/events' in Prometheus' global registry, hence the separate process.
func TestIndigoRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping indigo's relay")
	}
	relayBin := buildCommand(t, "./internal/tools/looprelay")
	port, plcPort, feedPort := freePort(t), freePort(t), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	plcURL := fmt.Sprintf("http://127.0.0.1:%d", plcPort)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	// The relay names a host without TLS localhost:PORT (it refuses IP addresses) and
	// checks that accounts' DID documents name that host: the public URL says localhost.
	done := runApp(ctx, &out, "serve", "--data-dir", t.TempDir(), "--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--public-url", fmt.Sprintf("http://localhost:%d", port), "--plc-listen", fmt.Sprintf("127.0.0.1:%d", plcPort),
		"--feed-listen", fmt.Sprintf("127.0.0.1:%d", feedPort), "--dashboard-listen", "off", "--admin-password", "x",
		"--rate-limit-bypass", "127.0.0.1")
	waitHTTP(t, base+"/xrpc/com.atproto.server.describeServer", done, &out)
	defer stopApp(t, cancel, done)

	rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer rcancel()
	var relayLog lockedBuffer
	cmd := exec.CommandContext(rctx, relayBin, "--plc-url", plcURL, "--host", fmt.Sprintf("localhost:%d", port), "--persist-dir", t.TempDir(), "--debug")
	cmd.Stderr = &relayLog
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() { rcancel(); cmd.Wait() }()
	lines := make(chan relayLine, 256)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l relayLine
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				lines <- l
			}
		}
	}()
	next := func(what string) relayLine {
		t.Helper()
		select {
		case l, ok := <-lines:
			require.True(t, ok, "the relay exited while waiting for %s:\n%s", what, relayLog.String())
			return l
		case <-time.After(30 * time.Second):
			t.Fatalf("the relay passed on no %s within 30s (it drops what fails its validation):\n%s", what, relayLog.String())
			return relayLine{}
		}
	}
	require.True(t, next("ready line").Ready)

	c := testnet.NewClient(base, "x")
	alice := c.CreateAccount(t, "alice")
	post, _ := c.CreateRecord(t, alice, "app.bsky.feed.post", testnet.Post("through the relay"))
	rkey := post[strings.LastIndex(post, "/")+1:]
	testnet.RequireOK(t, c.Post(t, "com.atproto.repo.putRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "rkey": rkey,
		"record": testnet.Post("edited, through the relay")}, alice.Access))
	batch := c.Post(t, "com.atproto.repo.applyWrites", map[string]any{"repo": alice.DID, "writes": []map[string]any{
		{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "value": testnet.Post("one of two")},
		{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "value": testnet.Post("two of two")},
	}}, alice.Access)
	testnet.RequireOK(t, batch)
	var results struct {
		Results []struct {
			URI string `json:"uri"`
		} `json:"results"`
	}
	require.NoError(t, json.Unmarshal(batch.Body, &results))
	require.Len(t, results.Results, 2)
	testnet.RequireOK(t, c.Post(t, "com.atproto.repo.deleteRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "rkey": rkey}, alice.Access))
	testnet.RequireOK(t, c.Post(t, "com.atproto.identity.updateHandle", map[string]any{"handle": "alice-renamed.test"}, alice.Access))
	head := c.Get(t, "com.atproto.sync.getLatestCommit", url.Values{"did": {alice.DID}}, "")
	testnet.RequireOK(t, head)

	// What the relay passed on for alice, in its order, until the #identity of the handle
	// change (which the relay passes on without the handle: it does not verify handles).
	var kinds []string
	var commits [][]string
	lastRev := ""
	for {
		l := next("event for alice")
		if l.DID != alice.DID {
			continue
		}
		kinds = append(kinds, l.Kind)
		if l.Kind == "commit" {
			commits = append(commits, append([]string{}, l.Ops...))
			lastRev = l.Rev
		}
		if l.Kind == "account" {
			require.NotNil(t, l.Active)
			require.True(t, *l.Active)
		}
		if l.Kind == "identity" && len(commits) == 5 {
			break
		}
	}
	uri := "at://" + alice.DID + "/app.bsky.feed.post/"
	require.Equal(t, [][]string{
		{}, // the account's first, empty commit
		{"create " + uri + rkey},
		{"update " + uri + rkey},
		{"create " + results.Results[0].URI, "create " + results.Results[1].URI},
		{"delete " + uri + rkey},
	}, commits, "events: %v\nrelay log:\n%s", kinds, relayLog.String())
	require.Equal(t, head.Str("rev"), lastRev)
	require.Contains(t, kinds, "account")
	require.Equal(t, "identity", kinds[0], "the account's #identity comes first: %v", kinds)
	require.NotContains(t, relayLog.String(), "level=WARN", "the relay warned about an event")
}

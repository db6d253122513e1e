package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"
)

// testJWTSecret is the session-token key test servers run with, so tests (and the
// conformance client's expired-token check) can mint tokens.
const testJWTSecret = "hearth-test-jwt-secret"

// buildHearth builds the hearth binary into a temp dir from the module root.
func buildHearth(t *testing.T) string {
	t.Helper()
	return buildCommand(t, "./cmd/hearth")
}

// buildCommand builds the module's command at pkg (a path from the module root, e.g.
// ./cmd/hearth) into a temp dir and returns the binary's path.
func buildCommand(t *testing.T, pkg string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go is not on PATH: cannot build %s", pkg)
	}
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, pkg)
	cmd.Dir = filepath.Join("..", "..") // the module root
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freePort returns a port that was free a moment ago on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// hearthProc is a running `hearth serve`.
type hearthProc struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
	base string // http://127.0.0.1:PORT
	plc  string
}

// startHearth runs `hearth serve` on dataDir, preferring the given ports (0: pick), and
// waits (bounded) until describeServer answers. It retries with new ports when a port
// was taken meanwhile. ports is updated to the ones in use.
func startHearth(t *testing.T, bin, dataDir string, ports *[2]int) *hearthProc {
	t.Helper()
	for attempt := 0; attempt < 4; attempt++ {
		if ports[0] == 0 || attempt > 0 {
			ports[0], ports[1] = freePort(t), freePort(t)
		}
		p := &hearthProc{out: &lockedBuffer{}, done: make(chan struct{}),
			base: fmt.Sprintf("http://127.0.0.1:%d", ports[0]), plc: fmt.Sprintf("http://127.0.0.1:%d", ports[1])}
		p.cmd = exec.Command(bin, "--log-level", "warn", "serve", "--data-dir", dataDir,
			"--listen", fmt.Sprintf("127.0.0.1:%d", ports[0]), "--plc-listen", fmt.Sprintf("127.0.0.1:%d", ports[1]),
			"--admin-password", "x", "--jwt-secret", testJWTSecret,
			// The conformance client and the crash test's write loops run on loopback.
			"--rate-limit-bypass", "127.0.0.1")
		p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
		require.NoError(t, p.cmd.Start())
		go func() { p.cmd.Wait(); close(p.done) }()
		t.Cleanup(func() { p.kill(t) })
		if p.waitReady(30 * time.Second) {
			return p
		}
		p.kill(t)
		if !strings.Contains(p.out.String(), "address already in use") {
			t.Fatalf("hearth serve did not come up:\n%s", p.out.String())
		}
		t.Logf("port taken, retrying: %s", strings.TrimSpace(p.out.String()))
	}
	t.Fatal("hearth serve: no free ports after 4 attempts")
	return nil
}

func (p *hearthProc) waitReady(timeout time.Duration) bool {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return false
		default:
		}
		res, err := client.Get(p.base + "/xrpc/com.atproto.server.describeServer")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// kill SIGKILLs the process (no clean shutdown) and waits for it to be gone.
func (p *hearthProc) kill(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("hearth (pid %d) did not exit after SIGKILL", p.cmd.Process.Pid)
	}
}

// call posts an XRPC request to a running hearth process (testnet's client) and
// returns the JSON answer of a 200.
func call(client *http.Client, base, nsid string, body any, token string) (map[string]any, error) {
	c := testnet.NewClient(base, "")
	c.HTTP = client
	r, err := c.Call(http.MethodPost, nsid, nil, body, token)
	if err != nil {
		return nil, err
	}
	if r.Status != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d: %s", nsid, r.Status, r.Body)
	}
	return r.JSON, nil
}

// createPost writes one post and returns its acknowledged commit CID.
func createPost(client *http.Client, base, did, token, text string) (string, error) {
	out, err := call(client, base, "com.atproto.repo.createRecord", map[string]any{"repo": did, "collection": "app.bsky.feed.post",
		"record": testnet.Post(text)}, token)
	if err != nil {
		return "", err
	}
	c, _ := out["commit"].(map[string]any)
	s, _ := c["cid"].(string)
	if s == "" {
		return "", fmt.Errorf("no commit CID in %v", out)
	}
	return s, nil
}

// readUntil reads events from base after cursor until every CID in want was seen as a
// #commit (bounded), and returns all events read.
func readUntil(t *testing.T, base string, cursor int64, want []string) []*firehose.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := firehose.Dial(ctx, base, &cursor)
	require.NoError(t, err)
	defer conn.Close()
	conn.ReadTimeout = 20 * time.Second
	missing := map[string]bool{}
	for _, c := range want {
		missing[c] = true
	}
	var evs []*firehose.Event
	for len(missing) > 0 {
		ev, err := conn.Next(ctx)
		require.NoError(t, err, "after %d events, %d commits missing", len(evs), len(missing))
		require.NotEqual(t, firehose.TypeError, ev.Type, "error frame: %+v", ev.Error)
		evs = append(evs, ev)
		if ev.Commit != nil {
			delete(missing, cid.Cid(ev.Commit.Commit).String())
		}
	}
	return evs
}

// commitCount counts each #commit CID in evs.
func commitCount(evs []*firehose.Event) map[string]int {
	n := map[string]int{}
	for _, ev := range evs {
		if ev.Commit != nil {
			n[cid.Cid(ev.Commit.Commit).String()]++
		}
	}
	return n
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the hearth binary")
	}
	bin := buildHearth(t)
	dataDir := t.TempDir()
	var ports [2]int
	p := startHearth(t, bin, dataDir, &ports)
	client := &http.Client{Timeout: 10 * time.Second}

	acct, err := call(client, p.base, "com.atproto.server.createAccount", map[string]any{"handle": "crash.test", "password": "pw-crash-test", "email": "crash@example.com"}, "")
	require.NoError(t, err)
	did, token := acct["did"].(string), acct["accessJwt"].(string)

	// N acknowledged writes.
	var before []string
	for i := 0; i < 20; i++ {
		c, err := createPost(client, p.base, did, token, fmt.Sprintf("before %d", i))
		require.NoError(t, err)
		before = append(before, c)
	}

	// A subscriber reads part of the log and remembers its cursor.
	evs := readUntil(t, p.base, 0, before[:10])
	saved := evs[len(evs)-1].Seq
	t.Logf("saved cursor %d after %d events", saved, len(evs))

	// More writes keep flowing while the process is SIGKILLed: only acknowledged ones count.
	var mu sync.Mutex
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c := &http.Client{Timeout: 5 * time.Second}
		for i := 0; ; i++ {
			cid, err := createPost(c, p.base, did, token, fmt.Sprintf("racing %d", i))
			if err != nil {
				return
			}
			mu.Lock()
			before = append(before, cid)
			mu.Unlock()
		}
	}()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(before) >= 40 }, 30*time.Second, 5*time.Millisecond)
	p.kill(t)
	select {
	case <-writerDone:
	case <-time.After(15 * time.Second):
		t.Fatal("writer did not stop after the kill")
	}
	mu.Lock()
	acked := append([]string(nil), before...)
	mu.Unlock()
	t.Logf("%d writes acknowledged before SIGKILL", len(acked))

	// Restart on the same data dir (same ports when still free) and write more.
	p = startHearth(t, bin, dataDir, &ports)
	var after []string
	for i := 0; i < 10; i++ {
		c, err := createPost(client, p.base, did, token, fmt.Sprintf("after %d", i))
		require.NoError(t, err, "server output:\n%s", p.out.String())
		after = append(after, c)
	}

	t.Run("resume from saved cursor", func(t *testing.T) {
		got := readUntil(t, p.base, saved, after)
		for i, ev := range got {
			require.Equal(t, saved+int64(i)+1, ev.Seq, "every later event exactly once, in order")
		}
		counts := commitCount(got)
		for _, c := range acked[10:] {
			require.Equal(t, 1, counts[c], "acknowledged commit %s", c)
		}
		for _, c := range after {
			require.Equal(t, 1, counts[c], "post-restart commit %s", c)
		}
	})

	t.Run("replay from zero", func(t *testing.T) {
		all := readUntil(t, p.base, 0, after)
		counts := commitCount(all)
		for _, c := range acked {
			require.Equal(t, 1, counts[c], "commit %s acknowledged before the kill must be in the log once", c)
		}
		seqOf := map[string]int64{}
		for i, ev := range all {
			require.Equal(t, int64(i)+1, ev.Seq, "seq is contiguous across the crash")
			if ev.Commit != nil {
				seqOf[cid.Cid(ev.Commit.Commit).String()] = ev.Seq
			}
		}
		var preMax int64
		for _, c := range acked {
			preMax = max(preMax, seqOf[c])
		}
		for _, c := range after {
			require.Greater(t, seqOf[c], preMax, "seq continues above the pre-crash maximum")
		}
	})

	t.Run("firehose tail", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			args     []string
			wantErr  string
			wantRows int
		}{
			{name: "verify json", args: []string{"--cursor", "0", "--limit", "30", "--json", "--verify", "--plc", p.plc}, wantRows: 30},
			{name: "text from cursor", args: []string{"--cursor", strconv.FormatInt(saved, 10), "--limit", "5"}, wantRows: 5},
			{name: "future cursor", args: []string{"--cursor", "1000000", "--limit", "5"}, wantErr: "FutureCursor", wantRows: 1},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				args := append([]string{"firehose", "tail", "--url", strings.Replace(p.base, "http://", "ws://", 1)}, tc.args...)
				cmd := exec.CommandContext(ctx, bin, args...)
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				if tc.wantErr != "" {
					require.Error(t, err)
					require.Contains(t, stderr.String(), tc.wantErr)
				} else {
					require.NoError(t, err, "stderr: %s", stderr.String())
				}
				sc := bufio.NewScanner(&stdout)
				var rows []string
				for sc.Scan() {
					rows = append(rows, sc.Text())
				}
				require.Len(t, rows, tc.wantRows, "stdout: %s", stdout.String())
				if tc.name == "verify json" {
					for i, row := range rows {
						var l struct {
							Seq  int64  `json:"seq"`
							Type string `json:"type"`
							DID  string `json:"did"`
						}
						require.NoError(t, json.Unmarshal([]byte(row), &l), row)
						require.Equal(t, int64(i)+1, l.Seq)
						require.Equal(t, did, l.DID)
					}
					require.Contains(t, rows[2], `"type":"#commit"`)
				}
				if tc.name == "text from cursor" {
					require.True(t, strings.HasPrefix(rows[0], strconv.FormatInt(saved+1, 10)+" #commit "+did), rows[0])
				}
			})
		}

		t.Run("SIGINT stops cleanly", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "firehose", "tail", "--url", p.base, "--cursor", "0")
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			var stderr lockedBuffer
			cmd.Stderr = &stderr
			require.NoError(t, cmd.Start())
			sc := bufio.NewScanner(stdout)
			require.True(t, sc.Scan(), "a first line")
			require.True(t, strings.HasPrefix(sc.Text(), "1 #identity "+did), sc.Text())
			copied := make(chan struct{})
			go func() { defer close(copied); io.Copy(io.Discard, stdout) }() // the replay goes on meanwhile
			require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
			select {
			case <-copied: // the process exited and closed its stdout
			case <-time.After(20 * time.Second):
				t.Fatal("firehose tail did not stop on SIGINT")
			}
			require.NoError(t, cmd.Wait(), "a clean stop exits 0; stderr: %s", stderr.String())
			require.Contains(t, stderr.String(), "resume with --cursor")
		})
	})
}

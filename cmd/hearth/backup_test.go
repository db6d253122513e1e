package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/backup"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/internal/resolve"
	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/hearth-social/hearth/pds/store"
	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"
)

// inProcessServe is `hearth serve` run by the test's own process.
type inProcessServe struct {
	base, plc string
	client    *testnet.Client
	out       *lockedBuffer
	stop      func()
}

// startServe runs `hearth serve` on dataDir with extra flags and waits (bounded) until
// it answers; stop ends it cleanly (as SIGTERM would).
func startServe(t *testing.T, dataDir string, extra ...string) *inProcessServe {
	t.Helper()
	port, plcPort := freePort(t), freePort(t)
	args := append([]string{"hearth", "--log-level", "info", "serve", "--data-dir", dataDir, "--no-feedgen",
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--plc-listen", fmt.Sprintf("127.0.0.1:%d", plcPort),
		"--admin-password", "x", "--jwt-secret", testJWTSecret, "--rate-limit-bypass", "127.0.0.1"}, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	s := &inProcessServe{base: fmt.Sprintf("http://127.0.0.1:%d", port), plc: fmt.Sprintf("http://127.0.0.1:%d", plcPort), out: &lockedBuffer{}}
	s.client = testnet.NewClient(s.base, "x")
	done := make(chan error, 1)
	go func() { done <- newApp(s.out, s.out).RunContext(ctx, args) }()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err, "serve:\n%s", s.out.String())
			case <-time.After(30 * time.Second):
				t.Errorf("serve did not stop")
			}
		})
	}
	t.Cleanup(s.stop)
	hc := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v\n%s", err, s.out.String())
		default:
		}
		if res, err := hc.Get(s.base + "/xrpc/com.atproto.server.describeServer"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s
			}
		}
	}
	t.Fatalf("serve did not come up:\n%s", s.out.String())
	return nil
}

// runHearth runs one hearth command in-process and returns its output.
func runHearth(args ...string) (string, error) {
	var out bytes.Buffer
	err := newApp(&out, &out).RunContext(context.Background(), append([]string{"hearth", "--log-level", "warn"}, args...))
	return out.String(), err
}

// TestBackupRestore backs up a running server under a write load, restores the backup
// into a fresh data dir and serves it: the same accounts, every repo verifies against
// its DID document, and the firehose continues above every seq the old server served.
func TestBackupRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two servers")
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	scheduled := filepath.Join(t.TempDir(), "scheduled")
	backups := filepath.Join(t.TempDir(), "backups")
	old := startServe(t, dataDir, "--backup-dir", scheduled, "--backup-every", "1h", "--backup-keep", "2")
	c := old.client

	// Three accounts; alice posts an image.
	var accts []*testnet.Account
	for _, name := range []string{"alice", "bob", "carol"} {
		accts = append(accts, c.CreateAccount(t, name))
	}
	img := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{9}, 500)...)
	up := c.Do(t, "POST", "com.atproto.repo.uploadBlob", nil, img, accts[0].Access)
	testnet.RequireOK(t, up)
	p := testnet.Post("a picture")
	p["embed"] = map[string]any{"$type": "app.bsky.embed.images", "images": []any{map[string]any{"alt": "x", "image": up.JSON["blob"]}}}
	c.CreateRecord(t, accts[0], "app.bsky.feed.post", p)

	// The scheduled backup runs at start-up (there was none in the folder).
	require.Eventually(t, func() bool {
		all, err := backup.List(scheduled)
		return err == nil && len(all) == 1
	}, 30*time.Second, 50*time.Millisecond, "no scheduled backup:\n%s", old.out.String())
	require.Contains(t, old.out.String(), "backup written")

	// A write load: every account posts as fast as it can.
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var acked atomic.Int64
	for _, a := range accts {
		wg.Go(func() {
			hc := &http.Client{Timeout: 10 * time.Second}
			for i := 0; ctx.Err() == nil; i++ {
				if _, err := createPost(hc, old.base, a.DID, a.Access, fmt.Sprintf("load %d", i)); err == nil {
					acked.Add(1)
				}
			}
		})
	}
	require.Eventually(t, func() bool { return acked.Load() >= 30 }, 30*time.Second, 10*time.Millisecond)
	out, err := runHearth("backup", "--data-dir", dataDir, "--to", backups)
	require.NoError(t, err, out)
	require.Contains(t, out, "1 copied, 0 linked")
	mark := acked.Load()
	require.Eventually(t, func() bool { return acked.Load() >= mark+30 }, 30*time.Second, 10*time.Millisecond)
	out, err = runHearth("backup", "--data-dir", dataDir, "--to", backups, "--keep", "1")
	require.NoError(t, err, out)
	require.Contains(t, out, "0 copied, 1 linked", "the image is not copied twice")
	// The old server goes on after the backup: these seqs were served and must not come again.
	mark = acked.Load()
	require.Eventually(t, func() bool { return acked.Load() >= mark+30 }, 30*time.Second, 10*time.Millisecond)
	stopLoad()
	wg.Wait()
	old.stop()

	all, err := backup.List(backups)
	require.NoError(t, err)
	require.Len(t, all, 1, "--keep 1")
	m := all[0]
	require.EqualValues(t, 3, m.Accounts)
	require.EqualValues(t, 1, m.Blobs)
	require.Greater(t, m.Records, int64(30))
	served, err := store.InspectSnapshot(context.Background(), filepath.Join(dataDir, "pds.sqlite"))
	require.NoError(t, err)
	require.Greater(t, served.Seq, m.Seq, "the old server served seqs after the backup")
	t.Logf("backup at seq %d (%d records); the old server went on to seq %d; %d posts acknowledged", m.Seq, m.Records, served.Seq, acked.Load())

	out, err = runHearth("backup", "status", "--to", backups)
	require.NoError(t, err, out)
	require.Contains(t, out, m.Name)
	require.Contains(t, out, fmt.Sprintf(" %d ", m.Seq))

	// The old data dir is not empty: refused without --force.
	from := filepath.Join(backups, m.Name)
	out, err = runHearth("restore", "--from", from, "--data-dir", dataDir)
	require.ErrorIs(t, err, backup.ErrNotEmpty, out)

	restored := filepath.Join(t.TempDir(), "restored")
	out, err = runHearth("restore", "--from", from, "--data-dir", restored)
	require.NoError(t, err, out)
	require.Contains(t, out, "restored "+m.Name)

	srv := startServe(t, restored)
	c = srv.client
	dir := resolve.NewUncached(resolve.Config{PLCURL: srv.plc, AllowPrivate: true})
	var records int64
	for _, a := range accts {
		// Same account, same password.
		login := c.Post(t, "com.atproto.server.createSession", map[string]any{"identifier": a.Handle, "password": a.Password}, "")
		testnet.RequireOK(t, login)
		require.Equal(t, a.DID, login.Str("did"))
		a.Access = login.Str("accessJwt")
		// The repo loads (every block hashes to its CID, the MST is whole) and its
		// commit is signed by the key the DID document names.
		car := c.Get(t, "com.atproto.sync.getRepo", url.Values{"did": {a.DID}}, "")
		testnet.RequireOK(t, car)
		commit, rp, err := indigorepo.LoadRepoFromCAR(context.Background(), bytes.NewReader(car.Body))
		require.NoError(t, err, a.Handle)
		ident, err := dir.LookupDID(context.Background(), syntax.DID(a.DID))
		require.NoError(t, err)
		pub, err := ident.PublicKey()
		require.NoError(t, err)
		require.NoError(t, commit.VerifySignature(pub), a.Handle)
		latest := c.Get(t, "com.atproto.sync.getLatestCommit", url.Values{"did": {a.DID}}, "")
		testnet.RequireOK(t, latest)
		require.Equal(t, commit.Rev, latest.Str("rev"))
		require.NoError(t, rp.MST.Walk(func(k []byte, v cid.Cid) error {
			records++
			_, _, err := rp.GetRecordBytes(context.Background(), syntax.NSID(strings.Split(string(k), "/")[0]), syntax.RecordKey(strings.Split(string(k), "/")[1]))
			return err
		}))
	}
	require.Equal(t, m.Records, records, "every record of the snapshot")
	blob := c.Get(t, "com.atproto.sync.getBlob", url.Values{"did": {accts[0].DID}, "cid": {up.JSON["blob"].(map[string]any)["ref"].(map[string]any)["$link"].(string)}}, "")
	testnet.RequireOK(t, blob)
	require.Equal(t, img, blob.Body)

	// A new write on the restored server: its seq is above every seq the old server
	// served, for a consumer at the backup's seq and for a relay that saw the old
	// server's later events.
	hc := &http.Client{Timeout: 10 * time.Second}
	newCommit, err := createPost(hc, srv.base, accts[1].DID, accts[1].Access, "after the restore")
	require.NoError(t, err, srv.out.String())
	// Before it, the restore announced every repository with a #sync of its restored head
	// (relays saw the old server's later commits), and nothing else.
	for _, cursor := range []int64{m.Seq, served.Seq} {
		evs := readUntil(t, srv.base, cursor, []string{newCommit})
		require.Len(t, evs, len(accts)+1, "cursor %d: a #sync per account, then the new write", cursor)
		synced := map[string]bool{}
		for i, ev := range evs {
			require.Greater(t, ev.Seq, served.Seq, "cursor %d", cursor)
			require.GreaterOrEqual(t, ev.Seq, m.Seq+backup.MinSeqMargin)
			if i < len(accts) {
				require.Equal(t, firehose.TypeSync, ev.Type)
				synced[ev.DID()] = true
				continue
			}
			require.Equal(t, firehose.TypeCommit, ev.Type)
			require.Equal(t, accts[1].DID, ev.DID())
		}
		for _, a := range accts {
			require.True(t, synced[a.DID], "no #sync for %s", a.Handle)
		}
	}

	// One byte of the backup changed: the restore refuses it and writes nothing.
	snap := filepath.Join(from, "pds.sqlite")
	data, err := os.ReadFile(snap)
	require.NoError(t, err)
	data[len(data)/2] ^= 0x40
	require.NoError(t, os.WriteFile(snap, data, 0o600))
	elsewhere := filepath.Join(t.TempDir(), "never")
	out, err = runHearth("restore", "--from", from, "--data-dir", elsewhere)
	require.ErrorIs(t, err, backup.ErrChecksum, out)
	require.ErrorContains(t, err, "pds.sqlite")
	_, err = os.Stat(elsewhere)
	require.True(t, errors.Is(err, os.ErrNotExist), "nothing written")
}

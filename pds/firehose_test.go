package pds_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/internal/resolve"
	"github.com/hearth-social/hearth/pds"
	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"
)

// stream is a firehose subscriber reading into memory on its own goroutine.
type stream struct {
	conn *firehose.Conn
	mu   sync.Mutex
	evs  []*firehose.Event
	err  error
	done chan struct{}
}

// subscribe dials the firehose at base (an http:// URL) and collects events until the
// test ends or the stream does.
func subscribe(t *testing.T, base string, cursor *int64) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	conn, err := firehose.Dial(dctx, base, cursor)
	require.NoError(t, err)
	conn.ReadTimeout = 30 * time.Second
	s := &stream{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			ev, err := conn.Next(ctx)
			s.mu.Lock()
			if err != nil {
				s.err = err
				s.mu.Unlock()
				return
			}
			s.evs = append(s.evs, ev)
			s.mu.Unlock()
			if ev.Type == firehose.TypeError {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		conn.Close()
		<-s.done
	})
	return s
}

// waitFor polls until pred holds for the events so far (bounded), and returns them.
func (s *stream) waitFor(t *testing.T, what string, pred func([]*firehose.Event) bool) []*firehose.Event {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.mu.Lock()
		evs, err := append([]*firehose.Event(nil), s.evs...), s.err
		s.mu.Unlock()
		if pred(evs) {
			return evs
		}
		if err != nil {
			t.Fatalf("waiting for %s: stream ended after %d events: %v", what, len(evs), err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: timed out after %d events", what, len(evs))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hasCommit reports whether evs contain the #commit with this CID.
func hasCommit(commitCID string) func([]*firehose.Event) bool {
	return func(evs []*firehose.Event) bool {
		for _, ev := range evs {
			if ev.Commit != nil && cid.Cid(ev.Commit.Commit).String() == commitCID {
				return true
			}
		}
		return false
	}
}

// commitOf returns the {cid, rev} of a write response.
func commitOf(t *testing.T, r *resp) (string, string) {
	t.Helper()
	requireOK(t, r)
	c, ok := r.JSON["commit"].(map[string]any)
	require.True(t, ok, "no commit in %s", r.Body)
	return c["cid"].(string), c["rev"].(string)
}

func TestFirehoseMixedWorkload(t *testing.T) {
	e := newEnv(t)
	zero := int64(0)
	live := subscribe(t, e.http.URL, &zero)

	// acked maps every acknowledged commit CID to its rev.
	acked := map[string]string{}
	write := func(nsid string, body map[string]any, a *account) *resp {
		t.Helper()
		r := e.post(nsid, body, a.Access)
		c, rev := commitOf(t, r)
		_, dup := acked[c]
		require.False(t, dup, "commit %s acknowledged twice", c)
		acked[c] = rev
		return r
	}
	accounts := []*account{e.createAccount("alice"), e.createAccount("bob"), e.createAccount("carol")}
	var lastCommit string
	for round := 0; round < 2; round++ {
		for i, a := range accounts {
			var posts []string
			for j := 0; j < 3; j++ {
				r := write("com.atproto.repo.createRecord", map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "record": post(fmt.Sprintf("r%d p%d", round, j))}, a)
				posts = append(posts, r.Str("uri"))
			}
			rkey := func(uri string) string { return uri[strings.LastIndex(uri, "/")+1:] }
			profile := func(name string) map[string]any {
				return map[string]any{"$type": "app.bsky.actor.profile", "displayName": name}
			}
			// putRecord: a create in round 0, then updates.
			write("com.atproto.repo.putRecord", map[string]any{"repo": a.DID, "collection": "app.bsky.actor.profile", "rkey": "self", "record": profile(fmt.Sprintf("%d-a", round))}, a)
			write("com.atproto.repo.putRecord", map[string]any{"repo": a.DID, "collection": "app.bsky.actor.profile", "rkey": "self", "record": profile(fmt.Sprintf("%d-b", round))}, a)
			write("com.atproto.repo.deleteRecord", map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "rkey": rkey(posts[0])}, a)
			// A batch mixing creates, an update and a delete.
			write("com.atproto.repo.applyWrites", map[string]any{"repo": a.DID, "writes": []any{
				map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "value": post("batch")},
				map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "com.example.thing", "rkey": fmt.Sprintf("t%d", round), "value": map[string]any{"n": round}},
				map[string]any{"$type": "com.atproto.repo.applyWrites#update", "collection": "app.bsky.actor.profile", "rkey": "self", "value": profile("batched")},
				map[string]any{"$type": "com.atproto.repo.applyWrites#delete", "collection": "app.bsky.feed.post", "rkey": rkey(posts[1])},
			}}, a)
			// A batch of only deletes and updates.
			r := write("com.atproto.repo.applyWrites", map[string]any{"repo": a.DID, "writes": []any{
				map[string]any{"$type": "com.atproto.repo.applyWrites#delete", "collection": "app.bsky.feed.post", "rkey": rkey(posts[2])},
				map[string]any{"$type": "com.atproto.repo.applyWrites#delete", "collection": "com.example.thing", "rkey": fmt.Sprintf("t%d", round)},
				map[string]any{"$type": "com.atproto.repo.applyWrites#update", "collection": "app.bsky.actor.profile", "rkey": "self", "value": profile("again")},
			}}, a)
			lastCommit, _ = commitOf(t, r)
			if round == 0 && i == 1 {
				requireOK(t, e.post("com.atproto.identity.updateHandle", map[string]any{"handle": "bobby.test"}, a.Access))
			}
		}
	}

	evs := live.waitFor(t, "the last commit", hasCommit(lastCommit))
	dir := resolve.New(resolve.Config{PLCURL: e.plc.URL})
	ctx := context.Background()

	seen := map[string]int{}
	lastRev := map[string]string{}
	var prevSeq int64
	var handleUpdates int
	for _, ev := range evs {
		require.Greater(t, ev.Seq, prevSeq, "seq must strictly increase")
		require.Equal(t, prevSeq+1, ev.Seq, "no seq may be skipped")
		prevSeq = ev.Seq
		require.NoError(t, firehose.Verify(ctx, dir, ev), "seq %d %s", ev.Seq, ev.Type)
		switch {
		case ev.Commit != nil:
			c := ev.Commit
			commitCID := cid.Cid(c.Commit).String()
			seen[commitCID]++
			if prev, ok := lastRev[c.Repo]; ok {
				require.NotNil(t, c.Since, "seq %d: since missing", ev.Seq)
				require.Equal(t, prev, *c.Since, "seq %d: since must be the previous rev", ev.Seq)
				require.NotNil(t, c.PrevData, "seq %d: prevData missing", ev.Seq)
			}
			if rev, ok := acked[commitCID]; ok {
				require.Equal(t, rev, c.Rev)
				require.NotEmpty(t, c.Ops)
			}
			for _, op := range c.Ops {
				switch op.Action {
				case "create":
					require.Nil(t, op.Prev, "seq %d: create %s has prev", ev.Seq, op.Path)
					require.NotNil(t, op.Cid)
				case "update":
					require.NotNil(t, op.Prev, "seq %d: update %s needs prev", ev.Seq, op.Path)
					require.NotNil(t, op.Cid)
				case "delete":
					require.NotNil(t, op.Prev, "seq %d: delete %s needs prev", ev.Seq, op.Path)
					require.Nil(t, op.Cid)
				default:
					t.Fatalf("seq %d: unknown action %q", ev.Seq, op.Action)
				}
			}
			lastRev[c.Repo] = c.Rev
		case ev.Sync != nil:
			lastRev[ev.Sync.Did] = ev.Sync.Rev
		case ev.Identity != nil:
			if ev.Identity.Handle != nil && *ev.Identity.Handle == "bobby.test" {
				require.Equal(t, accounts[1].DID, ev.Identity.Did)
				handleUpdates++
			}
		}
	}
	require.Equal(t, 1, handleUpdates, "one #identity for the handle update")
	for c := range acked {
		require.Equal(t, 1, seen[c], "acknowledged commit %s must appear exactly once", c)
	}

	// Account creation: #identity, #account(active), the empty first #commit, #sync.
	t.Run("account creation events", func(t *testing.T) {
		for _, a := range accounts {
			var mine []*firehose.Event
			for _, ev := range evs {
				if ev.DID() == a.DID {
					mine = append(mine, ev)
				}
			}
			require.GreaterOrEqual(t, len(mine), 4)
			require.Equal(t, []string{firehose.TypeIdentity, firehose.TypeAccount, firehose.TypeCommit, firehose.TypeSync},
				[]string{mine[0].Type, mine[1].Type, mine[2].Type, mine[3].Type}, a.Handle)
			require.True(t, mine[1].Account.Active)
			require.Empty(t, mine[2].Commit.Ops)
			require.Nil(t, mine[2].Commit.PrevData)
			require.Nil(t, mine[2].Commit.Since)
			require.Equal(t, mine[2].Commit.Rev, mine[3].Sync.Rev)
		}
	})

	// A replay from cursor 0 and from the middle gives the same events as the live stream.
	t.Run("replay matches live", func(t *testing.T) {
		for _, from := range []int64{0, evs[len(evs)/2].Seq} {
			replay := subscribe(t, e.http.URL, &from)
			got := replay.waitFor(t, "the last commit", hasCommit(lastCommit))
			var want []*firehose.Event
			for _, ev := range evs {
				if ev.Seq > from {
					want = append(want, ev)
				}
			}
			require.Len(t, got, len(want), "cursor %d", from)
			for i := range want {
				require.Equal(t, want[i].Seq, got[i].Seq)
				require.Equal(t, want[i].Type, got[i].Type)
			}
		}
	})
}

func TestFirehoseStalledSubscriber(t *testing.T) {
	e := newEnv(t, func(c *pds.Config) {
		c.FirehoseWriteTimeout = 500 * time.Millisecond
		c.FirehoseMaxLag = 1000
	})
	alice := e.createAccount("alice")
	fast := subscribe(t, e.http.URL, nil)

	// The stalled subscriber connects and never reads. Its receive buffer is fixed small
	// (which turns off the kernel's receive autotuning), so the server's writes back up.
	dialer := websocket.Dialer{
		HandshakeTimeout: 10 * time.Second,
		NetDialContext: (&net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10)
			})
			return errors.Join(err, serr)
		}}).DialContext,
	}
	wsURL, err := firehose.SubscribeURL(e.http.URL, nil)
	require.NoError(t, err)
	stalled, _, err := dialer.Dial(wsURL, nil)
	require.NoError(t, err)
	defer stalled.Close()

	// Big records fill the kernel buffers of the stalled connection quickly (a few MB).
	big := strings.Repeat("x", 200<<10)
	const writes = 60
	var lastCommit string
	for i := 0; i < writes; i++ {
		r := e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "com.example.blob", "record": map[string]any{"i": i, "data": big}}, alice.Access)
		lastCommit, _ = commitOf(t, r)
	}
	got := fast.waitFor(t, "every commit", hasCommit(lastCommit))
	require.Len(t, got, writes, "the fast subscriber gets every event")
	for i := 1; i < len(got); i++ {
		require.Equal(t, got[i-1].Seq+1, got[i].Seq)
	}

	// The stalled subscriber's writes have been blocked since its buffers filled; give
	// the write timeout (500ms) ample time to fire before reading anything.
	time.Sleep(2 * time.Second)

	// Now drain the stalled connection: it holds what the kernel buffered, then the
	// server's disconnect (an error frame or a closed connection), never the full stream.
	var n int
	var endErr error
	var errFrame *firehose.ErrorFrame
	for n <= writes {
		stalled.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, msg, err := stalled.ReadMessage()
		if err != nil {
			endErr = err
			break
		}
		ev, err := firehose.Decode(msg)
		require.NoError(t, err)
		if ev.Type == firehose.TypeError {
			errFrame = ev.Error
			break
		}
		n++
	}
	require.Less(t, n, writes, "the stalled subscriber must have been cut off")
	if errFrame != nil {
		require.Equal(t, "ConsumerTooSlow", errFrame.Error)
	} else {
		var ne net.Error
		require.False(t, errors.As(endErr, &ne) && ne.Timeout(), "the server must close the stalled connection, got %v", endErr)
	}
	t.Logf("stalled subscriber received %d of %d events before being disconnected (%v)", n, writes, endErr)

	// The firehose still serves new subscribers and the fast one keeps going.
	r := e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "record": post("after")}, alice.Access)
	c, _ := commitOf(t, r)
	fast.waitFor(t, "a commit after the disconnect", hasCommit(c))
}

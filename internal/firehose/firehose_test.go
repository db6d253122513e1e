package firehose

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/bluesky-social/indigo/events"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/gorilla/websocket"
	"github.com/hearth-social/hearth/repo"
	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"
	cbg "github.com/whyrusleeping/cbor-gen"
)

func encode(t *testing.T, op int64, typ string, body cbg.CBORMarshaler) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, (&events.EventHeader{Op: op, MsgType: typ}).MarshalCBOR(&buf))
	require.NoError(t, body.MarshalCBOR(&buf))
	return buf.Bytes()
}

func TestSubscribeURL(t *testing.T) {
	for _, tc := range []struct {
		in     string
		cursor *int64
		want   string
	}{
		{"pds.example.com", nil, "wss://pds.example.com/xrpc/com.atproto.sync.subscribeRepos"},
		{"http://127.0.0.1:2583/", ptr(int64(7)), "ws://127.0.0.1:2583/xrpc/com.atproto.sync.subscribeRepos?cursor=7"},
		{"https://relay.example/xrpc/com.atproto.sync.subscribeRepos?cursor=3", ptr(int64(0)), "wss://relay.example/xrpc/com.atproto.sync.subscribeRepos?cursor=0"},
		{"ws://h/xrpc/com.atproto.sync.subscribeRepos?cursor=3", nil, "ws://h/xrpc/com.atproto.sync.subscribeRepos?cursor=3"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := SubscribeURL(tc.in, tc.cursor)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	t.Run("bad scheme", func(t *testing.T) {
		_, err := SubscribeURL("ftp://x", nil)
		require.Error(t, err)
	})
}

func TestDecode(t *testing.T) {
	handle := "alice.test"
	msg := "cursor too old"
	cases := []struct {
		name  string
		frame []byte
		check func(t *testing.T, ev *Event)
	}{
		{"commit", encode(t, events.EvtKindMessage, TypeCommit, &comatproto.SyncSubscribeRepos_Commit{Seq: 9, Repo: "did:plc:a", Rev: "3k2", Ops: []*comatproto.SyncSubscribeRepos_RepoOp{}, Blobs: []lexutil.LexLink{}, Commit: lexutil.LexLink(testCID(t)), Time: "2026-01-01T00:00:00Z"}),
			func(t *testing.T, ev *Event) {
				require.EqualValues(t, 9, ev.Seq)
				require.Equal(t, "did:plc:a", ev.DID())
			}},
		{"sync", encode(t, events.EvtKindMessage, TypeSync, &comatproto.SyncSubscribeRepos_Sync{Seq: 10, Did: "did:plc:b", Rev: "3k3", Time: "t"}),
			func(t *testing.T, ev *Event) {
				require.EqualValues(t, 10, ev.Seq)
				require.Equal(t, "3k3", ev.Sync.Rev)
			}},
		{"identity", encode(t, events.EvtKindMessage, TypeIdentity, &comatproto.SyncSubscribeRepos_Identity{Seq: 11, Did: "did:plc:c", Handle: &handle, Time: "t"}),
			func(t *testing.T, ev *Event) {
				require.EqualValues(t, 11, ev.Seq)
				require.Equal(t, handle, *ev.Identity.Handle)
			}},
		{"account", encode(t, events.EvtKindMessage, TypeAccount, &comatproto.SyncSubscribeRepos_Account{Seq: 12, Did: "did:plc:d", Active: true, Time: "t"}),
			func(t *testing.T, ev *Event) { require.EqualValues(t, 12, ev.Seq); require.True(t, ev.Account.Active) }},
		{"info", encode(t, events.EvtKindMessage, TypeInfo, &comatproto.SyncSubscribeRepos_Info{Name: "OutdatedCursor", Message: &msg}),
			func(t *testing.T, ev *Event) { require.Equal(t, "OutdatedCursor", ev.Info.Name) }},
		{"error", encode(t, events.EvtKindErrorFrame, "", &events.ErrorFrame{Error: "FutureCursor", Message: "no"}),
			func(t *testing.T, ev *Event) {
				require.Equal(t, TypeError, ev.Type)
				require.Equal(t, ErrorFrame{Error: "FutureCursor", Message: "no"}, *ev.Error)
			}},
		{"unknown type is skipped", encode(t, events.EvtKindMessage, "#labels", &comatproto.SyncSubscribeRepos_Info{Name: "x"}),
			func(t *testing.T, ev *Event) {
				require.Equal(t, "#labels", ev.Type)
				require.Nil(t, ev.Info)
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := Decode(tc.frame)
			require.NoError(t, err)
			tc.check(t, ev)
		})
	}
	t.Run("garbage", func(t *testing.T) {
		_, err := Decode([]byte{0xff, 0x00})
		require.Error(t, err)
	})
}

// server upgrades and hands the connection to fn.
func server(t *testing.T, fn func(ws *websocket.Conn, r *http.Request)) string {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		fn(ws, r)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(func() { close(done); srv.Close() })
	return srv.URL
}

func TestConn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("frames then close", func(t *testing.T) {
		frames := [][]byte{
			encode(t, events.EvtKindMessage, TypeIdentity, &comatproto.SyncSubscribeRepos_Identity{Seq: 4, Did: "did:plc:c", Time: "t"}),
			encode(t, events.EvtKindErrorFrame, "", &events.ErrorFrame{Error: "ConsumerTooSlow"}),
		}
		gotCursor := make(chan string, 1)
		url := server(t, func(ws *websocket.Conn, r *http.Request) {
			gotCursor <- r.URL.Query().Get("cursor")
			ws.WriteMessage(websocket.TextMessage, []byte("ignored"))
			for _, f := range frames {
				ws.WriteMessage(websocket.BinaryMessage, f)
			}
			ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, ""), time.Now().Add(time.Second))
		})
		c, err := Dial(ctx, url, ptr(int64(3)))
		require.NoError(t, err)
		defer c.Close()
		ev, err := c.Next(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 4, ev.Seq)
		require.Equal(t, "3", <-gotCursor)
		ev, err = c.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, "ConsumerTooSlow", ev.Error.Error)
		_, err = c.Next(ctx)
		require.True(t, websocket.IsCloseError(err, websocket.ClosePolicyViolation), "got %v", err)
	})

	// Next reads every frame into one reused buffer: what it returned before must not
	// change when the next frame, larger or smaller, is read (nor after a frame too large
	// to keep the buffer for).
	t.Run("frames of different sizes", func(t *testing.T) {
		commitLink := lexutil.LexLink(cid.MustParse("bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"))
		blocks := [][]byte{bytes.Repeat([]byte{'a'}, 3000), bytes.Repeat([]byte{'b'}, 10), bytes.Repeat([]byte{'c'}, 2<<20), bytes.Repeat([]byte{'d'}, 500)}
		url := server(t, func(ws *websocket.Conn, _ *http.Request) {
			for i, b := range blocks {
				ws.WriteMessage(websocket.BinaryMessage, encode(t, events.EvtKindMessage, TypeCommit,
					&comatproto.SyncSubscribeRepos_Commit{Seq: int64(i + 1), Repo: fmt.Sprintf("did:plc:r%d", i), Blocks: b, Commit: commitLink, Ops: []*comatproto.SyncSubscribeRepos_RepoOp{}, Blobs: []lexutil.LexLink{}}))
			}
		})
		c, err := Dial(ctx, url, nil)
		require.NoError(t, err)
		defer c.Close()
		var got []*Event
		for range blocks {
			ev, err := c.Next(ctx)
			require.NoError(t, err)
			got = append(got, ev)
		}
		for i, ev := range got {
			require.EqualValues(t, i+1, ev.Seq)
			require.Equal(t, fmt.Sprintf("did:plc:r%d", i), ev.Commit.Repo)
			require.Equal(t, blocks[i], []byte(ev.Commit.Blocks))
		}
	})

	t.Run("context bounds Next", func(t *testing.T) {
		url := server(t, func(*websocket.Conn, *http.Request) {})
		c, err := Dial(ctx, url, nil)
		require.NoError(t, err)
		defer c.Close()
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		began := time.Now()
		_, err = c.Next(short)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Less(t, time.Since(began), 5*time.Second)
	})

	t.Run("message size is bounded", func(t *testing.T) {
		url := server(t, func(ws *websocket.Conn, _ *http.Request) {
			ws.WriteMessage(websocket.BinaryMessage, make([]byte, MaxMessageSize+1))
		})
		c, err := Dial(ctx, url, nil)
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Next(ctx)
		require.ErrorIs(t, err, websocket.ErrReadLimit)
	})

	t.Run("refused upgrade", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(ErrorFrame{Error: "InvalidRequest", Message: "bad cursor"})
		}))
		defer srv.Close()
		_, err := Dial(ctx, srv.URL, nil)
		require.ErrorContains(t, err, "HTTP 400 InvalidRequest: bad cursor")
	})
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	key, err := atcrypto.GeneratePrivateKeyK256()
	require.NoError(t, err)
	did := syntax.DID("did:plc:abcdefghijklmnopqrstuvwx")
	pub, err := key.PublicKey()
	require.NoError(t, err)
	dir := identity.NewMockDirectory()
	dir.Insert(identity.Identity{DID: did, Handle: "alice.test", Keys: map[string]identity.VerificationMethod{
		"atproto": {Type: "Multikey", PublicKeyMultibase: pub.Multibase()},
	}})

	src := repo.MapSource{}
	genesis, err := repo.Apply(ctx, repo.Input{DID: did, Source: src, Key: key})
	require.NoError(t, err)
	for _, b := range genesis.Blocks {
		src[b.CID] = b.Data
	}
	rec, err := atdata.MarshalCBOR(map[string]any{"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2026-01-01T00:00:00Z"})
	require.NoError(t, err)
	res, err := repo.Apply(ctx, repo.Input{
		DID: did, Head: repo.Head{Commit: genesis.CommitCID, Rev: genesis.Rev, Data: genesis.Data}, Tree: genesis.Tree, Source: src,
		Writes: []repo.Write{{Action: repo.ActionCreate, Collection: "app.bsky.feed.post", RKey: "3kabcdefghij2", Record: rec}}, Key: key,
	})
	require.NoError(t, err)
	commitEvent := func(t *testing.T) *Event {
		c, err := res.CommitEvent(did, nil, time.Now())
		require.NoError(t, err)
		c.Seq = 5
		return &Event{Seq: 5, Type: TypeCommit, Commit: c}
	}

	t.Run("valid commit", func(t *testing.T) {
		ev := commitEvent(t)
		require.NoError(t, Verify(ctx, dir, ev))
		line := FormatLine(ev, false)
		require.Equal(t, "5 #commit "+did.String()+" rev="+res.Rev+" create app.bsky.feed.post/3kabcdefghij2", line)
		var js map[string]any
		require.NoError(t, json.Unmarshal([]byte(FormatLine(ev, true)), &js))
		require.Equal(t, "create", js["ops"].([]any)[0].(map[string]any)["action"])
	})
	t.Run("wrong key", func(t *testing.T) {
		other, err := atcrypto.GeneratePrivateKeyK256()
		require.NoError(t, err)
		opub, err := other.PublicKey()
		require.NoError(t, err)
		dir2 := identity.NewMockDirectory()
		dir2.Insert(identity.Identity{DID: did, Handle: "alice.test", Keys: map[string]identity.VerificationMethod{
			"atproto": {Type: "Multikey", PublicKeyMultibase: opub.Multibase()},
		}})
		require.ErrorIs(t, Verify(ctx, dir2, commitEvent(t)), ErrInvalidEvent)
	})
	t.Run("commit CID is not the CAR root", func(t *testing.T) {
		ev := commitEvent(t)
		ev.Commit.Commit = lexutil.LexLink(genesis.CommitCID)
		require.ErrorIs(t, Verify(ctx, dir, ev), ErrInvalidEvent)
	})
	t.Run("op does not match the tree", func(t *testing.T) {
		ev := commitEvent(t)
		ev.Commit.Ops[0].Cid = ptr(lexutil.LexLink(genesis.CommitCID))
		require.ErrorIs(t, Verify(ctx, dir, ev), ErrInvalidEvent)
	})
	t.Run("sync", func(t *testing.T) {
		car, err := repo.CAR(res.CommitCID, res.Blocks[len(res.Blocks)-1:])
		require.NoError(t, err)
		ev := &Event{Seq: 6, Type: TypeSync, Sync: &comatproto.SyncSubscribeRepos_Sync{Seq: 6, Did: did.String(), Rev: res.Rev, Blocks: car, Time: "t"}}
		require.NoError(t, Verify(ctx, dir, ev))
		ev.Sync.Rev = genesis.Rev
		require.ErrorIs(t, Verify(ctx, dir, ev), ErrInvalidEvent)
	})
}

func TestFormatLine(t *testing.T) {
	handle, status := "alice.test", "takendown"
	for _, tc := range []struct {
		ev   *Event
		text string
	}{
		{&Event{Seq: 3, Type: TypeIdentity, Identity: &comatproto.SyncSubscribeRepos_Identity{Seq: 3, Did: "did:plc:x", Handle: &handle}}, "3 #identity did:plc:x handle=alice.test"},
		{&Event{Seq: 4, Type: TypeAccount, Account: &comatproto.SyncSubscribeRepos_Account{Seq: 4, Did: "did:plc:x", Status: &status}}, "4 #account did:plc:x active=false status=takendown"},
		{&Event{Type: TypeInfo, Info: &comatproto.SyncSubscribeRepos_Info{Name: "OutdatedCursor"}}, "#info OutdatedCursor"},
		{&Event{Type: TypeError, Error: &ErrorFrame{Error: "FutureCursor", Message: "ahead"}}, `error FutureCursor "ahead"`},
	} {
		t.Run(tc.text, func(t *testing.T) {
			require.Equal(t, tc.text, FormatLine(tc.ev, false))
			line := FormatLine(tc.ev, true)
			require.False(t, strings.Contains(line, "\n"))
			var js map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &js))
			require.Equal(t, tc.ev.Type, js["type"])
		})
	}
}

func ptr[T any](v T) *T { return &v }

func testCID(t *testing.T) cid.Cid {
	c, err := repo.RecordCID([]byte{0xa0})
	require.NoError(t, err)
	return c
}

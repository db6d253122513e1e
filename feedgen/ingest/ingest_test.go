package ingest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/events"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/gorilla/websocket"
	"github.com/hearth-social/hearth/feedgen/index"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/repo"
	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func openIndex(t testing.TB) *index.Index {
	t.Helper()
	ix, err := index.Open(context.Background(), filepath.Join(t.TempDir(), "feed.sqlite"), index.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { ix.Close() })
	return ix
}

func testCID(t *testing.T, s string) lexutil.LexLink {
	c, err := repo.RecordCID([]byte(s))
	require.NoError(t, err)
	return lexutil.LexLink(c)
}

func TestDecodeRecord(t *testing.T) {
	img := testCID(t, "img")
	img2 := testCID(t, "img2")
	parent := "at://did:plc:abc/app.bsky.feed.post/3kparent"
	post := &bsky.FeedPost{
		LexiconTypeID: index.CollectionPost,
		Text:          "sunset #photo",
		CreatedAt:     "2026-02-03T04:05:06.789Z",
		Langs:         []string{"en", "not a language!"},
		Tags:          []string{"film", "photo"},
		Facets: []*bsky.RichtextFacet{{Features: []*bsky.RichtextFacet_Features_Elem{
			{RichtextFacet_Tag: &bsky.RichtextFacet_Tag{Tag: "photo"}},
		}}},
		Labels: &bsky.FeedPost_Labels{LabelDefs_SelfLabels: &comatproto.LabelDefs_SelfLabels{Values: []*comatproto.LabelDefs_SelfLabel{{Val: "ai-generated"}}}},
		Reply:  &bsky.FeedPost_ReplyRef{Root: &comatproto.RepoStrongRef{Uri: parent, Cid: "x"}, Parent: &comatproto.RepoStrongRef{Uri: parent, Cid: "x"}},
		Embed: &bsky.FeedPost_Embed{EmbedRecordWithMedia: &bsky.EmbedRecordWithMedia{
			Record: &bsky.EmbedRecord{Record: &comatproto.RepoStrongRef{Uri: parent, Cid: "x"}},
			Media: &bsky.EmbedRecordWithMedia_Media{EmbedImages: &bsky.EmbedImages{Images: []*bsky.EmbedImages_Image{
				{Alt: "a", Image: &lexutil.LexBlob{Ref: img, MimeType: "image/png", Size: 10}},
				{Alt: "b", Image: &lexutil.LexBlob{Ref: img2, MimeType: "image/jpeg", Size: 20}},
			}}},
		}},
	}
	got, err := DecodeRecord(index.CollectionPost, cborOf(t, post))
	require.NoError(t, err)
	require.Equal(t, &index.Post{
		Text: "sunset #photo", CreatedAt: "2026-02-03T04:05:06.789Z", Langs: []string{"en"}, Tags: []string{"photo", "film"},
		Labels: []string{"ai-generated"}, ReplyRoot: parent, ReplyParent: parent,
		Images: []index.Image{{CID: img.String(), MIME: "image/png", Alt: "a"}, {CID: img2.String(), MIME: "image/jpeg", Alt: "b"}},
	}, got)

	like, err := DecodeRecord(index.CollectionLike, cborOf(t, likeRec(parent, "bafyx")))
	require.NoError(t, err)
	require.Equal(t, &index.Like{Subject: parent, SubjectCID: "bafyx", CreatedAt: "2026-01-01T00:00:00.000Z"}, like)

	repost, err := DecodeRecord(index.CollectionRepost, cborOf(t, &bsky.FeedRepost{LexiconTypeID: index.CollectionRepost, Subject: &comatproto.RepoStrongRef{Uri: "not-a-uri", Cid: "c"}, CreatedAt: "garbage"}))
	require.NoError(t, err)
	require.Equal(t, &index.Repost{}, repost, "bad subject and date are dropped")

	_, err = DecodeRecord(index.CollectionFollow, cborOf(t, &bsky.GraphFollow{LexiconTypeID: index.CollectionFollow, Subject: "alice.test", CreatedAt: "2026-01-01T00:00:00Z"}))
	require.ErrorIs(t, err, ErrBadRecord)

	name := "Bot Bob"
	prof, err := DecodeRecord(index.CollectionProfile, cborOf(t, &bsky.ActorProfile{LexiconTypeID: index.CollectionProfile, DisplayName: &name,
		Avatar: &lexutil.LexBlob{Ref: img, MimeType: "image/png"},
		Labels: &bsky.ActorProfile_Labels{LabelDefs_SelfLabels: &comatproto.LabelDefs_SelfLabels{Values: []*comatproto.LabelDefs_SelfLabel{{Val: "bot"}}}}}))
	require.NoError(t, err)
	require.Equal(t, &index.Profile{DisplayName: name, Avatar: img.String(), Labels: []string{"bot"}}, prof)

	unknown, err := DecodeRecord("app.bsky.graph.block", []byte{0xa0})
	require.NoError(t, err)
	require.Nil(t, unknown)
	_, err = DecodeRecord(index.CollectionPost, []byte{0xff, 0x01})
	require.ErrorIs(t, err, ErrBadRecord)
}

// fixture is two honest accounts, one forger, and the frames of a small conversation.
type fixture struct {
	alice, bob, mallory *testRepo
	dir                 *identity.MockDirectory
	frames              [][]byte
	p1                  string
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{alice: newTestRepo(t, "alice", nil), bob: newTestRepo(t, "bob", nil), mallory: newTestRepo(t, "mallory", nil)}
	f.dir = identity.NewMockDirectory()
	f.dir.Insert(f.alice.identity(t))
	f.dir.Insert(f.bob.identity(t))
	// mallory signs with a key that is not the one in her DID document.
	honest := f.mallory.identity(t)
	other, err := atcrypto.GeneratePrivateKeyK256()
	require.NoError(t, err)
	f.mallory.key = other
	f.dir.Insert(honest)

	seq := int64(0)
	add := func(b []byte) { f.frames = append(f.frames, b) }
	next := func() int64 { seq++; return seq }
	handle := "bob.test"
	add(frame(t, firehose.TypeIdentity, &comatproto.SyncSubscribeRepos_Identity{Seq: next(), Did: f.bob.did.String(), Handle: &handle, Time: "2026-01-01T00:00:00Z"}))
	add(commitFrame(t, next(), f.alice.commit(t, create(t, index.CollectionPost, "3kp1", postRec("hello")))))
	f.p1 = uriOf(f.alice.did, index.CollectionPost, "3kp1")
	add(commitFrame(t, next(), f.bob.commit(t,
		create(t, index.CollectionLike, "3kl1", likeRec(f.p1, "c")),
		create(t, index.CollectionFollow, "3kf1", followRec(f.alice.did)))))
	add(commitFrame(t, next(), f.mallory.commit(t, create(t, index.CollectionPost, "3kforged", postRec("forged")))))
	add(commitFrame(t, next(), f.bob.commit(t, create(t, "app.bsky.graph.block", "3kb1", followRec(f.alice.did)))))
	add(frame(t, firehose.TypeInfo, &comatproto.SyncSubscribeRepos_Info{Name: "OutdatedCursor"}))
	add(commitFrame(t, next(), f.bob.commit(t, create(t, index.CollectionPost, "3kp2", postRec("second")))))
	return f
}

func TestConsume(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	ix := openIndex(t)
	in, err := New(Config{FirehoseURL: "ws://127.0.0.1:1"}, ix, f.dir, quiet)
	require.NoError(t, err)
	requireEOF(t, in.Consume(ctx, &sliceSource{frames: f.frames}))
	require.EqualValues(t, 1, in.Invalid(), "the forged commit is rejected")

	check := func() {
		t.Helper()
		p, err := ix.Post(ctx, f.p1)
		require.NoError(t, err)
		require.EqualValues(t, 1, p.LikeCount)
		_, err = ix.Post(ctx, uriOf(f.mallory.did, index.CollectionPost, "3kforged"))
		require.ErrorIs(t, err, index.ErrNotFound)
		c, err := ix.Count(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 2, c.Posts)
		require.EqualValues(t, 1, c.Follows)
		cur, ok, err := ix.Cursor(ctx, in.Service())
		require.NoError(t, err)
		require.True(t, ok)
		require.EqualValues(t, 6, cur)
		a, err := ix.Account(ctx, f.bob.did.String())
		require.NoError(t, err)
		require.Equal(t, "bob.test", a.Handle)
	}
	check()
	// The same frames again (a reconnect from an older cursor) change nothing.
	requireEOF(t, in.Consume(ctx, &sliceSource{frames: f.frames}))
	check()
}

func TestConsumeStopsAtErrorFrame(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	ix := openIndex(t)
	in, err := New(Config{FirehoseURL: "ws://127.0.0.1:1", Workers: 3, MaxBatch: 2}, ix, f.dir, quiet)
	require.NoError(t, err)
	frames := append(f.frames[:3:3], frame(t, firehose.TypeError, &events.ErrorFrame{Error: "ConsumerTooSlow"}))
	frames = append(frames, f.frames[3:]...)
	err = in.Consume(ctx, &sliceSource{frames: frames})
	var se *StreamError
	require.ErrorAs(t, err, &se)
	require.Equal(t, "ConsumerTooSlow", se.Name)
	cur, _, err := ix.Cursor(ctx, in.Service())
	require.NoError(t, err)
	require.EqualValues(t, 3, cur, "events before the error frame are written")
}

func TestSkipVerify(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	ix := openIndex(t)
	in, err := New(Config{FirehoseURL: "ws://127.0.0.1:1", SkipVerify: true}, ix, identity.NewMockDirectory(), quiet)
	require.NoError(t, err)

	// A commit whose CAR was altered fails even without signature checks: go-car checks
	// every block against its CID.
	c := f.alice.commit(t, create(t, index.CollectionPost, "3kp9", postRec("tamper with me")))
	c.Blocks = append([]byte(nil), c.Blocks...)
	i := len(c.Blocks) - 5
	c.Blocks[i] ^= 0xff
	requireEOF(t, in.Consume(ctx, &sliceSource{frames: append(f.frames, commitFrame(t, 99, c))}))
	require.EqualValues(t, 1, in.Invalid())
	c2, err := ix.Count(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, c2.Posts, "without verification the forged post is indexed")
}

func TestRunReconnectsAndResumes(t *testing.T) {
	f := newFixture(t)
	ix := openIndex(t)
	var mu sync.Mutex
	var cursors []string
	conns := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		mu.Lock()
		cursors = append(cursors, r.URL.Query().Get("cursor"))
		conns++
		first := conns == 1
		mu.Unlock()
		after, _ := strconv.ParseInt(r.URL.Query().Get("cursor"), 10, 64)
		sent := 0
		for _, fr := range f.frames {
			ev, err := firehose.Decode(fr)
			require.NoError(t, err)
			if ev.Seq != 0 && ev.Seq <= after {
				continue
			}
			ws.WriteMessage(websocket.BinaryMessage, fr)
			sent++
			if first && sent == 3 {
				return // drop the connection mid-stream
			}
		}
		// Stay open like a quiet firehose until the client goes away.
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		ws.ReadMessage()
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	in, err := New(Config{FirehoseURL: srv.URL, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}, ix, f.dir, quiet)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	require.Eventually(t, func() bool {
		cur, _, err := ix.Cursor(ctx, in.Service())
		return err == nil && cur == 6
	}, 15*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(cursors), 2)
	require.Equal(t, "", cursors[0], "the first connection starts live")
	require.Equal(t, "3", cursors[1], "the second resumes after the last event written")
	p, err := ix.Post(context.Background(), f.p1)
	require.NoError(t, err)
	require.EqualValues(t, 1, p.LikeCount)
}

// carOf exports a test repo's current state as getRepo would.
func carOf(t *testing.T, r *testRepo) []byte {
	var blocks []repo.Block
	for c, data := range r.src {
		blocks = append(blocks, repo.Block{CID: c, Data: data})
	}
	b, err := repo.CAR(r.head.Commit, blocks)
	require.NoError(t, err)
	return b
}

func TestBackfill(t *testing.T) {
	f := newFixture(t)
	ix := openIndex(t)
	// The fixture's repositories were built before the feed generator existed.
	inactive := newTestRepo(t, "gone", nil)
	f.dir.Insert(inactive.identity(t))
	inactive.commit(t, create(t, index.CollectionPost, "3kgone", postRec("hidden")))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /xrpc/com.atproto.sync.listRepos", func(w http.ResponseWriter, r *http.Request) {
		active, inactiveFlag, status := true, false, "takendown"
		out := comatproto.SyncListRepos_Output{Repos: []*comatproto.SyncListRepos_Repo{
			{Did: f.alice.did.String(), Head: f.alice.head.Commit.String(), Rev: f.alice.head.Rev, Active: &active},
			{Did: f.bob.did.String(), Head: f.bob.head.Commit.String(), Rev: f.bob.head.Rev, Active: &active},
			{Did: inactive.did.String(), Head: inactive.head.Commit.String(), Rev: inactive.head.Rev, Active: &inactiveFlag, Status: &status},
		}}
		json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("GET /xrpc/com.atproto.sync.getRepo", func(w http.ResponseWriter, r *http.Request) {
		for _, tr := range []*testRepo{f.alice, f.bob} {
			if tr.did.String() == r.URL.Query().Get("did") {
				w.Header().Set("Content-Type", "application/vnd.ipld.car")
				w.Write(carOf(t, tr))
				return
			}
		}
		http.Error(w, `{"error":"RepoNotFound"}`, http.StatusBadRequest)
	})
	pds := httptest.NewServer(mux)
	defer pds.Close()

	in, err := New(Config{FirehoseURL: "ws://127.0.0.1:1", BackfillURL: pds.URL}, ix, f.dir, quiet)
	require.NoError(t, err)
	ctx := context.Background()
	need, err := in.needsBackfill(ctx)
	require.NoError(t, err)
	require.True(t, need)
	require.NoError(t, in.Backfill(ctx))
	need, err = in.needsBackfill(ctx)
	require.NoError(t, err)
	require.False(t, need)

	p, err := ix.Post(ctx, f.p1)
	require.NoError(t, err)
	require.EqualValues(t, 1, p.LikeCount)
	c, err := ix.Count(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, c.Posts)
	require.EqualValues(t, 1, c.Follows)
	a, err := ix.Account(ctx, inactive.did.String())
	require.NoError(t, err)
	require.Equal(t, "takendown", a.Status)
	_, ok, err := ix.Cursor(ctx, in.Service())
	require.NoError(t, err)
	require.False(t, ok, "a backfill does not invent a firehose cursor")

	// The live stream then replays the same commits: nothing is counted twice.
	requireEOF(t, in.Consume(ctx, &sliceSource{frames: f.frames}))
	p, err = ix.Post(ctx, f.p1)
	require.NoError(t, err)
	require.EqualValues(t, 1, p.LikeCount)
}

func TestCARHelpers(t *testing.T) {
	r := newTestRepo(t, "car", nil)
	c := r.commit(t, create(t, index.CollectionPost, "3kx", postRec("x")))
	root, err := carRoot(c.Blocks)
	require.NoError(t, err)
	require.Equal(t, cid.Cid(c.Commit), root)
	root2, blocks, err := readCAR(c.Blocks)
	require.NoError(t, err)
	require.Equal(t, root, root2)
	require.Contains(t, blocks, root)
	_, err = carRoot([]byte{0x01})
	require.Error(t, err)
}

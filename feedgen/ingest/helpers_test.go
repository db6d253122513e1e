package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/bluesky-social/indigo/events"
	"github.com/hearth-social/hearth/feedgen/index"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/repo"
	cbg "github.com/whyrusleeping/cbor-gen"
)

// testRepo is a signed repository that produces real #commit events with repo.Apply.
type testRepo struct {
	did  syntax.DID
	key  atcrypto.PrivateKey
	src  repo.MapSource
	head repo.Head
	tree *mst.Tree
	now  time.Time
}

// testDID derives a did:plc-shaped DID from a name.
func testDID(name string) syntax.DID {
	sum := sha256.Sum256([]byte(name))
	return syntax.DID("did:plc:" + strings.ToLower(base32.StdEncoding.EncodeToString(sum[:]))[:24])
}

func newTestRepo(tb testing.TB, name string, key atcrypto.PrivateKey) *testRepo {
	tb.Helper()
	if key == nil {
		k, err := atcrypto.GeneratePrivateKeyK256()
		if err != nil {
			tb.Fatal(err)
		}
		key = k
	}
	r := &testRepo{did: testDID(name), key: key, src: repo.MapSource{}, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r.commit(tb) // the empty genesis commit, as a PDS makes when it creates the account
	return r
}

// identity returns the identity a directory should hold for the repo.
func (r *testRepo) identity(tb testing.TB) identity.Identity {
	pub, err := r.key.PublicKey()
	if err != nil {
		tb.Fatal(err)
	}
	return identity.Identity{DID: r.did, Handle: syntax.HandleInvalid, Keys: map[string]identity.VerificationMethod{
		"atproto": {Type: "Multikey", PublicKeyMultibase: pub.Multibase()},
	}}
}

// commit applies writes and returns the #commit event (seq unset).
func (r *testRepo) commit(tb testing.TB, writes ...repo.Write) *comatproto.SyncSubscribeRepos_Commit {
	tb.Helper()
	r.now = r.now.Add(time.Millisecond)
	res, err := repo.Apply(context.Background(), repo.Input{DID: r.did, Head: r.head, Tree: r.tree, Source: r.src, Writes: writes, Key: r.key, Now: r.now})
	if err != nil {
		tb.Fatal(err)
	}
	for _, b := range res.Blocks {
		r.src[b.CID] = b.Data
	}
	r.head = repo.Head{Commit: res.CommitCID, Rev: res.Rev, Data: res.Data}
	r.tree = res.Tree
	ev, err := res.CommitEvent(r.did, nil, r.now)
	if err != nil {
		tb.Fatal(err)
	}
	return ev
}

func cborOf(tb testing.TB, v cbg.CBORMarshaler) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := v.MarshalCBOR(&buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func create(tb testing.TB, collection, rkey string, rec cbg.CBORMarshaler) repo.Write {
	return repo.Write{Action: repo.ActionCreate, Collection: syntax.NSID(collection), RKey: syntax.RecordKey(rkey), Record: cborOf(tb, rec)}
}

func del(collection, rkey string) repo.Write {
	return repo.Write{Action: repo.ActionDelete, Collection: syntax.NSID(collection), RKey: syntax.RecordKey(rkey)}
}

func postRec(text string) *bsky.FeedPost {
	return &bsky.FeedPost{LexiconTypeID: index.CollectionPost, Text: text, CreatedAt: "2026-01-01T00:00:00.000Z"}
}

func likeRec(uri, cid string) *bsky.FeedLike {
	return &bsky.FeedLike{LexiconTypeID: index.CollectionLike, Subject: &comatproto.RepoStrongRef{Uri: uri, Cid: cid}, CreatedAt: "2026-01-01T00:00:00.000Z"}
}

func followRec(subject syntax.DID) *bsky.GraphFollow {
	return &bsky.GraphFollow{LexiconTypeID: index.CollectionFollow, Subject: subject.String(), CreatedAt: "2026-01-01T00:00:00.000Z"}
}

// frame encodes an event body as a firehose websocket message.
func frame(tb testing.TB, typ string, body cbg.CBORMarshaler) []byte {
	tb.Helper()
	var buf bytes.Buffer
	op := int64(events.EvtKindMessage)
	if typ == firehose.TypeError {
		op, typ = events.EvtKindErrorFrame, ""
	}
	if err := (&events.EventHeader{Op: op, MsgType: typ}).MarshalCBOR(&buf); err != nil {
		tb.Fatal(err)
	}
	if err := body.MarshalCBOR(&buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func commitFrame(tb testing.TB, seq int64, c *comatproto.SyncSubscribeRepos_Commit) []byte {
	c.Seq = seq
	return frame(tb, firehose.TypeCommit, c)
}

// sliceSource replays encoded frames, then returns io.EOF (or err when set).
type sliceSource struct {
	mu     sync.Mutex
	frames [][]byte
	i      int
	err    error
}

func (s *sliceSource) Next(ctx context.Context) (*firehose.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.i >= len(s.frames) {
		if s.err != nil {
			return nil, s.err
		}
		return nil, io.EOF
	}
	f := s.frames[s.i]
	s.i++
	return firehose.Decode(f)
}

func requireEOF(tb testing.TB, err error) {
	tb.Helper()
	if !errors.Is(err, io.EOF) {
		tb.Fatalf("want io.EOF, got %v", err)
	}
}

func uriOf(did syntax.DID, collection, rkey string) string {
	return fmt.Sprintf("at://%s/%s/%s", did, collection, rkey)
}

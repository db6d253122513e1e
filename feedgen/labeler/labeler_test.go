package labeler_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/labeling"
	"github.com/gorilla/websocket"
	"github.com/hearth-social/hearth/feedgen/labeler"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testDID = "did:web:labels.example.com"
	cid1    = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
	cid2    = "bafyreigvcqjdgdyfwkexk4w7cu6vnsbvtm7ot4w4vgaqrnrjrptjh7vtfy"
)

func openLabeler(t *testing.T, path string, mod func(*labeler.Config)) *labeler.Labeler {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "labels.sqlite")
	}
	cfg := labeler.Config{Path: path, DID: testDID, Synchronous: "NORMAL"}
	if mod != nil {
		mod(&cfg)
	}
	l, err := labeler.Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l
}

func post(n string) string { return "at://did:plc:alice/app.bsky.feed.post/" + n }

// summary renders labels compactly: "val", "-val" for negations, "@cid" suffix.
func summary(ls []labeling.Label) []string {
	var out []string
	for _, l := range ls {
		s := l.Val
		if l.Negated != nil && *l.Negated {
			s = "-" + s
		}
		if l.CID != nil {
			s += "@" + (*l.CID)[len(*l.CID)-4:]
		}
		out = append(out, s)
	}
	return out
}

func TestApply(t *testing.T) {
	ctx := context.Background()
	l := openLabeler(t, "", nil)
	uri := post("3kaaa")

	t.Run("new values emit signed labels", func(t *testing.T) {
		out, err := l.Apply(ctx, uri, cid1, []string{"ai-generated", "ai-assisted", "ai-generated"})
		require.NoError(t, err)
		assert.Equal(t, []string{"ai-assisted@3hpm", "ai-generated@3hpm"}, summary(out))
		for _, lab := range out {
			assert.Equal(t, testDID, lab.SourceDID)
			assert.Equal(t, int64(1), lab.Version)
			require.NoError(t, lab.VerifySyntax())
			require.NoError(t, lab.VerifySignature(l.PublicKey()))
		}
	})
	t.Run("unchanged set emits nothing", func(t *testing.T) {
		out, err := l.Apply(ctx, uri, cid1, []string{"ai-assisted", "ai-generated"})
		require.NoError(t, err)
		assert.Empty(t, out)
	})
	t.Run("value gone is negated", func(t *testing.T) {
		before, err := l.LastSeq(ctx)
		require.NoError(t, err)
		out, err := l.Apply(ctx, uri, cid1, []string{"ai-generated"})
		require.NoError(t, err)
		assert.Equal(t, []string{"-ai-assisted@3hpm"}, summary(out))
		require.NoError(t, out[0].VerifySignature(l.PublicKey()))
		after, err := l.LastSeq(ctx)
		require.NoError(t, err)
		assert.Equal(t, before+1, after)
		cur, err := l.Current(ctx, uri)
		require.NoError(t, err)
		assert.Equal(t, []string{"ai-generated@3hpm"}, summary(cur))

		out, err = l.Apply(ctx, uri, cid1, []string{"ai-generated"})
		require.NoError(t, err)
		assert.Empty(t, out, "negation is idempotent too")
	})
	t.Run("edited post relabels the new version", func(t *testing.T) {
		out, err := l.Apply(ctx, uri, cid2, []string{"ai-generated"})
		require.NoError(t, err)
		assert.Equal(t, []string{"ai-generated@vtfy"}, summary(out))
	})
	t.Run("deleted post negates everything", func(t *testing.T) {
		out, err := l.Apply(ctx, uri, "", nil)
		require.NoError(t, err)
		assert.Equal(t, []string{"-ai-generated@vtfy"}, summary(out))
		cur, err := l.Current(ctx, uri)
		require.NoError(t, err)
		assert.Empty(t, cur)
		out, err = l.Apply(ctx, uri, "", nil)
		require.NoError(t, err)
		assert.Empty(t, out)
	})
	t.Run("relabel after negation", func(t *testing.T) {
		out, err := l.Apply(ctx, uri, cid2, []string{"ai-assisted"})
		require.NoError(t, err)
		assert.Equal(t, []string{"ai-assisted@vtfy"}, summary(out))
	})
	t.Run("account subject", func(t *testing.T) {
		out, err := l.Apply(ctx, "did:plc:alice", "", []string{"ai-generated"})
		require.NoError(t, err)
		assert.Equal(t, []string{"ai-generated"}, summary(out))
	})
	t.Run("invalid input", func(t *testing.T) {
		for _, tc := range []struct{ uri, cid, val string }{
			{"https://example.com/x", "", "ai-generated"},
			{uri, "not-a-cid", "ai-generated"},
			{uri, cid1, "AI Generated"},
			{uri, cid1, ""},
			{uri, cid1, strings.Repeat("a", 129)},
			{"did:plc:alice", cid1, "ai-generated"},
		} {
			_, err := l.Apply(ctx, tc.uri, tc.cid, []string{tc.val})
			assert.Error(t, err, "%+v", tc)
		}
	})
}

func TestKeyPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "labels.sqlite")
	l1, err := labeler.Open(context.Background(), labeler.Config{Path: path, DID: testDID})
	require.NoError(t, err)
	key := l1.DIDKey()
	require.True(t, strings.HasPrefix(key, "did:key:zQ3s"), key) // secp256k1
	require.NoError(t, l1.Close())
	l2 := openLabeler(t, path, nil)
	assert.Equal(t, key, l2.DIDKey())
}

type queryOut struct {
	Cursor *string           `json:"cursor"`
	Labels []json.RawMessage `json:"labels"`
}

func query(t *testing.T, base string, params url.Values) (int, queryOut, string) {
	t.Helper()
	resp, err := http.Get(base + labeler.PathQueryLabels + "?" + params.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out queryOut
	if resp.StatusCode == http.StatusOK {
		require.NoError(t, json.Unmarshal(body, &out), string(body))
	}
	return resp.StatusCode, out, string(body)
}

// uris decodes the returned labels, verifies each, and lists "uri val".
func uris(t *testing.T, pub atcrypto.PublicKey, raw []json.RawMessage) []string {
	t.Helper()
	out := []string{}
	for _, r := range raw {
		var lex comatproto.LabelDefs_Label
		require.NoError(t, json.Unmarshal(r, &lex), string(r))
		lab := labeling.FromLexicon(&lex)
		require.NoError(t, lab.VerifySyntax())
		require.NoError(t, lab.VerifySignature(pub))
		out = append(out, strings.TrimPrefix(lex.Uri, "at://did:plc:")+" "+lex.Val)
	}
	return out
}

func TestQueryLabels(t *testing.T) {
	ctx := context.Background()
	l := openLabeler(t, "", nil)
	srv := httptest.NewServer(l.Handler())
	t.Cleanup(srv.Close)

	apply := func(uri, cid string, vals ...string) {
		_, err := l.Apply(ctx, uri, cid, vals)
		require.NoError(t, err)
	}
	apply(post("1"), cid1, "ai-generated")
	apply("at://did:plc:bob/app.bsky.feed.post/1", cid1, "ai-generated")
	apply(post("2"), cid1, "ai-assisted", "ai-generated")
	apply(post("3"), cid2, "ai-generated")
	apply(post("3"), cid2) // negated: not current
	apply("at://did:plc:alicia/app.bsky.feed.post/1", cid1, "ai-generated")

	q := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	t.Run("exact", func(t *testing.T) {
		code, out, body := query(t, srv.URL, q("uriPatterns", post("2")))
		require.Equal(t, http.StatusOK, code, body)
		assert.Equal(t, []string{"alice/app.bsky.feed.post/2 ai-assisted", "alice/app.bsky.feed.post/2 ai-generated"},
			uris(t, l.PublicKey(), out.Labels))
		assert.Nil(t, out.Cursor)
		assert.Contains(t, body, `"sig":{"$bytes":"`)
		assert.Contains(t, body, `"ver":1`)
		assert.NotContains(t, body, `"neg"`)
	})
	t.Run("prefix", func(t *testing.T) {
		_, out, _ := query(t, srv.URL, q("uriPatterns", "at://did:plc:alice/*"))
		assert.Equal(t, []string{"alice/app.bsky.feed.post/1 ai-generated", "alice/app.bsky.feed.post/2 ai-assisted",
			"alice/app.bsky.feed.post/2 ai-generated"}, uris(t, l.PublicKey(), out.Labels))
		_, out, _ = query(t, srv.URL, q("uriPatterns", "at://did:plc:ali*"))
		assert.Len(t, out.Labels, 4, "prefix is a plain string prefix")
		_, out, _ = query(t, srv.URL, q("uriPatterns", "*"))
		assert.Len(t, out.Labels, 5)
	})
	t.Run("several patterns", func(t *testing.T) {
		_, out, _ := query(t, srv.URL, q("uriPatterns", post("1"), "uriPatterns", "at://did:plc:bob/*", "uriPatterns", post("3")))
		assert.Equal(t, []string{"alice/app.bsky.feed.post/1 ai-generated", "bob/app.bsky.feed.post/1 ai-generated"},
			uris(t, l.PublicKey(), out.Labels))
	})
	t.Run("paging", func(t *testing.T) {
		var all []string
		params := q("uriPatterns", "at://*", "limit", "2")
		for page := 0; ; page++ {
			require.Less(t, page, 5)
			code, out, body := query(t, srv.URL, params)
			require.Equal(t, http.StatusOK, code, body)
			assert.LessOrEqual(t, len(out.Labels), 2)
			all = append(all, uris(t, l.PublicKey(), out.Labels)...)
			if out.Cursor == nil {
				break
			}
			params.Set("cursor", *out.Cursor)
		}
		assert.Equal(t, []string{"alice/app.bsky.feed.post/1 ai-generated", "bob/app.bsky.feed.post/1 ai-generated",
			"alice/app.bsky.feed.post/2 ai-assisted", "alice/app.bsky.feed.post/2 ai-generated",
			"alicia/app.bsky.feed.post/1 ai-generated"}, all)
	})
	t.Run("sources", func(t *testing.T) {
		_, out, _ := query(t, srv.URL, q("uriPatterns", "*", "sources", testDID))
		assert.Len(t, out.Labels, 5)
		_, out, _ = query(t, srv.URL, q("uriPatterns", "*", "sources", "did:plc:someoneelse"))
		assert.Empty(t, out.Labels)
		_, out, _ = query(t, srv.URL, q("uriPatterns", "*", "sources", "did:plc:someoneelse", "sources", testDID))
		assert.Len(t, out.Labels, 5)
	})
	t.Run("bad requests", func(t *testing.T) {
		for _, params := range []url.Values{
			q(),
			q("uriPatterns", "at://*/app.bsky.feed.post/1"),
			q("uriPatterns", "*", "limit", "0"),
			q("uriPatterns", "*", "limit", "251"),
			q("uriPatterns", "*", "limit", "x"),
			q("uriPatterns", "*", "cursor", "-1"),
			q("uriPatterns", "*", "sources", "alice"),
		} {
			code, _, body := query(t, srv.URL, params)
			assert.Equal(t, http.StatusBadRequest, code, params.Encode())
			assert.Contains(t, body, `"error":"InvalidRequest"`)
		}
	})
}

// labelKeyFromDIDDoc parses the document DIDDocument produces the way a consumer would
// (JSON, then indigo's identity) and returns its #atproto_label key.
func labelKeyFromDIDDoc(t *testing.T, l *labeler.Labeler, publicURL string) atcrypto.PublicKey {
	t.Helper()
	base := map[string]any{
		"@context": []string{"https://www.w3.org/ns/did/v1"},
		"id":       testDID,
		"service":  []any{map[string]any{"id": "#bsky_fg", "type": "BskyFeedGenerator", "serviceEndpoint": publicURL}},
	}
	merged := labeler.MergeDIDDocument(base, l.DIDDocument(testDID, publicURL))
	raw, err := json.Marshal(merged)
	require.NoError(t, err)
	var doc identity.DIDDocument
	require.NoError(t, json.Unmarshal(raw, &doc), string(raw))
	id := identity.ParseIdentity(&doc)
	assert.Equal(t, publicURL, id.GetServiceEndpoint("atproto_labeler"))
	assert.Equal(t, publicURL, id.GetServiceEndpoint("bsky_fg"))
	assert.Equal(t, "AtprotoLabeler", id.Services["atproto_labeler"].Type)
	pub, err := id.GetPublicKey("atproto_label")
	require.NoError(t, err)
	return pub
}

func dial(t *testing.T, base string, cursor string) *websocket.Conn {
	t.Helper()
	u := "ws" + strings.TrimPrefix(base, "http") + labeler.PathSubscribeLabels
	if cursor != "" {
		u += "?cursor=" + cursor
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, resp, err := websocket.DefaultDialer.DialContext(ctx, u, nil)
	require.NoError(t, err)
	resp.Body.Close()
	t.Cleanup(func() { conn.Close() })
	return conn
}

// readFrame reads one binary frame (bounded wait) and decodes it.
func readFrame(t *testing.T, conn *websocket.Conn) *testnet.LabelsFrame {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	typ, data, err := conn.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, websocket.BinaryMessage, typ)
	f, err := testnet.DecodeLabelsFrame(data)
	require.NoError(t, err)
	return f
}

// readLabels reads n #labels frames, checks their seqs follow each other after prev,
// verifies every signature with pub, and summarizes them as "[-]val uri-suffix".
func readLabels(t *testing.T, conn *websocket.Conn, n int, prev int64, pub atcrypto.PublicKey) ([]string, int64) {
	t.Helper()
	var out []string
	for range n {
		f := readFrame(t, conn)
		require.NotNil(t, f.Labels, "frame %+v", f)
		require.Equal(t, prev+1, f.Labels.Seq, "no gap, no duplicate")
		prev = f.Labels.Seq
		for _, lex := range f.Labels.Labels {
			lab := labeling.FromLexicon(lex)
			require.NoError(t, lab.VerifySyntax())
			require.NoError(t, lab.VerifySignature(pub), "label signature")
			s := lex.Val + " " + lex.Uri[strings.LastIndex(lex.Uri, "/")+1:]
			if lex.Neg != nil && *lex.Neg {
				s = "-" + s
			}
			out = append(out, s)
		}
	}
	return out, prev
}

func TestSubscribeLabels(t *testing.T) {
	ctx := context.Background()
	l := openLabeler(t, "", func(c *labeler.Config) {
		c.PingInterval = 100 * time.Millisecond
		c.PageSize = 2 // replay in several pages
	})
	srv := httptest.NewServer(l.Handler())
	t.Cleanup(srv.Close)
	pub := labelKeyFromDIDDoc(t, l, srv.URL)
	require.True(t, pub.Equal(l.PublicKey()))

	apply := func(uri, cid string, vals ...string) {
		_, err := l.Apply(ctx, uri, cid, vals)
		require.NoError(t, err)
	}
	apply(post("1"), cid1, "ai-generated")
	apply(post("2"), cid1, "ai-generated", "ai-assisted")
	apply(post("1"), "") // deleted: negation

	t.Run("replay then live", func(t *testing.T) {
		conn := dial(t, srv.URL, "0")
		got, seq := readLabels(t, conn, 4, 0, pub)
		assert.Equal(t, []string{"ai-generated 1", "ai-assisted 2", "ai-generated 2", "-ai-generated 1"}, got)

		apply(post("3"), cid2, "ai-generated")
		apply(post("2"), cid1, "ai-assisted")
		got, _ = readLabels(t, conn, 2, seq, pub)
		assert.Equal(t, []string{"ai-generated 3", "-ai-generated 2"}, got)
	})
	t.Run("resume from a cursor", func(t *testing.T) {
		conn := dial(t, srv.URL, "3")
		got, _ := readLabels(t, conn, 3, 3, pub)
		assert.Equal(t, []string{"-ai-generated 1", "ai-generated 3", "-ai-generated 2"}, got)
	})
	t.Run("no cursor is live only", func(t *testing.T) {
		conn := dial(t, srv.URL, "")
		last, err := l.LastSeq(ctx)
		require.NoError(t, err)
		apply(post("4"), cid1, "ai-assisted")
		got, _ := readLabels(t, conn, 1, last, pub)
		assert.Equal(t, []string{"ai-assisted 4"}, got)
	})
	t.Run("server pings", func(t *testing.T) {
		conn := dial(t, srv.URL, "")
		pinged := make(chan struct{}, 1)
		conn.SetPingHandler(func(string) error {
			select {
			case pinged <- struct{}{}:
			default:
			}
			return nil
		})
		go func() {
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			conn.ReadMessage()
		}()
		select {
		case <-pinged:
		case <-time.After(5 * time.Second):
			t.Fatal("no ping within 5s")
		}
	})
	t.Run("not a websocket", func(t *testing.T) {
		resp, err := http.Get(srv.URL + labeler.PathSubscribeLabels)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	})
}

func TestFutureCursor(t *testing.T) {
	l := openLabeler(t, "", nil)
	_, err := l.Apply(context.Background(), post("1"), cid1, []string{"ai-generated"})
	require.NoError(t, err)
	srv := httptest.NewServer(l.Handler())
	t.Cleanup(srv.Close)

	t.Run("error frame then close", func(t *testing.T) {
		conn := dial(t, srv.URL, "2")
		f := readFrame(t, conn)
		require.NotNil(t, f.Error)
		assert.Equal(t, firehose.ErrFutureCursor, f.Error.Error)
		_, _, err := conn.ReadMessage()
		var ce *websocket.CloseError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, websocket.ClosePolicyViolation, ce.Code)
	})
	t.Run("current cursor is fine", func(t *testing.T) {
		conn := dial(t, srv.URL, "1")
		_, err := l.Apply(context.Background(), post("2"), cid1, []string{"ai-generated"})
		require.NoError(t, err)
		f := readFrame(t, conn)
		require.NotNil(t, f.Labels)
		assert.Equal(t, int64(2), f.Labels.Seq)
	})
}

func TestShutdown(t *testing.T) {
	l := openLabeler(t, "", nil)
	srv := httptest.NewServer(l.Handler())
	t.Cleanup(srv.Close)
	conn := dial(t, srv.URL, "")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- l.Shutdown(ctx) }()

	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, _, err := conn.ReadMessage() // answers the close (default handler)
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, websocket.CloseGoingAway, ce.Code)
	require.NoError(t, <-done)

	u := "ws" + strings.TrimPrefix(srv.URL, "http") + labeler.PathSubscribeLabels
	_, resp, err := websocket.DefaultDialer.Dial(u, nil)
	require.Error(t, err)
	require.NotNil(t, resp)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

func TestMergeDIDDocument(t *testing.T) {
	l := openLabeler(t, "", nil)
	add := l.DIDDocument(testDID, "https://labels.example.com")
	doc := labeler.MergeDIDDocument(map[string]any{"id": testDID, "@context": []string{"https://www.w3.org/ns/did/v1"}}, add)
	doc = labeler.MergeDIDDocument(doc, add) // idempotent
	assert.Len(t, doc["verificationMethod"], 1)
	assert.Len(t, doc["service"], 1)
	assert.Equal(t, []any{"https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"}, doc["@context"])
}

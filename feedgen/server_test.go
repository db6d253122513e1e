package feedgen_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/auth"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/golang-jwt/jwt/v5"
	"github.com/hearth-social/hearth/feedgen"
	"github.com/hearth-social/hearth/feedgen/index"
	"github.com/stretchr/testify/require"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const feedHost = "feed.example.com"

// unit is a feed generator with a mock directory and a hand-filled index, no firehose.
type unit struct {
	t      *testing.T
	svc    *feedgen.Service
	srv    *httptest.Server
	dir    *identity.MockDirectory
	viewer syntax.DID
	key    atcrypto.PrivateKey
	cfg    feedgen.Config
}

func newUnit(t *testing.T) *unit {
	t.Helper()
	ctx := context.Background()
	key, err := atcrypto.GeneratePrivateKeyK256()
	require.NoError(t, err)
	pub, err := key.PublicKey()
	require.NoError(t, err)
	viewer := syntax.DID("did:plc:viewerviewerviewerviewer")
	dir := identity.NewMockDirectory()
	dir.Insert(identity.Identity{DID: viewer, Handle: "viewer.test", Keys: map[string]identity.VerificationMethod{
		"atproto": {Type: "Multikey", PublicKeyMultibase: pub.Multibase()},
	}})
	cfg := feedgen.DefaultConfig()
	cfg.Hostname = feedHost
	cfg.PublisherDID = "did:plc:publisherpublisherpublis"
	cfg.IndexPath = filepath.Join(t.TempDir(), "feedgen.sqlite")
	cfg.Ingest.FirehoseURL = "ws://127.0.0.1:1"
	cfg.Directory = dir
	svc, err := feedgen.New(ctx, cfg, quiet)
	require.NoError(t, err)
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(func() { srv.Close(); svc.Close() })
	u := &unit{t: t, svc: svc, srv: srv, dir: dir, viewer: viewer, key: key, cfg: svc.Config()}

	// 30 posts by three authors; the viewer follows author0 and author2.
	var events []index.Event
	for i := range 30 {
		author := fmt.Sprintf("did:plc:author%d", i%3)
		events = append(events, index.Event{Seq: int64(i + 1), Commit: &index.Commit{DID: author, Rev: fmt.Sprintf("3l%011d", i), Ops: []index.Op{
			{Action: index.ActionCreate, Collection: index.CollectionPost, RKey: fmt.Sprintf("p%02d", i), CID: "c", Record: &index.Post{Text: "hi"}},
		}}})
	}
	events = append(events, index.Event{Seq: 31, Commit: &index.Commit{DID: viewer.String(), Rev: "3l00000000001", Ops: []index.Op{
		{Action: index.ActionCreate, Collection: index.CollectionFollow, RKey: "f0", CID: "c", Record: &index.Follow{Subject: "did:plc:author0"}},
		{Action: index.ActionCreate, Collection: index.CollectionFollow, RKey: "f2", CID: "c", Record: &index.Follow{Subject: "did:plc:author2"}},
	}}})
	_, err = svc.Index().Apply(ctx, "test", events)
	require.NoError(t, err)
	return u
}

type skeleton struct {
	Feed []struct {
		Post string `json:"post"`
	} `json:"feed"`
	Cursor  string `json:"cursor"`
	ReqID   string `json:"reqId"`
	Error   string `json:"error"`
	Message string `json:"message"`
}

func (u *unit) get(path string, params url.Values, token string) (int, skeleton) {
	u.t.Helper()
	return getSkeleton(u.t, u.srv.URL, path, params, token)
}

func getSkeleton(t *testing.T, base, path string, params url.Values, token string) (int, skeleton) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path+"?"+params.Encode(), nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	res, err := client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var out skeleton
	require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
	return res.StatusCode, out
}

func (u *unit) token(aud string, ttl time.Duration, lxm string, key atcrypto.PrivateKey) string {
	u.t.Helper()
	var m *syntax.NSID
	if lxm != "" {
		n := syntax.NSID(lxm)
		m = &n
	}
	tok, err := auth.SignServiceAuth(u.viewer, aud, ttl, m, key)
	require.NoError(u.t, err)
	return tok
}

const skel = "/xrpc/app.bsky.feed.getFeedSkeleton"

func TestRequesterAuth(t *testing.T) {
	u := newUnit(t)
	did := u.cfg.ServiceDID()
	lxm := "app.bsky.feed.getFeedSkeleton"
	following := url.Values{"feed": {u.cfg.FeedURI("following")}}
	recent := url.Values{"feed": {u.cfg.FeedURI("recent")}}

	for _, aud := range []string{did, did + "#bsky_fg"} {
		st, out := u.get(skel, following, u.token(aud, time.Minute, lxm, u.key))
		require.Equal(t, http.StatusOK, st, "aud %s: %+v", aud, out)
		require.Len(t, out.Feed, 20)
	}

	otherKey, err := atcrypto.GeneratePrivateKeyK256()
	require.NoError(t, err)
	// An issuer that is not a DID, in a token signed with the right key.
	badIss := jwt.NewWithClaims(jwt.GetSigningMethod("ES256K"), jwt.MapClaims{"iss": "alice.test", "aud": did, "lxm": lxm, "exp": time.Now().Add(time.Minute).Unix()})
	badIssTok, err := badIss.SignedString(u.key)
	require.NoError(t, err)
	// Claims this service must refuse whatever the signature: another algorithm (HS256
	// with any key, or none), a token issued in the future.
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": u.viewer.String(), "aud": did, "lxm": lxm, "exp": time.Now().Add(time.Minute).Unix()})
	hsTok, err := hs.SignedString([]byte("a shared secret"))
	require.NoError(t, err)
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": u.viewer.String(), "aud": did, "lxm": lxm, "exp": time.Now().Add(time.Minute).Unix()})
	noneTok, err := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	future := jwt.NewWithClaims(jwt.GetSigningMethod("ES256K"), jwt.MapClaims{"iss": u.viewer.String(), "aud": did, "lxm": lxm,
		"iat": time.Now().Add(time.Hour).Unix(), "exp": time.Now().Add(2 * time.Hour).Unix()})
	futureTok, err := future.SignedString(u.key)
	require.NoError(t, err)
	bad := map[string]string{
		"HS256":                hsTok,
		"alg none":             noneTok,
		"issued in the future": futureTok,
		"garbage":              "not.a.jwt",
		"expired":              u.token(did, -time.Minute, lxm, u.key),
		"wrong audience":       u.token("did:web:other.example.com", time.Minute, lxm, u.key),
		"audience of a different service fragment": u.token(did+"#atproto_pds", time.Minute, lxm, u.key),
		"wrong lxm":          u.token(did, time.Minute, "app.bsky.feed.getTimeline", u.key),
		"no lxm":             u.token(did, time.Minute, "", u.key),
		"wrong key":          u.token(did, time.Minute, lxm, otherKey),
		"issuer not a DID":   badIssTok,
		"not a bearer token": "",
	}
	for name, tok := range bad {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, u.srv.URL+skel+"?"+following.Encode(), nil)
			require.NoError(t, err)
			if name == "not a bearer token" {
				req.Header.Set("Authorization", "Basic YWRtaW46YWRtaW4=")
			} else {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			var body skeleton
			require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
			require.Equal(t, http.StatusUnauthorized, res.StatusCode, "%+v", body)
			want := "InvalidToken"
			if name == "expired" {
				want = "ExpiredToken"
			}
			require.Equal(t, want, body.Error)
			require.NotEmpty(t, body.Message)

			// On public feeds too, a token whose claims are wrong is refused; one whose
			// signature alone is wrong gets the page anyone gets (its signature is checked
			// only when the answer depends on who asks: TestSendInteractions).
			if tok != "" {
				st, body := u.get(skel, recent, tok)
				if name == "wrong key" {
					_, anyone := u.get(skel, recent, "")
					require.Equal(t, http.StatusOK, st, "%+v", body)
					require.Equal(t, anyone.Feed, body.Feed)
				} else {
					require.Equal(t, http.StatusUnauthorized, st, "%+v", body)
					require.Equal(t, want, body.Error)
				}
			}
		})
	}

	st, out := u.get(skel, following, "")
	require.Equal(t, http.StatusUnauthorized, st)
	require.Equal(t, "AuthenticationRequired", out.Error)
	st, out = u.get(skel, recent, "")
	require.Equal(t, http.StatusOK, st, "public feeds need no token: %+v", out)
}

func TestGetFeedSkeletonParams(t *testing.T) {
	u := newUnit(t)
	recent := u.cfg.FeedURI("recent")
	for _, tc := range []struct {
		name   string
		params url.Values
		status int
		err    string
		items  int
	}{
		{"default limit", url.Values{"feed": {recent}}, 200, "", 30},
		{"limit", url.Values{"feed": {recent}, "limit": {"7"}}, 200, "", 7},
		{"limit clamped high", url.Values{"feed": {recent}, "limit": {"1000"}}, 200, "", 30},
		{"limit clamped low", url.Values{"feed": {recent}, "limit": {"0"}}, 200, "", 1},
		{"limit not a number", url.Values{"feed": {recent}, "limit": {"ten"}}, 400, "InvalidRequest", 0},
		{"bad cursor", url.Values{"feed": {recent}, "cursor": {"1700000000::bafy"}}, 400, "InvalidRequest", 0},
		{"no feed", url.Values{}, 400, "InvalidRequest", 0},
		{"feed not an AT-URI", url.Values{"feed": {"recent"}}, 400, "InvalidRequest", 0},
		{"unknown feed", url.Values{"feed": {u.cfg.FeedURI("nope")}}, 400, "UnknownFeed", 0},
		{"other publisher", url.Values{"feed": {"at://did:plc:someoneelse/app.bsky.feed.generator/recent"}}, 400, "UnknownFeed", 0},
		{"not a generator", url.Values{"feed": {"at://" + u.cfg.PublisherDID + "/app.bsky.feed.post/recent"}}, 400, "UnknownFeed", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, out := u.get(skel, tc.params, "")
			require.Equal(t, tc.status, st, "%+v", out)
			require.Equal(t, tc.err, out.Error)
			require.Len(t, out.Feed, tc.items)
		})
	}

	// Paging: 30 posts in pages of 8: 8, 8, 8, 6, newest first, each once.
	seen := map[string]bool{}
	cursor := ""
	var sizes []int
	for {
		p := url.Values{"feed": {recent}, "limit": {"8"}}
		if cursor != "" {
			p.Set("cursor", cursor)
		}
		st, out := u.get(skel, p, "")
		require.Equal(t, 200, st)
		require.NotEmpty(t, out.ReqID, "each answer has a reqId for sendInteractions")
		sizes = append(sizes, len(out.Feed))
		for _, it := range out.Feed {
			require.False(t, seen[it.Post])
			seen[it.Post] = true
		}
		if out.Cursor == "" {
			break
		}
		cursor = out.Cursor
	}
	require.Equal(t, []int{8, 8, 8, 6}, sizes)
}

func TestDescribeAndDIDDoc(t *testing.T) {
	u := newUnit(t)
	res, err := http.Get(u.srv.URL + "/xrpc/app.bsky.feed.describeFeedGenerator")
	require.NoError(t, err)
	var desc struct {
		DID   string `json:"did"`
		Feeds []struct {
			URI string `json:"uri"`
		} `json:"feeds"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&desc))
	res.Body.Close()
	require.Equal(t, "did:web:"+feedHost, desc.DID)
	require.Len(t, desc.Feeds, 6)
	require.Equal(t, "at://did:plc:publisherpublisherpublis/app.bsky.feed.generator/recent", desc.Feeds[0].URI)

	res, err = http.Get(u.srv.URL + "/.well-known/did.json")
	require.NoError(t, err)
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	res.Body.Close()
	var doc identity.DIDDocument
	require.NoError(t, json.Unmarshal(raw, &doc))
	require.Equal(t, syntax.DID("did:web:"+feedHost), doc.DID)
	ident := identity.ParseIdentity(&doc)
	require.Equal(t, "https://"+feedHost, ident.GetServiceEndpoint("bsky_fg"))
	require.Contains(t, string(raw), `"type":"BskyFeedGenerator"`)

	res, err = http.Get(u.srv.URL + "/xrpc/app.bsky.feed.getTimeline")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusNotImplemented, res.StatusCode)
}

// sendInteractions: "see less" of a post leaves its author out of that requester's
// pages (and only theirs); "see more" brings them back.
func TestSendInteractions(t *testing.T) {
	u := newUnit(t)
	did := u.cfg.ServiceDID()
	recent := url.Values{"feed": {u.cfg.FeedURI("recent")}, "limit": {"30"}}
	authors := func(token string) map[string]int {
		st, out := u.get(skel, recent, token)
		require.Equal(t, 200, st)
		n := map[string]int{}
		for _, it := range out.Feed {
			n[strings.Split(strings.TrimPrefix(it.Post, "at://"), "/")[0]]++
		}
		return n
	}
	send := func(token string, event string) int {
		body := `{"interactions":[{"item":"at://did:plc:author1/app.bsky.feed.post/p01","event":"` + event + `","feedContext":"ctx","reqId":"r1"}]}`
		req, err := http.NewRequest(http.MethodPost, u.srv.URL+"/xrpc/app.bsky.feed.sendInteractions", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	feedTok := func() string { return u.token(did, time.Minute, "app.bsky.feed.getFeedSkeleton", u.key) }
	require.Equal(t, 10, authors(feedTok())["did:plc:author1"])
	require.Equal(t, 401, send("", "app.bsky.feed.defs#requestLess"))
	require.Equal(t, 401, send(feedTok(), "app.bsky.feed.defs#requestLess"), "a getFeedSkeleton token is not for sendInteractions")
	interTok := func() string { return u.token(did, time.Minute, "app.bsky.feed.sendInteractions", u.key) }
	require.Equal(t, 200, send(interTok(), "app.bsky.feed.defs#requestLess"))
	require.Zero(t, authors(feedTok())["did:plc:author1"], "see less: author1 left out for this requester")
	require.Equal(t, 10, authors("")["did:plc:author1"], "others still see author1")
	// A token naming this requester but signed with another key is not them: it gets the
	// page anyone gets, not a 401 that would tell it this requester asked to see less.
	otherKey, err := atcrypto.GeneratePrivateKeyK256()
	require.NoError(t, err)
	require.Equal(t, 10, authors(u.token(did, time.Minute, "app.bsky.feed.getFeedSkeleton", otherKey))["did:plc:author1"])
	// Expired is refused whoever it names.
	st, out := u.get(skel, recent, u.token(did, -time.Minute, "app.bsky.feed.getFeedSkeleton", u.key))
	require.Equal(t, http.StatusUnauthorized, st)
	require.Equal(t, "ExpiredToken", out.Error)
	require.Equal(t, 200, send(interTok(), "app.bsky.feed.defs#requestMore"))
	require.Equal(t, 10, authors(feedTok())["did:plc:author1"])
}

// Posts in the requester's Accept-Language languages come first on the page, in the
// feed's order; Content-Language says which of the requested languages the page has.
func TestSkeletonPrefersLanguages(t *testing.T) {
	u := newUnit(t)
	_, err := u.svc.Index().Apply(context.Background(), "test", []index.Event{
		{Seq: 40, Commit: &index.Commit{DID: "did:plc:author7", Rev: "3l00000000100", Ops: []index.Op{
			{Action: index.ActionCreate, Collection: index.CollectionPost, RKey: "fr1", CID: "c", Record: &index.Post{Text: "bonjour", Langs: []string{"fr"}}}}}},
		{Seq: 41, Commit: &index.Commit{DID: "did:plc:author8", Rev: "3l00000000101", Ops: []index.Op{
			{Action: index.ActionCreate, Collection: index.CollectionPost, RKey: "en1", CID: "c", Record: &index.Post{Text: "hello", Langs: []string{"en-GB"}}}}}},
	})
	require.NoError(t, err)
	get := func(acceptLanguage string) ([]string, string) {
		req, err := http.NewRequest(http.MethodGet, u.srv.URL+skel+"?"+url.Values{"feed": {u.cfg.FeedURI("recent")}, "limit": {"5"}}.Encode(), nil)
		require.NoError(t, err)
		if acceptLanguage != "" {
			req.Header.Set("Accept-Language", acceptLanguage)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		var out skeleton
		require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
		var posts []string
		for _, it := range out.Feed {
			posts = append(posts, it.Post[strings.LastIndex(it.Post, "/")+1:])
		}
		return posts, res.Header.Get("Content-Language")
	}
	posts, cl := get("")
	require.Equal(t, []string{"en1", "fr1", "p29", "p28", "p27"}, posts)
	require.Empty(t, cl)
	posts, cl = get("fr-CA, en;q=0.5")
	require.Equal(t, []string{"fr1", "en1", "p29", "p28", "p27"}, posts)
	require.Equal(t, "fr, en", cl)
	posts, _ = get("de")
	require.Equal(t, []string{"en1", "fr1", "p29", "p28", "p27"}, posts, "no post in German: the feed's order")
}

package pds_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	indigoauth "github.com/bluesky-social/indigo/atproto/auth"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/pds"
	"github.com/stretchr/testify/require"
)

// getFeed goes to the AppView with a token the AppView can hand to the feed generator:
// aud the generator's DID (from its record), lxm getFeedSkeleton, and the caller's
// Accept-Language. A double stands in for the AppView and checks what the real one
// relies on.
func TestGetFeedTokenIsForTheGenerator(t *testing.T) {
	av := newFakeService(t)
	e := newEnv(t, func(c *pds.Config) { c.AppViewURL, c.AppViewDID = av.srv.URL, av.did })
	av.dir = e.directory()
	alice := e.createAccount("alice")
	bob := e.createAccount("bobby")
	requireOK(t, e.post("com.atproto.repo.putRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.generator", "rkey": "cats",
		"record": map[string]any{"$type": "app.bsky.feed.generator", "did": "did:web:feeds.example", "displayName": "Cats", "createdAt": "2026-12-03T00:00:00Z"}}, alice.Access))
	av.reply = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Language", "fr")
		switch r.URL.Path {
		case "/xrpc/app.bsky.feed.getFeedGenerator":
			io.WriteString(w, `{"view":{"uri":"x","did":"did:web:remote-feeds.example"},"isOnline":true,"isValid":true}`)
		default:
			io.WriteString(w, `{"feed":[{"post":{"uri":"at://did:plc:x/app.bsky.feed.post/1"}}],"cursor":"next"}`)
		}
	}
	getFeed := func(feed string) *resp {
		return e.raw("GET", "app.bsky.feed.getFeed", url.Values{"feed": {feed}, "limit": {"30"}}.Encode(), nil, bob.Access, map[string]string{"Accept-Language": "fr, en;q=0.5"})
	}
	check := func(wantAud string) {
		t.Helper()
		c := av.last()
		require.Equal(t, "app.bsky.feed.getFeed", c.NSID)
		require.Equal(t, "fr, en;q=0.5", c.Header.Get("Accept-Language"))
		require.Equal(t, wantAud, c.Claims["aud"])
		require.Equal(t, "app.bsky.feed.getFeedSkeleton", c.Claims["lxm"])
		require.Equal(t, bob.DID, c.Claims["iss"])
		// The generator can verify it: signed by bob's key, for it.
		lxm := syntax.NSID("app.bsky.feed.getFeedSkeleton")
		v := indigoauth.ServiceAuthValidator{Audience: wantAud, Dir: e.directory()}
		iss, err := v.Validate(context.Background(), strings.TrimPrefix(c.Header.Get("Authorization"), "Bearer "), &lxm)
		require.NoError(t, err)
		require.Equal(t, bob.DID, iss.String())
	}
	// A feed published here: the generator DID is read from the local record.
	r := getFeed("at://" + alice.DID + "/app.bsky.feed.generator/cats")
	requireOK(t, r)
	require.Equal(t, "fr", r.Header.Get("Content-Language"))
	require.Equal(t, "next", r.Str("cursor"))
	check("did:web:feeds.example")
	// A feed published elsewhere: the AppView's getFeedGenerator names it.
	requireOK(t, getFeed("at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/app.bsky.feed.generator/dogs"))
	check("did:web:remote-feeds.example")
	// Bad input.
	requireXRPCError(t, getFeed("not a uri"), 400, "InvalidRequest")
	requireXRPCError(t, getFeed("at://"+alice.DID+"/app.bsky.feed.post/1"), 400, "InvalidRequest")
	requireXRPCError(t, e.get("app.bsky.feed.getFeed", url.Values{"feed": {"at://" + alice.DID + "/app.bsky.feed.generator/cats"}}, ""), 401, "AuthenticationRequired")
}

// registerPush goes to the notification service the body names (#bsky_notif), with a
// token for it; getRecord/listRecords of a repo hosted elsewhere come from the AppView.
func TestPushRegistrationAndForeignRepos(t *testing.T) {
	notif := newFakeService(t)
	av := newFakeService(t)
	e := newEnv(t, func(c *pds.Config) {
		c.ProxyAllowPrivate = true
		c.AppViewURL, c.AppViewDID = av.srv.URL, av.did
	})
	notif.dir, av.dir = e.directory(), e.directory()
	notif.extra = []map[string]string{{"id": "#bsky_notif", "type": "BskyNotificationService", "serviceEndpoint": notif.srv.URL}}
	alice := e.createAccount("alice")
	body := map[string]any{"serviceDid": notif.did, "token": "device-token", "platform": "ios", "appId": "xyz.blueskyweb.app"}
	for _, nsid := range []string{"app.bsky.notification.registerPush", "app.bsky.notification.unregisterPush"} {
		requireOK(t, e.post(nsid, body, alice.Access))
		c := notif.last()
		require.Equal(t, nsid, c.NSID)
		require.NoError(t, c.AuthErr, "the token verifies for the notification service")
		require.Equal(t, alice.DID, c.Issuer)
		var got map[string]any
		require.NoError(t, json.Unmarshal(c.Body, &got))
		require.Equal(t, "device-token", got["token"])
	}
	requireXRPCError(t, e.post("app.bsky.notification.registerPush", map[string]any{"serviceDid": "nope"}, alice.Access), 400, "InvalidRequest")

	av.reply = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"uri":"at://did:plc:bbbbbbbbbbbbbbbbbbbbbbbb/app.bsky.feed.post/3k","value":{"text":"from elsewhere"}}`)
	}
	q := url.Values{"repo": {"did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"}, "collection": {"app.bsky.feed.post"}, "rkey": {"3k"}}
	r := e.get("com.atproto.repo.getRecord", q, "")
	requireOK(t, r)
	require.Equal(t, "com.atproto.repo.getRecord", av.last().NSID)
	require.Equal(t, q.Encode(), av.last().RawQuery)
	requireOK(t, e.get("com.atproto.repo.listRecords", url.Values{"repo": {"someone.example.com"}, "collection": {"app.bsky.feed.post"}}, ""))
	require.Equal(t, "com.atproto.repo.listRecords", av.last().NSID)
	// A local repo is still served here.
	requireXRPCError(t, e.get("com.atproto.repo.getRecord", url.Values{"repo": {alice.DID}, "collection": {"app.bsky.feed.post"}, "rkey": {"3k"}}, ""), 400, "RecordNotFound")
}

package pds_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// videoService is a double of the Bluesky video service: the app hands it a
// service-auth token minted by the PDS (aud the PDS, lxm uploadBlob) with the video, and
// it uploads the processed video to the account's PDS with that token. It checks the
// token's claims the way the real one relies on them.
func videoService(t *testing.T, pdsURL, pdsDID string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get("Authorization")
		_, claims := jwtClaims(t, tok[len("Bearer "):])
		if claims["aud"] != pdsDID || claims["lxm"] != "com.atproto.repo.uploadBlob" {
			http.Error(w, "token is not for uploading to the PDS", http.StatusUnauthorized)
			return
		}
		video, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequest(http.MethodPost, pdsURL+"/xrpc/com.atproto.repo.uploadBlob", bytes.NewReader(video))
		req.Header.Set("Content-Type", "video/mp4")
		req.Header.Set("Authorization", tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		w.Header().Set("Content-Type", res.Header.Get("Content-Type"))
		w.WriteHeader(res.StatusCode)
		io.Copy(w, res.Body)
	}))
}

func TestVideoUploadWithServiceAuth(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	bob := e.createAccount("bobby")
	pdsDID := e.cfg.ServerDID()
	vs := videoService(t, e.http.URL, pdsDID)
	defer vs.Close()
	video := append([]byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"), bytes.Repeat([]byte{0x42}, 4096)...)

	serviceAuth := func(a *account, aud, lxm string, ttl time.Duration) string {
		q := url.Values{"aud": {aud}, "lxm": {lxm}, "exp": {strconv.FormatInt(time.Now().Add(ttl).Unix(), 10)}}
		r := e.get("com.atproto.server.getServiceAuth", q, a.Access)
		requireOK(t, r)
		return r.Str("token")
	}
	viaVideoService := func(tok string) *resp {
		req, err := http.NewRequest(http.MethodPost, vs.URL, bytes.NewReader(video))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := e.client.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		out := &resp{Status: res.StatusCode, Body: b, Header: res.Header}
		json.Unmarshal(b, &out.JSON)
		return out
	}

	// The app's flow: a 30-minute token, the video service uploads with it, the app posts.
	tok := serviceAuth(alice, pdsDID, "com.atproto.repo.uploadBlob", 30*time.Minute)
	r := viaVideoService(tok)
	requireOK(t, r)
	blob := r.JSON["blob"].(map[string]any)
	require.Equal(t, "video/mp4", blob["mimeType"])
	p := post("my video")
	p["embed"] = map[string]any{"$type": "app.bsky.embed.video", "video": blob, "alt": "a video"}
	requireOK(t, e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "record": p}, alice.Access))
	// The blob belongs to alice, not to anyone else.
	requireOK(t, e.get("com.atproto.sync.getBlob", url.Values{"did": {alice.DID}, "cid": {blobLink(blob)}}, ""))

	upload := func(tok string) *resp { return e.upload(tok, "video/mp4", video) }
	// Refused: another method's token, another audience, a token past an hour, a
	// service-auth token on any other route.
	requireXRPCError(t, upload(serviceAuth(alice, pdsDID, "com.atproto.repo.createRecord", time.Minute)), 401, "InvalidToken")
	requireXRPCError(t, upload(serviceAuth(alice, "did:web:video.example", "com.atproto.repo.uploadBlob", time.Minute)), 401, "InvalidToken")
	requireXRPCError(t, e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "record": post("x")}, tok), 401, "InvalidToken")
	// A tampered token (bob's claims, alice's signature) is refused.
	bobTok := serviceAuth(bob, pdsDID, "com.atproto.repo.uploadBlob", time.Minute)
	forged := bobTok[:bytes.LastIndexByte([]byte(bobTok), '.')] + tok[bytes.LastIndexByte([]byte(tok), '.'):]
	requireXRPCError(t, upload(forged), 401, "InvalidToken")
	// A taken-down account's tokens stop working.
	requireOK(t, e.post("com.atproto.admin.updateSubjectStatus", map[string]any{
		"subject": map[string]any{"$type": "com.atproto.admin.defs#repoRef", "did": bob.DID}, "takedown": map[string]any{"applied": true},
	}, "admin"))
	requireXRPCError(t, upload(bobTok), 401, "AccountTakedown")
	// Session tokens work as before.
	requireOK(t, upload(alice.Access))
	// getServiceAuth takes the DID#service form of aud.
	r = e.get("com.atproto.server.getServiceAuth", url.Values{"aud": {"did:web:api.bsky.app#bsky_appview"}, "lxm": {"app.bsky.feed.getTimeline"}}, alice.Access)
	requireOK(t, r)
	_, claims := jwtClaims(t, r.Str("token"))
	require.Equal(t, "did:web:api.bsky.app#bsky_appview", claims["aud"])
	requireXRPCError(t, e.get("com.atproto.server.getServiceAuth", url.Values{"aud": {"did:web:api.bsky.app#"}}, alice.Access), 400, "InvalidRequest")
	// describeServer advertises the 300 MB default.
	require.EqualValues(t, 300<<20, e.get("com.atproto.server.describeServer", nil, "").JSON["blobUploadLimit"])
}

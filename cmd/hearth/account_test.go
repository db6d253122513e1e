package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/resolve"
	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/hearth-social/hearth/pds"
	"github.com/hearth-social/hearth/pds/mail"
	"github.com/stretchr/testify/require"
)

// hearth account export writes everything an account holds into one archive: the repo
// (loadable with indigo), each blob (hashing to its CID) and, logged in, preferences.
func TestAccountExport(t *testing.T) {
	n := testnet.Start(t)
	c := n.Client
	alice := c.CreateAccount(t, "alice")
	img := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 300)...)
	req := c.Do(t, "POST", "com.atproto.repo.uploadBlob", nil, img, alice.Access)
	testnet.RequireOK(t, req)
	blob := req.JSON["blob"].(map[string]any)
	p := testnet.Post("with a picture")
	p["embed"] = map[string]any{"$type": "app.bsky.embed.images", "images": []any{map[string]any{"alt": "x", "image": blob}}}
	uri, _ := c.CreateRecord(t, alice, "app.bsky.feed.post", p)
	prefs := []any{map[string]any{"$type": "app.bsky.actor.defs#adultContentPref", "enabled": false}}
	testnet.RequireOK(t, c.Post(t, "app.bsky.actor.putPreferences", map[string]any{"preferences": prefs}, alice.Access))

	out := filepath.Join(t.TempDir(), "alice.tar")
	var stdout, stderr bytes.Buffer
	err := newApp(&stdout, &stderr).RunContext(context.Background(), []string{"hearth", "account", "export",
		"--pds", n.URL(), "--handle", "alice.test", "--password", alice.Password, "--out", out})
	require.NoError(t, err, stderr.String())
	require.Contains(t, stdout.String(), "1 records, 1 blobs, preferences true")
	info, err := os.Stat(out)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	f, err := os.Open(out)
	require.NoError(t, err)
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		files[h.Name] = b
	}
	_, rp, err := indigorepo.LoadRepoFromCAR(context.Background(), bytes.NewReader(files["repo.car"]))
	require.NoError(t, err)
	rkey := uri[strings.LastIndex(uri, "/")+1:]
	_, _, err = rp.GetRecordBytes(context.Background(), "app.bsky.feed.post", syntax.RecordKey(rkey))
	require.NoError(t, err)
	link := blob["ref"].(map[string]any)["$link"].(string)
	require.Equal(t, img, files["blobs/"+link])
	var gotPrefs struct {
		Preferences []any `json:"preferences"`
	}
	require.NoError(t, json.Unmarshal(files["preferences.json"], &gotPrefs))
	require.Equal(t, prefs, gotPrefs.Preferences)
	var m exportManifest
	require.NoError(t, json.Unmarshal(files["manifest.json"], &m))
	require.Equal(t, alice.DID, m.DID)
	require.Equal(t, 1, m.Blobs)

	// Public data only, by DID: no preferences.
	out2 := filepath.Join(t.TempDir(), "public.tar")
	stdout.Reset()
	require.NoError(t, newApp(&stdout, &stderr).RunContext(context.Background(), []string{"hearth", "account", "export", "--pds", n.URL(), "--did", alice.DID, "--out", out2}))
	require.Contains(t, stdout.String(), "preferences false")
	// Neither: a clear error.
	err = newApp(&stdout, &stderr).RunContext(context.Background(), []string{"hearth", "account", "export", "--pds", n.URL(), "--out", out2})
	require.ErrorContains(t, err, "--handle and --password")
}

// hearth account migrate moves an account between two Hearths on one PLC directory:
// posts, the image, preferences and identity arrive; the old PDS is left deactivated.
func TestAccountMigrate(t *testing.T) {
	src := testnet.Start(t)
	dst := testnet.Start(t, func(c *pds.Config) { c.PLCURL = src.PLCServer.URL; c.Hostname = "pds-two.test" })
	c := src.Client
	alice := c.CreateAccount(t, "alice")
	img := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{9}, 500)...)
	up := c.Do(t, "POST", "com.atproto.repo.uploadBlob", nil, img, alice.Access)
	testnet.RequireOK(t, up)
	blob := up.JSON["blob"].(map[string]any)
	p := testnet.Post("moving soon")
	p["embed"] = map[string]any{"$type": "app.bsky.embed.images", "images": []any{map[string]any{"alt": "x", "image": blob}}}
	uri, postCID := c.CreateRecord(t, alice, "app.bsky.feed.post", p)
	// A like, a follow and a profile with an avatar, as an app would write them.
	bob := c.CreateAccount(t, "bobby")
	c.CreateRecord(t, alice, "app.bsky.feed.like", map[string]any{"$type": "app.bsky.feed.like", "subject": map[string]any{"uri": uri, "cid": postCID}, "createdAt": time.Now().UTC().Format(time.RFC3339)})
	c.CreateRecord(t, alice, "app.bsky.graph.follow", map[string]any{"$type": "app.bsky.graph.follow", "subject": bob.DID, "createdAt": time.Now().UTC().Format(time.RFC3339)})
	avatarBytes := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{3}, 200)...)
	av := c.Do(t, "POST", "com.atproto.repo.uploadBlob", nil, avatarBytes, alice.Access)
	testnet.RequireOK(t, av)
	testnet.RequireOK(t, c.Post(t, "com.atproto.repo.putRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.actor.profile", "rkey": "self",
		"record": map[string]any{"$type": "app.bsky.actor.profile", "displayName": "Alice", "avatar": av.JSON["blob"]}}, alice.Access))
	prefs := []any{map[string]any{"$type": "app.bsky.actor.defs#adultContentPref", "enabled": true}}
	testnet.RequireOK(t, c.Post(t, "app.bsky.actor.putPreferences", map[string]any{"preferences": prefs}, alice.Access))

	// A first run stops at the identity step (a mistyped token): the account exists on
	// the new PDS, deactivated, with its repo; rerunning continues from there.
	var stdout0, stderr0 bytes.Buffer
	err0 := newApp(&stdout0, &stderr0).RunContext(context.Background(), []string{"hearth", "account", "migrate", "--from", src.URL(), "--handle", "alice.test", "--password", alice.Password,
		"--pds", dst.URL(), "--new-handle", "alice2.test", "--plc-token", "WRONG-TOKEN"})
	require.ErrorContains(t, err0, "did not sign the PLC operation")

	// The user reads the token from the old PDS's mail (its outbox here) and types it.
	stderr := migrate(t, src, dst.URL(), alice.DID, alice.Password, "alice2.test")
	require.Contains(t, stderr, "an earlier run")

	// On the new PDS: active, the post and its image, the preferences; the DID points here.
	login := dst.Client.Post(t, "com.atproto.server.createSession", map[string]any{"identifier": alice.DID, "password": alice.Password}, "")
	testnet.RequireOK(t, login)
	tok := login.Str("accessJwt")
	st := dst.Client.Get(t, "com.atproto.server.checkAccountStatus", nil, tok)
	testnet.RequireOK(t, st)
	require.Equal(t, true, st.JSON["activated"])
	require.Equal(t, true, st.JSON["validDid"])
	require.EqualValues(t, 4, st.JSON["indexedRecords"], "post, like, follow, profile")
	require.EqualValues(t, 2, st.JSON["expectedBlobs"], "the image and the avatar")
	require.EqualValues(t, 2, st.JSON["importedBlobs"])
	// The new PDS's export verifies against the moved DID document, and the directory's
	// audit log holds the move.
	exported := dst.Client.Do(t, "GET", "com.atproto.sync.getRepo", url.Values{"did": {alice.DID}}, nil, "")
	testnet.RequireOK(t, exported)
	commit, _, err := indigorepo.LoadRepoFromCAR(context.Background(), bytes.NewReader(exported.Body))
	require.NoError(t, err)
	ident, err := resolve.NewUncached(resolve.Config{PLCURL: src.PLCServer.URL}).LookupDID(context.Background(), syntax.DID(alice.DID))
	require.NoError(t, err)
	require.Equal(t, dst.URL(), ident.PDSEndpoint())
	pub, err := ident.PublicKey()
	require.NoError(t, err)
	require.NoError(t, commit.VerifySignature(pub))
	res, err := http.Get(src.PLCServer.URL + "/" + alice.DID + "/log/audit")
	require.NoError(t, err)
	var log []map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&log))
	res.Body.Close()
	require.Len(t, log, 2, "genesis and the move")
	rkey := uri[strings.LastIndex(uri, "/")+1:]
	testnet.RequireOK(t, dst.Client.Get(t, "com.atproto.repo.getRecord", url.Values{"repo": {alice.DID}, "collection": {"app.bsky.feed.post"}, "rkey": {rkey}}, ""))
	link := blob["ref"].(map[string]any)["$link"].(string)
	got := dst.Client.Get(t, "com.atproto.sync.getBlob", url.Values{"did": {alice.DID}, "cid": {link}}, "")
	testnet.RequireOK(t, got)
	require.Equal(t, img, got.Body)
	gp := dst.Client.Get(t, "app.bsky.actor.getPreferences", nil, tok)
	testnet.RequireOK(t, gp)
	require.Equal(t, prefs, gp.JSON["preferences"])
	// The old PDS serves nothing for the account any more.
	testnet.RequireXRPCError(t, c.Get(t, "com.atproto.repo.getRecord", url.Values{"repo": {alice.DID}, "collection": {"app.bsky.feed.post"}, "rkey": {rkey}}, ""), 400, "RepoDeactivated")

	// And back again, with a post written meanwhile: the account left behind (deactivated)
	// is logged into and its repo replaced; nothing is lost either way.
	later := testnet.Post("written on the second PDS")
	_, _ = dst.Client.CreateRecord(t, &testnet.Account{DID: alice.DID, Access: tok}, "app.bsky.feed.post", later)
	migrate(t, dst, src.URL(), alice.DID, alice.Password, "alice.test")
	home := c.Post(t, "com.atproto.server.createSession", map[string]any{"identifier": alice.DID, "password": alice.Password}, "")
	testnet.RequireOK(t, home)
	st = c.Get(t, "com.atproto.server.checkAccountStatus", nil, home.Str("accessJwt"))
	testnet.RequireOK(t, st)
	require.Equal(t, true, st.JSON["activated"])
	require.Equal(t, true, st.JSON["validDid"])
	require.EqualValues(t, 5, st.JSON["indexedRecords"], "both posts, the like, the follow, the profile")
	require.EqualValues(t, 2, st.JSON["importedBlobs"])
	testnet.RequireOK(t, c.Get(t, "com.atproto.sync.getBlob", url.Values{"did": {alice.DID}, "cid": {link}}, ""))
	testnet.RequireXRPCError(t, dst.Client.Get(t, "com.atproto.repo.getRecord", url.Values{"repo": {alice.DID}, "collection": {"app.bsky.feed.post"}, "rkey": {rkey}}, ""), 400, "RepoDeactivated")
}

// migrate runs hearth account migrate from the PDS of from to the PDS at to, typing the
// token from's mail carries, and returns what it wrote to stderr.
func migrate(t *testing.T, from *testnet.Net, to, did, password, newHandle string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	app := newApp(&stdout, &stderr)
	app.Reader = from.TypeMailedToken(did, mail.PurposePLCOperation)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := app.RunContext(ctx, []string{"hearth", "account", "migrate", "--from", from.URL(), "--handle", did, "--password", password,
		"--pds", to, "--new-handle", newHandle})
	require.NoError(t, err, stderr.String())
	require.Contains(t, stdout.String(), "migrated "+did)
	return stderr.String()
}

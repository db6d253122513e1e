package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/testnet"
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

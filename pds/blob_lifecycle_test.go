package pds_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hearth-social/hearth/pds"
	"github.com/stretchr/testify/require"
)

// TestBlobGCKeepsReuploadedBytes drives the interleaving the audit found: garbage
// collection takes a blob's row, the same bytes are uploaded again (same file, new
// row), then collection removes files. The re-uploaded blob must survive.
func TestBlobGCKeepsReuploadedBytes(t *testing.T) {
	e := newEnv(t) // default grace (hours): the background collector takes nothing
	ctx := context.Background()
	alice := e.createAccount("alice")
	img := testPNG(t, 50)
	e.uploadOK(alice.Access, img)

	var ref map[string]any
	n, err := e.srv.CollectBlobGarbageBefore(ctx, time.Now().Add(time.Hour), func(taken int) {
		if taken == 0 || ref != nil {
			return
		}
		ref = e.uploadOK(alice.Access, img) // between taking the row and removing the file
	})
	require.NoError(t, err)
	require.NotNil(t, ref, "the collector took no row")
	// The re-upload's row exists, so its file must too: a post may reference it and the
	// blob is served.
	require.Contains(t, e.blobFiles(), blobLink(ref), "the re-uploaded blob's file was deleted")
	e.createPost(alice, imagePost("still here", ref))
	g := e.getBlob(alice.DID, blobLink(ref))
	requireOK(t, g)
	require.Equal(t, img, g.Body)
	require.Zero(t, n, "no bytes were removed")

	// Without a re-upload, collection still removes the bytes.
	orphan := testPNG(t, 51)
	e.uploadOK(alice.Access, orphan)
	n, err = e.srv.CollectBlobGarbageBefore(ctx, time.Now().Add(time.Hour), nil)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.NotContains(t, e.blobFiles(), rawCID(t, orphan).String())
}

// TestBlobFilesSweptAtStartup: temp files of uploads a crash interrupted, and blob files
// without a row past the grace period, are removed when the server starts; files with a
// row, and young ones, stay.
func TestBlobFilesSweptAtStartup(t *testing.T) {
	old := time.Now().Add(-7 * time.Hour) // beyond the default 6h grace
	orphanBytes := []byte("bytes of an upload whose row was never written")
	orphanCID := rawCID(t, orphanBytes).String()
	var blobDir string
	e := newEnv(t, func(c *pds.Config) {
		blobDir = filepath.Join(c.DataDir, "blobs")
		tmp := filepath.Join(blobDir, "tmp")
		owner := filepath.Join(blobDir, "did_plc_crashedaccountxxxxxxxx")
		require.NoError(t, os.MkdirAll(tmp, 0o700))
		require.NoError(t, os.MkdirAll(owner, 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(tmp, "upload-4242"), []byte("half an upload"), 0o600))
		p := filepath.Join(owner, orphanCID)
		require.NoError(t, os.WriteFile(p, orphanBytes, 0o600))
		require.NoError(t, os.Chtimes(p, old, old))
	})
	left, err := os.ReadDir(filepath.Join(blobDir, "tmp"))
	require.NoError(t, err)
	require.Empty(t, left, "leftover upload temp files are removed at start-up")
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(blobDir, "did_plc_crashedaccountxxxxxxxx", orphanCID))
		return os.IsNotExist(err)
	}, 5*time.Second, 10*time.Millisecond, "an old blob file without a row is removed at start-up")

	// While running: old files with a row stay, old ones without go, young ones stay.
	ctx := context.Background()
	alice := e.createAccount("alice")
	kept := e.uploadOK(alice.Access, testPNG(t, 60))
	aliceDir := filepath.Join(blobDir, strings.ReplaceAll(alice.DID, ":", "_"))
	keptPath := filepath.Join(aliceDir, blobLink(kept))
	require.NoError(t, os.Chtimes(keptPath, old, old))
	oldOrphan := filepath.Join(aliceDir, rawCID(t, []byte("old orphan")).String())
	require.NoError(t, os.WriteFile(oldOrphan, []byte("old orphan"), 0o600))
	require.NoError(t, os.Chtimes(oldOrphan, old, old))
	youngOrphan := filepath.Join(aliceDir, rawCID(t, []byte("young orphan")).String())
	require.NoError(t, os.WriteFile(youngOrphan, []byte("young orphan"), 0o600))
	n, err := e.srv.SweepBlobFiles(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.FileExists(t, keptPath)
	require.NoFileExists(t, oldOrphan)
	require.FileExists(t, youngOrphan)
	e.createPost(alice, imagePost("kept", kept))
	requireOK(t, e.getBlob(alice.DID, blobLink(kept)))
}

// TestReuploadReportsStoredMIME: uploading the same bytes again keeps the first row, so
// the answer must carry the stored MIME type (the one records are checked against), not
// the one computed for this upload.
func TestReuploadReportsStoredMIME(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	csv := []byte("name,count\nalice,1\nbob,2\n") // sniffs as text/plain: the declared type wins
	first := e.upload(alice.Access, "text/csv", csv)
	requireOK(t, first)
	require.Equal(t, "text/csv", first.JSON["blob"].(map[string]any)["mimeType"])
	again := e.upload(alice.Access, "application/json", csv)
	requireOK(t, again)
	ref := again.JSON["blob"].(map[string]any)
	require.Equal(t, "text/csv", ref["mimeType"], "the answer must be the stored type")
	require.EqualValues(t, len(csv), ref["size"])
	// The answered ref is usable as is.
	requireOK(t, e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "com.example.sheet",
		"record": map[string]any{"file": ref}}, alice.Access))
	g := e.getBlob(alice.DID, blobLink(ref))
	requireOK(t, g)
	require.Equal(t, "text/csv", g.Header.Get("Content-Type"))
	require.True(t, bytes.Equal(csv, g.Body))
}

// TestBlobFileModes: blob files are 0600 and blob directories 0700.
func TestBlobFileModes(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	ref := e.uploadOK(alice.Access, testPNG(t, 70))
	blobDir := filepath.Join(e.cfg.DataDir, "blobs")
	owner := filepath.Join(blobDir, strings.ReplaceAll(alice.DID, ":", "_"))
	for p, want := range map[string]os.FileMode{
		filepath.Join(owner, blobLink(ref)): 0o600,
		owner:                               0o700,
		blobDir:                             0o700,
		filepath.Join(blobDir, "tmp"):       0o700,
	} {
		info, err := os.Stat(p)
		require.NoError(t, err)
		require.Equal(t, want, info.Mode().Perm(), "mode of %s", p)
	}
}

package blobs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"
)

const testDID = "did:plc:abc"

func blobCID(t *testing.T, b []byte) cid.Cid {
	t.Helper()
	c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.SHA2_256, MhLength: -1}.Sum(b)
	require.NoError(t, err)
	return c
}

func requireMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, want, info.Mode().Perm(), "mode of %s", path)
}

func TestDiskModes(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "blobs")
	d, err := NewDisk(root)
	require.NoError(t, err)
	up, err := d.Put(ctx, testDID, bytes.NewReader([]byte("some bytes")), 1<<20, nil)
	require.NoError(t, err)
	requireMode(t, d.path(testDID, up.CID), 0o600)
	requireMode(t, filepath.Dir(d.path(testDID, up.CID)), 0o700)
	requireMode(t, root, 0o700)
	requireMode(t, filepath.Join(root, "tmp"), 0o700)

	t.Run("looser existing dirs are tightened", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "blobs")
		owner := filepath.Join(root, ownerDir(testDID))
		require.NoError(t, os.MkdirAll(filepath.Join(root, "tmp"), 0o755))
		require.NoError(t, os.MkdirAll(owner, 0o755))
		for _, p := range []string{root, filepath.Join(root, "tmp"), owner} {
			require.NoError(t, os.Chmod(p, 0o755)) // whatever the umask
		}
		d, err := NewDisk(root)
		require.NoError(t, err)
		requireMode(t, root, 0o700)
		requireMode(t, filepath.Join(root, "tmp"), 0o700)
		up, err := d.Put(ctx, testDID, bytes.NewReader([]byte("other bytes")), 1<<20, nil)
		require.NoError(t, err)
		requireMode(t, owner, 0o700)
		requireMode(t, d.path(testDID, up.CID), 0o600)
	})
}

func TestNewDiskSweepsTmp(t *testing.T) {
	root := t.TempDir()
	tmp := filepath.Join(root, "tmp")
	require.NoError(t, os.MkdirAll(tmp, 0o700))
	// What a crash mid-upload leaves, and a file that is not ours.
	require.NoError(t, os.WriteFile(filepath.Join(tmp, "upload-123456"), []byte("half an upload"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(tmp, "README"), []byte("not an upload"), 0o600))
	_, err := NewDisk(root)
	require.NoError(t, err)
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Len(t, left, 1)
	require.Equal(t, "README", left[0].Name())
}

func TestSweep(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d, err := NewDisk(root)
	require.NoError(t, err)
	put := func(did string, b []byte) cid.Cid {
		up, err := d.Put(ctx, did, bytes.NewReader(b), 1<<20, nil)
		require.NoError(t, err)
		return up.CID
	}
	old := time.Now().Add(-time.Hour)
	age := func(did string, c cid.Cid) {
		require.NoError(t, os.Chtimes(d.path(did, c), old, old))
	}
	recorded := put(testDID, []byte("recorded"))
	age(testDID, recorded)
	orphan := put(testDID, []byte("orphan"))
	age(testDID, orphan)
	young := put(testDID, []byte("young orphan"))
	webDID := "did:web:example.com"
	webOrphan := put(webDID, []byte("web orphan"))
	age(webDID, webOrphan)
	// A directory whose name maps back to more than one DID is never swept.
	ambiguous := put("did:web:a_b.example", []byte("ambiguous"))
	age("did:web:a_b.example", ambiguous)
	// Files that are not blobs are left alone.
	stray := filepath.Join(root, ownerDir(testDID), "notes.txt")
	require.NoError(t, os.WriteFile(stray, []byte("x"), 0o600))
	require.NoError(t, os.Chtimes(stray, old, old))

	var asked []string
	n, err := d.Sweep(ctx, time.Now().Add(-time.Minute), func(did string, c cid.Cid) (bool, error) {
		asked = append(asked, did+"/"+c.String())
		return did == testDID && c == recorded, nil
	})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.ElementsMatch(t, []string{testDID + "/" + recorded.String(), testDID + "/" + orphan.String(), webDID + "/" + webOrphan.String()}, asked)
	exists := func(p string) bool {
		_, err := os.Stat(p)
		return err == nil
	}
	require.True(t, exists(d.path(testDID, recorded)))
	require.False(t, exists(d.path(testDID, orphan)))
	require.True(t, exists(d.path(testDID, young)), "files younger than the cutoff stay")
	require.False(t, exists(d.path(webDID, webOrphan)))
	require.True(t, exists(d.path("did:web:a_b.example", ambiguous)))
	require.True(t, exists(stray))

	t.Run("keep errors stop the sweep", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := d.Sweep(ctx, time.Now().Add(time.Minute), func(string, cid.Cid) (bool, error) { return false, boom })
		require.ErrorIs(t, err, boom)
		require.True(t, exists(d.path(testDID, recorded)))
	})
}

func TestDeleteUnless(t *testing.T) {
	ctx := context.Background()
	d, err := NewDisk(t.TempDir())
	require.NoError(t, err)
	up, err := d.Put(ctx, testDID, bytes.NewReader([]byte("bytes")), 1<<20, nil)
	require.NoError(t, err)
	gone, err := d.DeleteUnless(ctx, testDID, up.CID, func() (bool, error) { return true, nil })
	require.NoError(t, err)
	require.False(t, gone)
	_, err = d.DeleteUnless(ctx, testDID, up.CID, func() (bool, error) { return false, errors.New("boom") })
	require.Error(t, err)
	rc, err := d.Open(ctx, testDID, up.CID)
	require.NoError(t, err, "kept bytes are still there")
	rc.Close()
	gone, err = d.DeleteUnless(ctx, testDID, up.CID, func() (bool, error) { return false, nil })
	require.NoError(t, err)
	require.True(t, gone)
	_, err = d.Open(ctx, testDID, up.CID)
	require.ErrorIs(t, err, ErrNotFound)
}

// TestPutCommitHoldsTheLock: a deletion of the same blob that starts while Put's commit
// is recording it waits for the commit, so its keep check sees the new record.
func TestPutCommitHoldsTheLock(t *testing.T) {
	ctx := context.Background()
	d, err := NewDisk(t.TempDir())
	require.NoError(t, err)
	b := []byte("same bytes")
	c := blobCID(t, b)
	recorded := false
	keepAsked := make(chan struct{}, 1)
	deleted := make(chan error, 1)
	_, err = d.Put(ctx, testDID, bytes.NewReader(b), 1<<20, func(up Upload) error {
		require.Equal(t, c, up.CID)
		go func() {
			_, err := d.DeleteUnless(ctx, testDID, c, func() (bool, error) {
				keepAsked <- struct{}{}
				return recorded, nil
			})
			deleted <- err
		}()
		// Without the lock the deletion would ask keep now, before the record exists.
		select {
		case <-keepAsked:
			t.Error("DeleteUnless ran inside Put's commit")
		case <-time.After(50 * time.Millisecond):
		}
		recorded = true
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, <-deleted)
	rc, err := d.Open(ctx, testDID, c)
	require.NoError(t, err, "the recorded blob must survive")
	rc.Close()

	// A failed commit is reported, and the bytes stay for Sweep to judge.
	boom := errors.New("boom")
	_, err = d.Put(ctx, testDID, bytes.NewReader([]byte("unrecorded")), 1<<20, func(Upload) error { return boom })
	require.ErrorIs(t, err, boom)
	rc, err = d.Open(ctx, testDID, blobCID(t, []byte("unrecorded")))
	require.NoError(t, err)
	rc.Close()
}

func TestOwnerDID(t *testing.T) {
	for name, want := range map[string]string{
		"did_plc_abc":             "did:plc:abc",
		"did_web_example.com":     "did:web:example.com",
		"did_web_a_b.example":     "",
		"tmp":                     "",
		"did_PLC_abc":             "",
		"did__abc":                "",
		"did_plc_":                "",
		"notadid_plc_abcdefghijk": "",
	} {
		got, ok := ownerDID(name)
		require.Equal(t, want != "", ok, name)
		require.Equal(t, want, got, name)
		if ok {
			require.Equal(t, name, ownerDir(got))
		}
	}
}

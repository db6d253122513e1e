package datadir

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	require.NoError(t, err)
	return info.Mode().Perm()
}

func TestPrepareTightensExistingDir(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "blobs", "did_plc_x"), 0o755))
	files := []string{"pds.sqlite", "pds.sqlite-wal", "admin-password", filepath.Join("blobs", "did_plc_x", "bafy")}
	for _, f := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("secret"), 0o644))
	}
	require.NoError(t, os.Chmod(dir, 0o755))

	require.NoError(t, Prepare(dir, nil))

	require.Equal(t, DirMode, mode(t, dir))
	require.Equal(t, DirMode, mode(t, filepath.Join(dir, "blobs")))
	require.Equal(t, DirMode, mode(t, filepath.Join(dir, "blobs", "did_plc_x")))
	for _, f := range files {
		require.Equal(t, FileMode, mode(t, filepath.Join(dir, f)), f)
	}
}

func TestPrepareCreatesPrivateDir(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "a", "data")
	require.NoError(t, Prepare(dir, nil))
	require.Equal(t, DirMode, mode(t, dir))
}

func TestWriteFileAndCreatePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	p := filepath.Join(dir, "k")
	require.NoError(t, os.WriteFile(p, []byte("x"), 0o644))
	require.NoError(t, WriteFile(p, []byte("y")))
	require.Equal(t, FileMode, mode(t, p))

	q := filepath.Join(dir, "db")
	require.NoError(t, CreatePrivate(q))
	require.Equal(t, FileMode, mode(t, q))
	require.NoError(t, os.Chmod(q, 0o666))
	require.NoError(t, CreatePrivate(q))
	require.Equal(t, FileMode, mode(t, q))
	require.NoError(t, TightenIfExists(filepath.Join(dir, "absent")))
}

package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hearth-social/hearth/internal/datadir"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// Options configures Create.
type Options struct {
	// DataDir is the data dir to back up; To the folder that holds the backups.
	DataDir string
	To      string
	// Version is the Hearth version written into the manifest.
	Version string
	// Inspect reads the stats from the snapshot's databases (relative path -> file in the
	// new backup folder). Nil leaves them zero.
	Inspect func(ctx context.Context, dbs map[string]string) (Stats, error)
	// Keep, when > 0, removes the oldest backups in To beyond the newest Keep after a
	// successful backup.
	Keep int
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	Log *slog.Logger
}

// sqliteHeader starts every SQLite database file.
var sqliteHeader = []byte("SQLite format 3\x00")

// skipped reports data-dir entries a backup never copies: SQLite's live companions
// (the snapshot holds their content), blob upload temp files, and backup folders placed
// inside the data dir.
func skipped(rel string, isDir bool, to string) bool {
	base := filepath.Base(rel)
	if isDir {
		return rel == filepath.Join("blobs", "tmp") || to != "" && rel == to
	}
	for _, s := range []string{"-wal", "-shm", "-journal"} {
		if strings.HasSuffix(base, s) {
			return true
		}
	}
	return false
}

// Create makes a new backup of opts.DataDir in opts.To and returns its manifest. Only
// one backup runs in To at a time (a lock file); a backup that fails or is cancelled
// leaves nothing behind.
func Create(ctx context.Context, opts Options) (*Manifest, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if err := mkdirPrivate(opts.To); err != nil {
		return nil, err
	}
	unlock, err := lockDir(opts.To)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := removePartials(opts.To); err != nil {
		return nil, err
	}
	earlier, err := List(opts.To)
	if err != nil {
		return nil, err
	}
	start := now().UTC()
	m := &Manifest{Format: FormatVersion, Name: start.Format(nameLayout), Created: start, HearthVersion: opts.Version}
	if len(earlier) > 0 && earlier[len(earlier)-1].Name >= m.Name {
		return nil, fmt.Errorf("backup %s already exists in %s (clock went back?)", earlier[len(earlier)-1].Name, opts.To)
	}
	partial := filepath.Join(opts.To, partialPrefix+m.Name)
	final := filepath.Join(opts.To, m.Name)
	if err := mkdirPrivate(partial); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(partial)
		}
	}()

	// A backup folder inside the data dir is not backed up into itself.
	toRel := ""
	if rel, err := filepath.Rel(opts.DataDir, opts.To); err == nil && !strings.HasPrefix(rel, "..") {
		toRel = rel
	}
	var dbs, blobs, others []string
	err = filepath.WalkDir(opts.DataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked (a finished upload, a collected blob)
			}
			return err
		}
		rel, err := filepath.Rel(opts.DataDir, p)
		if err != nil || rel == "." {
			return err
		}
		if skipped(rel, d.IsDir(), toRel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		switch isDB, err := isSQLite(p); {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return err
		case isDB:
			dbs = append(dbs, rel)
		case strings.HasPrefix(rel, "blobs"+string(filepath.Separator)):
			blobs = append(blobs, rel)
		default:
			others = append(others, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", opts.DataDir, err)
	}

	// Databases first: every blob their snapshot records exists now, and the blob pass
	// below copies it (blob GC keeps referenced blobs and waits a grace period for new ones).
	snapshots := map[string]string{}
	for _, rel := range dbs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		dst := filepath.Join(partial, rel)
		if err := mkdirPrivate(filepath.Dir(dst)); err != nil {
			return nil, err
		}
		if err := snapshotSQLite(ctx, filepath.Join(opts.DataDir, rel), dst); err != nil {
			return nil, fmt.Errorf("snapshot of %s: %w", rel, err)
		}
		f, err := describe(dst, rel, KindSQLite)
		if err != nil {
			return nil, err
		}
		m.Files = append(m.Files, f)
		snapshots[filepath.ToSlash(rel)] = dst
	}
	if opts.Inspect != nil {
		if m.Stats, err = opts.Inspect(ctx, snapshots); err != nil {
			return nil, fmt.Errorf("reading the snapshot: %w", err)
		}
	}

	prior := priorBlobs(opts.To, earlier)
	for _, rel := range blobs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f, linked, err := backupBlob(opts.DataDir, partial, rel, prior)
		if errors.Is(err, fs.ErrNotExist) {
			continue // collected since the walk
		} else if err != nil {
			return nil, err
		}
		if linked {
			m.BlobsLinked++
		} else {
			m.BlobsCopied++
		}
		m.Files = append(m.Files, f)
	}
	for _, rel := range others {
		dst := filepath.Join(partial, rel)
		if err := mkdirPrivate(filepath.Dir(dst)); err != nil {
			return nil, err
		}
		f, err := copyFile(filepath.Join(opts.DataDir, rel), dst, rel, KindFile)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, err
		}
		m.Files = append(m.Files, f)
	}
	for _, f := range m.Files {
		m.Bytes += f.Size
	}
	if err := writeManifest(partial, m); err != nil {
		return nil, err
	}
	if err := os.Rename(partial, final); err != nil {
		return nil, err
	}
	if err := syncDir(opts.To); err != nil {
		return nil, err
	}
	ok = true
	log.Info("backup written", "dir", final, "seq", m.Seq, "accounts", m.Accounts, "records", m.Records,
		"blobs_copied", m.BlobsCopied, "blobs_linked", m.BlobsLinked, "bytes", m.Bytes, "took", time.Since(start).Round(time.Millisecond))
	if opts.Keep > 0 {
		removed, err := rotate(opts.To, opts.Keep)
		if err != nil {
			return m, fmt.Errorf("rotating backups: %w", err)
		}
		for _, name := range removed {
			log.Info("old backup removed", "dir", filepath.Join(opts.To, name), "keep", opts.Keep)
		}
	}
	return m, nil
}

// partialPrefix names a backup folder being written.
const partialPrefix = ".partial-"

// removePartials removes the folders of backups that a crash interrupted (the caller
// holds the lock, so no backup is being written).
func removePartials(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), partialPrefix) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("removing an interrupted backup: %w", err)
			}
		}
	}
	return nil
}

// lockDir takes an exclusive lock on dir/.lock (flock: released by the kernel when the
// process dies), so two backups never write to one folder at once.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, datadir.FileMode)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another backup is running in %s: %w", dir, err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func isSQLite(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	head := make([]byte, len(sqliteHeader))
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return false, err
	}
	return bytes.Equal(head[:n], sqliteHeader), nil
}

// priorBlob is a blob file in an earlier backup.
type priorBlob struct {
	path string // on disk
	file File
}

// priorBlobs indexes the blobs of the earlier backups by CID, newest first wins.
func priorBlobs(to string, earlier []*Manifest) map[string]priorBlob {
	idx := map[string]priorBlob{}
	for i := len(earlier) - 1; i >= 0; i-- {
		m := earlier[i]
		for _, f := range m.Files {
			if f.Kind != KindBlob {
				continue
			}
			key := blobKey(f.Path)
			if _, ok := idx[key]; !ok {
				idx[key] = priorBlob{path: filepath.Join(to, m.Name, filepath.FromSlash(f.Path)), file: f}
			}
		}
	}
	return idx
}

// blobKey is what identifies a blob's bytes: its CID (the file name) when it is a
// sha-256 CID, else its whole path (never shared).
func blobKey(rel string) string {
	name := filepath.Base(rel)
	c, err := cid.Decode(name)
	if err != nil || c.Prefix().MhType != multihash.SHA2_256 {
		return "path:" + rel
	}
	return "cid:" + name
}

// cidSHA256 returns the hex SHA-256 a blob's CID names, or "".
func cidSHA256(rel string) string {
	c, err := cid.Decode(filepath.Base(rel))
	if err != nil {
		return ""
	}
	dec, err := multihash.Decode(c.Hash())
	if err != nil || dec.Code != multihash.SHA2_256 {
		return ""
	}
	return hex.EncodeToString(dec.Digest)
}

// backupBlob links the blob from an earlier backup when that one holds the same bytes
// (same CID and size), else copies it and checks its bytes against the CID.
func backupBlob(dataDir, partial, rel string, prior map[string]priorBlob) (File, bool, error) {
	src := filepath.Join(dataDir, rel)
	dst := filepath.Join(partial, rel)
	info, err := os.Stat(src)
	if err != nil {
		return File{}, false, err
	}
	if err := mkdirPrivate(filepath.Dir(dst)); err != nil {
		return File{}, false, err
	}
	if p, ok := prior[blobKey(rel)]; ok && p.file.Size == info.Size() {
		if pi, err := os.Stat(p.path); err == nil && pi.Size() == p.file.Size {
			if err := os.Link(p.path, dst); err == nil {
				return File{Path: filepath.ToSlash(rel), Kind: KindBlob, Size: p.file.Size, SHA256: p.file.SHA256}, true, nil
			}
			// No hard links on this file system: copy instead.
		}
	}
	f, err := copyFile(src, dst, rel, KindBlob)
	if err != nil {
		return File{}, false, err
	}
	if want := cidSHA256(rel); want != "" && want != f.SHA256 {
		return File{}, false, fmt.Errorf("blob %s: its bytes do not match its CID (damaged on disk)", rel)
	}
	return f, false, nil
}

// copyFile copies src to a new 0600 file dst (fsynced) and describes it.
func copyFile(src, dst, rel, kind string) (File, error) {
	in, err := os.Open(src)
	if err != nil {
		return File{}, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, datadir.FileMode)
	if err != nil {
		return File{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return File{}, fmt.Errorf("copying %s: %w", rel, err)
	}
	return File{Path: filepath.ToSlash(rel), Kind: kind, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// describe hashes a file written by this backup.
func describe(p, rel, kind string) (File, error) {
	sum, n, err := hashFile(p)
	if err != nil {
		return File{}, err
	}
	return File{Path: filepath.ToSlash(rel), Kind: kind, Size: n, SHA256: sum}, nil
}

func hashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("reading %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func writeManifest(dir string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(dir, ManifestName)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, datadir.FileMode)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing manifest: %w", err)
	}
	return syncDir(dir)
}

// mkdirPrivate makes dir (and its parents) 0700, tightening it when it exists.
func mkdirPrivate(dir string) error {
	if err := os.MkdirAll(dir, datadir.DirMode); err != nil {
		return err
	}
	return os.Chmod(dir, datadir.DirMode)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

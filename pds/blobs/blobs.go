// Package blobs stores blob bytes behind a small interface: disk now, S3-compatible
// storage later. Metadata (owner, MIME type, references) lives in the PDS store; this
// package only moves bytes and computes their CID while streaming.
package blobs

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

var (
	// ErrTooLarge: the upload passed the size cap; nothing was kept.
	ErrTooLarge = errors.New("blob is larger than the upload limit")
	// ErrNotFound: no such blob.
	ErrNotFound = errors.New("blob not found")
)

// Store holds blob bytes per account.
//
// Bytes are content-addressed, so uploading the same bytes twice writes the same blob,
// and the metadata the caller keeps elsewhere must be written and removed in step with
// them. Every blob therefore has a lock: Put runs its commit callback under it once the
// bytes are in place, and DeleteUnless and Sweep ask their keep callback under it before
// removing anything. A caller whose callbacks read and write its metadata under that
// lock never removes bytes that its metadata still records.
type Store interface {
	// Put streams r into storage, hashing as it goes, and refuses more than max bytes.
	// commit, when not nil, runs under the blob's lock once the bytes are in place, to
	// record them; its error is returned. Bytes whose commit failed are left for Sweep:
	// they may be an earlier upload's, still recorded.
	Put(ctx context.Context, did string, r io.Reader, max int64, commit func(Upload) error) (Upload, error)
	// Open returns the blob's bytes.
	Open(ctx context.Context, did string, c cid.Cid) (io.ReadCloser, error)
	// Delete removes a blob; deleting a missing blob is not an error.
	Delete(ctx context.Context, did string, c cid.Cid) error
	// DeleteUnless removes a blob unless keep, asked under the blob's lock, says it is
	// still wanted (re-uploaded since the caller decided to delete it). It reports
	// whether the bytes were removed.
	DeleteUnless(ctx context.Context, did string, c cid.Cid, keep func() (bool, error)) (bool, error)
	// Sweep removes stored blobs last modified before `before` that keep, asked under
	// each blob's lock, does not claim: the bytes of uploads that crashed or failed
	// between writing the bytes and recording them. It returns how many it removed.
	Sweep(ctx context.Context, before time.Time, keep func(did string, c cid.Cid) (bool, error)) (int, error)
}

// Upload is the result of a Put.
type Upload struct {
	CID  cid.Cid
	Size int64
	// Sniffed is the MIME type detected from the first bytes.
	Sniffed string
}

// Disk stores blobs as files: DIR/<did>/<cid>, written through DIR/tmp and renamed into
// place so a reader never sees a partial blob. Files are 0600 and directories 0700:
// blobs are served only through the PDS, which applies takedowns and references.
type Disk struct {
	dir   string
	locks keyLocks
}

var _ Store = (*Disk)(nil)

// dirMode is the mode of every directory Disk makes (files are 0600, see Put).
const dirMode = 0o700

// tmpPrefix names upload temp files, so the start-up sweep removes nothing else.
const tmpPrefix = "upload-"

// NewDisk returns a disk store rooted at dir. It must be the only one using dir: it
// removes the temp files left by uploads a crash interrupted (no upload of this process
// has begun yet, so every such file is garbage).
func NewDisk(dir string) (*Disk, error) {
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, dirMode); err != nil {
		return nil, fmt.Errorf("creating blob dir: %w", err)
	}
	// MkdirAll leaves existing directories as they are; tighten ones made looser.
	for _, p := range []string{dir, tmp} {
		if err := tightenDir(p); err != nil {
			return nil, err
		}
	}
	d := &Disk{dir: dir}
	if err := d.sweepTmp(); err != nil {
		return nil, err
	}
	return d, nil
}

// sweepTmp removes every upload temp file.
func (d *Disk) sweepTmp() error {
	tmp := filepath.Join(d.dir, "tmp")
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return fmt.Errorf("reading blob temp dir: %w", err)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), tmpPrefix) || e.IsDir() {
			continue
		}
		if err := os.Remove(filepath.Join(tmp, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing leftover upload: %w", err)
		}
	}
	return nil
}

// ownerDir is the directory of did's blobs. DIDs contain ':', which some filesystems
// dislike; it becomes '_'.
func ownerDir(did string) string { return strings.ReplaceAll(did, ":", "_") }

// ownerDID maps a directory name back to its DID, when that is unambiguous: "did",
// the method ([a-z]+) and the identifier, joined by '_', with no '_' in the
// identifier. (The identifiers of atproto DIDs, did:plc and host-name did:web, contain
// no ':'; a '_' there could be either, so such directories are never swept.)
func ownerDID(name string) (string, bool) {
	parts := strings.SplitN(name, "_", 3)
	if len(parts) != 3 || parts[0] != "did" || parts[1] == "" || parts[2] == "" || strings.Contains(parts[2], "_") {
		return "", false
	}
	for _, r := range parts[1] {
		if r < 'a' || r > 'z' {
			return "", false
		}
	}
	return "did:" + parts[1] + ":" + parts[2], true
}

func (d *Disk) path(did string, c cid.Cid) string {
	return filepath.Join(d.dir, ownerDir(did), c.String())
}

// Put implements Store.
func (d *Disk) Put(ctx context.Context, did string, r io.Reader, max int64, commit func(Upload) error) (Upload, error) {
	// CreateTemp makes the file 0600, the mode it keeps once renamed into place.
	f, err := os.CreateTemp(filepath.Join(d.dir, "tmp"), tmpPrefix+"*")
	if err != nil {
		return Upload{}, err
	}
	tmp := f.Name()
	keep := false
	defer func() {
		if !keep {
			f.Close()
			os.Remove(tmp)
		}
	}()
	h := sha256.New()
	head := make([]byte, 0, 512)
	sniff := &headWriter{buf: &head}
	n, err := io.Copy(io.MultiWriter(f, h, sniff), io.LimitReader(r, max+1))
	if err != nil {
		return Upload{}, fmt.Errorf("reading upload: %w", err)
	}
	if n > max {
		return Upload{}, ErrTooLarge
	}
	if err := ctx.Err(); err != nil {
		return Upload{}, err
	}
	if err := f.Sync(); err != nil {
		return Upload{}, err
	}
	if err := f.Close(); err != nil {
		return Upload{}, err
	}
	mh, err := multihash.Encode(h.Sum(nil), multihash.SHA2_256)
	if err != nil {
		return Upload{}, err
	}
	c := cid.NewCidV1(cid.Raw, mh)
	up := Upload{CID: c, Size: n, Sniffed: http.DetectContentType(head)}
	dst := d.path(did, c)
	if err := os.MkdirAll(filepath.Dir(dst), dirMode); err != nil {
		return Upload{}, err
	}
	if err := tightenDir(filepath.Dir(dst)); err != nil {
		return Upload{}, err
	}
	// From the rename to the end of commit, the blob's lock keeps a collection of the
	// same bytes (whose record the caller may have just removed) from deleting the file
	// between its being replaced and its being recorded again.
	unlock := d.locks.lock(dst)
	defer unlock()
	if err := os.Rename(tmp, dst); err != nil {
		return Upload{}, err
	}
	keep = true
	// Make the rename durable before the caller records the blob: a recorded blob
	// whose file a crash lost would be served as missing for ever.
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return Upload{}, err
	}
	if commit != nil {
		if err := commit(up); err != nil {
			return Upload{}, err
		}
	}
	return up, nil
}

// Open implements Store.
func (d *Disk) Open(_ context.Context, did string, c cid.Cid) (io.ReadCloser, error) {
	f, err := os.Open(d.path(did, c))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	return f, err
}

// Delete implements Store.
func (d *Disk) Delete(_ context.Context, did string, c cid.Cid) error {
	p := d.path(did, c)
	unlock := d.locks.lock(p)
	defer unlock()
	return removeFile(p)
}

// DeleteUnless implements Store.
func (d *Disk) DeleteUnless(_ context.Context, did string, c cid.Cid, keep func() (bool, error)) (bool, error) {
	p := d.path(did, c)
	unlock := d.locks.lock(p)
	defer unlock()
	return d.removeUnlessLocked(p, keep)
}

func (d *Disk) removeUnlessLocked(p string, keep func() (bool, error)) (bool, error) {
	wanted, err := keep()
	if err != nil || wanted {
		return false, err
	}
	if err := removeFile(p); err != nil {
		return false, err
	}
	return true, nil
}

// Sweep implements Store.
func (d *Disk) Sweep(ctx context.Context, before time.Time, keep func(did string, c cid.Cid) (bool, error)) (int, error) {
	owners, err := os.ReadDir(d.dir)
	if err != nil {
		return 0, fmt.Errorf("reading blob dir: %w", err)
	}
	removed := 0
	for _, o := range owners {
		if !o.IsDir() || o.Name() == "tmp" {
			continue
		}
		did, ok := ownerDID(o.Name())
		if !ok {
			continue
		}
		dir := filepath.Join(d.dir, o.Name())
		files, err := os.ReadDir(dir)
		if err != nil {
			return removed, fmt.Errorf("reading blob dir: %w", err)
		}
		for _, f := range files {
			if err := ctx.Err(); err != nil {
				return removed, err
			}
			if !f.Type().IsRegular() {
				continue
			}
			c, err := cid.Decode(f.Name())
			if err != nil {
				continue // not a blob of ours
			}
			p := filepath.Join(dir, f.Name())
			info, err := f.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			} else if err != nil {
				return removed, err
			}
			if !info.ModTime().Before(before) {
				continue
			}
			gone, err := d.sweepOne(p, func() (bool, error) { return keep(did, c) })
			if err != nil {
				return removed, err
			}
			if gone {
				removed++
			}
		}
	}
	return removed, nil
}

func (d *Disk) sweepOne(p string, keep func() (bool, error)) (bool, error) {
	unlock := d.locks.lock(p)
	defer unlock()
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return false, nil // collected meanwhile
	}
	return d.removeUnlessLocked(p, keep)
}

func removeFile(p string) error {
	err := os.Remove(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// tightenDir makes an existing directory 0700 if it is more open.
func tightenDir(p string) error {
	info, err := os.Stat(p)
	if err != nil {
		return err
	}
	if info.Mode().Perm()&^dirMode != 0 {
		if err := os.Chmod(p, dirMode); err != nil {
			return fmt.Errorf("tightening blob dir mode: %w", err)
		}
	}
	return nil
}

// syncDir flushes a directory's entries (a rename into it) to disk.
func syncDir(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing blob dir: %w", err)
	}
	return nil
}

// keyLocks is a set of mutexes by key, created on demand and dropped when unused, so
// it holds only the keys in use.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int // holders and waiters; guarded by keyLocks.mu
}

// lock locks key and returns its unlock.
func (k *keyLocks) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyLock{}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

// headWriter keeps the first 512 bytes for MIME sniffing.
type headWriter struct{ buf *[]byte }

func (w *headWriter) Write(p []byte) (int, error) {
	if room := 512 - len(*w.buf); room > 0 {
		*w.buf = append(*w.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

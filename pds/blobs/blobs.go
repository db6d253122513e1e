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
	"net/http"
	"os"
	"path/filepath"
	"strings"

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
type Store interface {
	// Put streams r into storage, hashing as it goes, and refuses more than max bytes.
	Put(ctx context.Context, did string, r io.Reader, max int64) (Upload, error)
	// Open returns the blob's bytes.
	Open(ctx context.Context, did string, c cid.Cid) (io.ReadCloser, error)
	// Delete removes a blob; deleting a missing blob is not an error.
	Delete(ctx context.Context, did string, c cid.Cid) error
}

// Upload is the result of a Put.
type Upload struct {
	CID  cid.Cid
	Size int64
	// Sniffed is the MIME type detected from the first bytes.
	Sniffed string
}

// Disk stores blobs as files: DIR/<did>/<cid>, written through DIR/tmp and renamed into
// place so a reader never sees a partial blob.
type Disk struct {
	dir string
}

var _ Store = (*Disk)(nil)

// NewDisk returns a disk store rooted at dir.
func NewDisk(dir string) (*Disk, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("creating blob dir: %w", err)
	}
	return &Disk{dir: dir}, nil
}

func (d *Disk) path(did string, c cid.Cid) string {
	// DIDs contain ':' which some filesystems dislike; '_' never occurs in a DID.
	return filepath.Join(d.dir, strings.ReplaceAll(did, ":", "_"), c.String())
}

// Put implements Store.
func (d *Disk) Put(ctx context.Context, did string, r io.Reader, max int64) (Upload, error) {
	f, err := os.CreateTemp(filepath.Join(d.dir, "tmp"), "upload-*")
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
	dst := d.path(did, c)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return Upload{}, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return Upload{}, err
	}
	keep = true
	return Upload{CID: c, Size: n, Sniffed: http.DetectContentType(head)}, nil
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
	err := os.Remove(d.path(did, c))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// headWriter keeps the first 512 bytes for MIME sniffing.
type headWriter struct{ buf *[]byte }

func (w *headWriter) Write(p []byte) (int, error) {
	if room := 512 - len(*w.buf); room > 0 {
		*w.buf = append(*w.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

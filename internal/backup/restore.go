package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/hearth-social/hearth/internal/datadir"
)

// ErrNotEmpty: the data dir to restore into holds files and Force was not given.
var ErrNotEmpty = errors.New("data dir is not empty")

// ErrChecksum: a file of the backup is missing or differs from its manifest.
var ErrChecksum = errors.New("backup does not match its manifest")

// RestoreOptions configures Restore.
type RestoreOptions struct {
	// From is the backup folder (DIR/<time>), DataDir where to restore it.
	From    string
	DataDir string
	// Force replaces what a non-empty DataDir holds (its entries are removed first).
	Force bool
	// AfterRestore runs once every file is in place, before the data dir is used (the
	// caller moves the firehose seq forward here).
	AfterRestore func(ctx context.Context, dataDir string, m *Manifest) error
	Log          *slog.Logger
}

// Verify checks every file of the backup folder dir against its manifest (size and
// SHA-256) and returns the manifest. It reads everything and writes nothing.
func Verify(ctx context.Context, dir string) (*Manifest, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sum, n, err := hashFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrChecksum, f.Path, err)
		}
		if n != f.Size || sum != f.SHA256 {
			return nil, fmt.Errorf("%w: %s has size %d and SHA-256 %s, the manifest says %d and %s", ErrChecksum, f.Path, n, sum, f.Size, f.SHA256)
		}
	}
	return m, nil
}

// Restore verifies the backup, then writes it into opts.DataDir. Nothing is written
// when verification fails or the data dir is not empty (without Force). The server
// must not be running on DataDir.
func Restore(ctx context.Context, opts RestoreOptions) (*Manifest, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ents, err := os.ReadDir(opts.DataDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if len(ents) > 0 && !opts.Force {
		return nil, fmt.Errorf("%w: %s holds %d entries (use --force to replace them)", ErrNotEmpty, opts.DataDir, len(ents))
	}
	m, err := Verify(ctx, opts.From)
	if err != nil {
		return nil, err
	}
	// Everything the data dir held goes, the live -wal and -shm files above all: an old
	// WAL replayed over a restored database would corrupt it.
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(opts.DataDir, e.Name())); err != nil {
			return nil, fmt.Errorf("clearing %s: %w", opts.DataDir, err)
		}
	}
	if len(ents) > 0 {
		log.Warn("restore: replaced the data dir's contents", "dir", opts.DataDir, "entries", len(ents))
	}
	if err := mkdirPrivate(opts.DataDir); err != nil {
		return nil, err
	}
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rel := filepath.FromSlash(f.Path)
		dst := filepath.Join(opts.DataDir, rel)
		if err := mkdirPrivate(filepath.Dir(dst)); err != nil {
			return nil, err
		}
		// Copied again (not linked): the data dir must not share inodes with a backup.
		got, err := copyFile(filepath.Join(opts.From, rel), dst, rel, f.Kind)
		if err != nil {
			return nil, err
		}
		if got.SHA256 != f.SHA256 {
			return nil, fmt.Errorf("%w: %s changed while it was restored", ErrChecksum, f.Path)
		}
	}
	if opts.AfterRestore != nil {
		if err := opts.AfterRestore(ctx, opts.DataDir, m); err != nil {
			return nil, err
		}
	}
	if err := datadir.Prepare(opts.DataDir, log); err != nil {
		return nil, err
	}
	if err := syncDir(opts.DataDir); err != nil {
		return nil, err
	}
	log.Info("backup restored", "from", opts.From, "dir", opts.DataDir, "seq", m.Seq, "accounts", m.Accounts, "files", len(m.Files))
	return m, nil
}

// MinSeqMargin is the least a restore moves the firehose seq past the backup's.
const MinSeqMargin = 1_000_000

// SafeSeq is the seq a server restored from m must continue above so it never hands a
// relay a seq it already saw: after the snapshot the old server went on assigning seqs,
// as many as it assigned in the time since at most (it may have run until now), so the
// margin is twice the rate measured in the snapshot times the time since it was taken,
// and at least MinSeqMargin (seqs need only increase; a gap costs nothing).
func SafeSeq(m *Manifest, now time.Time) int64 {
	margin := float64(MinSeqMargin)
	if hours := now.Sub(m.Created).Hours(); hours > 0 && m.SeqPerHour > 0 {
		margin = max(margin, math.Ceil(2*m.SeqPerHour*hours))
	}
	const limit = 1 << 53 // leaves room below MaxInt64 and stays exact in JSON numbers
	if margin > float64(limit-m.Seq) {
		return limit
	}
	return m.Seq + int64(margin)
}

// Package backup makes consistent backups of a Hearth data dir while the server runs,
// verifies and restores them, and rotates old ones.
//
// A backup is one folder DIR/<time>/ that mirrors the data dir's layout:
//
//   - every SQLite database (found by its file header, wherever it is in the data dir)
//     as a snapshot taken with SQLite's online backup API inside one read transaction,
//     so it is consistent while the server writes (WAL readers never block the writer).
//     The live -wal and -shm files are never copied; the snapshot is a single file in
//     rollback-journal mode that SQLite switches back to WAL when the server opens it;
//   - the blobs (blobs/<owner>/<cid>, content-addressed): a blob already present in an
//     earlier backup in DIR is hard-linked from it, not copied again, so every backup is
//     complete on its own and removing any one of them never breaks another;
//   - every other regular file (the admin password, the mail outbox, keys and
//     certificates), copied as it is;
//   - manifest.json, written last: the format version, the time, the Hearth version, the
//     firehose seq of the snapshot, account/record/blob counts and the size and SHA-256
//     of every file. A folder without a manifest is not a backup.
//
// Folders are 0700 and files 0600, like the data dir (internal/datadir): a backup holds
// the same signing keys and password hashes.
//
// The package knows nothing of the PDS schema: the caller's Inspect reads the counts
// and seq from the snapshot, and Restore's AfterRestore moves the firehose seq forward
// (see cmd/hearth and pds/store.RaiseSeq).
package backup

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// FormatVersion is the manifest format this package writes and reads.
const FormatVersion = 1

// ManifestName is the manifest's file name inside a backup folder.
const ManifestName = "manifest.json"

// nameLayout names backup folders: UTC, sortable as strings, millisecond precision.
const nameLayout = "20060102T150405.000Z"

// File kinds in a manifest.
const (
	KindSQLite = "sqlite"
	KindBlob   = "blob"
	KindFile   = "file"
)

// Stats is what the caller's Inspect reads from the snapshot.
type Stats struct {
	// Seq is the highest firehose seq ever assigned in the snapshot.
	Seq int64 `json:"seq"`
	// SeqPerHour is how fast seq grew over the events the snapshot keeps (0 unknown);
	// a restore uses it to judge how far the server may have gone after the snapshot.
	SeqPerHour float64 `json:"seqPerHour"`
	Accounts   int64   `json:"accounts"`
	Records    int64   `json:"records"`
	Blobs      int64   `json:"blobs"`
}

// Manifest describes one backup.
type Manifest struct {
	Format        int       `json:"format"`
	Name          string    `json:"name"`
	Created       time.Time `json:"created"`
	HearthVersion string    `json:"hearthVersion"`
	Stats
	// BlobsCopied and BlobsLinked count the blob files copied by this backup and those
	// hard-linked from an earlier one.
	BlobsCopied int    `json:"blobsCopied"`
	BlobsLinked int    `json:"blobsLinked"`
	Bytes       int64  `json:"bytes"`
	Files       []File `json:"files"`
}

// File is one file of a backup.
type File struct {
	// Path is relative to the backup folder (and to the data dir), slash-separated.
	Path   string `json:"path"`
	Kind   string `json:"kind"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ReadManifest reads and checks the manifest of the backup folder dir.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", filepath.Join(dir, ManifestName), err)
	}
	if m.Format != FormatVersion {
		return nil, fmt.Errorf("%s: manifest format %d, this Hearth reads %d", dir, m.Format, FormatVersion)
	}
	for _, f := range m.Files {
		if err := checkRelPath(f.Path); err != nil {
			return nil, fmt.Errorf("%s: %w", dir, err)
		}
	}
	return &m, nil
}

// checkRelPath refuses manifest paths that would leave the folder they are read in or
// written to.
func checkRelPath(p string) error {
	if p == "" || path.IsAbs(p) || strings.Contains(p, "\\") || path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../") || p == ManifestName {
		return fmt.Errorf("manifest lists an unsafe path %q", p)
	}
	return nil
}

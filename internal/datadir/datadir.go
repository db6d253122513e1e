// Package datadir keeps Hearth's data folder private. The folder holds signing keys, the
// PLC rotation key, the session-token key, password hashes and the admin password, so it
// must be readable by the server's user alone: the folder and every folder below it are
// 0700 and every file is 0600, whatever the process umask, and also when the folder was
// made earlier by something else (an older Hearth, a restore, a hand-made directory).
package datadir

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// Modes every folder and file under the data folder has.
const (
	DirMode  fs.FileMode = 0o700
	FileMode fs.FileMode = 0o600
)

// Prepare creates dir if needed and tightens the modes of dir and everything below it:
// folders to 0700, regular files to 0600. Each path whose mode it had to change is
// logged as a warning (looser modes mean another local user may have read the keys).
// Symbolic links are left alone and not followed.
func Prepare(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("creating data dir %s: %w", dir, err)
	}
	fixed := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) { // removed while we walked (a finished upload)
				return nil
			}
			return err
		}
		var want fs.FileMode
		switch {
		case d.IsDir():
			want = DirMode
		case d.Type().IsRegular():
			want = FileMode
		default:
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		if info.Mode().Perm()&^want == 0 {
			return nil
		}
		if err := os.Chmod(path, want); err != nil {
			return fmt.Errorf("tightening %s: %w", path, err)
		}
		fixed++
		if log != nil {
			log.Warn("data dir: mode was too open, tightened", "path", path, "was", info.Mode().Perm().String(), "now", want.String())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("securing data dir %s: %w", dir, err)
	}
	if fixed > 0 && log != nil {
		log.Warn("data dir: tightened modes; if other users could log in to this machine, rotate the secrets", "dir", dir, "paths", fixed)
	}
	return nil
}

// WriteFile writes a private file (0600) in one go, replacing any earlier one, and
// tightens the mode of an existing file that os.WriteFile would keep.
func WriteFile(path string, data []byte) error {
	if err := os.WriteFile(path, data, FileMode); err != nil {
		return err
	}
	return os.Chmod(path, FileMode)
}

// CreatePrivate makes sure path exists as a 0600 file before another library creates
// it with the process umask (SQLite does, and then gives its -wal and -shm files the
// database file's mode). An existing file is tightened to 0600.
func CreatePrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, FileMode)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return TightenIfExists(path)
}

// TightenIfExists sets a file to 0600 if it exists and is looser.
func TightenIfExists(path string) error {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if info.Mode().Perm()&^FileMode == 0 {
		return nil
	}
	return os.Chmod(path, FileMode)
}

// OpenAppendPrivate opens path for appending, creating it 0600 (and tightening an
// existing file to 0600).
func OpenAppendPrivate(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, FileMode)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(FileMode); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

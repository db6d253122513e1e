package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// List returns the manifests of the backups in dir, oldest first. Folders without a
// readable manifest (interrupted backups, anything else) are not backups and are left
// out; a missing dir has none.
func List(dir string) ([]*Manifest, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var out []*Manifest
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if _, err := time.Parse(nameLayout, e.Name()); err != nil {
			continue
		}
		m, err := ReadManifest(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if m.Name != e.Name() {
			continue // a copied or renamed folder: linking and rotation go by name
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// rotate removes the oldest backups in dir beyond the newest keep and returns their
// names. Blobs shared with kept backups are hard links, so removing a folder leaves the
// kept ones whole. The caller holds the lock.
func rotate(dir string, keep int) ([]string, error) {
	all, err := List(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for i := 0; i < len(all)-keep; i++ {
		name := all[i].Name
		// Rename first so a crash mid-removal leaves a partial folder, not a damaged backup.
		tmp := filepath.Join(dir, partialPrefix+name)
		if err := os.Rename(filepath.Join(dir, name), tmp); err != nil {
			return removed, err
		}
		if err := os.RemoveAll(tmp); err != nil {
			return removed, fmt.Errorf("removing %s: %w", name, err)
		}
		removed = append(removed, name)
	}
	return removed, nil
}

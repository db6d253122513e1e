// Command genfixtures writes the classifier's synthetic media corpus:
// small PNG, JPEG and WebP files with injected provenance metadata (C2PA,
// IPTC XMP, EXIF, generator text chunks), stripped files, decoys and
// damaged files, plus labels.json with the expected verdict of each item.
//
// Every byte is built here, deterministically; nothing is copied from real
// generator output. Run from the module root:
//
//	go run ./feedgen/classify/internal/genfixtures -out testdata/classify
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// item is one corpus entry; its JSON form matches classify.CorpusItem.
type item struct {
	Name    string   `json:"name"`
	File    string   `json:"file,omitempty"`
	Post    *post    `json:"post,omitempty"`
	Expect  string   `json:"expect"`
	Signals []string `json:"signals,omitempty"`
	Note    string   `json:"note,omitempty"`

	data func() ([]byte, error) // nil when File is shared with another item or absent
}

type post struct {
	Text         string   `json:"text,omitempty"`
	Tags         []string `json:"tags,omitempty"`
	SelfLabels   []string `json:"self_labels,omitempty"`
	AuthorLabels []string `json:"author_labels,omitempty"`
	Alt          string   `json:"alt,omitempty"`
}

func main() {
	out := flag.String("out", "testdata/classify", "output directory")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "genfixtures:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	items, err := fixtures()
	if err != nil {
		return err
	}
	total := 0
	written := map[string]bool{}
	for _, it := range items {
		if it.data == nil {
			continue
		}
		if written[it.File] {
			return fmt.Errorf("file %s generated twice", it.File)
		}
		b, err := it.data()
		if err != nil {
			return fmt.Errorf("%s: %w", it.Name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, it.File), b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", it.File, err)
		}
		written[it.File] = true
		total += len(b)
	}
	for _, it := range items {
		if it.File != "" && !written[it.File] {
			return fmt.Errorf("%s: file %s is never generated", it.Name, it.File)
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(struct {
		Version int    `json:"version"`
		Items   []item `json:"items"`
	}{1, items}); err != nil {
		return fmt.Errorf("labels: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "labels.json"), buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write labels: %w", err)
	}
	fmt.Printf("wrote %d media files (%d bytes) and labels.json (%d items) to %s\n", len(written), total, len(items), dir)
	return nil
}

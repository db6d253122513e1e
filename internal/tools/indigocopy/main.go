// Command indigocopy copies files Hearth takes from the pinned indigo module (the version
// in go.mod) into the project: the lexicon JSON under lexicons/ and interop fixtures under
// testdata/indigo/. It is run by `go generate ./lexicons/` and is reproducible: the same
// go.mod gives the same files.
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const module = "github.com/bluesky-social/indigo"

// lexiconRoots are the top-level lexicon folders copied; Hearth's own lexicons live in
// other folders and are left alone.
var lexiconRoots = []string{"app", "chat", "com", "tools"}

// fixtures are indigo interop fixtures used by Hearth's tests.
var fixtures = map[string]string{
	"atproto/repo/testdata/commit-proof-fixtures.json": "commit-proof-fixtures.json",
}

func main() {
	root := flag.String("root", ".", "project root")
	flag.Parse()
	if err := run(*root); err != nil {
		fmt.Fprintln(os.Stderr, "indigocopy:", err)
		os.Exit(1)
	}
}

func run(root string) error {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output()
	if err != nil {
		return fmt.Errorf("locating %s (run `go mod download` first): %w", module, err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return fmt.Errorf("module %s not in the module cache", module)
	}
	for _, top := range lexiconRoots {
		dst := filepath.Join(root, "lexicons", top)
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
		src := filepath.Join(dir, "lexicons", top)
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
				return err
			}
			rel, _ := filepath.Rel(filepath.Join(dir, "lexicons"), p)
			return copyFile(p, filepath.Join(root, "lexicons", rel))
		})
		if err != nil {
			return err
		}
	}
	for src, name := range fixtures {
		if err := copyFile(filepath.Join(dir, src), filepath.Join(root, "testdata", "indigo", name)); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

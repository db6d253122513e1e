// Package lexicons holds the lexicon JSON Hearth validates records against and serves
// under its own NSIDs. The app/, chat/, com/ and tools/ folders are generated from the
// pinned indigo module (`go generate ./lexicons/`, see generate.go); Hearth's own
// lexicons live under social/, and community/ and org/ hold vendored community
// lexicons (SOURCES.md says where each came from).
package lexicons

import (
	"embed"
	"fmt"
	"sync"

	"github.com/bluesky-social/indigo/atproto/lexicon"
)

//go:embed app chat com community org social tools
var files embed.FS

// Catalog is a loaded lexicon catalog. Loading parses every schema, so it is done once
// per process, on first use.
type Catalog struct {
	once sync.Once
	cat  *lexicon.BaseCatalog
	err  error
}

// NewCatalog returns a catalog that loads the embedded schemas on first use.
func NewCatalog() *Catalog { return &Catalog{} }

// Load parses the embedded schemas (idempotent) and returns the indigo catalog.
func (c *Catalog) Load() (*lexicon.BaseCatalog, error) {
	c.once.Do(func() {
		cat := lexicon.NewBaseCatalog()
		if err := cat.LoadEmbedFS(files); err != nil {
			c.err = fmt.Errorf("loading lexicons: %w", err)
			return
		}
		c.cat = cat
	})
	return c.cat, c.err
}

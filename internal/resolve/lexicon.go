package resolve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/lexicon"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Lexicon resolution (atproto.com/specs/lexicon#lexicon-publication-and-resolution):
// DNS TXT _lexicon.<authority> names the DID whose repository publishes the schema, as
// the com.atproto.lexicon.schema record whose key is the NSID. The DNS step is
// indigo's (BaseDirectory.ResolveNSID, through this Directory's resolver, so tests can
// point it at their own DNS server); the DID is resolved here and the record fetched
// from the DID's PDS with the guarded client, as did:web documents are. Indigo's own
// lexicon.ResolveLexiconSchemaFile is not used: it takes the system resolver and an
// unguarded HTTP client.

// ErrLexiconNotFound: the NSID's authority publishes no DID, or its repository holds
// no schema for it.
var ErrLexiconNotFound = errors.New("lexicon not found")

// ResolveNSID is the DID that DNS TXT _lexicon.<authority of nsid> names.
func (d *Directory) ResolveNSID(ctx context.Context, nsid syntax.NSID) (syntax.DID, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	did, err := d.base.ResolveNSID(ctx, nsid)
	if errors.Is(err, identity.ErrNSIDNotFound) || errors.Is(err, identity.ErrHandleNotFound) {
		return "", fmt.Errorf("%w: no DID for %s at _lexicon.%s", ErrLexiconNotFound, nsid, nsid.Authority())
	}
	return did, err
}

// ResolveLexicon fetches and parses the published schema of nsid. It checks that the
// record is a lexicon (version 1) with that id; the defs are the caller's to check.
func (d *Directory) ResolveLexicon(ctx context.Context, nsid syntax.NSID) (*lexicon.SchemaFile, error) {
	did, err := d.ResolveNSID(ctx, nsid)
	if err != nil {
		return nil, err
	}
	ident, err := d.LookupDID(ctx, did)
	if err != nil {
		return nil, fmt.Errorf("lexicon %s: resolving its authority %s: %w", nsid, did, err)
	}
	pds := strings.TrimRight(ident.PDSEndpoint(), "/")
	if pds == "" {
		return nil, fmt.Errorf("lexicon %s: authority %s names no PDS", nsid, did)
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	q := url.Values{"repo": {did.String()}, "collection": {"com.atproto.lexicon.schema"}, "rkey": {nsid.String()}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pds+"/xrpc/com.atproto.repo.getRecord?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("lexicon %s: %w", nsid, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", d.cfg.UserAgent)
	res, err := d.web.Do(req)
	if err != nil {
		return nil, fmt.Errorf("lexicon %s: fetching from %s: %w", nsid, pds, err)
	}
	defer res.Body.Close()
	var out struct {
		URI   string          `json:"uri"`
		Value json.RawMessage `json:"value"`
		Error string          `json:"error"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("lexicon %s: reading %s's answer (HTTP %d): %w", nsid, pds, res.StatusCode, err)
	}
	switch {
	case res.StatusCode == http.StatusBadRequest && out.Error == "RecordNotFound", res.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s publishes no schema for %s", ErrLexiconNotFound, did, nsid)
	case res.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("lexicon %s: %s answered HTTP %d %s", nsid, pds, res.StatusCode, out.Error)
	}
	if want := "at://" + did.String() + "/com.atproto.lexicon.schema/" + nsid.String(); out.URI != want {
		return nil, fmt.Errorf("lexicon %s: %s answered for %q, not %q", nsid, pds, out.URI, want)
	}
	var sf lexicon.SchemaFile
	if err := json.Unmarshal(out.Value, &sf); err != nil {
		return nil, fmt.Errorf("lexicon %s: the published schema does not parse: %w", nsid, err)
	}
	if sf.ID != nsid.String() {
		return nil, fmt.Errorf("lexicon %s: the published schema's id is %q", nsid, sf.ID)
	}
	if err := sf.FinishParse(); err != nil {
		return nil, fmt.Errorf("lexicon %s: %w", nsid, err)
	}
	return &sf, nil
}

package pds

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/pds/store"
)

// AI usage preferences: an account declares how its public data may be used by AI in
// ordinary repo records (so they travel with the repo: firehose, CAR export,
// migration), and every public read of the account's data says so in a Content-Usage
// header in the IETF AI Preferences vocabulary (draft-ietf-aipref-vocab: train-ai,
// train-genai; draft-ietf-aipref-attach: a structured-field dictionary of y/n). Nothing
// declared, no header: undefined stays undefined.
//
// Two record types are read:
//   - community.lexicon.preference.ai (lexicon-community): key self with globalScope is
//     the account default; TID-keyed records with collectionScope override it for one
//     collection (additively: what the override leaves out, the default says). training
//     maps to train-ai, syntheticContent to train-genai; inference and embedding have no
//     term in the vocabulary. entityScope overrides name one consumer, which an HTTP
//     response to anyone cannot express, so they do not change the header.
//   - org.user-intents.declaration (atproto proposal 0008), key self:
//     syntheticContentGeneration maps to train-genai where the community record does not
//     say.

const (
	nsidAIPreference = "community.lexicon.preference.ai"
	nsidUserIntents  = "org.user-intents.declaration"
	// aiOverridesMax bounds the scoped override records read per account.
	aiOverridesMax  = 100
	aiUsageCacheMax = 10_000
)

// parseUsageExpr checks an operator-written Content-Usage expression (comma-separated
// term=y|n, terms lower-case tokens as in draft-ietf-aipref-vocab) and returns it in the
// form the headers use.
func parseUsageExpr(s string) (string, error) {
	var parts []string
	seen := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		term, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		term, val = strings.TrimSpace(term), strings.TrimSpace(val)
		if !ok || (val != "y" && val != "n") {
			return "", fmt.Errorf("want term=y or term=n, comma-separated (e.g. train-ai=n), got %q", strings.TrimSpace(p))
		}
		if !usageTerm(term) {
			return "", fmt.Errorf("%q is not a vocabulary term (e.g. train-ai, train-genai, search)", term)
		}
		if seen[term] {
			return "", fmt.Errorf("%q given twice", term)
		}
		seen[term] = true
		parts = append(parts, term+"="+val)
	}
	return strings.Join(parts, ", "), nil
}

// usageTerm: a structured-field key (RFC 9651 sf-key) of lower-case letters, digits and '-'.
func usageTerm(t string) bool {
	if t == "" || t[0] < 'a' || t[0] > 'z' {
		return false
	}
	for _, c := range t {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// aiTerms are the vocabulary terms an account declared; nil is undeclared.
type aiTerms struct {
	trainAI, trainGenAI *bool
}

func (t aiTerms) over(base aiTerms) aiTerms {
	if t.trainAI == nil {
		t.trainAI = base.trainAI
	}
	if t.trainGenAI == nil {
		t.trainGenAI = base.trainGenAI
	}
	return t
}

// header is the Content-Usage value, "" when nothing is declared.
func (t aiTerms) header() string {
	var parts []string
	for _, term := range []struct {
		name string
		v    *bool
	}{{"train-ai", t.trainAI}, {"train-genai", t.trainGenAI}} {
		if term.v == nil {
			continue
		}
		yn := "n"
		if *term.v {
			yn = "y"
		}
		parts = append(parts, term.name+"="+yn)
	}
	return strings.Join(parts, ", ")
}

// aiUsage is an account's declared preferences: the default and per-collection overrides.
type aiUsage struct {
	global      aiTerms
	collections map[string]aiTerms // already merged over global
}

// forCollection is the header for reads of one collection ("" for whole-repo reads).
func (u *aiUsage) forCollection(collection string) string {
	if t, ok := u.collections[collection]; ok && collection != "" {
		return t.header()
	}
	return u.global.header()
}

// usageView is how describeRepo shows the declarations: the Content-Usage value for the
// whole repo and for each collection with its own.
type usageView struct {
	Default     string            `json:"default,omitempty"`
	Collections map[string]string `json:"collections,omitempty"`
}

// view is nil when nothing is declared.
func (u *aiUsage) view() *usageView {
	v := &usageView{Default: u.global.header()}
	for coll, t := range u.collections {
		if h := t.header(); h != "" {
			if v.Collections == nil {
				v.Collections = map[string]string{}
			}
			v.Collections[coll] = h
		}
	}
	if v.Default == "" && v.Collections == nil {
		return nil
	}
	return v
}

// aiUsageCache keeps each account's parsed declarations until a write to the
// declaration collections (or an import or deletion) forgets them.
type aiUsageCache struct {
	mu  sync.Mutex
	m   map[string]*aiUsage
	gen uint64 // bumped by every forget, so a computation racing a write is not kept
}

func newAIUsageCache() *aiUsageCache { return &aiUsageCache{m: map[string]*aiUsage{}} }

func (c *aiUsageCache) forget(did string) {
	c.mu.Lock()
	delete(c.m, did)
	c.gen++
	c.mu.Unlock()
}

// commit is repos.commit, forgetting the account's cached declarations when a write
// touches them (also when the commit fails: a forget costs one reload).
func (s *Server) commit(ctx context.Context, did syntax.DID, req commitRequest) (*commitResult, error) {
	res, err := s.repos.commit(ctx, did, req)
	for _, w := range req.Writes {
		if isAICollection(w.Collection.String()) {
			s.aiUsage.forget(did.String())
			break
		}
	}
	return res, err
}

// forgetRepo drops everything cached of did's repo (after takedown, deletion, import).
func (s *Server) forgetRepo(did string) {
	s.repos.forget(did)
	s.aiUsage.forget(did)
}

// isAICollection reports whether writes to collection change the declarations.
func isAICollection(collection string) bool {
	return collection == nsidAIPreference || collection == nsidUserIntents
}

// setContentUsage sets the Content-Usage header of a public read of did's data (of one
// collection, or "" for the whole repo or its blobs). A failure to read the
// declarations is logged and leaves the header out rather than failing the read.
func (s *Server) setContentUsage(ctx context.Context, w http.ResponseWriter, did, collection string) {
	u, err := s.aiUsageOf(ctx, did)
	if err != nil {
		s.log.Warn("reading AI usage declarations", "did", did, "err", err)
		return
	}
	if h := u.forCollection(collection); h != "" {
		w.Header().Set("Content-Usage", h)
	}
}

func (s *Server) aiUsageOf(ctx context.Context, did string) (*aiUsage, error) {
	c := s.aiUsage
	c.mu.Lock()
	u, ok := c.m[did]
	gen := c.gen
	c.mu.Unlock()
	if ok {
		return u, nil
	}
	u, err := s.loadAIUsage(ctx, did)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.gen == gen {
		if len(c.m) >= aiUsageCacheMax {
			for k := range c.m { // drop an arbitrary entry; the map stays bounded
				delete(c.m, k)
				break
			}
		}
		c.m[did] = u
	}
	c.mu.Unlock()
	return u, nil
}

func (s *Server) loadAIUsage(ctx context.Context, did string) (*aiUsage, error) {
	u := &aiUsage{}
	// The proposal 0008 record first; the community record's terms take precedence.
	if rec, err := s.declaration(ctx, did, nsidUserIntents, "self"); err != nil {
		return nil, err
	} else if rec != nil {
		u.global.trainGenAI = allowOf(rec["syntheticContentGeneration"])
	}
	recs, err := s.store.ListRecords(ctx, did, nsidAIPreference, "", aiOverridesMax, false)
	if err != nil {
		return nil, err
	}
	overrides := map[string]aiTerms{}
	for _, r := range recs {
		rec, err := atdata.UnmarshalCBOR(r.Value)
		if err != nil {
			continue
		}
		terms := prefTerms(rec["preferences"])
		scope, _ := rec["scope"].(map[string]any)
		switch typ, _ := scope["$type"].(string); {
		case r.RKey == "self":
			u.global = terms.over(u.global)
		case strings.HasSuffix(typ, "#collectionScope"):
			if coll, ok := scope["collection"].(string); ok && coll != "" {
				overrides[coll] = terms.over(overrides[coll])
			}
		}
	}
	if len(overrides) > 0 {
		u.collections = map[string]aiTerms{}
		for coll, t := range overrides {
			u.collections[coll] = t.over(u.global)
		}
	}
	return u, nil
}

// declaration reads one record as data, nil when there is none.
func (s *Server) declaration(ctx context.Context, did, collection, rkey string) (map[string]any, error) {
	_, val, err := s.store.Record(ctx, did, collection, rkey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rec, err := atdata.UnmarshalCBOR(val)
	if err != nil {
		return nil, nil // not ours to judge here; an unreadable declaration declares nothing
	}
	return rec, nil
}

// prefTerms maps a community.lexicon.preference.ai#preferenceSet to vocabulary terms.
func prefTerms(v any) aiTerms {
	set, _ := v.(map[string]any)
	return aiTerms{trainAI: allowOf(set["training"]), trainGenAI: allowOf(set["syntheticContent"])}
}

// allowOf reads {allow: bool} (nil when absent: undefined).
func allowOf(v any) *bool {
	m, _ := v.(map[string]any)
	b, ok := m["allow"].(bool)
	if !ok {
		return nil
	}
	return &b
}

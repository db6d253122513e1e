// Package aipref reads the AI usage declarations accounts keep in their repos and turns
// them into the IETF AI Preferences vocabulary. The PDS sends the result with every
// public read of an account's data (a Content-Usage header); the feed generator shows it
// next to a post's provenance verdict. Written here: no maintained Go library reads
// these records or writes the vocabulary.
//
// Two record types are read:
//   - community.lexicon.preference.ai (lexicon-community): key self with globalScope is
//     the account default; TID-keyed records with collectionScope override it for one
//     collection, additively (what an override leaves out, the default says). Records
//     with entityScope name one consumer, which a response to anyone cannot express:
//     they are kept as declarations but change no effective preference.
//   - org.user-intents.declaration (atproto proposal 0008), key self:
//     syntheticContentGeneration counts as syntheticContent where the community record
//     does not say.
//
// Vocabulary (draft-ietf-aipref-vocab): training maps to train-ai, syntheticContent to
// train-genai; inference and embedding have no term yet and are not sent. The header is
// a structured-field dictionary of y/n (draft-ietf-aipref-attach).
package aipref

import (
	"fmt"
	"strings"
)

// The declaration collections.
const (
	NSIDPreference  = "community.lexicon.preference.ai"
	NSIDUserIntents = "org.user-intents.declaration"
)

// IsDeclaration reports whether records of collection are AI usage declarations.
func IsDeclaration(collection string) bool {
	return collection == NSIDPreference || collection == NSIDUserIntents
}

// Prefs are declared preferences; nil is undeclared (undefined stays undefined).
type Prefs struct {
	Training, Inference, Synthetic, Embedding *bool
}

// Over fills what p leaves undeclared from base.
func (p Prefs) Over(base Prefs) Prefs {
	pick := func(a, b *bool) *bool {
		if a != nil {
			return a
		}
		return b
	}
	return Prefs{pick(p.Training, base.Training), pick(p.Inference, base.Inference), pick(p.Synthetic, base.Synthetic), pick(p.Embedding, base.Embedding)}
}

// Declared reports whether anything is declared.
func (p Prefs) Declared() bool {
	return p.Training != nil || p.Inference != nil || p.Synthetic != nil || p.Embedding != nil
}

// ContentUsage is the Content-Usage value, "" when the vocabulary can say nothing.
func (p Prefs) ContentUsage() string {
	var parts []string
	for _, term := range []struct {
		name string
		v    *bool
	}{{"train-ai", p.Training}, {"train-genai", p.Synthetic}} {
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

// Scope kinds of a declaration.
const (
	ScopeGlobal     = "global"
	ScopeCollection = "collection"
	ScopeEntity     = "entity"
)

// Declaration is one record read.
type Declaration struct {
	Collection, RKey string
	// Scope is ScopeGlobal, ScopeCollection or ScopeEntity; Target the collection NSID or
	// entity it names.
	Scope, Target string
	Prefs         Prefs
}

// Parse reads a declaration record decoded as data (atdata.UnmarshalCBOR or JSON). ok
// is false for records that declare nothing this package understands (a wrong shape, a
// community record outside self with no known scope, a user-intents record not at self).
func Parse(collection, rkey string, rec map[string]any) (Declaration, bool) {
	d := Declaration{Collection: collection, RKey: rkey, Scope: ScopeGlobal}
	switch collection {
	case NSIDUserIntents:
		if rkey != "self" {
			return d, false
		}
		d.Prefs.Synthetic = allowOf(rec["syntheticContentGeneration"])
		return d, true
	case NSIDPreference:
		set, _ := rec["preferences"].(map[string]any)
		d.Prefs = Prefs{allowOf(set["training"]), allowOf(set["inference"]), allowOf(set["syntheticContent"]), allowOf(set["embedding"])}
		scope, _ := rec["scope"].(map[string]any)
		typ, _ := scope["$type"].(string)
		switch {
		case rkey == "self":
			// The account default whatever its scope says (the lexicon asks for globalScope).
		case strings.HasSuffix(typ, "#collectionScope"):
			c, _ := scope["collection"].(string)
			if c == "" {
				return d, false
			}
			d.Scope, d.Target = ScopeCollection, c
		case strings.HasSuffix(typ, "#entityScope"):
			e, _ := scope["entity"].(string)
			if e == "" {
				return d, false
			}
			d.Scope, d.Target = ScopeEntity, e
		default:
			return d, false
		}
		return d, true
	}
	return d, false
}

// Effective is what an account's declarations say for reads of collection ("" for the
// whole repo and its blobs): the community default over the user-intents record, and
// for a collection its override over that.
func Effective(decls []Declaration, collection string) Prefs {
	var intents, global, override Prefs
	for _, d := range decls {
		switch {
		case d.Collection == NSIDUserIntents:
			intents = d.Prefs
		case d.Scope == ScopeGlobal:
			global = d.Prefs
		case d.Scope == ScopeCollection && collection != "" && d.Target == collection:
			override = d.Prefs.Over(override)
		}
	}
	return override.Over(global.Over(intents))
}

// Overridden lists the collections with an override.
func Overridden(decls []Declaration) []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range decls {
		if d.Scope == ScopeCollection && !seen[d.Target] {
			seen[d.Target] = true
			out = append(out, d.Target)
		}
	}
	return out
}

// allowOf reads {allow: bool}; nil when absent.
func allowOf(v any) *bool {
	m, _ := v.(map[string]any)
	b, ok := m["allow"].(bool)
	if !ok {
		return nil
	}
	return &b
}

// ParseUsageExpr checks an operator-written Content-Usage expression (comma-separated
// term=y|n, terms lower-case structured-field keys as in draft-ietf-aipref-vocab) and
// returns it in the form the headers use.
func ParseUsageExpr(s string) (string, error) {
	var parts []string
	seen := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		term, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		term, val = strings.TrimSpace(term), strings.TrimSpace(val)
		if !ok || (val != "y" && val != "n") {
			return "", fmt.Errorf("want term=y or term=n, comma-separated (e.g. train-ai=n), got %q", strings.TrimSpace(p))
		}
		if !isTerm(term) {
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

// isTerm: an RFC 9651 sf-key of lower-case letters, digits and '-'.
func isTerm(t string) bool {
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

package pds

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/lexicon"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/store"
	"github.com/hearth-social/hearth/repo"
	"github.com/ipfs/go-cid"
)

// Lexicon validation (indigo's ValidateRecord) checks a blob ref's declared mimeType
// and size against the field's accept and maxSize. Those are the client's claims: a
// 3 MB upload declared as 1000 bytes, or an HTML upload declared as image/jpeg, passes.
// So every blob a record references is also checked against what the upload stored
// (sniffed type, real size), and the field's constraints against the stored values,
// inside the commit's transaction so the blob cannot change or go away in between.

// blobUse is one blob a record references: the field it sits in, the ref as declared,
// and the lexicon's constraints on that field (none when its schema is unknown).
type blobUse struct {
	Field   string // e.g. "avatar", "embed.images[0].image"
	Blob    atdata.Blob
	Accept  []string
	MaxSize int64 // 0: no limit
}

// maxSchemaHops bounds ref and union resolution for one value, so a cyclic schema
// (ref to a ref to the first) cannot loop.
const maxSchemaHops = 32

// findBlobUses walks a record alongside its collection's schema (when cat knows it) and
// returns every blob in it, in field order. Data the schema does not describe is walked
// too: such blobs get no constraints but are still checked against the stored blob.
func findBlobUses(cat lexicon.Catalog, collection string, rec map[string]any) []blobUse {
	w := blobWalker{cat: cat}
	var def any
	base := collection
	if cat != nil {
		if s, err := cat.Resolve(collection); err == nil {
			def, base = s.Def, schemaNSID(s.ID)
		}
	}
	w.walk(def, base, rec, "")
	return w.out
}

type blobWalker struct {
	cat lexicon.Catalog
	out []blobUse
}

// walk visits v, described by the schema def (nil: unknown) whose relative refs are
// relative to the lexicon base.
func (w *blobWalker) walk(def any, base string, v any, field string) {
	def, base = w.concrete(def, base, v)
	switch x := v.(type) {
	case atdata.Blob:
		u := blobUse{Field: field, Blob: x}
		if b, ok := def.(lexicon.SchemaBlob); ok {
			u.Accept = b.Accept
			if b.MaxSize != nil {
				u.MaxSize = int64(*b.MaxSize)
			}
		}
		w.out = append(w.out, u)
	case map[string]any:
		var props map[string]lexicon.SchemaDef
		if o, ok := def.(lexicon.SchemaObject); ok {
			props = o.Properties
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys) // stable field order, so errors name the same field every time
		for _, k := range keys {
			var pd any
			if p, ok := props[k]; ok {
				pd = p.Inner
			}
			name := k
			if field != "" {
				name = field + "." + k
			}
			w.walk(pd, base, x[k], name)
		}
	case []any:
		var items any
		if a, ok := def.(lexicon.SchemaArray); ok {
			items = a.Items.Inner
		}
		for i, el := range x {
			w.walk(items, base, el, fmt.Sprintf("%s[%d]", field, i))
		}
	}
}

// concrete resolves refs, unions and records down to the schema that describes v.
func (w *blobWalker) concrete(def any, base string, v any) (any, string) {
	for range maxSchemaHops {
		switch d := def.(type) {
		case lexicon.SchemaRecord:
			return d.Record, base
		case lexicon.SchemaRef:
			ref := d.Ref
			if strings.HasPrefix(ref, "#") {
				ref = base + ref
			}
			s, err := w.cat.Resolve(ref)
			if err != nil {
				return nil, base
			}
			def, base = s.Def, schemaNSID(s.ID)
		case lexicon.SchemaUnion:
			// The data names its variant. Whether or not the union lists it (validation,
			// when asked for, has enforced that), its schema's constraints apply: that
			// is never looser than applying none.
			obj, _ := v.(map[string]any)
			t, _ := obj["$type"].(string)
			if t == "" {
				return nil, base
			}
			s, err := w.cat.Resolve(t)
			if err != nil {
				return nil, base
			}
			def, base = s.Def, schemaNSID(s.ID)
		default:
			return def, base
		}
	}
	return nil, base
}

// schemaNSID is the lexicon (file) a catalog schema ID ("nsid#name") belongs to.
func schemaNSID(id string) string {
	nsid, _, _ := strings.Cut(id, "#")
	return nsid
}

// recordBlobUses decodes the records that reference blobs and finds their blobs, before
// the commit's transaction (the walk needs no database).
func recordBlobUses(cat lexicon.Catalog, writes []repo.Write, refs map[string][]cid.Cid) (map[string][]blobUse, error) {
	var out map[string][]blobUse
	for _, wr := range writes {
		if len(refs[wr.Path()]) == 0 || wr.Record == nil {
			continue
		}
		rec, err := atdata.UnmarshalCBOR(wr.Record)
		if err != nil {
			return nil, fmt.Errorf("decoding record %s: %w", wr.Path(), err)
		}
		if out == nil {
			out = map[string][]blobUse{}
		}
		out[wr.Path()] = findBlobUses(cat, wr.Collection.String(), rec)
	}
	return out, nil
}

// checkBlobUse compares one blob reference with the stored blob (nil: none) and the
// field's constraints with the stored values.
func checkBlobUse(path string, u blobUse, stored *store.BlobMeta) error {
	c := cid.Cid(u.Blob.Ref)
	where := path + " " + u.Field
	if stored == nil {
		return fmt.Errorf("%w: %s in %s", errBlobNotUploaded, c, where)
	}
	if u.Blob.Size != stored.Size {
		return xrpc.InvalidRequest("%s: blob %s is declared as %d bytes, but the uploaded blob is %d bytes", where, c, u.Blob.Size, stored.Size)
	}
	if u.Blob.MimeType != stored.MIME {
		return xrpc.InvalidRequest("%s: blob %s is declared as %q, but the uploaded blob is %q", where, c, u.Blob.MimeType, stored.MIME)
	}
	if len(u.Accept) > 0 && !slices.ContainsFunc(u.Accept, func(p string) bool { return mimeAccepted(p, stored.MIME) }) {
		return xrpc.Errorf(http.StatusBadRequest, "InvalidMimeType", "%s: blob %s is %s, but the field accepts only %s", where, c, stored.MIME, strings.Join(u.Accept, ", "))
	}
	if u.MaxSize > 0 && stored.Size > u.MaxSize {
		return xrpc.Errorf(http.StatusBadRequest, "BlobTooLarge", "%s: blob %s is %d bytes, but the field allows at most %d", where, c, stored.Size, u.MaxSize)
	}
	return nil
}

// mimeAccepted matches a lexicon accept pattern: "*/*", a type with a trailing '*'
// ("image/*"), or an exact type; case-insensitive, as MIME types are.
func mimeAccepted(pattern, mime string) bool {
	pattern, mime = strings.ToLower(pattern), strings.ToLower(mime)
	switch {
	case mime == "" || pattern == "":
		return false
	case pattern == "*/*":
		return true
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(mime, strings.TrimSuffix(pattern, "*"))
	}
	return pattern == mime
}

package labeler

import "slices"

// DID document fragments the labeler adds.
const (
	LabelKeyID       = "atproto_label"
	LabelerServiceID = "atproto_labeler"
	LabelerType      = "AtprotoLabeler"
)

// DIDDocument returns a did:web document for serviceDID carrying the labeler parts: an
// #atproto_label verification method (Multikey, the labeler's public key) and an
// #atproto_labeler service (type AtprotoLabeler, endpoint publicURL). Merge it into the
// feed generator's document with MergeDIDDocument.
func (l *Labeler) DIDDocument(serviceDID, publicURL string) map[string]any {
	return map[string]any{
		"@context": []any{"https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"},
		"id":       serviceDID,
		"verificationMethod": []any{map[string]any{
			"id":                 serviceDID + "#" + LabelKeyID,
			"type":               "Multikey",
			"controller":         serviceDID,
			"publicKeyMultibase": l.pub.Multibase(),
		}},
		"service": []any{map[string]any{
			"id":              "#" + LabelerServiceID,
			"type":            LabelerType,
			"serviceEndpoint": publicURL,
		}},
	}
}

// MergeDIDDocument adds the "@context" entries, verification methods and services of
// add to doc (skipping entries whose id doc already has) and returns doc. Both are
// JSON-shaped documents (map[string]any with []any lists); doc may be nil.
func MergeDIDDocument(doc, add map[string]any) map[string]any {
	if doc == nil {
		doc = map[string]any{}
	}
	if _, ok := doc["id"]; !ok {
		doc["id"] = add["id"]
	}
	ctxs := toList(doc["@context"])
	for _, c := range toList(add["@context"]) {
		if !slices.Contains(ctxs, c) {
			ctxs = append(ctxs, c)
		}
	}
	if len(ctxs) > 0 {
		doc["@context"] = ctxs
	}
	for _, field := range []string{"verificationMethod", "service"} {
		have := toList(doc[field])
		for _, e := range toList(add[field]) {
			if id := entryID(e); id == "" || !slices.ContainsFunc(have, func(h any) bool { return sameID(entryID(h), id) }) {
				have = append(have, e)
			}
		}
		if len(have) > 0 {
			doc[field] = have
		}
	}
	return doc
}

// toList converts a JSON list in any of the shapes Go code builds it in to []any.
func toList(v any) []any {
	switch v := v.(type) {
	case []any:
		return slices.Clone(v)
	case []string:
		out := make([]any, len(v))
		for i, s := range v {
			out[i] = s
		}
		return out
	case []map[string]any:
		out := make([]any, len(v))
		for i, m := range v {
			out[i] = m
		}
		return out
	case string:
		return []any{v}
	}
	return nil
}

func entryID(e any) string {
	if m, ok := e.(map[string]any); ok {
		s, _ := m["id"].(string)
		return s
	}
	return ""
}

// sameID compares ids by fragment: "#x" and "did:web:h#x" name the same entry.
func sameID(a, b string) bool {
	frag := func(s string) string {
		for i := len(s) - 1; i >= 0; i-- {
			if s[i] == '#' {
				return s[i:]
			}
		}
		return s
	}
	return frag(a) == frag(b)
}

package classify

import "strings"

// IPTC Digital Source Type vocabulary (cv.iptc.org/newscodes/digitalsourcetype,
// release 2024-10-23), shared by the C2PA action reader and the XMP reader.

const iptcDSTPrefix = "cv.iptc.org/newscodes/digitalsourcetype/"

// dstPolicy is what one source type means for the verdict. Weights are raw
// log-odds from the versioned weight table (see Version); they are not yet
// calibrated against a measured corpus.
type dstPolicy struct {
	class  Class
	weight float64
}

// dstLookup maps a lower-cased code to its policy. Codes not listed
// (screenCapture, digitalCreation, composite, ...) are recorded as
// ClassInfo. A switch rather than a map keeps the package free of global
// mutable state.
func dstLookup(code string) (dstPolicy, bool) {
	switch code {
	case "trainedalgorithmicmedia":
		return dstPolicy{ClassAIGenerated, 5}, true
	case "compositewithtrainedalgorithmicmedia":
		return dstPolicy{ClassAIAssisted, 4}, true
	case "compositesynthetic":
		// Synthetic but not necessarily ML: a weak lean, never a label.
		return dstPolicy{ClassAIAssisted, 0.5}, true
	case "digitalcapture", "computationalcapture", "negativefilm", "positivefilm":
		return dstPolicy{ClassHumanDeclared, -1.5}, true
	case "print":
		return dstPolicy{ClassHumanDeclared, -1}, true
	}
	// algorithmicMedia ("created purely by an algorithm not based on any
	// sampled training data") is not generative AI: info only.
	return dstPolicy{ClassInfo, 0}, false
}

// parseDST normalises an IPTC digital source type value. It accepts the
// full vocabulary URI (http or https, any case of scheme and host) or a
// bare code, and returns the code and whether it was recognisable at all.
// Matching is on the whole code, never a substring: a naive search for
// "trainedAlgorithmicMedia" would also hit "compositeWithTrained…".
func parseDST(v string) (code string, ok bool) {
	v = strings.TrimSpace(v)
	if len(v) == 0 || len(v) > 256 {
		return "", false
	}
	lv := strings.ToLower(v)
	for _, scheme := range []string{"http://", "https://"} {
		if strings.HasPrefix(lv, scheme+iptcDSTPrefix) {
			code = v[len(scheme)+len(iptcDSTPrefix):]
			code = strings.TrimRight(code, "/")
			if code == "" || strings.ContainsAny(code, "/?# ") {
				return "", false
			}
			return code, true
		}
	}
	if strings.ContainsAny(v, "/:?# ") {
		return "", false
	}
	return v, true
}

// dstEvidence maps a source type value to evidence; scale multiplies the
// policy weight (C2PA 1, XMP slightly less, prior manifests less still).
func dstEvidence(signal, loc, value string, scale float64) (Evidence, bool) {
	code, ok := parseDST(value)
	if !ok {
		return Evidence{}, false
	}
	p, known := dstLookup(strings.ToLower(code))
	ev := Evidence{Signal: signal, Class: ClassInfo, Tier: TierDeterministic, Locator: loc, Excerpt: excerpt(code)}
	if !known {
		return ev, true
	}
	ev.Class = p.class
	ev.Weight = p.weight * scale
	if p.class == ClassAIAssisted && p.weight < 1 {
		ev.Tier = TierWeakClaim // compositeSynthetic: a lean, not a declaration
	}
	return ev, true
}

package classify

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// C2PA manifest store interpretation (on top of jumbf.go and cbor.go).
//
// Store layout: superbox "c2pa" → manifest superboxes (UUID tag "c2ma", or
// "c2um" for update manifests) → an assertion store "c2pa.assertions" and a
// claim "c2pa.claim"/"c2pa.claim.v2". The active manifest is the last one
// in the store; earlier ones describe ingredients. Assertions labelled
// "c2pa.actions" or "c2pa.actions.v2" (optionally with an "__N" instance
// suffix) hold CBOR (or, in old files, JSON):
//
//	{"actions": [{"action": "c2pa.created",
//	              "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
//	              "softwareAgent": {"name": "…"} | "…"}]}
//
// Each manifest's signature, assertion hashes and (for the active one) hard
// binding are validated in c2pa_verify.go; the status (valid, invalid,
// unverifiable) is recorded as "c2pa.signature" evidence and decides
// whether a digitalCapture claim counts.

// c2paAction is one decoded action.
type c2paAction struct {
	Action, SourceType, Agent, Description string
}

// c2paManifest is the part of a manifest the classifier uses.
type c2paManifest struct {
	Label      string
	Generators []string
	Actions    []c2paAction
	ActionsLoc []string // assertion label + index, parallel to Actions
	box        *jumbfBox
}

// parseC2PA reads a manifest store. It returns the manifests in store
// order (the last is active) and an error for damage found on the way;
// manifests read before the damage are still returned.
func parseC2PA(b []byte) ([]c2paManifest, error) {
	root, jerr := parseJUMBF(b)
	if root == nil {
		return nil, jerr
	}
	if root.Label != "c2pa" && root.uuidTag() != "c2pa" {
		return nil, fmt.Errorf("c2pa: JUMBF store %q is not a C2PA manifest store: %w", printable(root.Label), ErrMalformed)
	}
	var out []c2paManifest
	var firstErr error = jerr
	for _, mb := range root.Children {
		if mb.Type != "jumb" {
			continue
		}
		m := c2paManifest{Label: mb.Label, box: mb}
		if as := mb.child("c2pa.assertions"); as != nil {
			for _, a := range as.Children {
				base, _, _ := strings.Cut(a.Label, "__")
				if a.Type != "jumb" || (base != "c2pa.actions" && base != "c2pa.actions.v2") {
					continue
				}
				acts, err := decodeActions(a)
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("c2pa: %s/%s: %w", printable(mb.Label), printable(a.Label), err)
				}
				for i, act := range acts {
					m.Actions = append(m.Actions, act)
					m.ActionsLoc = append(m.ActionsLoc, printable(a.Label)+" actions["+strconv.Itoa(i)+"]")
				}
			}
		}
		for _, c := range mb.Children {
			if c.Type == "jumb" && (c.Label == "c2pa.claim" || c.Label == "c2pa.claim.v2") {
				if raw := c.content("cbor"); raw != nil {
					v, err := decodeCBOR(raw)
					if err != nil && firstErr == nil {
						firstErr = fmt.Errorf("c2pa: %s claim: %w", printable(mb.Label), err)
					}
					m.Generators = claimGenerators(v)
				}
			}
		}
		out = append(out, m)
	}
	return out, firstErr
}

// decodeActions decodes an actions assertion from its cbor or json box.
func decodeActions(a *jumbfBox) ([]c2paAction, error) {
	var v any
	if raw := a.content("cbor"); raw != nil {
		var err error
		if v, err = decodeCBOR(raw); err != nil {
			return nil, err
		}
	} else if raw := a.content("json"); raw != nil {
		if len(raw) > maxTextBytes {
			return nil, fmt.Errorf("json assertion of %d bytes: %w", len(raw), ErrLimit)
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("json assertion: %w: %w", ErrMalformed, err)
		}
	} else {
		return nil, fmt.Errorf("actions assertion without content box: %w", ErrMalformed)
	}
	var out []c2paAction
	for _, item := range asArray(mapGet(v, "actions")) {
		act := c2paAction{
			Action:      asString(mapGet(item, "action")),
			SourceType:  asString(mapGet(item, "digitalSourceType")),
			Description: capString(asString(mapGet(item, "description")), 512),
		}
		switch sa := mapGet(item, "softwareAgent").(type) {
		case string:
			act.Agent = sa
		case map[string]any:
			act.Agent = asString(sa["name"])
		}
		out = append(out, act)
		if len(out) >= maxParts {
			break
		}
	}
	return out, nil
}

// claimGenerators reads claim_generator (v1 string) and
// claim_generator_info (v1 array of maps, v2 a single map).
func claimGenerators(claim any) []string {
	var out []string
	if s := asString(mapGet(claim, "claim_generator")); s != "" {
		out = append(out, s)
	}
	info := mapGet(claim, "claim_generator_info")
	items := asArray(info)
	if items == nil && info != nil {
		items = []any{info}
	}
	for _, it := range items {
		if n := asString(mapGet(it, "name")); n != "" {
			if v := asString(mapGet(it, "version")); v != "" {
				n += "/" + v
			}
			out = append(out, n)
		}
	}
	return out
}

// c2paEvidenceFor turns one JUMBF part of asset into evidence, validating
// each manifest's signature (c2pa_verify.go). A digitalCapture claim
// counts only from a manifest that is not invalid, and more from a valid
// one; AI claims count whatever the status (nobody gains by falsely
// declaring AI, and a broken signature does not make a declaration less
// self-incriminating).
func c2paEvidenceFor(p Part, asset []byte, opt MediaOptions) []Evidence {
	manifests, err := parseC2PA(p.Data)
	var out []Evidence
	if err != nil {
		out = append(out, infoEvidence("c2pa.error", p.Locator, err.Error()))
	}
	for mi, m := range manifests {
		active := mi == len(manifests)-1
		loc := p.Locator + " c2pa:" + printable(m.Label)
		role := "active"
		if !active {
			role = "ingredient"
		}
		var sig sigResult
		if active {
			sig = verifyManifest(m.box, asset, true, opt)
		} else {
			sig = verifyManifest(m.box, nil, false, opt)
		}
		out = append(out, infoEvidence("c2pa.signature", loc+"/c2pa.signature", sig.String()))
		if sig.TimeStamp != "" {
			out = append(out, infoEvidence("c2pa.timestamp", loc+"/c2pa.signature/sigTst", sig.TimeStamp))
		}
		out = append(out, infoEvidence("c2pa.manifest", loc,
			role+" manifest, signature "+string(sig.Status)+"; claim_generator: "+strings.Join(m.Generators, ", ")))
		hasDST := false
		for i, act := range m.Actions {
			if act.SourceType == "" {
				continue
			}
			scale, signal := 1.0, "c2pa.digitalSourceType"
			if !active {
				scale, signal = 0.6, "c2pa.ingredient.digitalSourceType"
			}
			ev, ok := dstEvidence(signal, loc+"/"+m.ActionsLoc[i]+".digitalSourceType", act.SourceType, scale)
			if !ok {
				continue
			}
			hasDST = true
			// An earlier (ingredient) manifest that declared AI means AI
			// content went into this asset: assisted, not generated,
			// unless the active manifest says more.
			if !active && ev.Class == ClassAIGenerated {
				ev.Class = ClassAIAssisted
			}
			ev.Excerpt = excerpt(strings.TrimSpace(act.Action + " " + ev.Excerpt + " " + act.Agent))
			if ev.Class == ClassHumanDeclared {
				switch sig.Status {
				case SigInvalid:
					// A capture claim whose signature or binding fails
					// says nothing: recorded, never counted.
					ev.Class, ev.Weight = ClassInfo, 0
					ev.Excerpt = excerpt("not counted, signature invalid: " + ev.Excerpt)
				case SigValid:
					ev.Weight *= 2
					ev.Excerpt = excerpt("validated: " + ev.Excerpt)
				}
			}
			out = append(out, ev)
		}
		if !active {
			continue
		}
		if !hasDST {
			out = append(out, actionNameEvidence(loc, m)...)
		}
		for _, g := range m.Generators {
			ev, ok := generatorNameEvidence("c2pa.claimGenerator", loc+"/claim_generator", g)
			if !ok {
				continue
			}
			if hasDST {
				// The actions already say what kind of AI use this was;
				// the generator name must not upgrade an edit to "generated".
				ev.Tier, ev.Weight = TierWeakClaim, 1
			}
			out = append(out, ev)
		}
	}
	return out
}

// actionNameEvidence reads the software agent and description of the
// active manifest's actions when no action carries a digitalSourceType
// (Bing Image Creator writes c2pa.created, description "AI Generated
// Image", softwareAgent "Image Creator from Designer" and nothing else).
// A known generator's name is tier-0 evidence, as for claim generators; a
// description that merely says "AI generated" is a tier-1 claim: it keeps
// the asset out of human_declared but does not label it on its own.
func actionNameEvidence(loc string, m c2paManifest) []Evidence {
	var out []Evidence
	for i, act := range m.Actions {
		aloc := loc + "/" + m.ActionsLoc[i]
		named := false
		for _, f := range []struct{ field, v string }{{"softwareAgent", act.Agent}, {"description", act.Description}} {
			if ev, ok := generatorNameEvidence("c2pa.action.generator", aloc+"."+f.field, f.v); ok {
				ev.Excerpt = excerpt(act.Action + " " + ev.Excerpt)
				out = append(out, ev)
				named = true
			}
		}
		if !named && aiDescription(act.Description) {
			out = append(out, Evidence{Signal: "c2pa.action.description", Class: ClassAIGenerated, Weight: 1.5,
				Tier: TierWeakClaim, Locator: aloc + ".description", Excerpt: excerpt(act.Action + " " + act.Description)})
		}
	}
	return out
}

// aiDescription reports whether an action description plainly says the
// asset was AI generated ("AI Generated Image", "Generated with AI").
func aiDescription(d string) bool {
	d = strings.ToLower(strings.Join(strings.Fields(strings.NewReplacer("-", " ", "_", " ").Replace(d)), " "))
	if d == "" || len(d) > 200 {
		return false
	}
	for _, p := range []string{"ai generated", "generated by ai", "generated with ai", "generated using ai", "created with ai", "created by ai"} {
		if strings.HasPrefix(d, p) || strings.Contains(d, " "+p) {
			return true
		}
	}
	return false
}

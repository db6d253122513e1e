package main

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"sort"
)

// Minimal CBOR encoder and JUMBF/C2PA store builder for unsigned fixture
// manifests. The stores have the real box structure (store → manifest →
// assertion store / claim / signature) but no valid signature: the
// classifier does not validate signatures, and says so in its evidence.

func cborHead(major byte, n uint64) []byte {
	switch {
	case n < 24:
		return []byte{major<<5 | byte(n)}
	case n < 1<<8:
		return []byte{major<<5 | 24, byte(n)}
	case n < 1<<16:
		return binary.BigEndian.AppendUint16([]byte{major<<5 | 25}, uint16(n))
	case n < 1<<32:
		return binary.BigEndian.AppendUint32([]byte{major<<5 | 26}, uint32(n))
	}
	return binary.BigEndian.AppendUint64([]byte{major<<5 | 27}, n)
}

// cborEnc encodes maps with sorted keys, so output is deterministic.
func cborEnc(v any) []byte {
	switch v := v.(type) {
	case nil:
		return []byte{0xF6}
	case bool:
		if v {
			return []byte{0xF5}
		}
		return []byte{0xF4}
	case int:
		if v < 0 {
			return cborHead(1, uint64(-1-v))
		}
		return cborHead(0, uint64(v))
	case float64:
		return binary.BigEndian.AppendUint64([]byte{0xFB}, math.Float64bits(v))
	case string:
		return append(cborHead(3, uint64(len(v))), v...)
	case []byte:
		return append(cborHead(2, uint64(len(v))), v...)
	case []any:
		out := cborHead(4, uint64(len(v)))
		for _, x := range v {
			out = append(out, cborEnc(x)...)
		}
		return out
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := cborHead(5, uint64(len(v)))
		for _, k := range keys {
			out = append(out, cborEnc(k)...)
			out = append(out, cborEnc(v[k])...)
		}
		return out
	}
	panic("cborEnc: unsupported type")
}

// box returns an ISO-BMFF style box.
func box(typ string, payload []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(8+len(payload)))
	out = append(out, typ...)
	return append(out, payload...)
}

var c2paUUIDTail = []byte{0x00, 0x11, 0x00, 0x10, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71}

// superbox builds jumb(jumd(UUID tag+tail, toggles 0x03, label), children...).
func superbox(tag, label string, children ...[]byte) []byte {
	jumd := append([]byte(tag), c2paUUIDTail...)
	jumd = append(jumd, 0x03)
	jumd = append(jumd, label...)
	jumd = append(jumd, 0)
	payload := box("jumd", jumd)
	for _, c := range children {
		payload = append(payload, c...)
	}
	return box("jumb", payload)
}

type assertion struct {
	label string
	cbor  any // CBOR content, or
	json  any // JSON content (old-style assertion)
}

type manifest struct {
	label      string
	claim      map[string]any
	claimLabel string // default "c2pa.claim.v2"
	assertions []assertion
}

func c2paStore(manifests ...manifest) []byte {
	var ms [][]byte
	for _, m := range manifests {
		var as [][]byte
		for _, a := range m.assertions {
			if a.json != nil {
				j, _ := json.Marshal(a.json)
				as = append(as, superbox("json", a.label, box("json", j)))
			} else {
				as = append(as, superbox("cbor", a.label, box("cbor", cborEnc(a.cbor))))
			}
		}
		cl := m.claimLabel
		if cl == "" {
			cl = "c2pa.claim.v2"
		}
		ms = append(ms, superbox("c2ma", m.label,
			superbox("c2as", "c2pa.assertions", as...),
			superbox("c2cl", cl, box("cbor", cborEnc(m.claim))),
			superbox("c2cs", "c2pa.signature", box("cbor", cborEnc([]byte("unsigned fixture")))),
		))
	}
	return superbox("c2pa", "c2pa", ms...)
}

const dstURI = "http://cv.iptc.org/newscodes/digitalsourcetype/"

// actionsV2 is a c2pa.actions.v2 assertion with one action.
func actionsV2(action, dst, agent string) assertion {
	act := map[string]any{"action": action}
	if dst != "" {
		act["digitalSourceType"] = dstURI + dst
	}
	if agent != "" {
		act["softwareAgent"] = map[string]any{"name": agent}
	}
	return assertion{label: "c2pa.actions.v2", cbor: map[string]any{"actions": []any{act}}}
}

func hashData() assertion {
	return assertion{label: "c2pa.hash.data", cbor: map[string]any{
		"alg": "sha256", "hash": make([]byte, 32), "name": "jumbf manifest", "exclusions": []any{},
	}}
}

func claimV2(name, version string) map[string]any {
	return map[string]any{
		"claim_generator_info": map[string]any{"name": name, "version": version},
		"instanceID":           "xmp:iid:00000000-0000-4000-8000-000000000001",
		"signature":            "self#jumbf=c2pa.signature",
	}
}

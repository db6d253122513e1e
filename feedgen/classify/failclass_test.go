package classify

import (
	"encoding/binary"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/fxamacker/cbor/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Table tests for the failure classes measured on real files (issue 15):
// each was a real AI file the readers missed.

// cborFor encodes v with the maintained CBOR library (tests only).
func cborFor(t testing.TB, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	require.NoError(t, err)
	return b
}

// storeWith builds a one-manifest C2PA store with a claim and an actions
// assertion.
func storeWith(t testing.TB, claim map[string]any, actions []map[string]any) []byte {
	t.Helper()
	as := superbox("c2as", "c2pa.assertions",
		superbox("cbor", "c2pa.actions.v2", box("cbor", cborFor(t, map[string]any{"actions": actions}))))
	cl := superbox("c2cl", "c2pa.claim.v2", box("cbor", cborFor(t, claim)))
	return superbox("c2pa", "c2pa", superbox("c2ma", "urn:c2pa:test", as, cl))
}

// app11From builds APP11 segments numbered from z0.
func app11From(en uint16, z0 uint32, store []byte, chunk int) [][]byte {
	var segs [][]byte
	z := z0
	for off := 0; off < len(store); off += chunk {
		p := []byte("JP")
		p = binary.BigEndian.AppendUint16(p, en)
		p = binary.BigEndian.AppendUint32(p, z)
		if z > z0 {
			p = append(p, store[:8]...)
		}
		p = append(p, store[off:min(off+chunk, len(store))]...)
		segs = append(segs, jpegSegment(0xEB, p))
		z++
	}
	return segs
}

func TestAPP11SequenceStart(t *testing.T) {
	store := storeWith(t, map[string]any{"claim_generator_info": map[string]any{"name": "x"}},
		[]map[string]any{{"action": "c2pa.created", "digitalSourceType": dstBase + "trainedAlgorithmicMedia"}})
	tests := []struct {
		name   string
		z0     uint32
		chunk  int
		stored bool
	}{
		{"Z from 1, one segment", 1, 1 << 16, true},
		{"Z from 1, split", 1, 40, true},
		{"Z from 0, one segment (Bing Image Creator)", 0, 1 << 16, true},
		{"Z from 0, split", 0, 40, true},
		{"Z from 2 (first packet lost)", 2, 40, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md, err := parseJPEG(jpegWith(app11From(0x3000, tt.z0, store, tt.chunk)...))
			require.NoError(t, err)
			if !tt.stored {
				assert.Empty(t, md.C2PA)
				require.NotEmpty(t, md.Problems)
				assert.ErrorIs(t, md.Problems[0], ErrMalformed)
				return
			}
			assert.Empty(t, md.Problems)
			require.Len(t, md.C2PA, 1)
			assert.Equal(t, store, md.C2PA[0].Data)
			v := Combine(MediaEvidence(Media{CID: "b", Bytes: jpegWith(app11From(0x3000, tt.z0, store, tt.chunk)...)}))
			assert.Equal(t, LabelAIGenerated, v.Label)
		})
	}
}

func TestC2PAGeneratorNames(t *testing.T) {
	created := func(extra map[string]any) []map[string]any {
		a := map[string]any{"action": "c2pa.created"}
		for k, v := range extra {
			a[k] = v
		}
		return []map[string]any{a}
	}
	gen := func(s string) map[string]any { return map[string]any{"claim_generator": s} }
	tests := []struct {
		name    string
		claim   map[string]any
		actions []map[string]any
		label   Label
		signals []string // non-info signals, any order
		tier0   bool     // some AI evidence is tier 0
	}{
		{"Bing: Microsoft_Responsible_AI, description only", gen("Microsoft_Responsible_AI/1.0"),
			created(map[string]any{"description": "AI Generated Image"}), LabelAIGenerated, []string{"c2pa.claimGenerator", "c2pa.action.description"}, true},
		{"Bing: agent names the generator", map[string]any{"claim_generator_info": []any{map[string]any{"name": "Microsoft Responsible AI Image Provenance", "version": "1.0"}}},
			created(map[string]any{"description": "AI Generated Image", "softwareAgent": "Image Creator from Designer"}), LabelAIGenerated, []string{"c2pa.action.generator"}, true},
		{"agent as a map", gen("someapp/1.0"),
			created(map[string]any{"softwareAgent": map[string]any{"name": "Adobe Firefly", "version": "3"}}), LabelAIGenerated, []string{"c2pa.action.generator"}, true},
		{"description names a generator", gen("someapp/1.0"),
			created(map[string]any{"description": "Midjourney v6"}), LabelAIGenerated, []string{"c2pa.action.generator"}, true},
		{"unknown generator, AI description: weak claim only", gen("make_test_images/0.33"),
			created(map[string]any{"description": "AI Generated Image"}), LabelUnknown, []string{"c2pa.action.description"}, false},
		{"unknown generator, plain description", gen("Photoshop/26"),
			created(map[string]any{"description": "Cropped and exposure changed"}), LabelUnknown, nil, false},
		{"prose mentioning a generator is not a name", gen("editor/1"),
			created(map[string]any{"description": "stable diffusion is not used here"}), LabelUnknown, nil, false},
		{"source type decides; names do not upgrade an edit", gen("Adobe Firefly/3"),
			[]map[string]any{{"action": "c2pa.edited", "digitalSourceType": dstBase + "compositeWithTrainedAlgorithmicMedia", "softwareAgent": "Adobe Firefly"}},
			LabelAIAssisted, []string{"c2pa.digitalSourceType", "c2pa.claimGenerator"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := c2paEvidence(Part{Locator: "t", Data: storeWith(t, tt.claim, tt.actions)})
			v := Combine(ev)
			assert.Equal(t, tt.label, v.Label, "%+v", v.Evidence)
			got := map[string]bool{}
			tier0 := false
			for _, e := range ev {
				if e.Class != ClassInfo {
					got[e.Signal] = true
					tier0 = tier0 || e.Tier == TierDeterministic && e.Class.isAI()
				}
			}
			assert.Len(t, got, len(tt.signals), "%v", got)
			for _, s := range tt.signals {
				assert.True(t, got[s], "missing %s in %v", s, got)
			}
			assert.Equal(t, tt.tier0, tier0)
		})
	}
}

func TestA1111Hashes(t *testing.T) {
	base := "a castle\nNegative prompt: blurry\nSteps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234, Size: 512x768, Model hash: 6ce0161689, Model: v1-5"
	tests := []struct {
		name string
		v    string
		ok   bool
	}{
		{"hashes JSON with ':' in keys", base + `, Lora hashes: "add_detail: 7c6bad76eb54", Hashes: {"vae": "c6a580b13a", "model": "6ce0161689", "lora:add_detail": "7c6bad76eb", "embed:easynegative": "c74b4e810b"}`, true},
		{"hashes JSON then more keys", base + `, Hashes: {"model": "6ce0161689"}, Version: v1.6.0`, true},
		{"nested JSON with commas in strings", base + `, Hashes: {"a": "x, y", "b": [1, 2, {"c": "d: e"}]}, Version: f2.0`, true},
		{"escaped quote in JSON string", base + `, Hashes: {"a\"b": "c"}`, true},
		{"unbalanced brace", base + `, Hashes: {"model": "6ce0161689"`, false},
		{"stray close brace", base + `, Hashes: }`, false},
		{"key with colon at top level", base + `, a:b: c`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ok := a1111Params(tt.v)
			assert.Equal(t, tt.ok, ok)
			sig := fieldSignals(TextField{Key: "parameters", Value: tt.v})
			if tt.ok {
				assert.Equal(t, []string{"gen.a1111"}, sig)
			} else {
				assert.Empty(t, sig)
			}
		})
	}
}

// tiffEntries writes a little-endian TIFF whose IFD0 holds the given
// UNDEFINED entries and, when exif is non-nil, an Exif IFD with them.
func tiffEntries(ifd0, exif map[uint16][]byte) []byte {
	bo := binary.LittleEndian
	type ent struct {
		tag  uint16
		data []byte
	}
	list := func(m map[uint16][]byte) []ent {
		var out []ent
		for _, tag := range []uint16{tagImageDescription, tagMake, tagModel, tagSoftware, tagUserComment} {
			if v, ok := m[tag]; ok {
				out = append(out, ent{tag, v})
			}
		}
		return out
	}
	e0, e1 := list(ifd0), list(exif)
	n0 := len(e0)
	if exif != nil {
		n0++
	}
	ifd1Off := 8 + 2 + 12*n0 + 4
	dataOff := ifd1Off
	if exif != nil {
		dataOff += 2 + 12*len(e1) + 4
	}
	out := bo.AppendUint32([]byte("II*\x00"), 8)
	var data []byte
	write := func(l []ent, sub bool) {
		n := len(l)
		if sub {
			n++
		}
		out = bo.AppendUint16(out, uint16(n))
		for _, e := range l {
			out = bo.AppendUint16(out, e.tag)
			out = bo.AppendUint16(out, 7)
			out = bo.AppendUint32(out, uint32(len(e.data)))
			out = bo.AppendUint32(out, uint32(dataOff+len(data)))
			data = append(data, e.data...)
		}
		if sub {
			out = bo.AppendUint16(out, tagExifIFD)
			out = bo.AppendUint16(out, 4)
			out = bo.AppendUint32(out, 1)
			out = bo.AppendUint32(out, uint32(ifd1Off))
		}
		out = bo.AppendUint32(out, 0)
	}
	write(e0, exif != nil)
	if exif != nil {
		write(e1, false)
	}
	return append(out, data...)
}

func TestComfyUIUserComment(t *testing.T) {
	graph := `{"3":{"class_type":"KSampler","inputs":{"seed":1,"steps":20}},"4":{"class_type":"CheckpointLoaderSimple","inputs":{"ckpt_name":"sd_xl.safetensors"}}}`
	uni := func(s string) []byte { return append([]byte("UNICODE\x00"), utf16Bytes(s, binary.BigEndian)...) }
	asc := func(s string) []byte { return append([]byte("ASCII\x00\x00\x00"), s...) }
	tests := []struct {
		name      string
		ifd0, sub map[uint16][]byte
		locator   string // "" = no evidence
	}{
		{"bare graph in Exif IFD", nil, map[uint16][]byte{tagUserComment: asc(graph)}, "ExifIFD/UserComment"},
		{"wrapped prompt in Exif IFD, UTF-16", nil, map[uint16][]byte{tagUserComment: uni(`{"prompt": ` + graph + `, "workflow": {"nodes": []}}`)}, "ExifIFD/UserComment"},
		{"wrapped prompt as a JSON string", nil, map[uint16][]byte{tagUserComment: asc(`{"prompt": ` + strings.ReplaceAll(`"`+strings.ReplaceAll(graph, `"`, `\"`)+`"`, "\n", "") + `}`)}, "ExifIFD/UserComment"},
		{"graph in IFD0 UserComment", map[uint16][]byte{tagUserComment: asc(graph)}, nil, "IFD0/UserComment"},
		{"wrapped graph in IFD0, no Exif IFD", map[uint16][]byte{tagUserComment: uni(`{"prompt":` + graph + `}`)}, nil, "IFD0/UserComment"},
		{"JSON without class_type", nil, map[uint16][]byte{tagUserComment: asc(`{"prompt": {"1": {"type": "x"}}}`)}, ""},
		{"prompt is plain text", nil, map[uint16][]byte{tagUserComment: asc(`{"prompt": "a cat on a mat"}`)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := exifEvidence(Part{Locator: "jpeg:APP1[Exif]", Data: tiffEntries(tt.ifd0, tt.sub)})
			var comfy []Evidence
			for _, e := range ev {
				if e.Signal == "gen.comfyui" {
					comfy = append(comfy, e)
				}
			}
			if tt.locator == "" {
				assert.Empty(t, comfy, "%+v", ev)
				return
			}
			require.Len(t, comfy, 1, "%+v", ev)
			assert.Contains(t, comfy[0].Locator, tt.locator)
			assert.Contains(t, comfy[0].Excerpt, "KSampler")
			assert.Equal(t, LabelAIGenerated, Combine(ev).Label)
		})
	}
}

func TestFooocusParameters(t *testing.T) {
	fooocus := `{"adm_guidance": "(1.5, 0.8, 0.3)", "base_model": "juggernautXL_v8Rundiffusion", "full_prompt": ["a cat"], "guidance_scale": 4, "performance": "Speed", "prompt": "a cat", "sampler": "dpmpp_2m_sde_gpu", "scheduler": "karras", "seed": "6952411511246973023", "steps": 30, "version": "Fooocus v2.4.3"}`
	tests := []struct {
		name   string
		fields []TextField
		want   []string
	}{
		{"parameters + scheme chunk", []TextField{{Key: "parameters", Value: fooocus}, {Key: "fooocus_scheme", Value: "fooocus"}}, []string{"gen.fooocus"}},
		{"parameters, version names Fooocus", []TextField{{Key: "parameters", Value: fooocus}}, []string{"gen.fooocus"}},
		{"other SD JSON in parameters", []TextField{{Key: "parameters", Value: `{"steps": 20, "sampler": "euler", "seed": 5}`}}, []string{"gen.sdjson"}},
		{"Fooocus-named JSON without settings", []TextField{{Key: "parameters", Value: `{"version": "Fooocus v2", "base_model": "x"}`}, {Key: "fooocus_scheme", Value: "fooocus"}}, nil},
		{"unrelated JSON in parameters", []TextField{{Key: "parameters", Value: `{"width": 512, "note": "resized"}`}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, fieldSignals(tt.fields...))
		})
	}
}

func TestInvokeAIDream(t *testing.T) {
	tests := []struct {
		name string
		v    string
		ok   bool
	}{
		{"real 2.x line with -cf and two-valued -U", `"professional photo [rendering, glowing eyes]" -s 50 -S 2980747362 -W 512 -H 768 -C 5 -A k_lms -G 0.9 -cf 0.75 -U 4 0.95`, true},
		{"valueless switch", `"a fox" -s 30 -S 7 -F -W 512 -H 512`, true},
		{"negative numbers are values", `"a fox" -s 30 -S 7 -v -0.5`, true},
		{"long option is not a switch", `"a fox" -s 30 -S 7 --x 1`, false},
		{"plain", `"a fox" -s 50 -S 42 -W 512 -H 512 -C 7.5 -A k_lms`, true},
		{"steps not a number", `"a fox" -s many -S 42`, false},
		{"no seed", `"a fox" -s 50 -W 512 -H 512`, false},
		{"token before any switch", `"a fox" and then -s 50 -S 42`, false},
		{"duplicate switch", `"a fox" -s 50 -S 42 -s 10`, false},
		{"prose", `"I had a dream" - said someone, long ago`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ok := dreamLine(tt.v)
			assert.Equal(t, tt.ok, ok)
		})
	}
}

func TestXMPWideEncodings(t *testing.T) {
	packet := `<?xpacket begin="` + "\uFEFF" + `" id="W5M0MpCehiHzreSzNTczkc9d"?>` + rdfOpen +
		`<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" Iptc4xmpExt:DigitalSourceType="` + dstBase + `trainedAlgorithmicMedia"/>` +
		rdfClose + `<?xpacket end="w"?>`
	decl := `<?xml version="1.0" encoding="UTF-16"?>`
	u16 := func(s string, bo binary.AppendByteOrder, bom bool) []byte {
		var b []byte
		if bom {
			b = bo.AppendUint16(b, 0xFEFF)
		}
		for _, u := range utf16.Encode([]rune(s)) {
			b = bo.AppendUint16(b, u)
		}
		return b
	}
	u32 := func(s string, bo binary.AppendByteOrder) []byte {
		var b []byte
		for _, r := range s {
			b = bo.AppendUint32(b, uint32(r))
		}
		return b
	}
	le, be := binary.LittleEndian, binary.BigEndian
	tests := []struct {
		name string
		data []byte
		ai   bool
	}{
		{"UTF-8", []byte(packet), true},
		{"UTF-8 BOM", append([]byte{0xEF, 0xBB, 0xBF}, packet...), true},
		{"UTF-16LE BOM", u16(packet, le, true), true},
		{"UTF-16BE BOM", u16(packet, be, true), true},
		{"UTF-16LE no BOM", u16(packet, le, false), true},
		{"UTF-16BE no BOM", u16(packet, be, false), true},
		{"UTF-16LE with encoding declaration", u16(decl+packet, le, true), true},
		{"UTF-16 trailing padding", append(u16(packet, le, true), 0, 0, ' ', 0), true},
		{"UTF-32BE", u32(packet, be), true},
		{"UTF-32LE", u32(packet, le), true},
		{"foreign charset declared", []byte(`<?xml version="1.0" encoding="ISO-8859-1"?>` + packet), false},
		{"UTF-8 packet claiming UTF-16", []byte(decl + packet), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := xmpEvidence(Part{Locator: "t", Data: tt.data})
			v := Combine(ev)
			if tt.ai {
				assert.Equal(t, LabelAIGenerated, v.Label, "%+v", ev)
				return
			}
			assert.Equal(t, LabelUnknown, v.Label)
			require.NotEmpty(t, ev)
			assert.Equal(t, "xmp.error", ev[0].Signal)
		})
	}
}

package classify

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func bbox(typ string, payload ...[]byte) []byte {
	n := 8
	for _, p := range payload {
		n += len(p)
	}
	out := binary.BigEndian.AppendUint32(nil, uint32(n))
	out = append(out, typ...)
	for _, p := range payload {
		out = append(out, p...)
	}
	return out
}

func uuidBox(uuid []byte, payload []byte) []byte { return bbox("uuid", uuid, payload) }

// c2paUUIDBox is the C2PA BMFF manifest box: full box header, purpose
// "manifest", u64 Merkle offset, store.
func c2paUUIDBox(store []byte) []byte {
	p := append([]byte{0, 0, 0, 0}, "manifest\x00"...)
	p = binary.BigEndian.AppendUint64(p, 0)
	return uuidBox(bmffC2PAUUID, append(p, store...))
}

func ftyp(brand string) []byte { return bbox("ftyp", []byte(brand), []byte{0, 0, 0, 0}, []byte(brand)) }

// heifWithItems builds a HEIF file whose meta has an Exif item and an XMP
// mime item stored in mdat, located by iloc (version 0, 4-byte fields).
func heifWithItems(brand string, exif, xmp []byte) []byte {
	infe := func(id uint16, typ, ctype string) []byte {
		p := []byte{2, 0, 0, 0}
		p = binary.BigEndian.AppendUint16(p, id)
		p = append(p, 0, 0)
		p = append(p, typ...)
		p = append(p, 0) // empty item name
		if ctype != "" {
			p = append(append(p, ctype...), 0)
		}
		return bbox("infe", p)
	}
	iinf := bbox("iinf", []byte{0, 0, 0, 0, 0, 2}, infe(1, "Exif", ""), infe(2, "mime", "application/rdf+xml"))
	exifItem := append([]byte{0, 0, 0, 6}, append([]byte("Exif\x00\x00"), exif...)...)
	iloc := func(base int) []byte {
		p := []byte{0, 0, 0, 0, 0x44, 0x00}
		p = binary.BigEndian.AppendUint16(p, 2)
		for i, it := range [][]byte{exifItem, xmp} {
			p = binary.BigEndian.AppendUint16(p, uint16(i+1))
			p = binary.BigEndian.AppendUint16(p, 0) // data_reference_index
			p = binary.BigEndian.AppendUint16(p, 1) // one extent
			off := base
			if i == 1 {
				off += len(exifItem)
			}
			p = binary.BigEndian.AppendUint32(p, uint32(off))
			p = binary.BigEndian.AppendUint32(p, uint32(len(it)))
		}
		return bbox("iloc", p)
	}
	hdlr := bbox("hdlr", make([]byte, 4+4), []byte("pict"), make([]byte, 13))
	head := ftyp(brand)
	meta := bbox("meta", []byte{0, 0, 0, 0}, hdlr, iinf, iloc(0))
	base := len(head) + len(meta) + 8 // mdat payload
	meta = bbox("meta", []byte{0, 0, 0, 0}, hdlr, iinf, iloc(base))
	out := append(head, meta...)
	return append(out, bbox("mdat", exifItem, xmp)...)
}

func TestBMFF(t *testing.T) {
	trained := storeWith(t, map[string]any{"claim_generator": "x"},
		[]map[string]any{{"action": "c2pa.created", "digitalSourceType": dstBase + "trainedAlgorithmicMedia"}})
	xmp := []byte(rdfOpen + `<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" Iptc4xmpExt:DigitalSourceType="` + dstBase + `compositeWithTrainedAlgorithmicMedia"/>` + rdfClose)
	camera := tiffBuild(binary.LittleEndian, map[uint16]string{tagMake: "Apple", tagModel: "iPhone 15 Pro"}, nil)
	moov := bbox("moov", bbox("mvhd", make([]byte, 100)), bbox("udta", bbox("XMP_", xmp)))
	tests := []struct {
		name    string
		file    []byte
		format  string
		label   Label
		signals []string
		problem bool
	}{
		{"MP4 with C2PA uuid box", append(append(ftyp("isom"), c2paUUIDBox(trained)...), bbox("mdat", []byte("frames"))...), "mp4", LabelAIGenerated, []string{"c2pa.digitalSourceType"}, false},
		{"MP4, C2PA after mdat", append(append(ftyp("mp42"), bbox("mdat", make([]byte, 1000))...), c2paUUIDBox(trained)...), "mp4", LabelAIGenerated, []string{"c2pa.digitalSourceType"}, false},
		{"MOV with XMP uuid box", append(ftyp("qt  "), uuidBox(bmffXMPUUID, xmp)...), "mov", LabelAIAssisted, []string{"xmp.digitalSourceType"}, false},
		{"MP4 with moov/udta/XMP_", append(ftyp("isom"), moov...), "mp4", LabelAIAssisted, []string{"xmp.digitalSourceType"}, false},
		{"old QuickTime without ftyp", moov, "mov", LabelAIAssisted, []string{"xmp.digitalSourceType"}, false},
		{"HEIC Exif + XMP items", heifWithItems("heic", camera, xmp), "heic", LabelAIAssisted, []string{"xmp.digitalSourceType", "exif.camera"}, false},
		{"AVIF camera Exif only", heifWithItems("avif", camera, []byte(rdfOpen+rdfClose)), "avif", LabelHumanDeclared, []string{"exif.camera"}, false},
		{"HEIC with C2PA", append(heifWithItems("heic", camera, []byte(rdfOpen+rdfClose)), c2paUUIDBox(trained)...), "heic", LabelAIGenerated, []string{"c2pa.digitalSourceType", "exif.camera"}, false},
		{"merkle box only", append(ftyp("isom"), uuidBox(bmffC2PAUUID, append([]byte{0, 0, 0, 0}, "merkle\x00\x00\x00"...))...), "mp4", LabelUnknown, nil, false},
		{"truncated box", append(ftyp("isom"), c2paUUIDBox(trained)[:40]...), "mp4", LabelUnknown, nil, true},
		{"C2PA box without purpose", append(ftyp("isom"), uuidBox(bmffC2PAUUID, []byte{0, 0, 0, 0, 'x'})...), "mp4", LabelUnknown, nil, true},
		{"box size below header", append(ftyp("isom"), 0, 0, 0, 4, 'f', 'r', 'e', 'e'), "mp4", LabelUnknown, nil, true},
		{"largesize box", append(ftyp("isom"), append([]byte{0, 0, 0, 1, 'f', 'r', 'e', 'e', 0, 0, 0, 0, 0, 0, 0, 20}, 1, 2, 3, 4)...), "mp4", LabelUnknown, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md, err := Extract(tt.file)
			require.NoError(t, err)
			assert.Equal(t, tt.format, md.Format)
			assert.Equal(t, tt.problem, len(md.Problems) > 0, "%v", md.Problems)
			for _, p := range md.Problems {
				assertSentinel(t, p)
			}
			v := Combine(MediaEvidence(Media{CID: "b", Bytes: tt.file}))
			assert.Equal(t, tt.label, v.Label, "%+v", v.Evidence)
			got := signalsOf(v)
			assert.ElementsMatch(t, tt.signals, got)
		})
	}
}

func TestBMFFLimits(t *testing.T) {
	// Deep nesting stops at the cap.
	b := bbox("XMP_", []byte("<x/>"))
	for range 20 {
		b = bbox("udta", b)
	}
	md, err := Extract(append(ftyp("isom"), bbox("moov", b)...))
	require.NoError(t, err)
	require.NotEmpty(t, md.Problems)
	assert.ErrorIs(t, md.Problems[0], ErrLimit)
	// Every prefix and single-byte corruption of a HEIF parses without
	// panicking and reports only sentinel errors.
	camera := tiffBuild(binary.BigEndian, map[uint16]string{tagMake: "Canon", tagModel: "R5"}, nil)
	prefixes(heifWithItems("heic", camera, []byte(rdfOpen+rdfClose)), func(b []byte) {
		md, err := parseBMFF(b)
		if err != nil {
			assertSentinel(t, err)
			return
		}
		for _, p := range md.Problems {
			assertSentinel(t, p)
		}
	})
}

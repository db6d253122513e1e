package classify

import (
	"encoding/binary"
	"testing"
	"unicode/utf16"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type testOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// tiffBuild writes a TIFF with ASCII IFD0 entries and an optional Exif IFD
// holding one UserComment.
func tiffBuild(bo testOrder, ifd0 map[uint16]string, userComment []byte) []byte {
	type ent struct {
		tag, typ uint16
		data     []byte
	}
	var e0 []ent
	for _, tag := range []uint16{tagImageDescription, tagMake, tagModel, tagSoftware} {
		if v, ok := ifd0[tag]; ok {
			e0 = append(e0, ent{tag, 2, append([]byte(v), 0)})
		}
	}
	hasExif := userComment != nil
	n0 := len(e0)
	if hasExif {
		n0++
	}
	exifOff := 8 + 2 + 12*n0 + 4
	dataOff := exifOff
	if hasExif {
		dataOff += 2 + 12 + 4
	}
	var data, out []byte
	if bo.String() == "BigEndian" {
		out = []byte("MM\x00*")
	} else {
		out = []byte("II*\x00")
	}
	out = bo.AppendUint32(out, 8)
	write := func(list []ent) {
		out = bo.AppendUint16(out, uint16(len(list)))
		for _, e := range list {
			out = bo.AppendUint16(out, e.tag)
			out = bo.AppendUint16(out, e.typ)
			if e.tag == tagExifIFD {
				out = bo.AppendUint32(out, 1)
				out = bo.AppendUint32(out, uint32(exifOff))
				continue
			}
			out = bo.AppendUint32(out, uint32(len(e.data)))
			if len(e.data) <= 4 {
				v := make([]byte, 4)
				copy(v, e.data)
				out = append(out, v...)
				continue
			}
			out = bo.AppendUint32(out, uint32(dataOff+len(data)))
			data = append(data, e.data...)
		}
		out = bo.AppendUint32(out, 0)
	}
	if hasExif {
		e0 = append(e0, ent{tag: tagExifIFD, typ: 4})
	}
	write(e0)
	if hasExif {
		write([]ent{{tagUserComment, 7, userComment}})
	}
	return append(out, data...)
}

func utf16Bytes(s string, bo testOrder) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = bo.AppendUint16(b, u)
	}
	return b
}

func TestEXIFByteOrders(t *testing.T) {
	for _, bo := range []testOrder{binary.LittleEndian, binary.BigEndian} {
		t.Run(bo.String(), func(t *testing.T) {
			b := tiffBuild(bo, map[uint16]string{tagMake: "Fuji", tagModel: "X-T5", tagSoftware: "ComfyUI", tagImageDescription: "ab"},
				append([]byte("ASCII\x00\x00\x00"), "hello"...))
			f, err := parseEXIF(b)
			require.NoError(t, err)
			assert.Equal(t, exifFields{ImageDescription: "ab", Make: "Fuji", Model: "X-T5", Software: "ComfyUI", UserComment: "hello"}, *f)
			// With the JPEG prefix too.
			f, err = parseEXIF(append([]byte("Exif\x00\x00"), b...))
			require.NoError(t, err)
			assert.Equal(t, "Fuji", f.Make)
		})
	}
}

func TestUserComment(t *testing.T) {
	le, be := binary.LittleEndian, binary.BigEndian
	uni := []byte("UNICODE\x00")
	for name, tt := range map[string]struct {
		raw  []byte
		want string
	}{
		"utf16 BE in LE tiff": {append(uni, utf16Bytes("Steps: 1 ü", be)...), "Steps: 1 ü"},
		"utf16 LE":            {append(uni, utf16Bytes("Steps: 1 ü", le)...), "Steps: 1 ü"},
		"utf16 BOM":           {append(append(uni, 0xFE, 0xFF), utf16Bytes("hi", be)...), "hi"},
		"ascii":               {[]byte("ASCII\x00\x00\x00hi\x00"), "hi"},
		"undefined":           {[]byte("\x00\x00\x00\x00\x00\x00\x00\x00hi"), "hi"},
		"jis":                 {[]byte("JIS\x00\x00\x00\x00\x00\x1b$B"), ""},
		"no code":             {[]byte("{\"prompt\": 1}"), "{\"prompt\": 1}"},
		"short":               {[]byte("ab"), "ab"},
		"odd utf16":           {append(uni, 0, 'h', 0), "h"},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tt.want, decodeUserComment(tt.raw, le))
		})
	}
}

func TestEXIFCorrupt(t *testing.T) {
	le := binary.LittleEndian
	good := tiffBuild(le, map[uint16]string{tagMake: "Fuji", tagModel: "X-T5 with a longer name"}, []byte("ASCII\x00\x00\x00x"))
	prefixes(good, func(p []byte) {
		_, err := parseEXIF(p)
		assertSentinel(t, err)
	})
	_, err := parseEXIF([]byte("XX*\x00\x08\x00\x00\x00"))
	assert.ErrorIs(t, err, ErrMalformed)
	_, err = parseEXIF([]byte("II*\x00\xFF\xFF\xFF\xFF"))
	assert.ErrorIs(t, err, ErrTruncated)
	// Too many entries.
	b := append([]byte("II*\x00\x08\x00\x00\x00"), 0xFF, 0xFF)
	_, err = parseEXIF(b)
	assert.ErrorIs(t, err, ErrLimit)
	// IFD0 pointing back into the header.
	_, err = parseEXIF([]byte("II*\x00\x00\x00\x00\x00"))
	assert.ErrorIs(t, err, ErrTruncated)
	// A value offset past the end gives an empty field, not an error.
	v := tiffBuild(le, map[uint16]string{tagSoftware: "Stable Diffusion"}, nil)
	f, err := parseEXIF(v[:len(v)-4])
	require.NoError(t, err)
	assert.Empty(t, f.Software)
	// Exif IFD pointer looping to IFD0 is not followed twice.
	loop := tiffBuild(le, map[uint16]string{tagMake: "A"}, []byte("ASCII\x00\x00\x00x"))
	le.PutUint32(loop[8+2+12+8:], 8)
	f, err = parseEXIF(loop)
	require.NoError(t, err)
	assert.Equal(t, "A", f.Make)
}

func TestEXIFFixtures(t *testing.T) {
	parts, _, _ := fixtureParts(t)
	require.NotEmpty(t, parts)
	for _, p := range parts {
		_, err := parseEXIF(p)
		require.NoError(t, err)
		prefixes(p, func(b []byte) {
			_, err := parseEXIF(b)
			assertSentinel(t, err)
			_ = exifEvidence(Part{Locator: "t", Data: b})
		})
	}
}

func TestEXIFEvidence(t *testing.T) {
	le := binary.LittleEndian
	signals := func(b []byte) []string {
		var s []string
		for _, e := range exifEvidence(Part{Locator: "t", Data: b}) {
			s = append(s, e.Signal)
		}
		return s
	}
	assert.Equal(t, []string{"exif.camera"}, signals(tiffBuild(le, map[uint16]string{tagMake: "Canon", tagModel: "EOS R6",
		tagImageDescription: "made with Stable Diffusion, Steps: 20"}, nil)))
	assert.Equal(t, []string{"exif.software"}, signals(tiffBuild(le, map[uint16]string{tagSoftware: "NovelAI"}, nil)))
	assert.Empty(t, signals(tiffBuild(le, map[uint16]string{tagSoftware: "Adobe Photoshop 25.0", tagMake: "Canon"}, nil)))
	assert.Equal(t, []string{"exif.error"}, signals([]byte("junk")))
}

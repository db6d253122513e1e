package classify

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixtureFiles returns the corpus media files with one of the extensions,
// in name order.
func fixtureFiles(tb testing.TB, exts ...string) (names []string, data [][]byte) {
	tb.Helper()
	entries, err := os.ReadDir(corpusDir)
	require.NoError(tb, err)
	for _, e := range entries {
		for _, ext := range exts {
			if filepath.Ext(e.Name()) == ext {
				b, err := os.ReadFile(filepath.Join(corpusDir, e.Name()))
				require.NoError(tb, err)
				names = append(names, e.Name())
				data = append(data, b)
			}
		}
	}
	require.NotEmpty(tb, names)
	return names, data
}

// fixtureParts extracts the metadata parts of every fixture.
func fixtureParts(tb testing.TB) (exif, xmp, c2pa [][]byte) {
	_, files := fixtureFiles(tb, ".png", ".jpg", ".webp")
	for _, b := range files {
		md, err := Extract(b)
		require.NoError(tb, err)
		for _, p := range md.EXIF {
			exif = append(exif, p.Data)
		}
		for _, p := range md.XMP {
			xmp = append(xmp, p.Data)
		}
		for _, p := range md.C2PA {
			c2pa = append(c2pa, p.Data)
		}
	}
	return exif, xmp, c2pa
}

// cborBoxes returns every "cbor" content box in the fixture C2PA stores.
func cborBoxes(tb testing.TB) [][]byte {
	_, _, stores := fixtureParts(tb)
	var out [][]byte
	var walk func(b *jumbfBox)
	walk = func(b *jumbfBox) {
		for _, c := range b.Children {
			if c.Type == "cbor" {
				out = append(out, c.Data)
			}
			if c.Type == "jumb" {
				walk(c)
			}
		}
	}
	for _, s := range stores {
		if root, _ := parseJUMBF(s); root != nil {
			walk(root)
		}
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i]) < string(out[j]) })
	return out
}

// assertSentinel checks that err wraps one of the package's sentinels.
func assertSentinel(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	assert.True(t, errors.Is(err, ErrTruncated) || errors.Is(err, ErrMalformed) || errors.Is(err, ErrLimit) || errors.Is(err, ErrTooLarge),
		"error %v wraps no sentinel", err)
}

// prefixes calls fn with every prefix of b (every byte for small inputs,
// a stride for larger ones) and with single-byte corruptions.
func prefixes(b []byte, fn func([]byte)) {
	step := 1
	if len(b) > 4096 {
		step = len(b) / 4096
	}
	for n := 0; n < len(b); n += step {
		fn(b[:n])
	}
	for i := 0; i < len(b); i += 1 + len(b)/512 {
		c := append([]byte(nil), b...)
		c[i] ^= 0xFF
		fn(c)
	}
}

func pngChunkForTest(typ string, data []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	out = append(out, typ...)
	out = append(out, data...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(append([]byte(typ), data...)))
}

// pngWith builds a PNG with the given chunks (no image data; the walker
// does not need any).
func pngWith(chunks ...[]byte) []byte {
	out := append([]byte(nil), pngSignature...)
	out = append(out, pngChunkForTest("IHDR", make([]byte, 13))...)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return append(out, pngChunkForTest("IEND", nil)...)
}

func jpegSegment(marker byte, payload []byte) []byte {
	out := []byte{0xFF, marker}
	out = binary.BigEndian.AppendUint16(out, uint16(len(payload)+2))
	return append(out, payload...)
}

func jpegWith(segs ...[]byte) []byte {
	out := []byte{0xFF, 0xD8}
	for _, s := range segs {
		out = append(out, s...)
	}
	return append(out, 0xFF, 0xD9)
}

func box(typ string, payload []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(8+len(payload)))
	return append(append(out, typ...), payload...)
}

func superbox(tag, label string, children ...[]byte) []byte {
	jumd := append([]byte(tag), 0x00, 0x11, 0x00, 0x10, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71, 0x03)
	jumd = append(append(jumd, label...), 0)
	p := box("jumd", jumd)
	for _, c := range children {
		p = append(p, c...)
	}
	return box("jumb", p)
}

// MediaEvidence is MediaEvidenceWith without a trust list, at the current time.
func MediaEvidence(m Media) []Evidence { return MediaEvidenceWith(m, MediaOptions{}) }

// c2paEvidence turns one JUMBF part into evidence without an asset (so no hard
// binding can be checked) and without a trust list.
func c2paEvidence(p Part) []Evidence { return c2paEvidenceFor(p, nil, MediaOptions{}) }

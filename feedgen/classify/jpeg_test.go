package classify

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJPEGTruncatedAndCorrupted(t *testing.T) {
	names, files := fixtureFiles(t, ".jpg")
	for i, b := range files {
		t.Run(names[i], func(t *testing.T) {
			prefixes(b, func(p []byte) {
				md, err := parseJPEG(p)
				assertSentinel(t, err)
				require.NotNil(t, md)
				for _, pr := range md.Problems {
					assertSentinel(t, pr)
				}
				_ = MediaEvidence(Media{CID: "x", Bytes: p})
			})
		})
	}
}

func TestJPEGSegments(t *testing.T) {
	_, err := parseJPEG([]byte{0xFF})
	assert.ErrorIs(t, err, ErrMalformed)
	_, err = parseJPEG([]byte("GIF89a"))
	assert.ErrorIs(t, err, ErrMalformed)

	// Fill bytes before a marker, a standalone marker, then a COM.
	b := append([]byte{0xFF, 0xD8, 0xFF, 0xFF, 0xFF, 0x01}, jpegSegment(0xFE, []byte("hello"))...)
	md, err := parseJPEG(b)
	require.NoError(t, err)
	require.Len(t, md.Text, 1)
	assert.Equal(t, "hello", md.Text[0].Value)
	assert.Empty(t, md.Problems)

	// Segment length below 2, and past the end.
	md, err = parseJPEG([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x01})
	require.NoError(t, err)
	require.Len(t, md.Problems, 1)
	assert.ErrorIs(t, md.Problems[0], ErrMalformed)
	md, err = parseJPEG([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 'E', 'x'})
	require.NoError(t, err)
	require.Len(t, md.Problems, 1)
	assert.ErrorIs(t, md.Problems[0], ErrTruncated)

	// Nothing after SOS is read.
	b = jpegWith(jpegSegment(0xDA, []byte{0, 0}), jpegSegment(0xFE, []byte("after SOS")))
	md, err = parseJPEG(b)
	require.NoError(t, err)
	assert.Empty(t, md.Text)
}

// app11 builds APP11 JUMBF segments from a superbox, chunked.
func app11(en uint16, store []byte, chunk int) [][]byte {
	var segs [][]byte
	z := uint32(1)
	for off := 0; off < len(store); off += chunk {
		p := []byte("JP")
		p = binary.BigEndian.AppendUint16(p, en)
		p = binary.BigEndian.AppendUint32(p, z)
		if z > 1 {
			p = append(p, store[:8]...)
		}
		p = append(p, store[off:min(off+chunk, len(store))]...)
		segs = append(segs, jpegSegment(0xEB, p))
		z++
	}
	return segs
}

func TestAPP11Reassembly(t *testing.T) {
	_, _, stores := fixtureParts(t)
	store := stores[0]
	segs := app11(0x0211, store, 50)
	require.Greater(t, len(segs), 3)

	md, err := parseJPEG(jpegWith(segs...))
	require.NoError(t, err)
	require.Len(t, md.C2PA, 1)
	assert.Equal(t, store, md.C2PA[0].Data)
	assert.Empty(t, md.Problems)

	// Out of order: reassembled by sequence number.
	rev := make([][]byte, len(segs))
	for i := range segs {
		rev[len(segs)-1-i] = segs[i]
	}
	md, err = parseJPEG(jpegWith(rev...))
	require.NoError(t, err)
	require.Len(t, md.C2PA, 1)
	assert.Equal(t, store, md.C2PA[0].Data)

	// Duplicate packet: first kept, reported.
	dup := append([][]byte{segs[1]}, segs...)
	md, err = parseJPEG(jpegWith(dup...))
	require.NoError(t, err)
	require.Len(t, md.C2PA, 1)
	assert.Equal(t, store, md.C2PA[0].Data)
	assert.NotEmpty(t, md.Problems)

	// Missing Z=1: nothing assembled.
	md, err = parseJPEG(jpegWith(segs[1:]...))
	require.NoError(t, err)
	assert.Empty(t, md.C2PA)
	assert.ErrorIs(t, md.Problems[0], ErrMalformed)

	// Gap: the box is cut at the gap and fails to parse.
	gap := append(append([][]byte{}, segs[:2]...), segs[3:]...)
	md, err = parseJPEG(jpegWith(gap...))
	require.NoError(t, err)
	require.Len(t, md.C2PA, 1)
	assert.Less(t, len(md.C2PA[0].Data), len(store))
	assert.ErrorIs(t, md.Problems[0], ErrTruncated)
	ev := c2paEvidence(md.C2PA[0])
	require.NotEmpty(t, ev)
	for _, e := range ev {
		assert.False(t, e.Class.isAI(), "%+v", e)
	}

	// Two box instances: a C2PA store and unrelated APP11 data.
	other := jpegSegment(0xEB, append([]byte("JP\x00\x01\x00\x00\x00\x01"), []byte("not a jumbf box")...))
	md, err = parseJPEG(jpegWith(append([][]byte{other}, segs...)...))
	require.NoError(t, err)
	require.Len(t, md.C2PA, 1)
	assert.Equal(t, "jpeg:APP11[En=0211]", md.C2PA[0].Locator)

	// A continuation too short to hold the repeated header.
	short := jpegSegment(0xEB, []byte("JP\x02\x11\x00\x00\x00\x02abc"))
	md, err = parseJPEG(jpegWith(segs[0], short))
	require.NoError(t, err)
	assert.NotEmpty(t, md.Problems)
}

func TestExtendedXMP(t *testing.T) {
	prefix := []byte("http://ns.adobe.com/xmp/extension/\x00")
	guid := bytes.Repeat([]byte("A"), 32)
	ext := func(total, off uint32, chunk string) []byte {
		p := append(append([]byte(nil), prefix...), guid...)
		p = binary.BigEndian.AppendUint32(p, total)
		p = binary.BigEndian.AppendUint32(p, off)
		return jpegSegment(0xE1, append(p, chunk...))
	}
	md, err := parseJPEG(jpegWith(ext(10, 5, "world"), ext(10, 0, "hello")))
	require.NoError(t, err)
	require.Len(t, md.XMP, 1)
	assert.Equal(t, "helloworld", string(md.XMP[0].Data))
	assert.Empty(t, md.Problems)

	for name, seg := range map[string][]byte{
		"out of range": ext(10, 8, "world"),
		"huge total":   ext(1<<30, 0, "x"),
		"short header": jpegSegment(0xE1, append(append([]byte(nil), prefix...), "short"...)),
	} {
		t.Run(name, func(t *testing.T) {
			md, err := parseJPEG(jpegWith(seg))
			require.NoError(t, err)
			assert.NotEmpty(t, md.Problems)
		})
	}
	// Missing chunk: reported as truncated, bytes kept.
	md, err = parseJPEG(jpegWith(ext(10, 0, "hello")))
	require.NoError(t, err)
	require.Len(t, md.XMP, 1)
	assert.ErrorIs(t, md.Problems[0], ErrTruncated)
}

package classify

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func riff(chunks ...[]byte) []byte {
	body := []byte("WEBP")
	for _, c := range chunks {
		body = append(body, c...)
	}
	out := append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
	return append(out, body...)
}

func riffChunk(fourcc string, data []byte) []byte {
	out := append([]byte(fourcc), binary.LittleEndian.AppendUint32(nil, uint32(len(data)))...)
	out = append(out, data...)
	if len(data)%2 == 1 {
		out = append(out, 0)
	}
	return out
}

func TestWebPTruncatedAndCorrupted(t *testing.T) {
	names, files := fixtureFiles(t, ".webp")
	for i, b := range files {
		t.Run(names[i], func(t *testing.T) {
			prefixes(b, func(p []byte) {
				md, err := parseWebP(p)
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

func TestWebPChunks(t *testing.T) {
	tiff := []byte("II*\x00\x08\x00\x00\x00\x00\x00")
	b := riff(
		riffChunk("VP8L", []byte{1, 2, 3}), // odd size: padded
		riffChunk("EXIF", append([]byte("Exif\x00\x00"), tiff...)),
		riffChunk("XMP ", []byte("<x/>")),
		riffChunk("C2PA", []byte("jumbf")),
	)
	md, err := parseWebP(append(b, "trailing garbage"...))
	require.NoError(t, err)
	assert.Empty(t, md.Problems)
	require.Len(t, md.EXIF, 1)
	assert.Equal(t, tiff, md.EXIF[0].Data)
	require.Len(t, md.XMP, 1)
	require.Len(t, md.C2PA, 1)
	assert.Equal(t, "webp:C2PA", md.C2PA[0].Locator)

	// RIFF size larger than the data: chunks before the cut still read.
	cut := b[:len(b)-4]
	md, err = parseWebP(cut)
	require.NoError(t, err)
	assert.Len(t, md.EXIF, 1)
	assert.Len(t, md.XMP, 1)
	assert.Empty(t, md.C2PA)
	require.NotEmpty(t, md.Problems)
	assert.ErrorIs(t, md.Problems[0], ErrTruncated)

	// A chunk size that overflows.
	bad := riff(append([]byte("EXIF"), 0xFF, 0xFF, 0xFF, 0xFF))
	md, err = parseWebP(bad)
	require.NoError(t, err)
	assert.ErrorIs(t, md.Problems[0], ErrTruncated)

	_, err = parseWebP([]byte("RIFF\x00\x00\x00\x00WAVE"))
	assert.ErrorIs(t, err, ErrMalformed)
}

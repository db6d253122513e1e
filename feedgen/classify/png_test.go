package classify

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPNGTruncatedAndCorrupted(t *testing.T) {
	names, files := fixtureFiles(t, ".png")
	for i, b := range files {
		t.Run(names[i], func(t *testing.T) {
			prefixes(b, func(p []byte) {
				md, err := parsePNG(p)
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

func zlibBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestPNGTextChunks(t *testing.T) {
	itxt := func(flag byte, method byte, text []byte) []byte {
		d := append([]byte("parameters\x00"), flag, method)
		d = append(d, "en\x00Parameter\x00"...)
		return pngChunkForTest("iTXt", append(d, text...))
	}
	b := pngWith(
		pngChunkForTest("tEXt", []byte("Title\x00caf\xe9")),
		pngChunkForTest("zTXt", append([]byte("Comment\x00\x00"), zlibBytes([]byte("zipped"))...)),
		itxt(0, 0, []byte("plain ü")),
		itxt(1, 0, zlibBytes([]byte("deflated ü"))),
		pngChunkForTest("iTXt", []byte("XML:com.adobe.xmp\x00\x00\x00\x00\x00<x/>")),
	)
	md, err := parsePNG(b)
	require.NoError(t, err)
	assert.Empty(t, md.Problems)
	require.Len(t, md.Text, 4)
	assert.Equal(t, TextField{Key: "Title", Value: "café", Locator: "png:tEXt[Title]"}, md.Text[0])
	assert.Equal(t, "zipped", md.Text[1].Value)
	assert.Equal(t, "plain ü", md.Text[2].Value)
	assert.Equal(t, "deflated ü", md.Text[3].Value)
	require.Len(t, md.XMP, 1)
	assert.Equal(t, "<x/>", string(md.XMP[0].Data))
}

func TestPNGBadChunks(t *testing.T) {
	bomb := zlibBytes(make([]byte, 3<<20))
	require.Less(t, len(bomb), 8<<10)
	tests := map[string]struct {
		chunk []byte
		want  error
	}{
		"zip bomb":             {pngChunkForTest("zTXt", append([]byte("k\x00\x00"), bomb...)), ErrLimit},
		"zTXt bad method":      {pngChunkForTest("zTXt", []byte("k\x00\x01xx")), ErrMalformed},
		"zTXt bad stream":      {pngChunkForTest("zTXt", []byte("k\x00\x00not zlib")), ErrMalformed},
		"zTXt truncated":       {pngChunkForTest("zTXt", append([]byte("k\x00\x00"), zlibBytes([]byte("hello world"))[:6]...)), ErrMalformed},
		"no keyword NUL":       {pngChunkForTest("tEXt", bytes.Repeat([]byte("k"), 100)), ErrMalformed},
		"empty keyword":        {pngChunkForTest("tEXt", []byte("\x00value")), ErrMalformed},
		"iTXt bad flag":        {pngChunkForTest("iTXt", []byte("k\x00\x02\x00\x00\x00x")), ErrMalformed},
		"iTXt no flags":        {pngChunkForTest("iTXt", []byte("k\x00")), ErrTruncated},
		"iTXt no language NUL": {pngChunkForTest("iTXt", []byte("k\x00\x00\x00en")), ErrMalformed},
		"iTXt bad method":      {pngChunkForTest("iTXt", []byte("k\x00\x01\x07\x00\x00x")), ErrMalformed},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			md, err := parsePNG(pngWith(tt.chunk))
			require.NoError(t, err)
			require.Len(t, md.Problems, 1)
			assert.ErrorIs(t, md.Problems[0], tt.want)
			assert.Empty(t, md.Text)
		})
	}

	// Bad CRC: dropped and reported.
	c := pngChunkForTest("tEXt", []byte("parameters\x00x"))
	c[len(c)-1] ^= 1
	md, err := parsePNG(pngWith(c))
	require.NoError(t, err)
	assert.Empty(t, md.Text)
	assert.ErrorIs(t, md.Problems[0], ErrMalformed)

	// Length past the end.
	huge := binary.BigEndian.AppendUint32(nil, 0xFFFFFFF0)
	md, err = parsePNG(append(append(append([]byte(nil), pngSignature...), huge...), "tEXt"...))
	require.NoError(t, err)
	assert.ErrorIs(t, md.Problems[0], ErrTruncated)

	// Chunks after IEND are ignored.
	b := append(pngWith(), pngChunkForTest("tEXt", []byte("k\x00v"))...)
	md, err = parsePNG(b)
	require.NoError(t, err)
	assert.Empty(t, md.Text)

	_, err = parsePNG([]byte("\x89PNG"))
	assert.ErrorIs(t, err, ErrMalformed)
}

func TestExtractDispatch(t *testing.T) {
	_, err := Extract([]byte("GIF89a"))
	assert.ErrorIs(t, err, ErrMalformed)
	_, err = Extract(nil)
	assert.ErrorIs(t, err, ErrMalformed)
	_, err = Extract(make([]byte, MaxMediaBytes+1))
	assert.ErrorIs(t, err, ErrTooLarge)
	ev := MediaEvidence(Media{Bytes: []byte("GIF89a")})
	require.Len(t, ev, 1)
	assert.Equal(t, "media.error", ev[0].Signal)
	assert.Equal(t, ClassInfo, ev[0].Class)
	assert.Contains(t, ev[0].Locator, "blob:b")
	assert.Empty(t, MediaEvidence(Media{}))
}

func TestBlobCID(t *testing.T) {
	// CIDv1 raw sha-256 of the empty input (well-known value).
	assert.Equal(t, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", BlobCID(nil))
}

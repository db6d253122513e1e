package classify

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJUMBFFixtureStores(t *testing.T) {
	_, _, stores := fixtureParts(t)
	require.NotEmpty(t, stores)
	for _, s := range stores {
		prefixes(s, func(p []byte) {
			root, err := parseJUMBF(p)
			assertSentinel(t, err)
			if root != nil {
				assert.Equal(t, "jumb", root.Type)
			}
			ms, err := parseC2PA(p)
			assertSentinel(t, err)
			_ = ms
			_ = c2paEvidence(Part{Locator: "t", Data: p})
		})
	}
}

func TestJUMBFStructure(t *testing.T) {
	actions := cborEncodeForTest(t)
	store := superbox("c2pa", "c2pa",
		superbox("c2ma", "urn:c2pa:test",
			superbox("c2as", "c2pa.assertions",
				superbox("cbor", "c2pa.actions.v2__1", box("cbor", actions))),
		))
	root, err := parseJUMBF(store)
	require.NoError(t, err)
	assert.Equal(t, "c2pa", root.Label)
	assert.Equal(t, "c2pa", root.uuidTag())
	m := root.Children[0]
	assert.Equal(t, "urn:c2pa:test", m.Label)
	as := m.child("c2pa.assertions")
	require.NotNil(t, as)
	assert.Equal(t, actions, as.Children[0].content("cbor"))

	ms, err := parseC2PA(store)
	require.NoError(t, err)
	require.Len(t, ms, 1)
	require.Len(t, ms[0].Actions, 1)
	assert.Equal(t, "c2pa.created", ms[0].Actions[0].Action)
	assert.Equal(t, "trainedAlgorithmicMedia", ms[0].Actions[0].SourceType[len(ms[0].Actions[0].SourceType)-23:])
}

// cborEncodeForTest returns {"actions":[{"action":"c2pa.created","digitalSourceType":URI}]}.
func cborEncodeForTest(t *testing.T) []byte {
	t.Helper()
	text := func(s string) []byte {
		require.Less(t, len(s), 256)
		if len(s) < 24 {
			return append([]byte{0x60 | byte(len(s))}, s...)
		}
		return append([]byte{0x78, byte(len(s))}, s...)
	}
	var b []byte
	b = append(b, 0xA1)
	b = append(b, text("actions")...)
	b = append(b, 0x81, 0xA2)
	b = append(b, text("action")...)
	b = append(b, text("c2pa.created")...)
	b = append(b, text("digitalSourceType")...)
	b = append(b, text("http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia")...)
	return b
}

func TestJUMBFBoxHeaders(t *testing.T) {
	jumd := box("jumd", append(bytes.Repeat([]byte{0}, 16), 0x03, 'x', 0))
	// XLBox form.
	x := binary.BigEndian.AppendUint32(nil, 1)
	x = append(x, "jumb"...)
	x = binary.BigEndian.AppendUint64(x, uint64(16+len(jumd)))
	x = append(x, jumd...)
	root, err := parseJUMBF(x)
	require.NoError(t, err)
	assert.Equal(t, "x", root.Label)

	// LBox 0: to the end.
	z := append([]byte{0, 0, 0, 0}, "jumb"...)
	root, err = parseJUMBF(append(z, jumd...))
	require.NoError(t, err)
	assert.Equal(t, "x", root.Label)

	tests := map[string]struct {
		b    []byte
		want error
	}{
		"short header":    {[]byte{0, 0, 0}, ErrTruncated},
		"LBox below 8":    {[]byte{0, 0, 0, 4, 'j', 'u', 'm', 'b'}, ErrMalformed},
		"XLBox below 16":  {append([]byte{0, 0, 0, 1, 'j', 'u', 'm', 'b'}, 0, 0, 0, 0, 0, 0, 0, 8), ErrMalformed},
		"XLBox truncated": {[]byte{0, 0, 0, 1, 'j', 'u', 'm', 'b', 0}, ErrTruncated},
		"XLBox huge":      {append([]byte{0, 0, 0, 1, 'j', 'u', 'm', 'b'}, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF), ErrTruncated},
		"LBox past end":   {[]byte{0, 0, 1, 0, 'j', 'u', 'm', 'b'}, ErrTruncated},
		"not a superbox":  {box("free", nil), ErrMalformed},
		"empty superbox":  {box("jumb", nil), ErrMalformed},
		"no jumd first":   {box("jumb", box("cbor", []byte{0})), ErrMalformed},
		"short jumd":      {box("jumb", box("jumd", []byte{1, 2, 3})), ErrTruncated},
		"label no NUL":    {box("jumb", box("jumd", append(bytes.Repeat([]byte{0}, 16), 0x03, 'a', 'b'))), ErrMalformed},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := parseJUMBF(tt.b)
			assert.ErrorIs(t, err, tt.want)
		})
	}
}

func TestJUMBFLimits(t *testing.T) {
	// Nesting bomb.
	b := superbox("c2pa", "leaf")
	for i := 0; i < 100; i++ {
		b = superbox("c2pa", "n", b)
	}
	_, err := parseJUMBF(b)
	assert.ErrorIs(t, err, ErrLimit)

	// Box-count bomb: many tiny content boxes.
	var kids [][]byte
	for i := 0; i < maxJUMBFBoxes+10; i++ {
		kids = append(kids, box("free", nil))
	}
	root, err := parseJUMBF(superbox("c2pa", "c2pa", kids...))
	assert.ErrorIs(t, err, ErrLimit)
	require.NotNil(t, root)
	assert.LessOrEqual(t, len(root.Children), maxJUMBFBoxes)
}

func TestC2PAPartialAndForeign(t *testing.T) {
	// A damaged second manifest does not hide the complete first one.
	good := superbox("c2ma", "m1",
		superbox("c2as", "c2pa.assertions", superbox("cbor", "c2pa.actions", box("cbor", cborEncodeForTest(t)))))
	bad := box("jumb", box("jumd", []byte{1}))
	ms, err := parseC2PA(superbox("c2pa", "c2pa", good, bad))
	assert.ErrorIs(t, err, ErrTruncated)
	require.Len(t, ms, 1)
	assert.Len(t, ms[0].Actions, 1)

	// A JUMBF store that is not C2PA.
	_, err = parseC2PA(superbox("abcd", "other"))
	assert.ErrorIs(t, err, ErrMalformed)

	// Actions assertion with broken CBOR: reported, no evidence.
	broken := superbox("c2pa", "c2pa", superbox("c2ma", "m",
		superbox("c2as", "c2pa.assertions", superbox("cbor", "c2pa.actions.v2", box("cbor", []byte{0xBF})))))
	ev := c2paEvidence(Part{Locator: "t", Data: broken})
	var signals []string
	for _, e := range ev {
		signals = append(signals, e.Signal)
		assert.Equal(t, ClassInfo, e.Class)
	}
	assert.Contains(t, signals, "c2pa.error")

	// Missing content box.
	empty := superbox("c2pa", "c2pa", superbox("c2ma", "m",
		superbox("c2as", "c2pa.assertions", superbox("cbor", "c2pa.actions"))))
	_, err = parseC2PA(empty)
	assert.ErrorIs(t, err, ErrMalformed)
}

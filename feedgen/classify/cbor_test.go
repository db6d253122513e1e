package classify

import (
	"bytes"
	"encoding/hex"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCBORVectors(t *testing.T) {
	// RFC 8949 Appendix A examples.
	tests := []struct {
		hex  string
		want any
	}{
		{"00", int64(0)},
		{"1864", int64(100)},
		{"1b000000e8d4a51000", int64(1000000000000)},
		{"1bffffffffffffffff", float64(math.MaxUint64)},
		{"20", int64(-1)},
		{"3903e7", int64(-1000)},
		{"f93c00", 1.0},
		{"f97bff", 65504.0},
		{"f90001", 5.960464477539063e-8},
		{"f9c400", -4.0},
		{"fa47c35000", 100000.0},
		{"fb3ff199999999999a", 1.1},
		{"f4", false},
		{"f5", true},
		{"f6", nil},
		{"f7", nil},
		{"40", []byte{}},
		{"4401020304", []byte{1, 2, 3, 4}},
		{"6449455446", "IETF"},
		{"62c3bc", "ü"},
		{"80", []any{}},
		{"83010203", []any{int64(1), int64(2), int64(3)}},
		{"a26161016162820203", map[string]any{"a": int64(1), "b": []any{int64(2), int64(3)}}},
		{"a201020304", map[string]any{"1": int64(2), "3": int64(4)}},
		{"c074323031332d30332d32315432303a30343a30305a", "2013-03-21T20:04:00Z"},
		{"5f42010243030405ff", []byte{1, 2, 3, 4, 5}},
		{"7f657374726561646d696e67ff", "streaming"},
		{"9fff", []any{}},
		{"9f018202039f0405ffff", []any{int64(1), []any{int64(2), int64(3)}, []any{int64(4), int64(5)}}},
		{"bf6346756ef563416d7421ff", map[string]any{"Fun": true, "Amt": int64(-2)}},
		{"a2616101616102", map[string]any{"a": int64(1)}}, // duplicate key: first wins
	}
	for _, tt := range tests {
		t.Run(tt.hex, func(t *testing.T) {
			b, err := hex.DecodeString(tt.hex)
			require.NoError(t, err)
			got, err := decodeCBOR(b)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	v, err := decodeCBOR([]byte{0xF9, 0x7E, 0x00})
	require.NoError(t, err)
	assert.True(t, math.IsNaN(v.(float64)))
}

func TestCBORErrors(t *testing.T) {
	tests := map[string]struct {
		b    []byte
		want error
	}{
		"empty":              {nil, ErrTruncated},
		"reserved info":      {[]byte{0x1C}, ErrMalformed},
		"lone break":         {[]byte{0xFF}, ErrMalformed},
		"short argument":     {[]byte{0x19, 0x01}, ErrTruncated},
		"string past end":    {[]byte{0x65, 'a'}, ErrTruncated},
		"huge string":        {[]byte{0x5B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, ErrTruncated},
		"huge array":         {[]byte{0x9B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0}, ErrTruncated},
		"huge map":           {[]byte{0xBB, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0}, ErrTruncated},
		"array short":        {[]byte{0x83, 0x01, 0x02}, ErrTruncated},
		"indef unterminated": {[]byte{0x9F, 0x01}, ErrTruncated},
		"indef string mixed": {[]byte{0x5F, 0x61, 'a', 0xFF}, ErrMalformed},
		"indef string nest":  {[]byte{0x5F, 0x5F, 0xFF, 0xFF}, ErrMalformed},
		"indef string open":  {[]byte{0x7F, 0x61, 'a'}, ErrTruncated},
		"depth bomb":         {bytes.Repeat([]byte{0x81}, 100), ErrLimit},
		"tag depth bomb":     {append(bytes.Repeat([]byte{0xC0}, 100), 0), ErrLimit},
		"indef depth bomb":   {bytes.Repeat([]byte{0x9F}, 100), ErrLimit},
		"items bomb":         {append(append([]byte{0x9F}, make([]byte, maxCBORItems+5)...), 0xFF), ErrLimit},
		"string chunk bomb":  {append(append([]byte{0x5F}, bytes.Repeat([]byte{0x40}, maxCBORItems+5)...), 0xFF), ErrLimit},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := decodeCBOR(tt.b)
			assert.ErrorIs(t, err, tt.want)
		})
	}
}

func TestCBORTruncatedFixtures(t *testing.T) {
	boxes := cborBoxes(t)
	require.NotEmpty(t, boxes)
	for _, b := range boxes {
		_, err := decodeCBOR(b)
		require.NoError(t, err)
		prefixes(b, func(p []byte) {
			_, err := decodeCBOR(p)
			assertSentinel(t, err)
		})
	}
}

package classify

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
)

// A minimal, bounded CBOR (RFC 8949) reader for C2PA assertions.
//
// The module cache has no general CBOR decoder (indigo's DAG-CBOR code is
// generated per type, fxamacker/cbor is not a dependency), and C2PA needs
// only generic values, so this decodes into Go values: int64 (or float64
// beyond int64), float64, bool, nil, string, []byte, []any and
// map[string]any (non-string keys are formatted as text; on duplicate
// keys the first wins). Tags are dropped, keeping the tagged value.
// Every length is checked against the bytes left before anything is
// allocated, so a header claiming 2^64 items costs nothing.

const (
	maxCBORDepth = 32
	maxCBORItems = 1 << 17
)

type cborDecoder struct {
	b     []byte
	pos   int
	items int
}

// decodeCBOR decodes the first CBOR item in b. Trailing bytes are ignored.
func decodeCBOR(b []byte) (any, error) {
	d := &cborDecoder{b: b}
	v, err := d.value(0)
	if err != nil {
		return nil, fmt.Errorf("cbor: %w", err)
	}
	return v, nil
}

func (d *cborDecoder) left() int { return len(d.b) - d.pos }

// head reads an initial byte and its argument. indef is true for
// additional info 31.
func (d *cborDecoder) head() (major byte, arg uint64, indef bool, err error) {
	if d.left() < 1 {
		return 0, 0, false, fmt.Errorf("item header at %d: %w", d.pos, ErrTruncated)
	}
	ib := d.b[d.pos]
	d.pos++
	major, info := ib>>5, ib&0x1f
	switch {
	case info < 24:
		return major, uint64(info), false, nil
	case info == 31:
		return major, 0, true, nil
	case info > 27:
		return major, 0, false, fmt.Errorf("reserved additional info %d at %d: %w", info, d.pos-1, ErrMalformed)
	}
	n := 1 << (info - 24)
	if d.left() < n {
		return major, 0, false, fmt.Errorf("argument at %d: %w", d.pos, ErrTruncated)
	}
	switch n {
	case 1:
		arg = uint64(d.b[d.pos])
	case 2:
		arg = uint64(binary.BigEndian.Uint16(d.b[d.pos:]))
	case 4:
		arg = uint64(binary.BigEndian.Uint32(d.b[d.pos:]))
	case 8:
		arg = binary.BigEndian.Uint64(d.b[d.pos:])
	}
	d.pos += n
	return major, arg, false, nil
}

func (d *cborDecoder) value(depth int) (any, error) {
	if depth > maxCBORDepth {
		return nil, fmt.Errorf("nesting deeper than %d: %w", maxCBORDepth, ErrLimit)
	}
	d.items++
	if d.items > maxCBORItems {
		return nil, fmt.Errorf("more than %d items: %w", maxCBORItems, ErrLimit)
	}
	start := d.pos
	major, arg, indef, err := d.head()
	if err != nil {
		return nil, err
	}
	switch major {
	case 0:
		if arg > math.MaxInt64 {
			return float64(arg), nil
		}
		return int64(arg), nil
	case 1:
		if arg > math.MaxInt64 {
			return -1 - float64(arg), nil
		}
		return -1 - int64(arg), nil
	case 2, 3:
		var s []byte
		if indef {
			s, err = d.chunks(major)
		} else {
			s, err = d.bytes(arg)
		}
		if err != nil {
			return nil, err
		}
		if major == 2 {
			return s, nil
		}
		return string(s), nil
	case 4:
		return d.array(arg, indef, depth)
	case 5:
		return d.mapping(arg, indef, depth)
	case 6:
		return d.value(depth + 1)
	default: // 7: simple values and floats
		if indef {
			return nil, fmt.Errorf("unexpected break at %d: %w", start, ErrMalformed)
		}
		info := d.b[start] & 0x1f
		switch info {
		case 20:
			return false, nil
		case 21:
			return true, nil
		case 25:
			return halfFloat(uint16(arg)), nil
		case 26:
			return float64(math.Float32frombits(uint32(arg))), nil
		case 27:
			return math.Float64frombits(arg), nil
		}
		return nil, nil // null, undefined, other simple values
	}
}

func (d *cborDecoder) bytes(n uint64) ([]byte, error) {
	if n > uint64(d.left()) {
		return nil, fmt.Errorf("string of %d bytes at %d exceeds %d left: %w", n, d.pos, d.left(), ErrTruncated)
	}
	s := d.b[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return s, nil
}

// chunks reads an indefinite-length string: definite chunks of the same
// major type until a break byte.
func (d *cborDecoder) chunks(major byte) ([]byte, error) {
	var out []byte
	for {
		if d.left() < 1 {
			return nil, fmt.Errorf("indefinite string: %w", ErrTruncated)
		}
		if d.b[d.pos] == 0xFF {
			d.pos++
			return out, nil
		}
		d.items++
		if d.items > maxCBORItems {
			return nil, fmt.Errorf("more than %d items: %w", maxCBORItems, ErrLimit)
		}
		m, n, indef, err := d.head()
		if err != nil {
			return nil, err
		}
		if m != major || indef {
			return nil, fmt.Errorf("bad chunk in indefinite string at %d: %w", d.pos, ErrMalformed)
		}
		s, err := d.bytes(n)
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	}
}

// atBreak consumes a break byte if one is next.
func (d *cborDecoder) atBreak() bool {
	if d.left() > 0 && d.b[d.pos] == 0xFF {
		d.pos++
		return true
	}
	return false
}

func (d *cborDecoder) array(n uint64, indef bool, depth int) ([]any, error) {
	// Every item takes at least one byte, which bounds the allocation.
	if !indef && n > uint64(d.left()) {
		return nil, fmt.Errorf("array of %d items at %d exceeds %d bytes left: %w", n, d.pos, d.left(), ErrTruncated)
	}
	out := make([]any, 0, min(n, 1024))
	for i := uint64(0); indef || i < n; i++ {
		if indef && d.atBreak() {
			break
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (d *cborDecoder) mapping(n uint64, indef bool, depth int) (map[string]any, error) {
	if !indef && n > uint64(d.left())/2 {
		return nil, fmt.Errorf("map of %d pairs at %d exceeds %d bytes left: %w", n, d.pos, d.left(), ErrTruncated)
	}
	out := make(map[string]any, min(n, 64))
	for i := uint64(0); indef || i < n; i++ {
		if indef && d.atBreak() {
			break
		}
		k, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		key := cborKey(k)
		if _, dup := out[key]; !dup {
			out[key] = v
		}
	}
	return out, nil
}

func cborKey(k any) string {
	switch k := k.(type) {
	case string:
		return k
	case int64:
		return strconv.FormatInt(k, 10)
	case []byte:
		return string(k)
	default:
		return fmt.Sprint(k)
	}
}

// halfFloat converts an IEEE 754 binary16 value.
func halfFloat(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	frac := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(frac, -24)
	case 31:
		if frac == 0 {
			return sign * math.Inf(1)
		}
		return math.NaN()
	}
	return sign * math.Ldexp(frac+1024, exp-25)
}

// Helpers for reading decoded values.

func mapGet(v any, key string) any {
	if m, ok := v.(map[string]any); ok {
		return m[key]
	}
	return nil
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

func asArray(v any) []any {
	a, _ := v.([]any)
	return a
}

package classify

import (
	"encoding/binary"
	"fmt"
)

// JUMBF (ISO/IEC 19566-5) box parser.
//
// No served Go module parses JUMBF or C2PA (richardwooding/c2pa and
// c2pa-go are not served; the latter is cgo anyway), so this is a small
// hand parser. Boxes are ISO-BMFF style: LBox (u32 BE, including the
// header; 1 = a u64 XLBox follows; 0 = to the end) and a 4-byte TBox. A
// superbox "jumb" starts with a description box "jumd": a 16-byte type
// UUID, a toggles byte and, when toggle bit 0x02 is set, a NUL-terminated
// label. Nesting depth and the number of boxes are capped.

const (
	maxJUMBFDepth = 16
	maxJUMBFBoxes = 4096
	maxLabelLen   = 1024
)

// jumbfBox is a parsed box. Superboxes have UUID, Label and Children;
// content boxes have Data.
type jumbfBox struct {
	Type     string
	UUID     [16]byte
	Label    string
	Children []*jumbfBox
	Data     []byte
	// Raw is a superbox's payload (its jumd and child boxes, without its
	// own LBox/TBox): what C2PA hashed URIs hash.
	Raw []byte
}

// uuidTag returns the first four bytes of a superbox's type UUID, which
// C2PA uses as a readable tag ("c2pa", "c2ma", "c2as", "cbor", ...).
func (bx *jumbfBox) uuidTag() string { return string(bx.UUID[:4]) }

// child returns the first child superbox with the given label.
func (bx *jumbfBox) child(label string) *jumbfBox {
	for _, c := range bx.Children {
		if c.Type == "jumb" && c.Label == label {
			return c
		}
	}
	return nil
}

// content returns the first content (non-superbox) child of type typ.
func (bx *jumbfBox) content(typ string) []byte {
	for _, c := range bx.Children {
		if c.Type == typ {
			return c.Data
		}
	}
	return nil
}

// readBox reads one box header at b[0:]. It returns the box type, its
// payload and the total box size.
func readBox(b []byte) (typ string, payload []byte, size int, err error) {
	if len(b) < 8 {
		return "", nil, 0, fmt.Errorf("jumbf: box header: %w", ErrTruncated)
	}
	lbox := binary.BigEndian.Uint32(b)
	typ = string(b[4:8])
	hdr := 8
	var total uint64
	switch {
	case lbox == 0:
		total = uint64(len(b))
	case lbox == 1:
		if len(b) < 16 {
			return typ, nil, 0, fmt.Errorf("jumbf: %q XLBox: %w", printable(typ), ErrTruncated)
		}
		total = binary.BigEndian.Uint64(b[8:])
		hdr = 16
		if total < 16 {
			return typ, nil, 0, fmt.Errorf("jumbf: %q XLBox %d: %w", printable(typ), total, ErrMalformed)
		}
	case lbox < 8:
		return typ, nil, 0, fmt.Errorf("jumbf: %q LBox %d: %w", printable(typ), lbox, ErrMalformed)
	default:
		total = uint64(lbox)
	}
	if total > uint64(len(b)) {
		return typ, nil, 0, fmt.Errorf("jumbf: %q size %d exceeds %d bytes left: %w", printable(typ), total, len(b), ErrTruncated)
	}
	return typ, b[hdr:total], int(total), nil
}

// parseJUMBF parses the superbox at the start of b. On error it returns
// the part of the tree read so far together with the error, so complete
// boxes before the damage can still be used.
func parseJUMBF(b []byte) (*jumbfBox, error) {
	typ, payload, _, err := readBox(b)
	if err != nil {
		return nil, err
	}
	if typ != "jumb" {
		return nil, fmt.Errorf("jumbf: top-level box %q is not a superbox: %w", printable(typ), ErrMalformed)
	}
	budget := maxJUMBFBoxes
	return parseSuperbox(payload, 1, &budget)
}

func parseSuperbox(b []byte, depth int, budget *int) (*jumbfBox, error) {
	if depth > maxJUMBFDepth {
		return nil, fmt.Errorf("jumbf: nesting deeper than %d: %w", maxJUMBFDepth, ErrLimit)
	}
	bx := &jumbfBox{Type: "jumb", Raw: b}
	first := true
	for len(b) > 0 {
		*budget--
		if *budget < 0 {
			return bx, fmt.Errorf("jumbf: more than %d boxes: %w", maxJUMBFBoxes, ErrLimit)
		}
		typ, payload, size, err := readBox(b)
		if err != nil {
			return bx, err
		}
		b = b[size:]
		if first {
			if typ != "jumd" {
				return nil, fmt.Errorf("jumbf: superbox starts with %q, want jumd: %w", printable(typ), ErrMalformed)
			}
			if err := parseDescription(bx, payload); err != nil {
				return nil, err
			}
			first = false
			continue
		}
		if typ == "jumb" {
			c, err := parseSuperbox(payload, depth+1, budget)
			if c != nil {
				bx.Children = append(bx.Children, c)
			}
			if err != nil {
				return bx, fmt.Errorf("jumbf: in %q: %w", printable(bx.Label), err)
			}
			continue
		}
		bx.Children = append(bx.Children, &jumbfBox{Type: typ, Data: payload})
	}
	if first {
		return nil, fmt.Errorf("jumbf: empty superbox: %w", ErrMalformed)
	}
	return bx, nil
}

// parseDescription reads a jumd payload: UUID(16) | toggles(1) | [label NUL].
func parseDescription(bx *jumbfBox, p []byte) error {
	if len(p) < 17 {
		return fmt.Errorf("jumbf: description box of %d bytes: %w", len(p), ErrTruncated)
	}
	copy(bx.UUID[:], p[:16])
	toggles := p[16]
	if toggles&0x02 != 0 {
		label, _, ok := cstring(p[17:], maxLabelLen)
		if !ok {
			return fmt.Errorf("jumbf: unterminated label: %w", ErrMalformed)
		}
		bx.Label = string(label)
	}
	return nil
}

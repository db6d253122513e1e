package classify

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// ISO BMFF (ISO/IEC 14496-12) walker for MP4/MOV video and HEIC/AVIF
// images.
//
// The served BMFF libraries parse tracks and samples, not the metadata
// carriers needed here (and evanoberholster/imagemeta reads EXIF only),
// so this is a small hand walker: box = u32 size | type [| u64 largesize]
// [| 16-byte usertype for "uuid"]; size 0 runs to the end. It reads:
//
//   - C2PA: a top-level "uuid" box with usertype
//     D8FEC3D6-1B0E-483C-9297-5828877EC481, a full-box header, the
//     purpose string "manifest" and a u64 Merkle offset, then the JUMBF
//     manifest store (C2PA 2.x, embedding in BMFF; "merkle" boxes carry
//     video chunk hashes and are skipped);
//   - XMP: a "uuid" box with usertype BE7ACFCB-97A9-42E8-9C71-999491E3AFAC
//     (Adobe's XMP for MP4/MOV, anywhere in moov/trak/udta too), or a
//     moov/udta/"XMP_" box (QuickTime);
//   - HEIF items (HEIC/AVIF): meta/iinf "Exif" and "mime" items with
//     content type application/rdf+xml, located through meta/iloc.
//
// Nesting depth, box counts and item counts are capped; every size and
// offset is checked against the bytes left.

const (
	maxBMFFDepth = 8
	maxBMFFBoxes = 4096
)

var (
	bmffC2PAUUID = []byte{0xD8, 0xFE, 0xC3, 0xD6, 0x1B, 0x0E, 0x48, 0x3C, 0x92, 0x97, 0x58, 0x28, 0x87, 0x7E, 0xC4, 0x81}
	bmffXMPUUID  = []byte{0xBE, 0x7A, 0xCF, 0xCB, 0x97, 0xA9, 0x42, 0xE8, 0x9C, 0x71, 0x99, 0x94, 0x91, 0xE3, 0xAF, 0xAC}
)

// isBMFF reports whether b starts with an ftyp box, or (old QuickTime
// files have no ftyp) with a moov, wide, free, skip or mdat box.
func isBMFF(b []byte) bool {
	if len(b) < 12 {
		return false
	}
	size := binary.BigEndian.Uint32(b)
	switch string(b[4:8]) {
	case "ftyp":
		return size >= 8
	case "moov", "wide", "free", "skip", "mdat":
		return size == 1 || size >= 8 && uint64(size) <= uint64(len(b))
	}
	return false
}

// bmffBox is one box: its type, payload (after the header and, for
// "uuid", the usertype) and usertype.
type bmffBox struct {
	typ      string
	usertype []byte
	payload  []byte
	offset   int // of the payload within the file
}

// bmffBoxes splits b (located at base within the file) into boxes. It
// returns the complete boxes read before any damage, and the damage.
func bmffBoxes(b []byte, base int, budget *int) ([]bmffBox, error) {
	var out []bmffBox
	pos := 0
	for pos < len(b) {
		*budget--
		if *budget < 0 {
			return out, fmt.Errorf("bmff: more than %d boxes: %w", maxBMFFBoxes, ErrLimit)
		}
		if len(b)-pos < 8 {
			return out, fmt.Errorf("bmff: box header at %d: %w", base+pos, ErrTruncated)
		}
		size := uint64(binary.BigEndian.Uint32(b[pos:]))
		typ := string(b[pos+4 : pos+8])
		hdr := 8
		switch size {
		case 0:
			size = uint64(len(b) - pos)
		case 1:
			if len(b)-pos < 16 {
				return out, fmt.Errorf("bmff: %q largesize: %w", printable(typ), ErrTruncated)
			}
			size = binary.BigEndian.Uint64(b[pos+8:])
			hdr = 16
		}
		if size < uint64(hdr) {
			return out, fmt.Errorf("bmff: %q size %d: %w", printable(typ), size, ErrMalformed)
		}
		if size > uint64(len(b)-pos) {
			return out, fmt.Errorf("bmff: %q size %d exceeds %d bytes left: %w", printable(typ), size, len(b)-pos, ErrTruncated)
		}
		bx := bmffBox{typ: typ, payload: b[pos+hdr : pos+int(size)], offset: base + pos + hdr}
		if typ == "uuid" {
			if len(bx.payload) < 16 {
				return out, fmt.Errorf("bmff: uuid box usertype: %w", ErrTruncated)
			}
			bx.usertype, bx.payload, bx.offset = bx.payload[:16], bx.payload[16:], bx.offset+16
		}
		out = append(out, bx)
		pos += int(size)
	}
	return out, nil
}

func parseBMFF(b []byte) (*Metadata, error) {
	md := &Metadata{Format: "bmff"}
	if !isBMFF(b) {
		return md, fmt.Errorf("bmff: no ftyp or movie box: %w", ErrMalformed)
	}
	budget := maxBMFFBoxes
	top, err := bmffBoxes(b, 0, &budget)
	if err != nil {
		md.problem(err)
	}
	if len(top) > 0 && top[0].typ != "ftyp" {
		md.Format = "mov"
	} else if len(top) > 0 && len(top[0].payload) >= 4 {
		switch brand := string(top[0].payload[:4]); brand {
		case "heic", "heix", "mif1", "msf1", "heim", "heis", "hevc":
			md.Format = "heic"
		case "avif", "avis":
			md.Format = "avif"
		case "qt  ":
			md.Format = "mov"
		default:
			md.Format = "mp4"
		}
	}
	bmffWalk(md, b, top, "bmff:", 1, &budget)
	return md, nil
}

// bmffWalk collects metadata from boxes, descending into the containers
// that hold it.
func bmffWalk(md *Metadata, file []byte, boxes []bmffBox, path string, depth int, budget *int) {
	for _, bx := range boxes {
		loc := path + printable(bx.typ)
		switch bx.typ {
		case "uuid":
			switch {
			case bytes.Equal(bx.usertype, bmffC2PAUUID):
				bmffC2PA(md, bx, loc)
			case bytes.Equal(bx.usertype, bmffXMPUUID):
				if len(md.XMP) < maxParts {
					md.XMP = append(md.XMP, Part{Locator: loc + "[XMP]", Data: bx.payload})
				}
			}
		case "XMP_":
			if len(md.XMP) < maxParts {
				md.XMP = append(md.XMP, Part{Locator: loc, Data: bx.payload})
			}
		case "moov", "trak", "udta":
			if depth >= maxBMFFDepth {
				md.problem(fmt.Errorf("bmff: nesting deeper than %d: %w", maxBMFFDepth, ErrLimit))
				continue
			}
			kids, err := bmffBoxes(bx.payload, bx.offset, budget)
			if err != nil {
				md.problem(err)
			}
			bmffWalk(md, file, kids, loc+"/", depth+1, budget)
		case "meta":
			bmffMeta(md, file, bx, loc, budget)
		}
	}
}

// bmffC2PA reads a C2PA uuid box: version/flags (4), purpose (NUL
// terminated), u64 Merkle offset, then the manifest store.
func bmffC2PA(md *Metadata, bx bmffBox, loc string) {
	p := bx.payload
	if len(p) < 4 {
		md.problem(fmt.Errorf("bmff: C2PA box header: %w", ErrTruncated))
		return
	}
	purpose, rest, ok := cstring(p[4:], 64)
	if !ok {
		md.problem(fmt.Errorf("bmff: C2PA box purpose: %w", ErrMalformed))
		return
	}
	switch string(purpose) {
	case "manifest":
		if len(rest) < 8 {
			md.problem(fmt.Errorf("bmff: C2PA manifest box offset: %w", ErrTruncated))
			return
		}
		if len(md.C2PA) < maxParts {
			md.C2PA = append(md.C2PA, Part{Locator: loc + "[C2PA]", Data: rest[8:]})
		}
	case "merkle", "original":
		// Video chunk hashes (C2PA BMFF v2/v3 bindings): not metadata.
	default:
		md.problem(fmt.Errorf("bmff: C2PA box purpose %q: %w", printable(string(purpose)), ErrMalformed))
	}
}

// heifItem is an item from meta/iinf with its extent from meta/iloc.
type heifItem struct {
	id          uint32
	typ, ctype  string
	off, length uint64
	located     bool
}

// bmffMeta reads a meta box: a full box whose children include iinf
// (item infos) and iloc (item locations). In MP4/MOV "meta" under udta
// may also be a plain container (QuickTime), holding XMP_ or uuid.
func bmffMeta(md *Metadata, file []byte, bx bmffBox, loc string, budget *int) {
	p := bx.payload
	off := bx.offset
	// Full box (ISO) or not (QuickTime): a QuickTime meta starts with a
	// child box header, whose type sits at bytes 4..8.
	if len(p) >= 8 && string(p[4:8]) != "hdlr" {
		p, off = p[4:], off+4
	} else if len(p) < 8 {
		return
	}
	kids, err := bmffBoxes(p, off, budget)
	if err != nil {
		md.problem(err)
	}
	var items []*heifItem
	var iloc []byte
	for _, k := range kids {
		switch k.typ {
		case "iinf":
			items = heifItemInfos(md, k.payload)
		case "iloc":
			iloc = k.payload
		case "uuid", "XMP_":
			bmffWalk(md, file, []bmffBox{k}, loc+"/", maxBMFFDepth, budget)
		}
	}
	if len(items) == 0 {
		return
	}
	if err := heifLocate(iloc, items); err != nil {
		md.problem(err)
	}
	for _, it := range items {
		if !it.located {
			continue
		}
		if it.off > uint64(len(file)) || it.length > uint64(len(file))-it.off {
			md.problem(fmt.Errorf("bmff: item %d extent outside the file: %w", it.id, ErrTruncated))
			continue
		}
		data := file[it.off : it.off+it.length]
		iloc := fmt.Sprintf("%s/item[%d %s]", loc, it.id, printable(it.typ))
		switch {
		case it.typ == "Exif":
			// u32 offset to the TIFF header, then (usually "Exif\0\0" and) TIFF.
			if len(data) < 4 {
				md.problem(fmt.Errorf("bmff: Exif item: %w", ErrTruncated))
				continue
			}
			skip := binary.BigEndian.Uint32(data)
			if uint64(skip) > uint64(len(data)-4) {
				md.problem(fmt.Errorf("bmff: Exif item header offset %d: %w", skip, ErrMalformed))
				continue
			}
			if len(md.EXIF) < maxParts {
				md.EXIF = append(md.EXIF, Part{Locator: iloc, Data: bytes.TrimPrefix(data[4+skip:], []byte(jpegExifPrefix))})
			}
		case it.typ == "mime" && (it.ctype == "application/rdf+xml" || it.ctype == "application/xmp+xml"):
			if len(md.XMP) < maxParts {
				// Some converters keep the JPEG APP1 XMP signature in front.
				md.XMP = append(md.XMP, Part{Locator: iloc, Data: bytes.TrimPrefix(data, []byte(jpegXMPPrefix))})
			}
		}
	}
}

// heifItemInfos reads iinf: full box, entry count (u16, u32 in v1+), then
// infe boxes (v2: item_ID u16, protection u16, item_type 4cc, name, and for
// "mime" content_type; v3: item_ID u32).
func heifItemInfos(md *Metadata, p []byte) []*heifItem {
	if len(p) < 6 {
		return nil
	}
	n := 2
	if p[0] > 0 {
		n = 4
	}
	if len(p) < 4+n {
		return nil
	}
	budget := maxParts
	infes, err := bmffBoxes(p[4+n:], 0, &budget)
	if err != nil {
		md.problem(err)
	}
	var out []*heifItem
	for _, e := range infes {
		if e.typ != "infe" || len(e.payload) < 4 {
			continue
		}
		v := e.payload[0]
		q := e.payload[4:]
		it := &heifItem{}
		switch {
		case v == 2 && len(q) >= 8:
			it.id = uint32(binary.BigEndian.Uint16(q))
			it.typ, q = string(q[4:8]), q[8:]
		case v == 3 && len(q) >= 10:
			it.id = binary.BigEndian.Uint32(q)
			it.typ, q = string(q[6:10]), q[10:]
		default:
			continue // v0/v1 (no item_type) carry nothing read here
		}
		if _, rest, ok := cstring(q, 1024); ok && it.typ == "mime" {
			if ct, _, ok := cstring(rest, 256); ok {
				it.ctype = string(ct)
			}
		}
		out = append(out, it)
	}
	return out
}

// heifLocate reads iloc (versions 0-2) and fills the extent of each item
// stored as a single extent in the file (construction method 0). Items
// in several extents or in idat are left unlocated.
func heifLocate(p []byte, items []*heifItem) error {
	if len(p) < 6 {
		return fmt.Errorf("bmff: iloc header: %w", ErrTruncated)
	}
	v := p[0]
	if v > 2 {
		return fmt.Errorf("bmff: iloc version %d: %w", v, ErrMalformed)
	}
	offSize, lenSize := int(p[4]>>4), int(p[4]&0xF)
	baseSize, idxSize := int(p[5]>>4), 0
	if v >= 1 {
		idxSize = int(p[5] & 0xF)
	}
	for _, s := range []int{offSize, lenSize, baseSize, idxSize} {
		if s != 0 && s != 4 && s != 8 {
			return fmt.Errorf("bmff: iloc field size %d: %w", s, ErrMalformed)
		}
	}
	r := p[6:]
	read := func(n int) (uint64, bool) {
		if len(r) < n {
			return 0, false
		}
		var x uint64
		switch n {
		case 2:
			x = uint64(binary.BigEndian.Uint16(r))
		case 4:
			x = uint64(binary.BigEndian.Uint32(r))
		case 8:
			x = binary.BigEndian.Uint64(r)
		}
		r = r[n:]
		return x, true
	}
	cntSize, idSize := 2, 2
	if v == 2 {
		cntSize, idSize = 4, 4
	}
	count, ok := read(cntSize)
	if !ok {
		return fmt.Errorf("bmff: iloc count: %w", ErrTruncated)
	}
	if count > maxParts {
		return fmt.Errorf("bmff: iloc with %d items: %w", count, ErrLimit)
	}
	byID := map[uint32]*heifItem{}
	for _, it := range items {
		byID[it.id] = it
	}
	for i := uint64(0); i < count; i++ {
		id, ok1 := read(idSize)
		method := uint64(0)
		ok2 := true
		if v >= 1 {
			method, ok2 = read(2)
			method &= 0xF
		}
		_, ok3 := read(2) // data_reference_index
		base, ok4 := read(baseSize)
		extents, ok5 := read(2)
		if !(ok1 && ok2 && ok3 && ok4 && ok5) {
			return fmt.Errorf("bmff: iloc item %d: %w", i, ErrTruncated)
		}
		var off, length uint64
		for e := uint64(0); e < extents; e++ {
			if idxSize > 0 {
				if _, ok := read(idxSize); !ok {
					return fmt.Errorf("bmff: iloc extent: %w", ErrTruncated)
				}
			}
			o, ok6 := read(offSize)
			l, ok7 := read(lenSize)
			if !ok6 || !ok7 {
				return fmt.Errorf("bmff: iloc extent: %w", ErrTruncated)
			}
			off, length = o, l
		}
		it := byID[uint32(id)]
		if it == nil || method != 0 || extents != 1 || length == 0 || base+off < base {
			continue
		}
		it.off, it.length, it.located = base+off, length, true
	}
	return nil
}

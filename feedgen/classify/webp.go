package classify

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// WebP (RIFF) chunk walker.
//
// golang.org/x/image/webp decodes pixels but exposes no metadata, so the
// RIFF chunks are walked by hand: FourCC | u32 LE size | data | pad byte
// when size is odd. Metadata chunks: "EXIF" (raw TIFF; some writers keep
// the JPEG "Exif\0\0" prefix, so both are accepted), "XMP " and "C2PA"
// (a JUMBF manifest store, written last, after the image data, so blobs
// must never be truncated before scanning).

func parseWebP(b []byte) (*Metadata, error) {
	md := &Metadata{Format: "webp"}
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WEBP" {
		return md, fmt.Errorf("webp: bad RIFF header: %w", ErrMalformed)
	}
	end := len(b)
	if riff := binary.LittleEndian.Uint32(b[4:]); uint64(riff)+8 < uint64(end) {
		end = int(riff) + 8 // trailing bytes after the RIFF are ignored
	} else if uint64(riff)+8 > uint64(end) {
		md.problem(fmt.Errorf("webp: RIFF size %d exceeds %d bytes: %w", riff, len(b)-8, ErrTruncated))
	}
	pos := 12
	chunks := 0
	for pos < end {
		if end-pos < 8 {
			md.problem(fmt.Errorf("webp: chunk header at %d: %w", pos, ErrTruncated))
			break
		}
		fourcc := string(b[pos : pos+4])
		n := binary.LittleEndian.Uint32(b[pos+4:])
		if uint64(n) > uint64(end-pos-8) {
			md.problem(fmt.Errorf("webp: chunk %q size %d exceeds %d bytes left: %w", printable(fourcc), n, end-pos-8, ErrTruncated))
			break
		}
		data := b[pos+8 : pos+8+int(n)]
		pos += 8 + int(n) + int(n&1)
		chunks++
		if chunks > 4*maxParts {
			md.problem(fmt.Errorf("webp: more than %d chunks: %w", 4*maxParts, ErrLimit))
			break
		}
		switch fourcc {
		case "EXIF":
			if len(md.EXIF) < maxParts {
				md.EXIF = append(md.EXIF, Part{Locator: "webp:EXIF", Data: bytes.TrimPrefix(data, []byte(jpegExifPrefix))})
			}
		case "XMP ":
			if len(md.XMP) < maxParts {
				md.XMP = append(md.XMP, Part{Locator: "webp:XMP", Data: data})
			}
		case "C2PA":
			if len(md.C2PA) < maxParts {
				md.C2PA = append(md.C2PA, Part{Locator: "webp:C2PA", Data: data})
			}
		}
	}
	return md, nil
}

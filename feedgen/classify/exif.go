package classify

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf16"
)

// EXIF (TIFF) reader.
//
// Only a handful of tags matter, so instead of go-exif (large dependency
// graph) this is a small TIFF IFD walker: "II*\0" or "MM\0*", u32 offset of
// IFD0, then IFDs of 12-byte entries (tag u16, type u16, count u32, value
// or offset u32). IFD0 and the Exif sub-IFD (pointer tag 0x8769) are read
// (UserComment in either: some ComfyUI savers put it in IFD0);
// each offset is bounds-checked and visited once, entry counts are capped.

const (
	tagImageDescription = 0x010E
	tagMake             = 0x010F
	tagModel            = 0x0110
	tagSoftware         = 0x0131
	tagExifIFD          = 0x8769
	tagUserComment      = 0x9286

	maxIFDEntries = 512
	maxEXIFValue  = 256 << 10
)

// exifFields are the tags the classifier reads.
type exifFields struct {
	ImageDescription, Make, Model, Software, UserComment string
	// IFD0UserComment is a UserComment misplaced in IFD0, where some
	// ComfyUI image-saver nodes put the API graph.
	IFD0UserComment string
}

type tiffReader struct {
	b  []byte
	bo binary.ByteOrder
}

func parseEXIF(b []byte) (*exifFields, error) {
	b = bytes.TrimPrefix(b, []byte(jpegExifPrefix))
	if len(b) < 8 {
		return nil, fmt.Errorf("exif: TIFF header: %w", ErrTruncated)
	}
	r := tiffReader{b: b}
	switch {
	case b[0] == 'I' && b[1] == 'I' && b[2] == 42 && b[3] == 0:
		r.bo = binary.LittleEndian
	case b[0] == 'M' && b[1] == 'M' && b[2] == 0 && b[3] == 42:
		r.bo = binary.BigEndian
	default:
		return nil, fmt.Errorf("exif: bad TIFF header % x: %w", b[:4], ErrMalformed)
	}
	f := &exifFields{}
	ifd0 := r.bo.Uint32(b[4:])
	exifOff, err := r.ifd(ifd0, f, true)
	if err != nil {
		return f, fmt.Errorf("exif: IFD0: %w", err)
	}
	if exifOff != 0 && exifOff != ifd0 {
		if _, err := r.ifd(exifOff, f, false); err != nil {
			return f, fmt.Errorf("exif: Exif IFD: %w", err)
		}
	}
	return f, nil
}

// ifd reads one IFD at off, filling f. For IFD0 it returns the Exif
// sub-IFD offset (0 if none).
func (r tiffReader) ifd(off uint32, f *exifFields, top bool) (uint32, error) {
	if uint64(off)+2 > uint64(len(r.b)) || off < 8 {
		return 0, fmt.Errorf("offset %d outside %d bytes: %w", off, len(r.b), ErrTruncated)
	}
	n := int(r.bo.Uint16(r.b[off:]))
	if n > maxIFDEntries {
		return 0, fmt.Errorf("%d entries: %w", n, ErrLimit)
	}
	base := int(off) + 2
	if base+12*n > len(r.b) {
		return 0, fmt.Errorf("%d entries at %d: %w", n, off, ErrTruncated)
	}
	var exifOff uint32
	for i := 0; i < n; i++ {
		e := r.b[base+12*i : base+12*i+12]
		tag := r.bo.Uint16(e)
		typ := r.bo.Uint16(e[2:])
		count := r.bo.Uint32(e[4:])
		switch {
		case top && tag == tagExifIFD && (typ == 4 || typ == 13) && count == 1:
			exifOff = r.bo.Uint32(e[8:])
		case top && tag == tagImageDescription:
			f.ImageDescription = r.ascii(e, typ, count)
		case top && tag == tagMake:
			f.Make = r.ascii(e, typ, count)
		case top && tag == tagModel:
			f.Model = r.ascii(e, typ, count)
		case top && tag == tagSoftware:
			f.Software = r.ascii(e, typ, count)
		case tag == tagUserComment:
			if v := r.value(e, typ, count); v != nil {
				if top {
					f.IFD0UserComment = decodeUserComment(v, r.bo)
				} else {
					f.UserComment = decodeUserComment(v, r.bo)
				}
			}
		}
	}
	return exifOff, nil
}

// value returns the bytes of a BYTE/ASCII/UNDEFINED entry (element size 1),
// inline when it fits in four bytes, else at the offset. nil if out of range.
func (r tiffReader) value(e []byte, typ uint16, count uint32) []byte {
	if typ != 1 && typ != 2 && typ != 7 {
		return nil
	}
	if count <= 4 {
		return e[8 : 8+count]
	}
	if count > maxEXIFValue {
		return nil
	}
	off := r.bo.Uint32(e[8:])
	if uint64(off)+uint64(count) > uint64(len(r.b)) {
		return nil
	}
	return r.b[off : off+count]
}

func (r tiffReader) ascii(e []byte, typ uint16, count uint32) string {
	v := r.value(e, typ, count)
	if i := bytes.IndexByte(v, 0); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(string(bytes.ToValidUTF8(v, []byte("\uFFFD"))))
}

// decodeUserComment decodes an EXIF UserComment: an 8-byte character code
// then the text. "UNICODE\0" is UTF-16; piexif (used by AUTOMATIC1111)
// writes big-endian regardless of the TIFF byte order, other writers use
// the TIFF order, so a BOM wins, else the side with more zero bytes (ASCII
// text in UTF-16) decides.
func decodeUserComment(v []byte, bo binary.ByteOrder) string {
	if len(v) < 8 {
		return strings.TrimSpace(strings.TrimRight(string(v), "\x00"))
	}
	code, text := string(v[:8]), v[8:]
	switch code {
	case "UNICODE\x00":
		return strings.TrimRight(decodeUTF16(text, bo), "\x00 ")
	case "JIS\x00\x00\x00\x00\x00":
		return ""
	}
	// "ASCII\0\0\0", undefined (eight NULs) or no code at all: UTF-8/ASCII.
	if code != "ASCII\x00\x00\x00" && code != "\x00\x00\x00\x00\x00\x00\x00\x00" {
		text = v
	}
	text = bytes.TrimRight(text, "\x00 ")
	return string(bytes.ToValidUTF8(text, []byte("\uFFFD")))
}

func decodeUTF16(b []byte, bo binary.ByteOrder) string {
	if len(b) >= 2 {
		switch {
		case b[0] == 0xFE && b[1] == 0xFF:
			bo, b = binary.BigEndian, b[2:]
		case b[0] == 0xFF && b[1] == 0xFE:
			bo, b = binary.LittleEndian, b[2:]
		default:
			even, odd := 0, 0
			for i := 0; i+1 < len(b) && i < 512; i += 2 {
				if b[i] == 0 {
					even++
				}
				if b[i+1] == 0 {
					odd++
				}
			}
			if even > odd {
				bo = binary.BigEndian
			} else if odd > even {
				bo = binary.LittleEndian
			}
		}
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = bo.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// exifEvidence turns one EXIF payload into evidence.
func exifEvidence(p Part) []Evidence {
	f, err := parseEXIF(p.Data)
	var out []Evidence
	if err != nil {
		out = append(out, infoEvidence("exif.error", p.Locator, err.Error()))
	}
	if f == nil {
		return out
	}
	loc := p.Locator + " exif:"
	// Generator fingerprints, matched structurally: A1111 parameters or SD
	// JSON in UserComment/ImageDescription; ComfyUI's animated-WebP writer
	// stores "prompt:{json}" / "workflow:{json}" in Model/Make.
	fields := []TextField{
		{Key: "UserComment", Value: f.UserComment, Locator: loc + "ExifIFD/UserComment"},
		{Key: "UserComment", Value: f.IFD0UserComment, Locator: loc + "IFD0/UserComment"},
		{Key: "ImageDescription", Value: f.ImageDescription, Locator: loc + "IFD0/ImageDescription"},
		{Key: "Make", Value: f.Make, Locator: loc + "IFD0/Make"},
		{Key: "Model", Value: f.Model, Locator: loc + "IFD0/Model"},
	}
	gen := textFieldEvidence(fields)
	out = append(out, gen...)
	if f.Software != "" {
		if ev, ok := generatorNameEvidence("exif.software", loc+"IFD0/Software", f.Software); ok {
			out = append(out, ev)
		}
	}
	if !comfyKeyed(f.Make) && !comfyKeyed(f.Model) {
		if ev, ok := cameraEvidence("exif.camera", loc+"IFD0/Make+Model", f.Make, f.Model); ok {
			out = append(out, ev)
		}
	}
	return out
}

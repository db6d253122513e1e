package classify

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// PNG chunk walker.
//
// image/png ignores ancillary chunks and no served Go module reads PNG text
// chunks, so this walks chunks by hand: u32 BE length | type | data | CRC.
// Text chunks may legally follow IDAT, so the walk goes to IEND. Chunks
// with a bad CRC are dropped (as libpng does for ancillary chunks) and
// reported. Compressed text is inflated with a hard output cap.

const pngSignature = "\x89PNG\r\n\x1a\n"

const pngXMPKeyword = "XML:com.adobe.xmp"

func parsePNG(b []byte) (*Metadata, error) {
	md := &Metadata{Format: "png"}
	if !bytes.HasPrefix(b, []byte(pngSignature)) {
		return md, fmt.Errorf("png: bad signature: %w", ErrMalformed)
	}
	pos := len(pngSignature)
	chunks := 0
	for pos < len(b) {
		if len(b)-pos < 12 {
			md.problem(fmt.Errorf("png: chunk header at %d: %w", pos, ErrTruncated))
			break
		}
		n := binary.BigEndian.Uint32(b[pos:])
		typ := string(b[pos+4 : pos+8])
		if uint64(n) > uint64(len(b)-pos-12) {
			md.problem(fmt.Errorf("png: chunk %q length %d exceeds %d bytes left: %w", printable(typ), n, len(b)-pos-12, ErrTruncated))
			break
		}
		data := b[pos+8 : pos+8+int(n)]
		crc := binary.BigEndian.Uint32(b[pos+8+int(n):])
		pos += 12 + int(n)
		chunks++
		if chunks > 16*maxParts {
			md.problem(fmt.Errorf("png: more than %d chunks: %w", 16*maxParts, ErrLimit))
			break
		}
		if typ == "IEND" {
			break
		}
		switch typ {
		case "tEXt", "zTXt", "iTXt", "caBX", "eXIf":
		default:
			continue
		}
		if crc32.ChecksumIEEE(b[pos-12-int(n)+4:pos-4]) != crc {
			md.problem(fmt.Errorf("png: chunk %s CRC mismatch: %w", typ, ErrMalformed))
			continue
		}
		switch typ {
		case "caBX":
			if len(md.C2PA) < maxParts {
				md.C2PA = append(md.C2PA, Part{Locator: "png:caBX", Data: data})
			}
		case "eXIf":
			if len(md.EXIF) < maxParts {
				md.EXIF = append(md.EXIF, Part{Locator: "png:eXIf", Data: bytes.TrimPrefix(data, []byte(jpegExifPrefix))})
			}
		default:
			tf, err := pngText(typ, data)
			if err != nil {
				md.problem(err)
				continue
			}
			if tf.Key == pngXMPKeyword {
				if len(md.XMP) < maxParts {
					md.XMP = append(md.XMP, Part{Locator: tf.Locator, Data: []byte(tf.Value)})
				}
				continue
			}
			if len(md.Text) < maxParts {
				md.Text = append(md.Text, tf)
			}
		}
	}
	return md, nil
}

// pngText decodes a tEXt, zTXt or iTXt chunk.
func pngText(typ string, data []byte) (TextField, error) {
	kw, rest, ok := cstring(data, 79)
	if !ok || len(kw) == 0 {
		return TextField{}, fmt.Errorf("png: %s keyword: %w", typ, ErrMalformed)
	}
	key := latin1(kw)
	tf := TextField{Key: key, Locator: "png:" + typ + "[" + printable(key) + "]"}
	switch typ {
	case "tEXt":
		tf.Value = latin1(capBytes(rest, maxTextBytes))
	case "zTXt":
		if len(rest) < 1 || rest[0] != 0 {
			return tf, fmt.Errorf("png: zTXt[%s] compression method: %w", printable(key), ErrMalformed)
		}
		txt, err := inflate(rest[1:])
		if err != nil {
			return tf, fmt.Errorf("png: zTXt[%s]: %w", printable(key), err)
		}
		tf.Value = latin1(txt)
	case "iTXt":
		if len(rest) < 2 {
			return tf, fmt.Errorf("png: iTXt[%s] flags: %w", printable(key), ErrTruncated)
		}
		compressed, method := rest[0], rest[1]
		rest = rest[2:]
		var lang, tkw []byte
		if lang, rest, ok = cstring(rest, 256); !ok {
			return tf, fmt.Errorf("png: iTXt[%s] language tag: %w", printable(key), ErrMalformed)
		}
		if tkw, rest, ok = cstring(rest, 1024); !ok {
			return tf, fmt.Errorf("png: iTXt[%s] translated keyword: %w", printable(key), ErrMalformed)
		}
		_, _ = lang, tkw
		switch compressed {
		case 0:
			tf.Value = string(capBytes(rest, maxTextBytes))
		case 1:
			if method != 0 {
				return tf, fmt.Errorf("png: iTXt[%s] compression method %d: %w", printable(key), method, ErrMalformed)
			}
			txt, err := inflate(rest)
			if err != nil {
				return tf, fmt.Errorf("png: iTXt[%s]: %w", printable(key), err)
			}
			tf.Value = string(txt)
		default:
			return tf, fmt.Errorf("png: iTXt[%s] compression flag %d: %w", printable(key), compressed, ErrMalformed)
		}
	}
	return tf, nil
}

// inflate decompresses a zlib stream, refusing more than maxInflate bytes
// of output (zip bombs).
func inflate(z []byte) ([]byte, error) {
	r, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, fmt.Errorf("zlib header: %w: %w", ErrMalformed, err)
	}
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, maxInflate+1))
	if err != nil {
		return nil, fmt.Errorf("inflate: %w: %w", ErrMalformed, err)
	}
	if len(out) > maxInflate {
		return nil, fmt.Errorf("inflated text over %d bytes: %w", maxInflate, ErrLimit)
	}
	return out, nil
}

func capBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// printable makes a chunk type or keyword safe for a locator.
func printable(s string) string {
	s = capString(s, 80)
	out := []byte(s)
	for i, c := range out {
		if c < 0x20 || c >= 0x7F || c == '[' || c == ']' {
			out[i] = '?'
		}
	}
	return string(out)
}

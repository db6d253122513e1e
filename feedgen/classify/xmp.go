package classify

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// XMP reader.
//
// The served XMP libraries do not read IPTC DigitalSourceType
// (evanoberholster/imagemeta has no Iptc4xmpExt support; trimmer-io/go-xmp
// is not served), so this streams the packet with encoding/xml, which
// resolves prefixes to namespace URIs: Midjourney writes
// iptcExt:DigitalSourceType, Adobe writes Iptc4xmpExt:, and both must match
// by URI. A property may be an attribute of rdf:Description, an element with
// text, or an element with rdf:resource. Token count, depth and size are
// capped; encoding/xml does not expand custom entities.

const (
	nsIPTCExt = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
	nsXMP     = "http://ns.adobe.com/xap/1.0/"
	nsEXIF    = "http://ns.adobe.com/exif/1.0/"
	nsTIFF    = "http://ns.adobe.com/tiff/1.0/"
	nsDCTerms = "http://purl.org/dc/terms/"
	nsRDF     = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"

	maxXMPBytes  = 2 << 20
	maxXMPTokens = 1 << 17
	maxXMPDepth  = 64
	maxXMPValue  = 64 << 10
)

// xmpProp is one property value found in a packet.
type xmpProp struct {
	Name  string // canonical "prefix:Local", e.g. "Iptc4xmpExt:DigitalSourceType"
	Value string
}

// xmpName returns the canonical name of a property we read, or "".
// Undeclared prefixes (Space is then the bare prefix) are accepted for
// the usual prefixes, since some writers omit the xmlns declaration.
func xmpName(n xml.Name) string {
	space := n.Space
	switch space {
	case "Iptc4xmpExt", "iptcExt":
		space = nsIPTCExt
	case "xmp":
		space = nsXMP
	case "exif":
		space = nsEXIF
	case "tiff":
		space = nsTIFF
	case "dcterms":
		space = nsDCTerms
	}
	switch space {
	case nsIPTCExt:
		switch n.Local {
		case "DigitalSourceType", "AISystemUsed", "AISystemVersionUsed", "AIPromptInformation", "AIPromptWriterName":
			return "Iptc4xmpExt:" + n.Local
		}
	case nsXMP:
		if n.Local == "CreatorTool" {
			return "xmp:CreatorTool"
		}
	case nsEXIF:
		if n.Local == "UserComment" {
			return "exif:UserComment"
		}
	case nsTIFF:
		if n.Local == "Make" || n.Local == "Model" || n.Local == "Software" {
			return "tiff:" + n.Local
		}
	case nsDCTerms:
		if n.Local == "provenance" {
			return "dcterms:provenance"
		}
	}
	return ""
}

// parseXMP returns the properties of interest in document order. On a
// syntax error it returns what was read before it, with the error.
func parseXMP(b []byte) ([]xmpProp, error) {
	if len(b) > maxXMPBytes {
		return nil, fmt.Errorf("xmp: %d bytes: %w", len(b), ErrLimit)
	}
	b, wide := xmpUTF8(b)
	b = bytes.TrimRight(b, "\x00 \r\n\t")
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	d.CharsetReader = func(label string, r io.Reader) (io.Reader, error) {
		// A packet already re-encoded from UTF-16/32 still declares its
		// original encoding; anything else is refused.
		if wide != "" && strings.HasPrefix(strings.ToLower(label), wide) {
			return r, nil
		}
		return nil, fmt.Errorf("xmp: charset %q: %w", printable(label), ErrMalformed)
	}
	var props []xmpProp
	type capture struct {
		name  string
		depth int
		text  strings.Builder
	}
	var cur *capture
	depth, tokens := 0, 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return props, fmt.Errorf("xmp: %w: %w", ErrMalformed, err)
		}
		tokens++
		if tokens > maxXMPTokens {
			return props, fmt.Errorf("xmp: more than %d tokens: %w", maxXMPTokens, ErrLimit)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth > maxXMPDepth {
				return props, fmt.Errorf("xmp: nesting deeper than %d: %w", maxXMPDepth, ErrLimit)
			}
			for _, a := range t.Attr {
				if n := xmpName(a.Name); n != "" {
					props = appendProp(props, n, a.Value)
				}
			}
			if cur != nil {
				if cur.text.Len() > 0 && t.Name.Local == "li" {
					cur.text.WriteByte('\n')
				}
				continue
			}
			if n := xmpName(t.Name); n != "" {
				for _, a := range t.Attr {
					if a.Name.Space == nsRDF && a.Name.Local == "resource" {
						props = appendProp(props, n, a.Value)
					}
				}
				cur = &capture{name: n, depth: depth}
			}
		case xml.CharData:
			if cur != nil && cur.text.Len() < maxXMPValue {
				cur.text.Write(t[:min(len(t), maxXMPValue-cur.text.Len())])
			}
		case xml.EndElement:
			if cur != nil && depth == cur.depth {
				if v := strings.TrimSpace(cur.text.String()); v != "" {
					props = appendProp(props, cur.name, v)
				}
				cur = nil
			}
			depth--
		}
	}
	return props, nil
}

func appendProp(props []xmpProp, name, value string) []xmpProp {
	if len(props) >= maxParts {
		return props
	}
	return append(props, xmpProp{Name: name, Value: capString(value, maxXMPValue)})
}

// xmpEvidence turns one XMP packet into evidence.
func xmpEvidence(p Part) []Evidence {
	props, err := parseXMP(p.Data)
	var out []Evidence
	if err != nil {
		out = append(out, infoEvidence("xmp.error", p.Locator, err.Error()))
	}
	var makeVal, modelVal string
	for _, pr := range props {
		loc := p.Locator + " xmp:" + pr.Name
		switch pr.Name {
		case "Iptc4xmpExt:DigitalSourceType":
			if ev, ok := dstEvidence("xmp.digitalSourceType", loc, pr.Value, 0.9); ok {
				out = append(out, ev)
			}
		case "Iptc4xmpExt:AISystemUsed", "Iptc4xmpExt:AISystemVersionUsed", "Iptc4xmpExt:AIPromptInformation", "Iptc4xmpExt:AIPromptWriterName":
			// IPTC 2025.1 AI properties say an AI system was used, not
			// that it made the whole image: ai_assisted unless a source
			// type says more.
			out = append(out, Evidence{Signal: "xmp.iptc.aiSystem", Class: ClassAIAssisted, Weight: 3,
				Tier: TierDeterministic, Locator: loc, Excerpt: excerpt(pr.Value)})
		case "xmp:CreatorTool", "tiff:Software":
			if ev, ok := generatorNameEvidence("xmp.creatorTool", loc, pr.Value); ok {
				out = append(out, ev)
			}
		case "exif:UserComment":
			out = append(out, textFieldEvidence([]TextField{{Key: "UserComment", Value: pr.Value, Locator: loc}})...)
		case "tiff:Make":
			makeVal = pr.Value
		case "tiff:Model":
			modelVal = pr.Value
		case "dcterms:provenance":
			out = append(out, infoEvidence("xmp.provenance", loc, "points to a C2PA manifest (unproven): "+pr.Value))
		}
	}
	if ev, ok := cameraEvidence("xmp.camera", p.Locator+" xmp:tiff:Make/Model", makeVal, modelVal); ok {
		out = append(out, ev)
	}
	return out
}

// xmpUTF8 returns an XMP packet as UTF-8. XMP may be serialised in UTF-8,
// UTF-16 or UTF-32 (XMP spec part 1, 7.1 and the packet wrapper's BOM);
// encoding/xml reads only UTF-8, so wide packets are re-encoded here. The
// encoding is found from a BOM or, without one, from the zero bytes around
// the leading '<'. wide is "utf-16" or "utf-32" for a converted packet and
// "" otherwise.
func xmpUTF8(b []byte) (out []byte, wide string) {
	var bo binary.ByteOrder
	width := 0
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		return b[3:], ""
	case bytes.HasPrefix(b, []byte{0x00, 0x00, 0xFE, 0xFF}):
		bo, width, b = binary.BigEndian, 4, b[4:]
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE, 0x00, 0x00}):
		bo, width, b = binary.LittleEndian, 4, b[4:]
	case bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		bo, width, b = binary.BigEndian, 2, b[2:]
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}):
		bo, width, b = binary.LittleEndian, 2, b[2:]
	case bytes.HasPrefix(b, []byte{0, 0, 0, '<'}):
		bo, width = binary.BigEndian, 4
	case bytes.HasPrefix(b, []byte{'<', 0, 0, 0}):
		bo, width = binary.LittleEndian, 4
	case bytes.HasPrefix(b, []byte{0, '<'}):
		bo, width = binary.BigEndian, 2
	case bytes.HasPrefix(b, []byte{'<', 0}):
		bo, width = binary.LittleEndian, 2
	default:
		return b, ""
	}
	var sb strings.Builder
	sb.Grow(len(b) / width)
	if width == 4 {
		for i := 0; i+4 <= len(b); i += 4 {
			r := rune(bo.Uint32(b[i:]))
			if !utf8.ValidRune(r) {
				r = utf8.RuneError
			}
			sb.WriteRune(r)
		}
		return []byte(sb.String()), "utf-32"
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = bo.Uint16(b[2*i:])
	}
	for _, r := range utf16.Decode(u) {
		sb.WriteRune(r)
	}
	return []byte(sb.String()), "utf-16"
}

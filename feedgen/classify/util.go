package classify

import (
	"strings"
	"unicode/utf8"
)

// Safety caps shared by the parsers. Constants, not variables: the package
// has no mutable global state.
const (
	// MaxMediaBytes is the largest blob Extract will scan. Bluesky caps
	// images at 2 MB; this leaves room for video posters and future embeds.
	MaxMediaBytes = 16 << 20
	// maxInflate caps the output of any zlib stream (zTXt, compressed iTXt).
	maxInflate = 1 << 20
	// maxTextBytes caps one text value kept for fingerprinting.
	maxTextBytes = 1 << 20
	// maxParts caps segments, chunks and text fields collected per blob.
	maxParts = 1024
	// maxExcerpt caps Evidence.Excerpt in bytes.
	maxExcerpt = 120
)

// excerpt returns s with whitespace collapsed, cut to at most maxExcerpt
// bytes on a rune boundary, with invalid UTF-8 replaced.
func excerpt(s string) string {
	if len(s) > 4*maxExcerpt {
		s = s[:4*maxExcerpt]
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= maxExcerpt {
		return s
	}
	cut := maxExcerpt - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// latin1 decodes ISO-8859-1 bytes (PNG tEXt/zTXt) to a UTF-8 string.
func latin1(b []byte) string {
	ascii := true
	for _, c := range b {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) + len(b)/4)
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

// cstring splits b at the first NUL, returning the part before it and the
// rest after it. ok is false when there is no NUL within max bytes.
func cstring(b []byte, max int) (s, rest []byte, ok bool) {
	lim := len(b)
	if lim > max+1 {
		lim = max + 1
	}
	for i := 0; i < lim; i++ {
		if b[i] == 0 {
			return b[:i], b[i+1:], true
		}
	}
	return nil, b, false
}

// capString returns s cut to at most n bytes.
func capString(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

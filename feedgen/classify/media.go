package classify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
)

// Part is one metadata payload found in a container, with its locator
// inside the blob (e.g. "jpeg:APP1[Exif]", "png:caBX", "webp:C2PA").
type Part struct {
	Locator string
	Data    []byte
}

// TextField is one key/value text found in a container: a PNG
// tEXt/zTXt/iTXt chunk or a JPEG COM segment (key "Comment").
type TextField struct {
	Key     string
	Value   string
	Locator string
}

// Metadata is what a container walker extracts from one blob. Slices
// alias the input bytes except for inflated or reassembled payloads.
type Metadata struct {
	// Format is "jpeg", "png", "webp", "heic", "avif", "mp4", "mov" or ""
	// when the container is unknown.
	Format string
	EXIF   []Part // raw TIFF (any "Exif\0\0" prefix removed)
	XMP    []Part // XMP packets
	C2PA   []Part // JUMBF manifest stores (reassembled for JPEG)
	Text   []TextField
	// Problems lists non-fatal parse problems (a bad CRC, a zip bomb, a
	// missing APP11 packet). Each wraps one of the package's sentinel errors.
	Problems []error
}

func (m *Metadata) problem(err error) {
	if len(m.Problems) < maxParts {
		m.Problems = append(m.Problems, err)
	}
}

// Extract sniffs the container format from its magic bytes and walks it.
// It returns an error only when the container is unrecognised or its
// header is unusable; damage further in is reported in Problems together
// with everything read before it. It never panics.
func Extract(b []byte) (*Metadata, error) {
	if len(b) > MaxMediaBytes {
		return nil, fmt.Errorf("extract: %d bytes: %w", len(b), ErrTooLarge)
	}
	switch {
	case bytes.HasPrefix(b, []byte{0xFF, 0xD8}):
		return parseJPEG(b)
	case bytes.HasPrefix(b, []byte(pngSignature)):
		return parsePNG(b)
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return parseWebP(b)
	case isBMFF(b):
		return parseBMFF(b)
	}
	return &Metadata{}, fmt.Errorf("extract: unrecognised container: %w", ErrMalformed)
}

// BlobCID returns the atproto blob CID of b: CIDv1, raw codec, sha-256,
// base32 lower case with the "b" multibase prefix.
func BlobCID(b []byte) string {
	sum := sha256.Sum256(b)
	raw := append([]byte{0x01, 0x55, 0x12, 0x20}, sum[:]...)
	enc := base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
	return "b" + enc.EncodeToString(raw)
}

// MediaEvidenceWith returns all evidence found in one blob; locators start
// with "blob:<cid>" (computed from the bytes when m.CID is empty). The options
// give the C2PA trust list and the validation time. The result depends on the
// bytes, the CID, the trust list (see TrustList.Fingerprint) and, through
// certificate validity periods, the time.
func MediaEvidenceWith(m Media, opt MediaOptions) []Evidence {
	prefix := "blob:" + m.CID
	if m.CID == "" {
		prefix = "blob:" + BlobCID(m.Bytes)
	}
	md, err := Extract(m.Bytes)
	var out []Evidence
	if err != nil {
		if len(m.Bytes) > 0 {
			out = append(out, infoEvidence("media.error", prefix, err.Error()))
		}
		return out
	}
	for _, p := range md.C2PA {
		out = append(out, c2paEvidenceFor(p, m.Bytes, opt)...)
	}
	for _, p := range md.XMP {
		out = append(out, xmpEvidence(p)...)
	}
	for _, p := range md.EXIF {
		out = append(out, exifEvidence(p)...)
	}
	out = append(out, textFieldEvidence(md.Text)...)
	for _, pr := range md.Problems {
		out = append(out, infoEvidence("media.problem", md.Format, pr.Error()))
	}
	for i := range out {
		if out[i].Locator == "" {
			out[i].Locator = prefix
		} else {
			out[i].Locator = prefix + " " + out[i].Locator
		}
	}
	return out
}

// infoEvidence records something for explanation only.
func infoEvidence(signal, loc, msg string) Evidence {
	return Evidence{Signal: signal, Class: ClassInfo, Tier: TierDeterministic, Locator: loc, Excerpt: excerpt(msg)}
}

// MediaScorer scores the bytes of every attached blob.
type MediaScorer struct {
	// Options holds the C2PA trust list and validation time.
	Options MediaOptions
}

// Name implements Scorer.
func (MediaScorer) Name() string { return "media" }

// Score implements Scorer.
func (s MediaScorer) Score(_ context.Context, in *PostInput) ([]Evidence, error) {
	var out []Evidence
	for _, m := range in.Media {
		out = append(out, MediaEvidenceWith(m, s.Options)...)
	}
	return out, nil
}

package classify

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"sort"
)

// TrustList is a set of trust anchors for C2PA signing certificates and
// for the time-stamping authorities (TSAs) of RFC 3161 time-stamps. None
// ships with Hearth: the C2PA trust list (and its separate TSA trust
// list) and the Content Authenticity Initiative's list are public, and an
// operator who wants "valid" verdicts downloads the ones they trust as PEM,
// concatenated into one file, and points the feed generator at it (hearth
// serve/feed --c2pa-trust-list FILE). A root in the file is trusted for
// both roles; TSA chains must also carry the time-stamping extended key
// usage. A TrustList is immutable once built.
type TrustList struct {
	pool *x509.CertPool
	n    int
	fp   string
}

// maxTrustListBytes bounds a trust list file.
const maxTrustListBytes = 8 << 20

// ParseTrustList reads PEM "CERTIFICATE" blocks. Other block types are
// skipped; a list without any certificate, or with one that does not
// parse, is an error.
func ParseTrustList(b []byte) (*TrustList, error) {
	if len(b) > maxTrustListBytes {
		return nil, fmt.Errorf("trust list: %d bytes: %w", len(b), ErrLimit)
	}
	t := &TrustList{pool: x509.NewCertPool()}
	var ders []string
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("trust list: certificate %d: %w", t.n+1, err)
		}
		t.pool.AddCert(c)
		t.n++
		ders = append(ders, string(blk.Bytes))
	}
	if t.n == 0 {
		return nil, fmt.Errorf("trust list: no PEM CERTIFICATE blocks: %w", ErrMalformed)
	}
	sort.Strings(ders)
	h := sha256.New()
	for _, d := range ders {
		h.Write([]byte(d))
	}
	t.fp = hex.EncodeToString(h.Sum(nil))[:16]
	return t, nil
}

// LoadTrustList reads a PEM trust list file.
func LoadTrustList(path string) (*TrustList, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trust list: %w", err)
	}
	return ParseTrustList(b)
}

// Len is the number of trust anchors.
func (t *TrustList) Len() int {
	if t == nil {
		return 0
	}
	return t.n
}

// Fingerprint identifies the list's content (for cache keys): the first
// 16 hex digits of a SHA-256 over the sorted DER certificates, or "" for
// a nil list.
func (t *TrustList) Fingerprint() string {
	if t == nil {
		return ""
	}
	return t.fp
}

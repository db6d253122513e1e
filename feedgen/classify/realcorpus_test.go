package classify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// realCorpusDir holds real files made by real tools (generators with
// Content Credentials, generator UIs, cameras), each with its source,
// commit, hash and the metadata field justifying its label.
const realCorpusDir = "../../testdata/provenance"

func TestRealCorpus(t *testing.T) {
	corpus, err := LoadCorpus(realCorpusDir)
	require.NoError(t, err)
	total := int64(0)
	for _, it := range corpus.Items {
		b, err := os.ReadFile(filepath.Join(realCorpusDir, it.File))
		require.NoError(t, err)
		total += int64(len(b))
		sum := sha256.Sum256(b)
		assert.Equal(t, it.SHA256, hex.EncodeToString(sum[:]), "%s: bytes differ from the recorded source", it.Name)
		assert.NotEmpty(t, it.Source, it.Name)
		assert.Len(t, it.Commit, 40, it.Name)
		assert.NotEmpty(t, it.Field, it.Name)
	}
	assert.Less(t, total, int64(20<<20), "corpus must stay under 20 MB")

	res, err := Eval(context.Background(), realCorpusDir, nil)
	require.NoError(t, err)
	for _, it := range res.Items {
		assert.True(t, it.OK, "%s: expect %s, got %s (%v)", it.Name, it.Expect, it.Got, it.Signals)
	}
	assert.Equal(t, 1.0, res.Precision)
	assert.Zero(t, res.FalseAI)
	assert.GreaterOrEqual(t, res.Recall, 0.97)
	require.NoError(t, res.Check())
}

// activeSignature returns the active (last) manifest's c2pa.signature
// excerpt and that manifest's c2pa.timestamp excerpt ("" without one).
func activeSignature(ev []Evidence) (sig, ts string) {
	var loc string
	for _, e := range ev {
		if e.Signal == "c2pa.signature" {
			sig, loc, ts = e.Excerpt, e.Locator, ""
		}
		if e.Signal == "c2pa.timestamp" && strings.HasPrefix(e.Locator, loc) {
			ts = e.Excerpt
		}
	}
	return sig, ts
}

// TestRealSignatures checks validation statuses on real signed files
// without a trust list: the RFC 3161 time-stamps (DigiCert's TSA for
// Amazon, OpenAI's DALL-E and the C2PA SDK's files, Adobe's for Firefly,
// Google's own sigTst2) cover the claim signature and their TSA signatures
// verify, but with nothing trusted an expired signer stays unverifiable.
func TestRealSignatures(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for file, want := range map[string][2]string{
		"c2pa-rs-xca.jpg":          {"invalid: asset does not match its hard binding", ""},
		"iphone-cards-invalid.jpg": {"invalid: asset does not match its hard binding", ""},
		"c2pa-rs-c.jpg": {"unverifiable: no C2PA trust list configured; signature and hashes intact",
			"sigTst 2024-08-06 checked (imprint, TSA signature), no trust list for TSA DigiCert Timestamp 2023"},
		"c2pa-openai-chatgpt.png": {"invalid: certificate valid 2025-04-15 to 2026-04-15, outside it at validation and no time-stamp says when it signed", ""},
		"c2pa-openai-dalle.webp": {"unverifiable: certificate valid 2024-01-30 to 2025-01-29, outside it at validation; time-stamp's TSA not trusted",
			"sigTst 2024-03-08 checked (imprint, TSA signature), no trust list for TSA DigiCert Timestamp 2023"},
		"c2pa-amazon-titan.png": {"unverifiable: certificate valid 2024-08-14 to 2025-08-14, outside it at validation; time-stamp's TSA not trusted",
			"sigTst 2024-09-25 checked (imprint, TSA signature), no trust list for TSA DigiCert Timestamp 2023"},
		"c2pa-firefly-photoshop.jpg": {"unverifiable: certificate valid 2024-10-15 to 2025-10-15, outside it at validation; time-stamp's TSA not trusted",
			"sigTst 2025-08-13 checked (imprint, TSA signature), no trust list for TSA Adobe SHA256 ECC256 Timestamp Responder 2025 1"},
		"c2pa-google-generated.png": {"unverifiable: hard binding c2pa.hash.boxes not checked here",
			"sigTst2 2026-01-04 checked (imprint, TSA signature), no trust list for TSA Google Core Time Stamping Authority T12"},
		"c2pa-bing-image-creator.jpg": {"unverifiable: hard binding c2pa.hash.boxes not checked here",
			"sigTst 2024-03-08 checked (imprint, TSA signature), no trust list for TSA DigiCert Timestamp 2023"},
		"c2pa-rs-video.mp4": {"unverifiable: hard binding c2pa.hash.bmff.v2 not checked here",
			"sigTst 2023-12-02 checked (imprint, TSA signature), no trust list for TSA DigiCert Timestamp 2023"},
		"trustnxt-heic-signed.heic": {"unverifiable: hard binding c2pa.hash.bmff.v2 not checked here",
			"sigTst2 2025-01-27 checked (imprint, TSA signature), no trust list for TSA Globalsign TSA for AATL"},
		// Its sigTst2 token's CMS signature does not verify (openssl cms
		// -verify agrees); the signer is current, so it only loses the
		// time-stamp.
		"trustnxt-jpeg-signed.jpg": {"unverifiable: no C2PA trust list configured", "sigTst2 token refused: x509: ECDSA verification failure"},
	} {
		t.Run(file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(realCorpusDir, file))
			require.NoError(t, err)
			sig, ts := activeSignature(MediaEvidenceWith(Media{CID: "b", Bytes: b}, MediaOptions{Now: at}))
			assert.True(t, strings.HasPrefix(sig, want[0]), "got %q", sig)
			assert.True(t, strings.HasPrefix(ts, want[1]), "time-stamp: got %q", ts)
			assert.Equal(t, want[1] == "", ts == "", "time-stamp: got %q", ts)
		})
	}
}

// TestRealSignaturesTrusted checks real signed files against a trust list: c2pa-rs's
// ES256 test intermediate (testdata/c2pa-trust) makes trustnxt-jpeg-signed.jpg valid;
// with DigiCert's public roots added as TSA roots (digicert-tsa-roots.pem) the
// time-stamps of most files are trusted, so Amazon Titan's expired signer, which
// chains to DigiCert Assured ID, is valid at its time-stamp; files whose signer
// roots are not listed stay unverifiable with the issuer named although their
// time-stamp is trusted; c2pa-rs's RSA-PSS test chain cannot be checked by
// crypto/x509 and says so.
func TestRealSignaturesTrusted(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var pemList []byte
	for _, f := range []string{"c2pa-test-intermediate.pem", "digicert-tsa-roots.pem"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "c2pa-trust", f))
		require.NoError(t, err)
		pemList = append(pemList, b...)
	}
	tl, err := ParseTrustList(pemList)
	require.NoError(t, err)
	require.Equal(t, 3, tl.Len())
	for file, want := range map[string][2]string{
		"trustnxt-jpeg-signed.jpg": {"valid; signer C2PA Signer, C2PA Test Signing Cert", "sigTst2 token refused"},
		"c2pa-amazon-titan.png": {"valid: signer checked at its time-stamp 2024-09-25; signer Amazon Web Services, Inc.",
			"sigTst 2024-09-25 checked (imprint, TSA signature), TSA DigiCert Timestamp 2023 trusted"},
		"c2pa-firefly-photoshop.jpg": {`unverifiable: issuer "Adobe Root CA G2" not on the trust list; signer Adobe C2PA, Adobe Inc.`,
			"sigTst 2025-08-13 checked (imprint, TSA signature), TSA Adobe SHA256 ECC256 Timestamp Responder 2025 1 trusted"},
		"c2pa-openai-dalle.webp": {`unverifiable: issuer "RootCA" not on the trust list`,
			"sigTst 2024-03-08 checked (imprint, TSA signature), TSA DigiCert Timestamp 2023 trusted"},
		"iphone-cards-signed.jpg": {`unverifiable: issuer "Test Root CA" not on the trust list`,
			"sigTst 2024-05-30 checked (imprint, TSA signature), TSA DigiCert Timestamp 2023 trusted"},
		"c2pa-google-generated.png": {"unverifiable: hard binding c2pa.hash.boxes not checked here",
			`sigTst2 2026-01-04 checked (imprint, TSA signature), TSA issuer "Google C2PA Root CA G3" not on the trust list`},
		"c2pa-rs-c.jpg": {"unverifiable: certificate C2PA Signer, C2PA Test Signing Cert has a public key type crypto/x509 cannot verify with",
			"sigTst 2024-08-06 checked (imprint, TSA signature), TSA DigiCert Timestamp 2023 trusted"},
		"c2pa-rs-xca.jpg":         {"invalid: asset does not match its hard binding", ""},
		"c2pa-openai-chatgpt.png": {"invalid: certificate valid 2025-04-15 to 2026-04-15, outside it at validation and no time-stamp", ""},
	} {
		t.Run(file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(realCorpusDir, file))
			require.NoError(t, err)
			sig, ts := activeSignature(MediaEvidenceWith(Media{CID: "b", Bytes: b}, MediaOptions{Now: at, Trust: tl}))
			assert.True(t, strings.HasPrefix(sig, want[0]), "got %q", sig)
			assert.True(t, strings.HasPrefix(ts, want[1]), "time-stamp: got %q", ts)
			assert.Equal(t, want[1] == "", ts == "", "time-stamp: got %q", ts)
		})
	}
}

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

// TestRealSignatures checks validation statuses on real signed files.
func TestRealSignatures(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for file, want := range map[string]string{
		"c2pa-rs-xca.jpg":             "invalid: asset does not match its hard binding",
		"iphone-cards-invalid.jpg":    "invalid: asset does not match its hard binding",
		"c2pa-rs-c.jpg":               "unverifiable: no C2PA trust list configured; signature and hashes intact",
		"c2pa-openai-chatgpt.png":     "invalid: certificate valid 2025-04-15 to 2026-04-15, outside it",
		"c2pa-bing-image-creator.jpg": "unverifiable: hard binding c2pa.hash.boxes not checked here",
		"c2pa-rs-video.mp4":           "unverifiable: hard binding c2pa.hash.bmff.v2 not checked here",
	} {
		t.Run(file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(realCorpusDir, file))
			require.NoError(t, err)
			ev := MediaEvidenceWith(Media{CID: "b", Bytes: b}, MediaOptions{Now: at})
			var last string
			for _, e := range ev {
				if e.Signal == "c2pa.signature" {
					last = e.Excerpt // the active manifest is last
				}
			}
			assert.True(t, strings.HasPrefix(last, want), "got %q", last)
		})
	}
}

// TestRealSignaturesTrusted checks real signed files against a trust list: c2pa-rs's
// ES256 test intermediate (testdata/c2pa-trust) makes trustnxt-jpeg-signed.jpg valid;
// files signed by others stay unverifiable with the issuer named; c2pa-rs's RSA-PSS
// test chain cannot be checked by crypto/x509 and says so.
func TestRealSignaturesTrusted(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tl, err := LoadTrustList(filepath.Join("..", "..", "testdata", "c2pa-trust", "c2pa-test-intermediate.pem"))
	require.NoError(t, err)
	require.Equal(t, 1, tl.Len())
	for file, want := range map[string]string{
		"trustnxt-jpeg-signed.jpg": "valid; signer C2PA Signer, C2PA Test Signing Cert",
		"c2pa-rs-c.jpg":            "unverifiable: certificate C2PA Signer, C2PA Test Signing Cert has a public key type crypto/x509 cannot verify with",
		"c2pa-rs-xca.jpg":          "invalid: asset does not match its hard binding",
	} {
		t.Run(file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(realCorpusDir, file))
			require.NoError(t, err)
			var last string
			for _, e := range MediaEvidenceWith(Media{CID: "b", Bytes: b}, MediaOptions{Now: at, Trust: tl}) {
				if e.Signal == "c2pa.signature" {
					last = e.Excerpt
				}
			}
			assert.True(t, strings.HasPrefix(last, want), "got %q", last)
		})
	}
}

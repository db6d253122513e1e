package classify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/veraison/go-cose"
)

// Signed C2PA manifests made in the test with Go's crypto: a CA (and
// optionally an intermediate) issue an ECDSA P-256 signer; the claim is
// signed as a detached COSE_Sign1 with go-cose; the store goes into a
// PNG caBX chunk right after IHDR with a c2pa.hash.data exclusion over
// that chunk, as the C2PA SDK writes PNGs.

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

var testSerial = big.NewInt(100)

func newCert(t testing.TB, cn string, parent *testCA, isCA bool, nb, na time.Time) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	testSerial = new(big.Int).Add(testSerial, big.NewInt(1))
	tmpl := &x509.Certificate{
		SerialNumber: testSerial, Subject: pkix.Name{CommonName: cn, Organization: []string{"Hearth test"}},
		NotBefore: nb, NotAfter: na, BasicConstraintsValid: true, IsCA: isCA,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	}
	if isCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		tmpl.ExtKeyUsage = nil
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCA{cert: c, key: key}
}

func trustOf(t testing.TB, cas ...*testCA) *TrustList {
	t.Helper()
	var b []byte
	for _, ca := range cas {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})...)
	}
	tl, err := ParseTrustList(b)
	require.NoError(t, err)
	return tl
}

type signOpts struct {
	signer     *testCA
	chain      []*testCA // certificates after the signer in x5chain
	dst        string    // digitalSourceType code of the c2pa.created action
	corruptSig bool      // flip a bit in the COSE signature
	swapDST    string    // replace the actions assertion after signing
	// sigTst, if set, returns a time-stamp header (label, token) for the
	// signed message and its claim (c2pa_timestamp_test.go).
	sigTst func(msg *cose.Sign1Message, claim []byte) (string, []byte)
}

var pngIDAT = pngChunkForTest("IDAT", []byte("pixels stand-in: the walker does not decode them"))

// signedPNG builds a PNG carrying a signed manifest store.
func signedPNG(t testing.TB, o signOpts) []byte {
	t.Helper()
	prefix := append([]byte(pngSignature), pngChunkForTest("IHDR", make([]byte, 13))...)
	suffix := append(append([]byte(nil), pngIDAT...), pngChunkForTest("IEND", nil)...)
	sum := sha256.Sum256(append(append([]byte(nil), prefix...), suffix...))
	actions := func(dst string) []byte {
		return superbox("cbor", "c2pa.actions.v2", box("cbor", cborFor(t, map[string]any{"actions": []any{
			map[string]any{"action": "c2pa.created", "digitalSourceType": dstBase + dst, "softwareAgent": map[string]any{"name": "test camera app"}}}})))
	}
	excl := 0
	// The store's length must settle (the exclusion covers it); an RFC 3161
	// token's length varies from one signing to the next (DER ECDSA
	// signature, random serial), so a time-stamped store takes more tries.
	for range 64 {
		act := actions(o.dst)
		hash := superbox("cbor", "c2pa.hash.data", box("cbor", cborFor(t, map[string]any{
			"alg": "sha256", "name": "jumbf manifest", "hash": sum[:], "pad": make([]byte, 4),
			"exclusions": []any{map[string]any{"start": len(prefix), "length": excl}}})))
		ref := func(label string, sb []byte) map[string]any {
			h := sha256.Sum256(sb[8:]) // the superbox payload
			return map[string]any{"url": "self#jumbf=c2pa.assertions/" + label, "hash": h[:]}
		}
		claim := cborFor(t, map[string]any{
			"alg": "sha256", "instanceID": "xmp:iid:test", "signature": "self#jumbf=c2pa.signature",
			"claim_generator_info": map[string]any{"name": "hearth-test", "version": "1"},
			"created_assertions":   []any{ref("c2pa.actions.v2", act), ref("c2pa.hash.data", hash)},
		})
		if o.swapDST != "" {
			act = actions(o.swapDST)
		}
		x5 := []any{o.signer.cert.Raw}
		for _, c := range o.chain {
			x5 = append(x5, c.cert.Raw)
		}
		signer, err := cose.NewSigner(cose.AlgorithmES256, o.signer.key)
		require.NoError(t, err)
		msg := cose.NewSign1Message()
		msg.Headers.Protected[cose.HeaderLabelAlgorithm] = cose.AlgorithmES256
		msg.Headers.Protected[cose.HeaderLabelX5Chain] = x5
		msg.Payload = claim
		require.NoError(t, msg.Sign(rand.Reader, nil, signer))
		msg.Payload = nil
		if o.sigTst != nil {
			label, val := o.sigTst(msg, claim)
			msg.Headers.Unprotected[label] = map[any]any{"tstTokens": []any{map[any]any{"val": val}}}
		}
		if o.corruptSig {
			msg.Signature[5] ^= 0x01
		}
		sig, err := msg.MarshalCBOR()
		require.NoError(t, err)
		store := superbox("c2pa", "c2pa", superbox("c2ma", "urn:c2pa:hearth-test",
			superbox("c2as", "c2pa.assertions", act, hash),
			superbox("c2cl", "c2pa.claim.v2", box("cbor", claim)),
			superbox("c2cs", "c2pa.signature", box("cbor", sig))))
		chunk := pngChunkForTest("caBX", store)
		if len(chunk) == excl {
			return append(append(append([]byte(nil), prefix...), chunk...), suffix...)
		}
		excl = len(chunk)
	}
	t.Fatal("exclusion length did not settle")
	return nil
}

func sigEvidence(t *testing.T, ev []Evidence) Evidence {
	t.Helper()
	for _, e := range ev {
		if e.Signal == "c2pa.signature" {
			return e
		}
	}
	t.Fatalf("no c2pa.signature evidence in %+v", ev)
	return Evidence{}
}

func TestC2PASignatureValidation(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	year := 365 * 24 * time.Hour
	root := newCert(t, "Hearth Test Root", nil, true, now.Add(-5*year), now.Add(5*year))
	inter := newCert(t, "Hearth Test Intermediate", root, true, now.Add(-4*year), now.Add(4*year))
	leaf := newCert(t, "Hearth Test Camera", inter, false, now.Add(-year), now.Add(year))
	direct := newCert(t, "Hearth Direct Signer", root, false, now.Add(-year), now.Add(year))
	expired := newCert(t, "Hearth Expired Signer", inter, false, now.Add(-2*year), now.Add(-time.Hour))
	other := newCert(t, "Some Other Root", nil, true, now.Add(-5*year), now.Add(5*year))
	stranger := newCert(t, "Stranger Signer", other, false, now.Add(-year), now.Add(year))

	capture := signOpts{signer: leaf, chain: []*testCA{inter}, dst: "digitalCapture"}
	tests := []struct {
		name   string
		asset  func() []byte
		trust  *TrustList
		status SigStatus
		reason string
		label  Label
	}{
		{"valid signed manifest, capture claim counts double", func() []byte { return signedPNG(t, capture) },
			trustOf(t, root), SigValid, "", LabelHumanDeclared},
		{"valid, signer directly under the root", func() []byte { return signedPNG(t, signOpts{signer: direct, dst: "digitalCapture"}) },
			trustOf(t, root), SigValid, "", LabelHumanDeclared},
		{"valid AI manifest", func() []byte {
			return signedPNG(t, signOpts{signer: leaf, chain: []*testCA{inter}, dst: "trainedAlgorithmicMedia"})
		},
			trustOf(t, other, root), SigValid, "", LabelAIGenerated},
		{"tampered asset: hash mismatch", func() []byte {
			b := signedPNG(t, capture)
			i := strings.Index(string(b), "pixels")
			b[i] = 'P' // the IDAT payload changes, its CRC is not even fixed
			return b
		}, trustOf(t, root), SigInvalid, "asset does not match its hard binding", LabelUnknown},
		{"tampered asset: bytes appended", func() []byte { return append(signedPNG(t, capture), 0) },
			trustOf(t, root), SigInvalid, "asset does not match", LabelUnknown},
		{"bad signature", func() []byte {
			return signedPNG(t, signOpts{signer: leaf, chain: []*testCA{inter}, dst: "digitalCapture", corruptSig: true})
		},
			trustOf(t, root), SigInvalid, "claim signature does not verify", LabelUnknown},
		{"assertion swapped after signing (AI relabelled capture)", func() []byte {
			return signedPNG(t, signOpts{signer: leaf, chain: []*testCA{inter}, dst: "trainedAlgorithmicMedia", swapDST: "digitalCapture"})
		}, trustOf(t, root), SigInvalid, "c2pa.actions.v2 does not match the signed claim", LabelUnknown},
		{"expired certificate, no time-stamp", func() []byte {
			return signedPNG(t, signOpts{signer: expired, chain: []*testCA{inter}, dst: "digitalCapture"})
		},
			trustOf(t, root), SigInvalid, "no time-stamp", LabelUnknown},
		{"unknown issuer", func() []byte {
			return signedPNG(t, signOpts{signer: stranger, chain: []*testCA{other}, dst: "digitalCapture"})
		},
			trustOf(t, root), SigUnverifiable, `issuer "Some Other Root" not on the trust list`, LabelHumanDeclared},
		{"intermediate missing from x5chain", func() []byte { return signedPNG(t, signOpts{signer: leaf, dst: "digitalCapture"}) },
			trustOf(t, root), SigUnverifiable, `issuer "Hearth Test Intermediate" not on the trust list`, LabelHumanDeclared},
		{"no trust list", func() []byte { return signedPNG(t, capture) },
			nil, SigUnverifiable, "no C2PA trust list configured", LabelHumanDeclared},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.asset()
			ev := MediaEvidenceWith(Media{CID: "bafytest", Bytes: b}, MediaOptions{Trust: tt.trust, Now: now})
			se := sigEvidence(t, ev)
			t.Log(se.Excerpt)
			st, _, _ := strings.Cut(se.Excerpt, ";")
			st, _, _ = strings.Cut(st, ":")
			assert.Equal(t, string(tt.status), st, "status: %q", se.Excerpt)
			assert.Contains(t, se.Excerpt, tt.reason)
			assert.Equal(t, ClassInfo, se.Class)
			v := Combine(ev)
			assert.Equal(t, tt.label, v.Label, "%+v", ev)
			// A manifest that fails never counts as a human-capture claim.
			for _, e := range ev {
				if tt.status == SigInvalid {
					assert.False(t, e.Class.isHuman(), "%+v", e)
				}
				if e.Signal == "c2pa.digitalSourceType" && e.Class == ClassHumanDeclared {
					if tt.status == SigValid {
						assert.Equal(t, -3.0, e.Weight)
						assert.Contains(t, e.Excerpt, "validated")
					} else {
						assert.Equal(t, -1.5, e.Weight)
					}
				}
			}
		})
	}
}

func TestC2PAVerifyDirect(t *testing.T) {
	now := time.Now()
	root := newCert(t, "R", nil, true, now.Add(-time.Hour), now.Add(time.Hour))
	leaf := newCert(t, "L", root, false, now.Add(-time.Hour), now.Add(time.Hour))
	b := signedPNG(t, signOpts{signer: leaf, dst: "digitalCapture"})
	md, err := Extract(b)
	require.NoError(t, err)
	require.Len(t, md.C2PA, 1)
	root2, err := parseJUMBF(md.C2PA[0].Data)
	require.NoError(t, err)
	mb := root2.Children[0]

	res := verifyManifest(mb, b, true, MediaOptions{Trust: trustOf(t, root)})
	assert.Equal(t, SigValid, res.Status, res.String())
	assert.Equal(t, "L, Hearth test", res.Signer)
	// Without the asset (an ingredient manifest) the binding is not
	// checked, but the signature and the assertions still are.
	res = verifyManifest(mb, nil, false, MediaOptions{Trust: trustOf(t, root)})
	assert.Equal(t, SigValid, res.Status, res.String())
	res = verifyManifest(mb, nil, true, MediaOptions{Trust: trustOf(t, root)})
	assert.Equal(t, SigUnverifiable, res.Status, res.String())

	// Structural damage.
	for name, mutate := range map[string]func(*jumbfBox){
		"no claim": func(m *jumbfBox) {
			m.Children = []*jumbfBox{m.Children[0], m.Children[2]}
		},
		"no signature": func(m *jumbfBox) { m.Children = m.Children[:2] },
		"signature not COSE": func(m *jumbfBox) {
			m.Children[2] = &jumbfBox{Type: "jumb", Label: "c2pa.signature", Children: []*jumbfBox{{Type: "cbor", Data: []byte{0xA0}}}}
		},
		"assertion missing": func(m *jumbfBox) {
			as := *m.Children[0]
			as.Children = as.Children[1:]
			m.Children[0] = &as
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := *mb
			c.Children = append([]*jumbfBox(nil), mb.Children...)
			mutate(&c)
			res := verifyManifest(&c, b, true, MediaOptions{Trust: trustOf(t, root)})
			assert.Equal(t, SigInvalid, res.Status, res.String())
		})
	}
}

func TestAssertionLabel(t *testing.T) {
	for url, want := range map[string]string{
		"self#jumbf=c2pa.assertions/c2pa.actions":                        "c2pa.actions",
		"self#jumbf=/c2pa/urn:c2pa:m/c2pa.assertions/c2pa.hash.data":     "c2pa.hash.data",
		"self#jumbf=/c2pa/urn:c2pa:other/c2pa.assertions/c2pa.hash.data": "",
		"self#jumbf=c2pa.assertions/":                                    "",
		"https://example.com/c2pa.assertions/x":                          "",
		"self#jumbf=c2pa.assertions/a/b":                                 "",
	} {
		got, ok := assertionLabel(url, "urn:c2pa:m")
		assert.Equal(t, want, got, url)
		assert.Equal(t, want != "", ok, url)
	}
}

func TestTrustList(t *testing.T) {
	now := time.Now()
	a := newCert(t, "A", nil, true, now.Add(-time.Hour), now.Add(time.Hour))
	b := newCert(t, "B", nil, true, now.Add(-time.Hour), now.Add(time.Hour))
	ab, ba := trustOf(t, a, b), trustOf(t, b, a)
	assert.Equal(t, 2, ab.Len())
	assert.Equal(t, ab.Fingerprint(), ba.Fingerprint(), "order does not matter")
	assert.NotEqual(t, ab.Fingerprint(), trustOf(t, a).Fingerprint())
	assert.Equal(t, "", (*TrustList)(nil).Fingerprint())
	assert.Equal(t, 0, (*TrustList)(nil).Len())

	_, err := ParseTrustList([]byte("not pem"))
	assert.ErrorIs(t, err, ErrMalformed)
	_, err = ParseTrustList(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}))
	assert.Error(t, err)
	// Keys and other blocks are skipped.
	mixed := append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.cert.Raw})...)
	tl, err := ParseTrustList(mixed)
	require.NoError(t, err)
	assert.Equal(t, 1, tl.Len())
	_, err = LoadTrustList("/nonexistent/trust.pem")
	assert.Error(t, err)
}

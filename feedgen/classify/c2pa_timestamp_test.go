package classify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/fxamacker/cbor/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/veraison/go-cose"
)

// Time-stamps made in the test: a TSA certificate (time-stamping EKU)
// under its own root signs RFC 3161 tokens built with
// github.com/digitorus/timestamp over the countersignature structure the
// C2PA spec defines, spelled out here independently of the code under
// test: ["CounterSignature", protected, h'', payload] with the claim as
// payload for v1 sigTst and the CBOR bstr of the COSE signature for v2
// sigTst2.

type testTSA struct {
	cert  *x509.Certificate
	key   crypto.Signer
	chain []*x509.Certificate
}

func newTestTSA(t testing.TB, cn string, root *testCA, nb, na time.Time) *testTSA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	testSerial = new(big.Int).Add(testSerial, big.NewInt(1))
	tmpl := &x509.Certificate{
		SerialNumber: testSerial, Subject: pkix.Name{CommonName: cn, Organization: []string{"Hearth test"}},
		NotBefore: nb, NotAfter: na, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root.cert, &key.PublicKey, root.key)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testTSA{cert: c, key: key, chain: []*x509.Certificate{root.cert}}
}

// response is a DER TimeStampResp whose imprint is SHA-256(data).
func (a *testTSA) response(t testing.TB, data []byte, gen time.Time) []byte {
	t.Helper()
	sum := sha256.Sum256(data)
	ts := timestamp.Timestamp{HashAlgorithm: crypto.SHA256, HashedMessage: sum[:], Time: gen,
		Policy: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, AddTSACertificate: true, Certificates: a.chain}
	resp, err := ts.CreateResponseWithOpts(a.cert, a.key, crypto.SHA256)
	require.NoError(t, err)
	return resp
}

// token is the TimeStampToken alone (sigTst2's form).
func (a *testTSA) token(t testing.TB, data []byte, gen time.Time) []byte {
	t.Helper()
	ts, err := timestamp.ParseResponse(a.response(t, data, gen))
	require.NoError(t, err)
	return ts.RawToken
}

// counterSigned is what the C2PA time-stamps cover.
func counterSigned(t testing.TB, msg *cose.Sign1Message, claim []byte, v2 bool) []byte {
	t.Helper()
	protected, err := cose.ProtectedHeader(msg.Headers.Protected).MarshalCBOR() // a bstr
	require.NoError(t, err)
	payload := claim
	if v2 {
		payload, err = cbor.Marshal(msg.Signature)
		require.NoError(t, err)
	}
	b, err := cbor.Marshal([]any{"CounterSignature", cbor.RawMessage(protected), []byte{}, payload})
	require.NoError(t, err)
	return b
}

func TestC2PATimeStamps(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	year := 365 * 24 * time.Hour
	root := newCert(t, "Hearth Test Root", nil, true, now.Add(-5*year), now.Add(5*year))
	inter := newCert(t, "Hearth Test Intermediate", root, true, now.Add(-4*year), now.Add(4*year))
	// Valid from two years to one year ago: expired now, valid at gen.
	expired := newCert(t, "Hearth Expired Signer", inter, false, now.Add(-2*year), now.Add(-year))
	current := newCert(t, "Hearth Current Signer", inter, false, now.Add(-2*year), now.Add(year))
	gen := now.Add(-18 * 30 * 24 * time.Hour)
	// The token's CMS signing-time attribute is the real clock's, so the
	// TSA certificates cover both it and gen.
	tsaRoot := newCert(t, "Hearth TSA Root", nil, true, now.Add(-5*year), now.Add(5*year))
	tsa := newTestTSA(t, "Hearth Test TSA", tsaRoot, now.Add(-5*year), now.Add(5*year))
	otherRoot := newCert(t, "Other TSA Root", nil, true, now.Add(-5*year), now.Add(5*year))
	otherTSA := newTestTSA(t, "Other TSA", otherRoot, now.Add(-5*year), now.Add(5*year))
	// A TSA whose token is signed by a key that is not its certificate's.
	forger := newTestTSA(t, "Hearth Test TSA", tsaRoot, now.Add(-5*year), now.Add(5*year))
	forger.cert = tsa.cert

	v1 := func(a *testTSA, at time.Time) func(*cose.Sign1Message, []byte) (string, []byte) {
		return func(msg *cose.Sign1Message, claim []byte) (string, []byte) {
			return "sigTst", a.response(t, counterSigned(t, msg, claim, false), at)
		}
	}
	v2 := func(a *testTSA, at time.Time) func(*cose.Sign1Message, []byte) (string, []byte) {
		return func(msg *cose.Sign1Message, claim []byte) (string, []byte) {
			return "sigTst2", a.token(t, counterSigned(t, msg, claim, true), at)
		}
	}
	trusted := trustOf(t, root, tsaRoot)
	day := gen.Format(time.DateOnly)
	tests := []struct {
		name     string
		signer   *testCA
		sigTst   func(*cose.Sign1Message, []byte) (string, []byte)
		trust    *TrustList
		status   SigStatus
		reason   string // in the c2pa.signature evidence
		tsReason string // the c2pa.timestamp evidence
	}{
		{"v1 time-stamp on an expired signer", expired, v1(tsa, gen), trusted, SigValid, "signer checked at its time-stamp " + day,
			"sigTst " + day + " checked (imprint, TSA signature), TSA Hearth Test TSA trusted"},
		{"v2 time-stamp on an expired signer", expired, v2(tsa, gen), trusted, SigValid, "signer checked at its time-stamp " + day,
			"sigTst2 " + day + " checked (imprint, TSA signature), TSA Hearth Test TSA trusted"},
		{"time-stamp on a current signer", current, v2(tsa, gen), trusted, SigValid, "signer checked at its time-stamp " + day,
			"TSA Hearth Test TSA trusted"},
		{"time-stamp over other bytes", expired, func(*cose.Sign1Message, []byte) (string, []byte) {
			return "sigTst", tsa.response(t, []byte("some other claim"), gen)
		}, trusted, SigInvalid, "outside it at validation; time-stamp refused", "sigTst imprint does not match the claim signature"},
		{"v1 imprint stored as sigTst2", expired, func(msg *cose.Sign1Message, claim []byte) (string, []byte) {
			return "sigTst2", tsa.token(t, counterSigned(t, msg, claim, false), gen)
		}, trusted, SigInvalid, "time-stamp refused", "sigTst2 imprint does not match the claim signature"},
		{"TSA signature does not verify", expired, v1(forger, gen), trusted, SigInvalid, "time-stamp refused", "sigTst token refused"},
		{"untrusted TSA", expired, v1(otherTSA, gen), trusted, SigUnverifiable, "outside it at validation; time-stamp's TSA not trusted",
			`sigTst ` + day + ` checked (imprint, TSA signature), TSA issuer "Other TSA Root" not on the trust list`},
		{"TSA root missing from the list", expired, v2(tsa, gen), trustOf(t, root), SigUnverifiable, "TSA not trusted",
			`TSA issuer "Hearth TSA Root" not on the trust list`},
		{"no trust list", expired, v1(tsa, gen), nil, SigUnverifiable, "TSA not trusted", "checked (imprint, TSA signature), no trust list for TSA Hearth Test TSA"},
		{"untrusted TSA on a current signer", current, v1(otherTSA, gen), trusted, SigValid, "", "not on the trust list"},
		{"trusted time-stamp after the signer expired", expired, v1(tsa, now.Add(-year/2)), trusted, SigInvalid,
			"outside it at its time-stamp " + now.Add(-year/2).Format(time.DateOnly), "TSA Hearth Test TSA trusted"},
		{"garbage token", expired, func(*cose.Sign1Message, []byte) (string, []byte) { return "sigTst", []byte{0x30, 0x03, 0x02, 0x01} },
			trusted, SigInvalid, "time-stamp refused", "sigTst token refused"},
		{"empty token on a current signer", current, func(*cose.Sign1Message, []byte) (string, []byte) { return "sigTst2", nil },
			trusted, SigValid, "", "sigTst2 malformed: tstToken without val"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := signedPNG(t, signOpts{signer: tt.signer, chain: []*testCA{inter}, dst: "digitalCapture", sigTst: tt.sigTst})
			ev := MediaEvidenceWith(Media{CID: "bafytest", Bytes: b}, MediaOptions{Trust: tt.trust, Now: now})
			se := sigEvidence(t, ev)
			var tse Evidence
			for _, e := range ev {
				if e.Signal == "c2pa.timestamp" {
					tse = e
				}
			}
			t.Log(se.Excerpt, " / ", tse.Excerpt)
			st, _, _ := strings.Cut(se.Excerpt, ";")
			st, _, _ = strings.Cut(st, ":")
			assert.Equal(t, string(tt.status), st, "status: %q", se.Excerpt)
			assert.Contains(t, se.Excerpt, tt.reason)
			assert.Contains(t, tse.Excerpt, tt.tsReason)
			assert.Equal(t, ClassInfo, tse.Class)
			want := LabelHumanDeclared
			if tt.status == SigInvalid {
				want = LabelUnknown
			}
			assert.Equal(t, want, Combine(ev).Label, "%+v", ev)
		})
	}
}

func TestC2PATimeStampHeader(t *testing.T) {
	for name, h := range map[string]any{
		"not a map":     []byte{1},
		"no tokens":     map[any]any{"tstTokens": []any{}},
		"two tokens":    map[any]any{"tstTokens": []any{map[any]any{"val": []byte{1}}, map[any]any{"val": []byte{2}}}},
		"val not bytes": map[any]any{"tstTokens": []any{map[any]any{"val": "x"}}},
	} {
		t.Run(name, func(t *testing.T) {
			msg := cose.NewSign1Message()
			msg.Headers.Unprotected["sigTst"] = h
			res := checkTimestamp(msg, []byte("claim"), nil)
			assert.Equal(t, tstRefused, res.State)
			assert.Contains(t, res.Reason, "sigTst malformed")
		})
	}
	assert.Equal(t, tstNone, checkTimestamp(cose.NewSign1Message(), nil, nil).State)
}

// FuzzC2PATimeStamp feeds token bytes (a TimeStampResp or a bare
// TimeStampToken, seeded with real ones from the test TSA) to the
// time-stamp check under both header labels: it must never panic, and
// a state from tstUntrusted on carries a genTime. Each run verifies a CMS
// signature, so minimising is slow: run it with -fuzzminimizetime 2s.
func FuzzC2PATimeStamp(f *testing.F) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	year := 365 * 24 * time.Hour
	tsaRoot := newCert(f, "Fuzz TSA Root", nil, true, now.Add(-year), now.Add(5*year))
	tsa := newTestTSA(f, "Fuzz TSA", tsaRoot, now.Add(-year), now.Add(5*year))
	trust := trustOf(f, tsaRoot)
	msg := cose.NewSign1Message()
	msg.Headers.Protected[cose.HeaderLabelAlgorithm] = cose.AlgorithmES256
	msg.Signature = make([]byte, 64)
	claim := []byte("fuzz claim")
	f.Add(tsa.response(f, counterSigned(f, msg, claim, false), now), false)
	f.Add(tsa.token(f, counterSigned(f, msg, claim, true), now), true)
	f.Add([]byte{0x30, 0x80, 0x30, 0x00, 0x00, 0x00}, false)
	f.Fuzz(func(t *testing.T, val []byte, v2 bool) {
		m := *msg
		label := "sigTst"
		if v2 {
			label = "sigTst2"
		}
		m.Headers.Unprotected = cose.UnprotectedHeader{label: map[any]any{"tstTokens": []any{map[any]any{"val": val}}}}
		res := checkTimestamp(&m, claim, trust)
		if res.State >= tstUntrusted && res.GenTime.IsZero() {
			t.Fatalf("%v without genTime: %q", res.State, res.Reason)
		}
		if res.Reason == "" {
			t.Fatal("no reason")
		}
	})
}

package classify

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"github.com/digitorus/pkcs7"
	"github.com/digitorus/timestamp"
	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
)

// RFC 3161 time-stamps on C2PA claim signatures.
//
// A claim signature may carry a time-stamp in its COSE unprotected header
// (C2PA 2.x, "Time-stamps"): "sigTst" (v1, deprecated) or "sigTst2" (v2),
// each a tstContainer {"tstTokens": [{"val": bstr}]} holding one token.
// What the TSA's messageImprint covers is the countersignature
// Sig_structure of RFC 9338 with context "CounterSignature", the COSE
// signature's serialized protected header, an empty external_aad and a
// payload that depends on the version, as the C2PA SDK (c2pa-rs,
// sdk/src/crypto/cose/sigtst.rs) builds it:
//
//   - v1 sigTst: the payload is the claim (the COSE_Sign1's detached
//     payload), and "val" is the whole TimeStampResp;
//   - v2 sigTst2: the payload is the CBOR encoding of the COSE signature
//     bytes (a bstr), so the time-stamp countersigns the finished
//     signature, and "val" is the TimeStampToken alone.
//
// The token's CMS signature is verified by github.com/digitorus/timestamp
// (with github.com/digitorus/pkcs7), and its TSA certificate chain with
// crypto/x509 at the token's genTime against the operator's trust list,
// with the time-stamping extended key usage. C2PA keeps TSA roots in a
// list of their own; an operator who wants time-stamps trusted puts those
// roots in the same PEM file (TrustList) as the signing roots.
//
// The C2PA validation status codes for time-stamps (timeStamp.mismatch,
// .malformed, .untrusted, .outsideValidity) are informational: a failed
// time-stamp does not by itself make a manifest invalid. It is ignored,
// and the signer's certificate is then judged at the validation time.

// tstState is what a claim signature's time-stamp established.
type tstState int

const (
	// tstNone: no sigTst or sigTst2 header.
	tstNone tstState = iota
	// tstRefused: the token is malformed, does not cover this signature,
	// or its CMS signature does not verify; it says nothing.
	tstRefused
	// tstUnchecked: the token could not be checked here (no TSA
	// certificate in it, an algorithm the libraries do not verify).
	tstUnchecked
	// tstUntrusted: the imprint matches and the TSA's signature verifies,
	// but the TSA's chain does not end at the trust list (or there is none).
	tstUntrusted
	// tstTrusted: as tstUntrusted, and the TSA chains to the trust list at
	// genTime: the signature existed at genTime.
	tstTrusted
)

// tstResult is a time-stamp check's outcome. Reason says what was checked
// or why the token was refused; GenTime is set from tstUntrusted on.
type tstResult struct {
	State   tstState
	GenTime time.Time
	Reason  string
}

// tstToken returns the first token of the sigTst2 (preferred) or sigTst
// header and whether it is v2. ok is false without either header.
func tstToken(msg *cose.Sign1Message) (val []byte, v2 bool, ok bool, err error) {
	var raw any
	for _, k := range []string{"sigTst2", "sigTst"} {
		if v, found := msg.Headers.Unprotected[k]; found {
			raw, v2, ok = v, k == "sigTst2", true
			break
		}
	}
	if !ok {
		return nil, false, false, nil
	}
	tokens, _ := anyMapGet(raw, "tstTokens").([]any)
	switch {
	case len(tokens) == 0:
		return nil, v2, true, errors.New("no tstTokens")
	case len(tokens) > 1:
		// C2PA allows a single time-stamp response per signature.
		return nil, v2, true, fmt.Errorf("%d tstTokens, one allowed", len(tokens))
	}
	val, _ = anyMapGet(tokens[0], "val").([]byte)
	if len(val) == 0 {
		return nil, v2, true, errors.New("tstToken without val")
	}
	return val, v2, true, nil
}

// anyMapGet reads key k of a CBOR map as go-cose decodes header values
// (map[any]any) or as string-keyed maps.
func anyMapGet(m any, k string) any {
	switch m := m.(type) {
	case map[any]any:
		return m[k]
	case map[string]any:
		return m[k]
	}
	return nil
}

// tstImprintData is what the time-stamp's messageImprint hashes: the
// countersignature Sig_structure over the claim (v1) or over the CBOR
// bstr of the signature (v2).
func tstImprintData(msg *cose.Sign1Message, claim []byte, v2 bool) ([]byte, error) {
	protected, err := msg.Headers.MarshalProtected()
	if err != nil {
		return nil, err
	}
	payload := claim
	if v2 {
		if payload, err = cbor.Marshal(msg.Signature); err != nil {
			return nil, err
		}
	}
	return cbor.Marshal([]any{"CounterSignature", cbor.RawMessage(protected), []byte{}, payload})
}

// parseToken reads a token stored as a TimeStampResp (v1's form) or as a
// bare TimeStampToken (v2's), told apart by the first element of the
// outer SEQUENCE (a PKIStatusInfo SEQUENCE, or a ContentInfo's OID), since
// writers mix them (TrustNXT stores a TimeStampResp under sigTst2). The
// library verifies the CMS signature with the TSA certificate the token
// carries; a token without one is parsed but its signature is not checked
// (p7.GetOnlySigner is nil then).
func parseToken(val []byte) (*timestamp.Timestamp, *pkcs7.PKCS7, error) {
	parse := timestamp.Parse
	var outer, first asn1.RawValue
	if _, err := asn1.Unmarshal(val, &outer); err == nil {
		if _, err := asn1.Unmarshal(outer.Bytes, &first); err == nil && first.Tag == asn1.TagSequence {
			parse = timestamp.ParseResponse
		}
	}
	ts, err := parse(val)
	if err != nil {
		return nil, nil, err
	}
	p7, err := pkcs7.Parse(ts.RawToken)
	if err != nil {
		return nil, nil, err
	}
	return ts, p7, nil
}

// checkTimestamp verifies the claim signature's time-stamp, if any.
func checkTimestamp(msg *cose.Sign1Message, claim []byte, trust *TrustList) tstResult {
	val, v2, ok, err := tstToken(msg)
	if !ok {
		return tstResult{State: tstNone}
	}
	hdr := "sigTst"
	if v2 {
		hdr = "sigTst2"
	}
	if err != nil {
		return tstResult{State: tstRefused, Reason: hdr + " malformed: " + err.Error()}
	}
	ts, p7, err := parseToken(val)
	switch {
	case errors.Is(err, x509.ErrUnsupportedAlgorithm), isInsecureAlg(err):
		return tstResult{State: tstUnchecked, Reason: hdr + " TSA signature algorithm not verifiable here"}
	case err != nil:
		return tstResult{State: tstRefused, Reason: hdr + " token refused: " + excerpt(printable(err.Error()))}
	}
	if !ts.HashAlgorithm.Available() {
		return tstResult{State: tstUnchecked, Reason: hdr + " imprint hash " + ts.HashAlgorithm.String() + " not available"}
	}
	data, err := tstImprintData(msg, claim, v2)
	if err != nil {
		return tstResult{State: tstRefused, Reason: hdr + ": " + err.Error()}
	}
	h := ts.HashAlgorithm.New()
	h.Write(data)
	if string(h.Sum(nil)) != string(ts.HashedMessage) {
		return tstResult{State: tstRefused, Reason: hdr + " imprint does not match the claim signature"}
	}
	gen := ts.Time.UTC()
	day := gen.Format(time.DateOnly)
	tsa := p7.GetOnlySigner()
	if tsa == nil {
		return tstResult{State: tstUnchecked, Reason: hdr + " " + day + " imprint matches; no TSA certificate in the token to check its signature"}
	}
	res := tstResult{State: tstUntrusted, GenTime: gen}
	checked := hdr + " " + day + " checked (imprint, TSA signature)"
	if trust == nil || trust.n == 0 {
		res.Reason = checked + ", no trust list for TSA " + printable(tsa.Subject.CommonName)
		return res
	}
	inter := x509.NewCertPool()
	for _, c := range p7.Certificates {
		if c != tsa {
			inter.AddCert(c)
		}
	}
	if _, err := tsa.Verify(x509.VerifyOptions{Roots: trust.pool, Intermediates: inter, CurrentTime: gen,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}}); err != nil {
		var ua x509.UnknownAuthorityError
		if errors.As(err, &ua) {
			res.Reason = checked + ", TSA issuer " + issuerName(chainTop(tsa, p7.Certificates)) + " not on the trust list"
		} else {
			res.Reason = checked + ", TSA chain: " + err.Error()
		}
		return res
	}
	res.State = tstTrusted
	res.Reason = checked + ", TSA " + printable(tsa.Subject.CommonName) + " trusted"
	return res
}

// chainTop follows issuer names from c through certs and returns the last
// certificate found, whose issuer is the one missing from the trust list.
func chainTop(c *x509.Certificate, certs []*x509.Certificate) *x509.Certificate {
	for range certs {
		next := c
		for _, p := range certs {
			if p != c && bytes.Equal(p.RawSubject, c.RawIssuer) && !bytes.Equal(c.RawSubject, c.RawIssuer) {
				next = p
				break
			}
		}
		if next == c {
			break
		}
		c = next
	}
	return c
}

func isInsecureAlg(err error) bool {
	var ia x509.InsecureAlgorithmError
	return errors.As(err, &ia)
}

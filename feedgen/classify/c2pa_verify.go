package classify

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"sort"
	"strings"
	"time"

	"github.com/veraison/go-cose"
)

// C2PA claim signature validation.
//
// A manifest is checked the way the C2PA specification (2.x, section 15)
// describes, with maintained libraries for the cryptography: the claim
// signature is a COSE_Sign1 (github.com/veraison/go-cose) whose detached
// payload is the claim's CBOR; the signer's certificate chain comes from
// the x5chain header (label 33) and is verified with crypto/x509 against a
// trust list the operator supplies; the certificate must be valid at the
// signing time, which is the genTime of a verified and trusted RFC 3161
// time-stamp (c2pa_timestamp.go) or else the validation time; every
// assertion the claim lists must hash to the value the claim signed; and
// the active manifest's hard binding (c2pa.hash.data: the asset's bytes
// minus the exclusion ranges) must match the asset.
//
// The outcome is one of three statuses:
//
//   - valid: all of the above hold and the chain ends at a trust anchor.
//   - invalid: the signature, an assertion hash or the asset hash does not
//     match, the signature structure is broken, or the certificate was not
//     valid when it signed: outside its validity at a trusted time-stamp's
//     genTime, or at validation with no time-stamp or one that was refused
//     (a time-stamp's own failure is informational in C2PA, so the
//     certificate then counts as expired). A manifest whose signature or
//     binding fails never counts as a human-capture claim.
//   - unverifiable: nothing failed, but trust cannot be established: no
//     trust list is configured, the issuer is not on it, the algorithm or
//     the hard-binding kind (c2pa.hash.boxes, c2pa.hash.bmff) is not
//     checked here, or the certificate expired and its time-stamp verifies
//     but its TSA is not trusted (or the token cannot be checked here).
//
// What the time-stamp check found is reported as its own evidence
// (c2pa.timestamp). Not done (each makes a result unverifiable rather
// than valid, never the reverse): OCSP/CRL revocation, the C2PA
// extended-key-usage profile for signers, and box/BMFF hard bindings.

// SigStatus is the outcome of validating one manifest.
type SigStatus string

// Signature statuses.
const (
	SigValid        SigStatus = "valid"
	SigInvalid      SigStatus = "invalid"
	SigUnverifiable SigStatus = "unverifiable"
)

// sigResult is a status with the reason for it and the signer's name.
type sigResult struct {
	Status SigStatus
	Reason string
	Signer string
	// TimeStamp says what the claim signature's RFC 3161 time-stamp
	// check found ("" without one); reported as its own evidence.
	TimeStamp string
}

func (r sigResult) String() string {
	s := string(r.Status)
	if r.Reason != "" {
		s += ": " + r.Reason
	}
	if r.Signer != "" {
		s += "; signer " + r.Signer
	}
	return s
}

// MediaOptions configure media evidence.
type MediaOptions struct {
	// Trust holds the C2PA trust anchors. Nil: signatures, assertion and
	// asset hashes are still checked, but no signer can be trusted, so an
	// intact manifest is "unverifiable".
	Trust *TrustList
	// Now is the validation time (zero: time.Now()). Certificate validity
	// depends on it, so verdicts can change when certificates expire.
	Now time.Time
}

func (o MediaOptions) now() time.Time {
	if o.Now.IsZero() {
		return time.Now()
	}
	return o.Now
}

// COSE header labels used by C2PA.
const (
	coseX5Chain = int64(33)
)

// verifyManifest validates manifest box mb. asset is the whole file when
// the manifest is the active one (its hard binding is checked), nil
// otherwise.
func verifyManifest(mb *jumbfBox, asset []byte, active bool, opt MediaOptions) sigResult {
	var claimBox *jumbfBox
	var sigRaw []byte
	for _, c := range mb.Children {
		if c.Type != "jumb" {
			continue
		}
		switch c.Label {
		case "c2pa.claim", "c2pa.claim.v2":
			if claimBox == nil {
				claimBox = c
			}
		case "c2pa.signature":
			if sigRaw == nil {
				sigRaw = c.content("cbor")
			}
		}
	}
	if claimBox == nil || claimBox.content("cbor") == nil {
		return sigResult{Status: SigInvalid, Reason: "no claim"}
	}
	claimRaw := claimBox.content("cbor")
	if sigRaw == nil {
		return sigResult{Status: SigInvalid, Reason: "no claim signature"}
	}
	msg, err := decodeSign1(sigRaw)
	if err != nil {
		return sigResult{Status: SigInvalid, Reason: "claim signature is not a COSE_Sign1: " + err.Error()}
	}
	chain, err := x5chain(msg)
	if err != nil {
		return sigResult{Status: SigInvalid, Reason: err.Error()}
	}
	leaf := chain[0]
	res := sigResult{Signer: certName(leaf)}
	alg, err := msg.Headers.Protected.Algorithm()
	if err != nil {
		res.Status, res.Reason = SigUnverifiable, "signature algorithm: "+err.Error()
		return res
	}
	if msg.Payload != nil && !bytes.Equal(msg.Payload, claimRaw) {
		res.Status, res.Reason = SigInvalid, "signed payload is not the claim"
		return res
	}
	msg.Payload = claimRaw
	pub, err := publicKey(leaf)
	if err != nil {
		res.Status, res.Reason = SigUnverifiable, err.Error()
		return res
	}
	verifier, err := cose.NewVerifier(alg, pub)
	switch {
	case errors.Is(err, cose.ErrAlgorithmNotSupported):
		res.Status, res.Reason = SigUnverifiable, "algorithm "+alg.String()+" not supported"
		return res
	case err != nil:
		res.Status, res.Reason = SigInvalid, "signing key does not fit "+alg.String()+": "+err.Error()
		return res
	}
	if err := msg.Verify(nil, verifier); err != nil {
		res.Status, res.Reason = SigInvalid, "claim signature does not verify ("+alg.String()+")"
		return res
	}
	claim, err := decodeCBOR(claimRaw)
	if err != nil {
		res.Status, res.Reason = SigInvalid, "claim: "+err.Error()
		return res
	}
	if reason := checkAssertionHashes(mb, claim); reason != "" {
		res.Status, res.Reason = SigInvalid, reason
		return res
	}
	var unverifiable []string
	if active {
		switch st, reason := checkHardBinding(mb, claim, asset); st {
		case SigInvalid:
			res.Status, res.Reason = SigInvalid, reason
			return res
		case SigUnverifiable:
			unverifiable = append(unverifiable, reason)
		}
	}
	// The signer's certificate is judged at the time-stamp's genTime when a
	// trusted time-stamp says when it signed, else at the validation time.
	ts := checkTimestamp(msg, claimRaw, opt.Trust)
	res.TimeStamp = ts.Reason
	at, when := opt.now(), "at validation"
	if ts.State == tstTrusted {
		at, when = ts.GenTime, "at its time-stamp "+ts.GenTime.Format(time.DateOnly)
	}
	if at.Before(leaf.NotBefore) || at.After(leaf.NotAfter) {
		what := fmt.Sprintf("certificate valid %s to %s, outside it %s", leaf.NotBefore.UTC().Format(time.DateOnly), leaf.NotAfter.UTC().Format(time.DateOnly), when)
		switch ts.State {
		case tstNone:
			res.Status, res.Reason = SigInvalid, what+" and no time-stamp says when it signed"
		case tstRefused:
			// A failed time-stamp is informational in C2PA (timeStamp.mismatch,
			// .malformed): it is ignored, and the certificate has expired.
			res.Status, res.Reason = SigInvalid, what+"; time-stamp refused"
		case tstTrusted:
			res.Status, res.Reason = SigInvalid, what
		case tstUntrusted:
			res.Status, res.Reason = SigUnverifiable, what+"; time-stamp's TSA not trusted"
		default:
			res.Status, res.Reason = SigUnverifiable, what+"; time-stamp not checkable here"
		}
		if res.Status == SigInvalid || len(unverifiable) == 0 {
			return res
		}
		// Say the hard binding was not checked either.
		res.Reason = strings.Join(append(unverifiable, res.Reason), "; ")
		return res
	}
	if reason := checkChain(chain, opt.Trust, at); reason != "" {
		unverifiable = append(unverifiable, reason)
	}
	if len(unverifiable) > 0 {
		res.Status, res.Reason = SigUnverifiable, strings.Join(unverifiable, "; ")
		return res
	}
	res.Status = SigValid
	if ts.State == tstTrusted {
		res.Reason = "signer checked at its time-stamp " + ts.GenTime.Format(time.DateOnly)
	}
	return res
}

// decodeSign1 decodes a tagged (C2PA's form) or untagged COSE_Sign1.
func decodeSign1(b []byte) (*cose.Sign1Message, error) {
	if len(b) > MaxMediaBytes {
		return nil, fmt.Errorf("%d bytes: %w", len(b), ErrLimit)
	}
	var msg cose.Sign1Message
	err := msg.UnmarshalCBOR(b)
	if err == nil {
		return &msg, nil
	}
	var u cose.UntaggedSign1Message
	if uerr := u.UnmarshalCBOR(b); uerr == nil {
		m := cose.Sign1Message(u)
		return &m, nil
	}
	return nil, err
}

// x5chain returns the signer's certificate chain, leaf first, from the
// protected header (C2PA 1.3+) or the unprotected one (older writers),
// under label 33 or the text label "x5chain" some early writers used.
func x5chain(msg *cose.Sign1Message) ([]*x509.Certificate, error) {
	var raw any
	for _, h := range []map[any]any{msg.Headers.Protected, msg.Headers.Unprotected} {
		for _, k := range []any{coseX5Chain, "x5chain"} {
			if v, ok := h[k]; ok && raw == nil {
				raw = v
			}
		}
	}
	var ders [][]byte
	switch v := raw.(type) {
	case []byte:
		ders = [][]byte{v}
	case []any:
		for _, e := range v {
			d, ok := e.([]byte)
			if !ok {
				return nil, errors.New("x5chain entry is not a byte string")
			}
			ders = append(ders, d)
		}
	case nil:
		return nil, errors.New("no signer certificate (x5chain)")
	default:
		return nil, errors.New("x5chain is not a byte string or an array")
	}
	if len(ders) == 0 || len(ders) > 16 {
		return nil, fmt.Errorf("x5chain with %d certificates", len(ders))
	}
	var out []*x509.Certificate
	for i, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, fmt.Errorf("x5chain certificate %d: %v", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// oidRSASSAPSS is id-RSASSA-PSS (RFC 4055), the key algorithm of RSA-PSS
// signing certificates such as the C2PA SDK's test signers.
var oidRSASSAPSS = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}

// publicKey returns the certificate's key. crypto/x509 does not parse
// RSA-PSS (id-RSASSA-PSS) subject keys, whose key bits are an ordinary
// PKCS #1 RSAPublicKey; those are read with x509.ParsePKCS1PublicKey.
func publicKey(c *x509.Certificate) (any, error) {
	if c.PublicKey != nil {
		return c.PublicKey, nil
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		Key       asn1.BitString
	}
	if rest, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err != nil || len(rest) > 0 {
		return nil, errors.New("signer key: unreadable SubjectPublicKeyInfo")
	}
	if !spki.Algorithm.Algorithm.Equal(oidRSASSAPSS) {
		return nil, fmt.Errorf("signer key algorithm %v not supported", spki.Algorithm.Algorithm)
	}
	k, err := x509.ParsePKCS1PublicKey(spki.Key.RightAlign())
	if err != nil {
		return nil, fmt.Errorf("signer RSA-PSS key: %v", err)
	}
	return k, nil
}

// checkChain verifies the chain to the trust list at time now. It returns
// "" when it chains to an anchor, else why trust cannot be established.
func checkChain(chain []*x509.Certificate, trust *TrustList, now time.Time) string {
	if trust == nil || trust.n == 0 {
		return "no C2PA trust list configured; signature and hashes intact"
	}
	for _, c := range chain {
		if c.PublicKeyAlgorithm == x509.UnknownPublicKeyAlgorithm {
			// c2pa-rs's ps256 test signers have id-RSASSA-PSS subject keys, which
			// crypto/x509 does not parse, so it cannot check a signature by them.
			return "certificate " + certName(c) + " has a public key type crypto/x509 cannot verify with (RSA-PSS keys)"
		}
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	// The C2PA certificate profile (EKU document signing / email
	// protection) is not enforced here: any EKU is accepted.
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: trust.pool, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err == nil {
		return ""
	}
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return "issuer " + issuerName(chain[len(chain)-1]) + " not on the trust list"
	}
	return "certificate chain: " + err.Error()
}

func certName(c *x509.Certificate) string {
	n := c.Subject.CommonName
	if len(c.Subject.Organization) > 0 && c.Subject.Organization[0] != n {
		if n != "" {
			n += ", "
		}
		n += c.Subject.Organization[0]
	}
	return printable(n)
}

func issuerName(c *x509.Certificate) string {
	n := c.Issuer.CommonName
	if n == "" && len(c.Issuer.Organization) > 0 {
		n = c.Issuer.Organization[0]
	}
	return "\"" + printable(n) + "\""
}

// hashByName returns a hash for a C2PA alg name ("" means sha256, the
// default).
func hashByName(alg string) (hash.Hash, bool) {
	switch strings.ToLower(alg) {
	case "", "sha256":
		return sha256.New(), true
	case "sha384":
		return sha512.New384(), true
	case "sha512":
		return sha512.New(), true
	}
	return nil, false
}

// checkAssertionHashes checks every hashed URI the claim lists (v1
// "assertions", v2 "created_assertions" and "gathered_assertions")
// against the assertion boxes of this manifest. It returns "" when all
// match.
func checkAssertionHashes(mb *jumbfBox, claim any) string {
	store := mb.child("c2pa.assertions")
	defAlg := asString(mapGet(claim, "alg"))
	n := 0
	for _, key := range []string{"assertions", "created_assertions", "gathered_assertions"} {
		for _, ref := range asArray(mapGet(claim, key)) {
			n++
			if n > maxParts {
				return "claim lists too many assertions"
			}
			url := asString(mapGet(ref, "url"))
			want, _ := mapGet(ref, "hash").([]byte)
			alg := asString(mapGet(ref, "alg"))
			if alg == "" {
				alg = defAlg
			}
			label, ok := assertionLabel(url, mb.Label)
			if !ok {
				return "claim references " + excerpt(printable(url)) + " outside this manifest"
			}
			var box *jumbfBox
			if store != nil {
				box = store.child(label)
			}
			if box == nil {
				return "assertion " + printable(label) + " missing"
			}
			h, ok := hashByName(alg)
			if !ok {
				return "assertion hash algorithm " + printable(alg) + " unknown"
			}
			h.Write(box.Raw)
			if !bytes.Equal(h.Sum(nil), want) {
				return "assertion " + printable(label) + " does not match the signed claim"
			}
		}
	}
	if n == 0 {
		return "claim lists no assertions"
	}
	return ""
}

// assertionLabel resolves a JUMBF URI ("self#jumbf=c2pa.assertions/L" or
// "self#jumbf=/c2pa/<manifest>/c2pa.assertions/L") to the assertion label
// L, checking that an absolute URI names this manifest.
func assertionLabel(url, manifest string) (string, bool) {
	p, ok := strings.CutPrefix(url, "self#jumbf=")
	if !ok {
		return "", false
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	switch {
	case len(parts) == 2 && parts[0] == "c2pa.assertions":
		return parts[1], parts[1] != ""
	case len(parts) == 4 && parts[0] == "c2pa" && parts[1] == manifest && parts[2] == "c2pa.assertions":
		return parts[3], parts[3] != ""
	}
	return "", false
}

// checkHardBinding checks the active manifest's hard binding against the
// asset. c2pa.hash.data is checked; other binding kinds are reported as
// not checked.
func checkHardBinding(mb *jumbfBox, claim any, asset []byte) (SigStatus, string) {
	store := mb.child("c2pa.assertions")
	if store == nil {
		return SigInvalid, "no assertion store"
	}
	var other string
	for _, a := range store.Children {
		if a.Type != "jumb" {
			continue
		}
		base, _, _ := strings.Cut(a.Label, "__")
		switch {
		case base == "c2pa.hash.data":
			return checkDataHash(a, asString(mapGet(claim, "alg")), asset)
		case strings.HasPrefix(base, "c2pa.hash.") && other == "":
			other = base
		}
	}
	if other != "" {
		return SigUnverifiable, "hard binding " + printable(other) + " not checked here"
	}
	return SigInvalid, "no hard binding to the asset"
}

// checkDataHash verifies a c2pa.hash.data assertion: {"exclusions":
// [{"start", "length"}], "alg", "hash", "pad", "name"}; the hash covers the
// asset with the exclusion ranges (the manifest store itself) left out.
func checkDataHash(a *jumbfBox, defAlg string, asset []byte) (SigStatus, string) {
	if asset == nil {
		return SigUnverifiable, "asset bytes not available for c2pa.hash.data"
	}
	raw := a.content("cbor")
	if raw == nil {
		return SigInvalid, "c2pa.hash.data has no CBOR content"
	}
	v, err := decodeCBOR(raw)
	if err != nil {
		return SigInvalid, "c2pa.hash.data: " + err.Error()
	}
	want, _ := mapGet(v, "hash").([]byte)
	alg := asString(mapGet(v, "alg"))
	if alg == "" {
		alg = defAlg
	}
	h, ok := hashByName(alg)
	if !ok {
		return SigUnverifiable, "c2pa.hash.data algorithm " + printable(alg) + " unknown"
	}
	type span struct{ start, end int }
	var ex []span
	for _, e := range asArray(mapGet(v, "exclusions")) {
		start, ok1 := mapGet(e, "start").(int64)
		length, ok2 := mapGet(e, "length").(int64)
		if !ok1 || !ok2 || start < 0 || length < 0 || start > int64(len(asset)) || length > int64(len(asset))-start {
			return SigInvalid, "c2pa.hash.data exclusion outside the asset"
		}
		ex = append(ex, span{int(start), int(start + length)})
		if len(ex) > maxParts {
			return SigInvalid, "c2pa.hash.data has too many exclusions"
		}
	}
	sort.Slice(ex, func(i, j int) bool { return ex[i].start < ex[j].start })
	pos := 0
	for _, s := range ex {
		if s.start < pos {
			return SigInvalid, "c2pa.hash.data exclusions overlap"
		}
		h.Write(asset[pos:s.start])
		pos = s.end
	}
	h.Write(asset[pos:])
	if !bytes.Equal(h.Sum(nil), want) {
		return SigInvalid, "asset does not match its hard binding (c2pa.hash.data)"
	}
	return SigValid, ""
}

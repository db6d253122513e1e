package classify

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/veraison/go-cose"
)

// Fuzz targets, one per parser, seeded with the corpus fixtures. They
// check that no input panics, that errors wrap a sentinel, and that the
// evidence built from whatever was parsed stays bounded.
//
//	go test -run='^$' -fuzz=FuzzPNG -fuzztime=60s ./feedgen/classify/

func checkEvidence(t *testing.T, ev []Evidence) {
	t.Helper()
	for _, e := range ev {
		if len(e.Excerpt) > maxExcerpt {
			t.Fatalf("excerpt of %d bytes: %q", len(e.Excerpt), e.Excerpt)
		}
		if e.Signal == "" || e.Class == "" {
			t.Fatalf("incomplete evidence %+v", e)
		}
	}
	v := Combine(ev)
	if v.Confidence < 0 || v.Confidence > 1 || v.AIScore < 0 || v.AIScore > 1 {
		t.Fatalf("verdict out of range: %+v", v)
	}
}

func checkMetadata(t *testing.T, md *Metadata, err error) {
	t.Helper()
	if md == nil {
		t.Fatal("nil metadata")
	}
	assertSentinel(t, err)
	for _, p := range md.Problems {
		assertSentinel(t, p)
	}
	if len(md.Text) > maxParts || len(md.EXIF) > maxParts || len(md.XMP) > maxParts || len(md.C2PA) > maxParts {
		t.Fatalf("too many parts")
	}
}

func fuzzContainer(f *testing.F, ext string, parse func([]byte) (*Metadata, error)) {
	_, files := fixtureFiles(f, ext)
	for _, b := range files {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		md, err := parse(b)
		checkMetadata(t, md, err)
		checkEvidence(t, MediaEvidence(Media{CID: "fuzz", Bytes: b}))
	})
}

func FuzzJPEG(f *testing.F) { fuzzContainer(f, ".jpg", parseJPEG) }

func FuzzPNG(f *testing.F) { fuzzContainer(f, ".png", parsePNG) }

func FuzzWebP(f *testing.F) { fuzzContainer(f, ".webp", parseWebP) }

func FuzzJUMBF(f *testing.F) {
	_, _, stores := fixtureParts(f)
	for _, s := range stores {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		root, err := parseJUMBF(b)
		assertSentinel(t, err)
		if root != nil && root.Type != "jumb" {
			t.Fatalf("root type %q", root.Type)
		}
		_, err = parseC2PA(b)
		assertSentinel(t, err)
		checkEvidence(t, c2paEvidence(Part{Locator: "fuzz", Data: b}))
	})
}

func FuzzCBOR(f *testing.F) {
	for _, b := range cborBoxes(f) {
		f.Add(b)
	}
	for _, s := range []string{"\x9f\x01\x82\x02\x03\x9f\x04\x05\xff\xff", "\xbf\x63Fun\xf5\x63Amt\x21\xff", "\x5f\x42\x01\x02\x43\x03\x04\x05\xff", "\xf9\x7c\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeCBOR(b)
		assertSentinel(t, err)
		_ = claimGenerators(v)
		_ = asArray(mapGet(v, "actions"))
	})
}

func FuzzXMP(f *testing.F) {
	_, packets, _ := fixtureParts(f)
	for _, p := range packets {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := parseXMP(b)
		assertSentinel(t, err)
		checkEvidence(t, xmpEvidence(Part{Locator: "fuzz", Data: b}))
	})
}

func FuzzEXIF(f *testing.F) {
	parts, _, _ := fixtureParts(f)
	for _, p := range parts {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := parseEXIF(b)
		assertSentinel(t, err)
		checkEvidence(t, exifEvidence(Part{Locator: "fuzz", Data: b}))
	})
}

func FuzzBMFF(f *testing.F) {
	f.Add(append(ftyp("isom"), uuidBox(bmffXMPUUID, []byte(rdfOpen+rdfClose))...))
	f.Add(append(ftyp("isom"), c2paUUIDBox(superbox("c2pa", "c2pa"))...))
	f.Add(heifWithItems("heic", tiffBuild(binary.LittleEndian, map[uint16]string{tagMake: "A", tagModel: "B"}, nil), []byte(rdfOpen+rdfClose)))
	f.Add(bbox("moov", bbox("udta", bbox("XMP_", []byte("<x/>")))))
	_, _, stores := fixtureParts(f)
	for _, s := range stores {
		f.Add(append(ftyp("mp42"), c2paUUIDBox(s)...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		md, err := parseBMFF(b)
		checkMetadata(t, md, err)
		checkEvidence(t, MediaEvidence(Media{CID: "fuzz", Bytes: b}))
	})
}

// FuzzC2PAVerify mutates whole PNGs carrying signed manifests (valid,
// bad signature, swapped assertion): validation must never panic, and a
// manifest it cannot prove never yields a capture claim stronger than an
// unverified one. Each run verifies signatures, so minimising a new input
// is slow: run it with -fuzzminimizetime 5s.
func FuzzC2PAVerify(f *testing.F) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	root := newCert(f, "Fuzz Root", nil, true, now.Add(-time.Hour), now.Add(time.Hour))
	leaf := newCert(f, "Fuzz Signer", root, false, now.Add(-time.Hour), now.Add(time.Hour))
	// The TSA certificate also covers the real clock (the token's CMS
	// signing time).
	tsaRoot := newCert(f, "Fuzz TSA Root", nil, true, now.Add(-time.Hour), now.Add(5*365*24*time.Hour))
	tsa := newTestTSA(f, "Fuzz TSA", tsaRoot, now.Add(-time.Hour), now.Add(5*365*24*time.Hour))
	trust := trustOf(f, root, tsaRoot)
	for _, o := range []signOpts{
		{signer: leaf, dst: "digitalCapture"},
		{signer: leaf, chain: []*testCA{root}, dst: "trainedAlgorithmicMedia", sigTst: func(msg *cose.Sign1Message, claim []byte) (string, []byte) {
			return "sigTst2", tsa.token(f, counterSigned(f, msg, claim, true), now)
		}},
		{signer: leaf, dst: "digitalCapture", corruptSig: true},
		{signer: leaf, dst: "trainedAlgorithmicMedia", swapDST: "digitalCapture"},
	} {
		f.Add(signedPNG(f, o))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev := MediaEvidenceWith(Media{CID: "fuzz", Bytes: b}, MediaOptions{Trust: trust, Now: now})
		checkEvidence(t, ev)
		valid := false
		for _, e := range ev {
			if e.Signal == "c2pa.signature" && strings.HasPrefix(e.Excerpt, "valid") {
				valid = true
			}
		}
		for _, e := range ev {
			if e.Signal == "c2pa.digitalSourceType" && e.Class == ClassHumanDeclared && e.Weight < -1.5 && !valid {
				t.Fatalf("capture claim weighted as validated without a valid signature: %+v", e)
			}
		}
	})
}

// FuzzTextFields drives the generator fingerprints (A1111 key/value lines
// with JSON values, Dream switches, ComfyUI graphs, Fooocus JSON).
func FuzzTextFields(f *testing.F) {
	for _, s := range []string{
		"a\nSteps: 20, Sampler: Euler, Seed: 1, Hashes: {\"lora:x\": \"1\", \"m\": [1, {\"a\": \"b, c\"}]}",
		`"a fox [bad]" -s 50 -S 42 -W 512 -cf 0.75 -U 4 0.95 -F`,
		`{"prompt": {"1": {"class_type": "KSampler", "inputs": {}}}}`,
		`{"version": "Fooocus v2", "base_model": "x", "steps": 3, "sampler": "s", "seed": "1"}`,
	} {
		f.Add("parameters", s)
		f.Add("Dream", s)
		f.Add("UserComment", s)
	}
	f.Fuzz(func(t *testing.T, key, val string) {
		ev := textFieldEvidence([]TextField{{Key: key, Value: val, Locator: "fuzz"}, {Key: "fooocus_scheme", Value: "fooocus"}})
		checkEvidence(t, ev)
		_, _ = parseKVLine(val)
		_, _ = dreamLine(val)
	})
}

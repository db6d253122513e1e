package classify

import (
	"encoding/binary"
	"testing"
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

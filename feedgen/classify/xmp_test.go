package classify

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	rdfOpen  = `<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">`
	rdfClose = `</rdf:RDF></x:xmpmeta>`
	dstBase  = "http://cv.iptc.org/newscodes/digitalsourcetype/"
)

func TestXMPForms(t *testing.T) {
	tests := map[string]struct {
		xmp   string
		class Class
	}{
		"attribute":         {`<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" Iptc4xmpExt:DigitalSourceType="` + dstBase + `trainedAlgorithmicMedia"/>`, ClassAIGenerated},
		"element":           {`<rdf:Description xmlns:e="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"><e:DigitalSourceType> ` + dstBase + `compositeWithTrainedAlgorithmicMedia </e:DigitalSourceType></rdf:Description>`, ClassAIAssisted},
		"resource":          {`<rdf:Description xmlns:z="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"><z:DigitalSourceType rdf:resource="https://CV.IPTC.ORG/newscodes/digitalsourcetype/digitalCapture"/></rdf:Description>`, ClassHumanDeclared},
		"undeclared prefix": {`<rdf:Description iptcExt:DigitalSourceType="` + dstBase + `trainedAlgorithmicMedia"/>`, ClassAIGenerated},
		"wrong namespace":   {`<rdf:Description xmlns:Iptc4xmpExt="http://example.com/other/" Iptc4xmpExt:DigitalSourceType="` + dstBase + `trainedAlgorithmicMedia"/>`, ""},
		"other vocabulary":  {`<rdf:Description xmlns:i="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" i:DigitalSourceType="http://example.com/trainedAlgorithmicMedia"/>`, ""},
		"substring only":    {`<rdf:Description xmlns:i="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" i:DigitalSourceType="` + dstBase + `untrainedAlgorithmicMediaX"/>`, ClassInfo},
		"bare code":         {`<rdf:Description xmlns:i="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" i:DigitalSourceType="trainedAlgorithmicMedia"/>`, ClassAIGenerated},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			ev := xmpEvidence(Part{Locator: "t", Data: []byte(rdfOpen + tt.xmp + rdfClose)})
			if tt.class == "" {
				assert.Empty(t, ev)
				return
			}
			require.Len(t, ev, 1, "%+v", ev)
			assert.Equal(t, "xmp.digitalSourceType", ev[0].Signal)
			assert.Equal(t, tt.class, ev[0].Class)
			assert.Equal(t, TierDeterministic, ev[0].Tier)
		})
	}
}

func TestXMPOtherProperties(t *testing.T) {
	x := rdfOpen + `<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:tiff="http://ns.adobe.com/tiff/1.0/"
	  xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:dcterms="http://purl.org/dc/terms/"
	  xmp:CreatorTool="Draw Things" tiff:Make="Nikon" tiff:Model="Z 6">
	  <exif:UserComment><rdf:Alt><rdf:li xml:lang="x-default">{"prompt":"a cat","steps":20,"sampler":"DPM++","seed":3}</rdf:li></rdf:Alt></exif:UserComment>
	  <dcterms:provenance>self#jumbf=/c2pa</dcterms:provenance>
	</rdf:Description>` + rdfClose
	ev := xmpEvidence(Part{Locator: "t", Data: []byte(x)})
	var signals []string
	for _, e := range ev {
		signals = append(signals, e.Signal)
	}
	assert.ElementsMatch(t, []string{"xmp.creatorTool", "gen.sdjson", "xmp.provenance", "xmp.camera"}, signals)
}

func TestXMPBroken(t *testing.T) {
	good := `<rdf:Description xmlns:i="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" i:DigitalSourceType="` + dstBase + `trainedAlgorithmicMedia"/>`
	// Syntax error after a property: the property is kept, the error reported.
	props, err := parseXMP([]byte(rdfOpen + good + `<unclosed>`))
	assert.ErrorIs(t, err, ErrMalformed)
	assert.Len(t, props, 1)

	_, err = parseXMP([]byte(strings.Repeat("<a>", 100)))
	assert.ErrorIs(t, err, ErrLimit)
	_, err = parseXMP(make([]byte, maxXMPBytes+1))
	assert.ErrorIs(t, err, ErrLimit)
	_, err = parseXMP([]byte(`<?xml version="1.0" encoding="UTF-16"?><a/>`))
	assert.Error(t, err)
	_, err = parseXMP([]byte(`<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>`))
	assert.ErrorIs(t, err, ErrMalformed)
	props, err = parseXMP([]byte(rdfOpen + good + rdfClose + "\x00\x00  \n"))
	assert.NoError(t, err)
	assert.Len(t, props, 1)

	ev := xmpEvidence(Part{Locator: "t", Data: []byte("not xml <")})
	require.Len(t, ev, 1)
	assert.Equal(t, "xmp.error", ev[0].Signal)
}

func TestXMPTruncatedFixtures(t *testing.T) {
	_, packets, _ := fixtureParts(t)
	require.NotEmpty(t, packets)
	for _, p := range packets {
		prefixes(p, func(b []byte) {
			_, err := parseXMP(b)
			assertSentinel(t, err)
		})
	}
}

func TestParseDST(t *testing.T) {
	for v, want := range map[string]string{
		"http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture":   "digitalCapture",
		"https://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture/": "digitalCapture",
		" trainedAlgorithmicMedia ":                                       "trainedAlgorithmicMedia",
		"http://cv.iptc.org/newscodes/digitalsourcetype/":                 "",
		"http://cv.iptc.org/newscodes/digitalsourcetype/a/b":              "",
		"http://example.com/digitalCapture":                               "",
		"":                                                                "",
	} {
		got, ok := parseDST(v)
		assert.Equal(t, want, got, v)
		assert.Equal(t, want != "", ok, v)
	}
	ev, ok := dstEvidence("s", "l", "compositeSynthetic", 1)
	require.True(t, ok)
	assert.Equal(t, TierWeakClaim, ev.Tier)
	ev, ok = dstEvidence("s", "l", "algorithmicMedia", 1)
	require.True(t, ok)
	assert.Equal(t, ClassInfo, ev.Class)
	assert.Zero(t, ev.Weight)
}

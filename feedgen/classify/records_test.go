package classify

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func signalsFor(t *testing.T, s Scorer, in *PostInput) []Evidence {
	t.Helper()
	ev, err := s.Score(context.Background(), in)
	require.NoError(t, err)
	return ev
}

func TestSelfLabels(t *testing.T) {
	tests := []struct {
		post, author []string
		want         []Class
	}{
		{[]string{"ai-generated"}, nil, []Class{ClassAIGenerated}},
		{[]string{" AI-Imagery "}, nil, []Class{ClassAIGenerated}},
		{[]string{"ai-assisted", "porn"}, nil, []Class{ClassAIAssisted}},
		{[]string{"ai-modified"}, nil, []Class{ClassAIAssisted}},
		{[]string{"ai-agent"}, nil, []Class{ClassAIGenerated}},
		{[]string{"sexual", "!warn", "aigenerated", "ai generated"}, nil, nil},
		{nil, []string{"bot"}, []Class{ClassAutomated}},
		{nil, []string{"ai-agent"}, []Class{ClassAIGenerated}},
		{nil, []string{"ai-generated"}, nil}, // profile labels other than bot/ai-agent are not post declarations
	}
	for _, tt := range tests {
		t.Run(strings.Join(append(tt.post, tt.author...), ","), func(t *testing.T) {
			ev := signalsFor(t, SelfLabelScorer{}, &PostInput{SelfLabels: tt.post, AuthorLabels: tt.author})
			var got []Class
			for _, e := range ev {
				got = append(got, e.Class)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestTextScorer(t *testing.T) {
	tests := []struct {
		name    string
		in      PostInput
		signals []string
	}{
		{"hashtag", PostInput{Text: "new piece #AIArt"}, []string{"text.hashtag"}},
		{"facet tag", PostInput{Tags: []string{"#midjourney"}}, []string{"text.hashtag"}},
		{"tag in word is not a tag", PostInput{Text: "issue#aiart and C#"}, nil},
		{"substring of tag", PostInput{Text: "#aiartists are fine #paintingsbyme"}, nil},
		{"bracket marker", PostInput{Text: "[AI] test"}, []string{"text.marker"}},
		{"made with", PostInput{Text: "Made with Midjourney."}, []string{"text.marker"}},
		{"negated", PostInput{Text: "not made with midjourney"}, nil},
		{"glued word", PostInput{Text: "remade with midjourneyish"}, nil},
		{"boilerplate", PostInput{Text: "As an AI language model I can't"}, []string{"text.llm_boilerplate"}},
		{"human tag", PostInput{Text: "#NoAI sketch"}, []string{"text.hashtag"}},
		{"alt text", PostInput{Media: []Media{{Alt: "generated with stable diffusion"}}}, []string{"text.marker"}},
		{"plain", PostInput{Text: "I read an article about AI art today"}, nil},
		{"duplicate tags count once", PostInput{Text: "#aiart #AIART", Tags: []string{"aiart"}}, []string{"text.hashtag"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := signalsFor(t, TextScorer{}, &tt.in)
			var got []string
			for _, e := range ev {
				got = append(got, e.Signal)
				assert.Equal(t, TierHeuristic, e.Tier)
			}
			assert.Equal(t, tt.signals, got)
		})
	}
}

func TestHashtags(t *testing.T) {
	assert.Equal(t, []string{"aiart", "日本", "a_b"}, hashtags("x #aiart #123 #日本, (#a_b) a#b &#39;"))
	assert.Empty(t, hashtags(strings.Repeat("#", 10000)))
}

func TestExcerpt(t *testing.T) {
	assert.Equal(t, "a b", excerpt(" a \n\t b "))
	long := excerpt(strings.Repeat("é", 500))
	assert.LessOrEqual(t, len(long), maxExcerpt)
	assert.True(t, strings.HasSuffix(long, "…"))
	assert.Equal(t, "\uFFFD", excerpt("\xff"))
}

func TestGeneratorName(t *testing.T) {
	for v, want := range map[string]bool{
		"NovelAI": true, "Midjourney v6": true, "DALL-E 3": true, "ChatGPT/1.0 c2pa-rs/0.33": true,
		"Stable Diffusion XL": true, "Adobe_Firefly": true, "ComfyUI": true,
		"Adobe Photoshop 25.0": false, "Stable Diffusion is not used here": false, "GIMP 2.10": false,
		"Canon EOS R6": false, "": false, "Imagenet tools": false, "I like midjourney": false,
	} {
		_, got := generatorName(v)
		assert.Equal(t, want, got, v)
	}
}

func TestCameraEvidence(t *testing.T) {
	_, ok := cameraEvidence("s", "l", "Canon", "EOS R6")
	assert.True(t, ok)
	for _, pair := range [][2]string{{"", "EOS"}, {"Canon", ""}, {"workflow", `{"nodes":[]}`}, {"NovelAI", "x"}, {"Canon", strings.Repeat("x", 65)}} {
		_, ok := cameraEvidence("s", "l", pair[0], pair[1])
		assert.False(t, ok, pair)
	}
}

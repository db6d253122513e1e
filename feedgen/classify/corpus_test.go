package classify

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const corpusDir = "../../testdata/classify"

// TestCorpus asserts the verdict and key evidence for every fixture.
func TestCorpus(t *testing.T) {
	corpus, err := LoadCorpus(corpusDir)
	require.NoError(t, err)
	require.NotEmpty(t, corpus.Items)
	c := Default()
	for _, it := range corpus.Items {
		t.Run(it.Name, func(t *testing.T) {
			in, err := it.Input(corpusDir)
			require.NoError(t, err)
			v, err := c.Classify(context.Background(), in)
			require.NoError(t, err)
			assert.True(t, labelMatches(it.Expect, v.Label), "label: got %s, want %s (%s); evidence %+v", v.Label, it.Expect, it.Note, v.Evidence)
			got := signalsOf(v)
			for _, s := range it.Signals {
				assert.Contains(t, got, s, "signal %s missing; got %v", s, got)
			}
			if v.Label.IsAI() {
				// The deciding evidence is tier 0 and has a locator.
				require.NotEmpty(t, v.Evidence)
				assert.Equal(t, TierDeterministic, v.Evidence[0].Tier)
				assert.True(t, v.Evidence[0].Class.isAI(), "strongest evidence %+v", v.Evidence[0])
				assert.NotEmpty(t, v.Evidence[0].Locator)
				assert.Greater(t, v.Confidence, 0.9)
			}
			for _, e := range v.Evidence {
				assert.LessOrEqual(t, len(e.Excerpt), maxExcerpt, "excerpt too long: %q", e.Excerpt)
				if in.Media != nil && e.Locator != "" && e.Locator[0] == 'b' {
					assert.Contains(t, e.Locator, "blob:"+in.Media[0].CID)
				}
			}
		})
	}
}

// TestCorpusCoverage checks that the corpus exercises every container
// format and every deterministic media signal.
func TestCorpusCoverage(t *testing.T) {
	corpus, err := LoadCorpus(corpusDir)
	require.NoError(t, err)
	signals := map[string]bool{}
	formats := map[string]bool{}
	expects := map[string]int{}
	for _, it := range corpus.Items {
		expects[it.Expect]++
		for _, s := range it.Signals {
			signals[s] = true
		}
		if it.File != "" {
			formats[filepath.Ext(it.File)] = true
		}
	}
	for _, s := range []string{
		"c2pa.digitalSourceType", "c2pa.ingredient.digitalSourceType", "c2pa.claimGenerator",
		"xmp.digitalSourceType", "xmp.iptc.aiSystem", "exif.software", "exif.camera",
		"gen.a1111", "gen.comfyui", "gen.novelai", "gen.invokeai", "gen.midjourney", "gen.swarmui",
		"gen.easydiffusion", "gen.sdjson", "png.software",
		"selflabel.post", "selflabel.profile", "selflabel.profile.bot",
		"text.hashtag", "text.marker", "text.llm_boilerplate",
	} {
		assert.True(t, signals[s], "no fixture covers %s", s)
	}
	for _, f := range []string{".png", ".jpg", ".webp"} {
		assert.True(t, formats[f], "no %s fixture", f)
	}
	for _, e := range []string{ExpectAIGenerated, ExpectAIAssisted, ExpectHuman, ExpectUnknown} {
		assert.Positive(t, expects[e], "no item expects %s", e)
	}
}

// TestCorpusSize keeps the committed fixtures small.
func TestCorpusSize(t *testing.T) {
	entries, err := os.ReadDir(corpusDir)
	require.NoError(t, err)
	total := int64(0)
	for _, e := range entries {
		info, err := e.Info()
		require.NoError(t, err)
		total += info.Size()
	}
	assert.Less(t, total, int64(300<<10))
}

// TestDeterministic classifies every item twice with scorers in opposite
// orders and expects identical verdicts.
func TestDeterministic(t *testing.T) {
	corpus, err := LoadCorpus(corpusDir)
	require.NoError(t, err)
	a := New(SelfLabelScorer{}, MediaScorer{}, TextScorer{})
	b := New(TextScorer{}, MediaScorer{}, SelfLabelScorer{})
	for _, it := range corpus.Items {
		in, err := it.Input(corpusDir)
		require.NoError(t, err)
		va, err := a.Classify(context.Background(), in)
		require.NoError(t, err)
		vb, err := b.Classify(context.Background(), in)
		require.NoError(t, err)
		assert.Equal(t, va, vb, it.Name)
	}
}

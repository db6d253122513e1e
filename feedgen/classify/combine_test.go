package classify

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ev(signal string, c Class, w float64, tier int) Evidence {
	return Evidence{Signal: signal, Class: c, Weight: w, Tier: tier, Locator: "test:" + signal}
}

func TestCombineRules(t *testing.T) {
	tests := []struct {
		name string
		in   []Evidence
		want Label
	}{
		{"no evidence", nil, LabelUnknown},
		{"info only", []Evidence{ev("c2pa.manifest", ClassInfo, 0, 0)}, LabelUnknown},
		{"tier0 generated", []Evidence{ev("gen.a1111", ClassAIGenerated, 5, 0)}, LabelAIGenerated},
		{"tier0 assisted", []Evidence{ev("xmp", ClassAIAssisted, 4, 0)}, LabelAIAssisted},
		{"generated beats assisted", []Evidence{ev("a", ClassAIAssisted, 4, 0), ev("b", ClassAIGenerated, 5, 0)}, LabelAIGenerated},
		{"tier0 AI beats tier0 human", []Evidence{ev("cap", ClassHumanDeclared, -9, 0), ev("gen", ClassAIGenerated, 1, 0)}, LabelAIGenerated},
		{"human capture", []Evidence{ev("exif.camera", ClassHumanCapture, -1, 1)}, LabelHumanDeclared},
		{"heuristics cannot outvote tier0 human",
			[]Evidence{ev("cap", ClassHumanDeclared, -1.5, 0), ev("h1", ClassAIGenerated, 9, 2), ev("h2", ClassAIGenerated, 9, 2)}, LabelHumanDeclared},
		{"heuristics alone never label", []Evidence{ev("h", ClassAIGenerated, 50, 2)}, LabelUnknown},
		{"human heuristics alone never label", []Evidence{ev("h", ClassHumanDeclared, -50, 2)}, LabelUnknown},
		{"tier1 AI alone is a lean", []Evidence{ev("synthetic", ClassAIAssisted, 0.5, 1)}, LabelUnknown},
		{"tier1 AI blocks human", []Evidence{ev("synthetic", ClassAIAssisted, 0.5, 1), ev("cam", ClassHumanCapture, -1, 1)}, LabelUnknown},
		{"bot is not AI", []Evidence{ev("bot", ClassAutomated, 0.5, 1)}, LabelUnknown},
		{"bot does not block human", []Evidence{ev("bot", ClassAutomated, 0.5, 1), ev("cam", ClassHumanCapture, -1, 1)}, LabelHumanDeclared},
		{"zero-weight AI class is not a declaration", []Evidence{ev("x", ClassAIGenerated, 0, 0)}, LabelUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Combine(tt.in)
			assert.Equal(t, tt.want, v.Label)
			assert.Equal(t, Version, v.Version)
			assert.NotNil(t, v.Evidence)
			if v.Label == LabelUnknown {
				assert.Zero(t, v.Confidence)
			} else {
				assert.GreaterOrEqual(t, v.Confidence, 0.5)
			}
		})
	}
}

func TestCombineHeuristicsDoNotMoveConfidence(t *testing.T) {
	base := []Evidence{ev("cam", ClassHumanCapture, -1, 1)}
	v1 := Combine(base)
	v2 := Combine(append(base, ev("h", ClassAIGenerated, 1, 2)))
	assert.Equal(t, v1.Confidence, v2.Confidence)
	assert.Greater(t, v2.AIScore, v1.AIScore)
}

func TestCombineCaps(t *testing.T) {
	var many []Evidence
	for i := 0; i < 100; i++ {
		many = append(many, Evidence{Signal: "h", Class: ClassAIGenerated, Weight: 1, Tier: 2, Locator: string(rune('a' + i%26)), Excerpt: string(rune('A' + i/26))})
	}
	v := Combine(many)
	assert.InDelta(t, 1/(1+math.Exp(-capTier2)), v.AIScore, 1e-4)
	assert.Equal(t, LabelUnknown, v.Label)
}

func TestCombineOrderIndependentAndDeduped(t *testing.T) {
	a := []Evidence{
		ev("gen", ClassAIGenerated, 5, 0), ev("cam", ClassHumanCapture, -1, 1),
		ev("h", ClassAIGenerated, 0.7, 2), ev("gen", ClassAIGenerated, 5, 0), ev("info", ClassInfo, 0, 0),
	}
	b := []Evidence{a[4], a[2], a[1], a[0]}
	va, vb := Combine(a), Combine(b)
	assert.Equal(t, va, vb)
	assert.Len(t, va.Evidence, 4)
	assert.Equal(t, "gen", va.Evidence[0].Signal)
}

func TestCombineNonFinite(t *testing.T) {
	v := Combine([]Evidence{ev("nan", ClassAIGenerated, math.NaN(), 2), ev("inf", ClassHumanCapture, math.Inf(-1), 1)})
	assert.False(t, math.IsNaN(v.AIScore))
	assert.Equal(t, LabelUnknown, v.Label)
}

type failingScorer struct{}

func (failingScorer) Name() string { return "failing" }
func (failingScorer) Score(context.Context, *PostInput) ([]Evidence, error) {
	return nil, errors.New("labeler down")
}

type fixedScorer []Evidence

func (fixedScorer) Name() string { return "fixed" }
func (f fixedScorer) Score(context.Context, *PostInput) ([]Evidence, error) {
	return f, nil
}

func TestClassifierPluggable(t *testing.T) {
	c := New(fixedScorer{ev("labeler", ClassAIGenerated, 3, 1)}, TextScorer{})
	assert.Equal(t, []string{"fixed", "text"}, c.Scorers())
	v, err := c.Classify(context.Background(), &PostInput{Text: "#aiart"})
	require.NoError(t, err)
	assert.Equal(t, LabelUnknown, v.Label) // tier-1 AI lean alone does not label

	_, err = New(failingScorer{}).Classify(context.Background(), &PostInput{})
	assert.ErrorContains(t, err, "scorer failing")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Default().Classify(ctx, &PostInput{})
	assert.ErrorIs(t, err, context.Canceled)
}

func TestDefaultEmptyPost(t *testing.T) {
	v, err := Default().Classify(context.Background(), &PostInput{})
	require.NoError(t, err)
	assert.Equal(t, LabelUnknown, v.Label)
	assert.Equal(t, 0.5, v.AIScore)
	assert.Empty(t, v.Evidence)
}

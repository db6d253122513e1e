package classify

import (
	"context"
	"fmt"
	"math"
	"sort"
)

// Per-tier caps on the summed log-odds (AI-SIGNALS.md §6.1): a pile of
// weak evidence cannot add up to a deterministic declaration.
const (
	capTier0 = 10.0
	capTier1 = 2.5
	capTier2 = 1.5
)

// Classifier runs scorers and combines their evidence. Build one with New
// or Default; it is immutable and safe for concurrent use when its scorers
// are (the built-in ones are stateless).
type Classifier struct {
	scorers []Scorer
}

// New returns a classifier over the given scorers.
func New(scorers ...Scorer) *Classifier {
	return &Classifier{scorers: append([]Scorer(nil), scorers...)}
}

// Default returns a classifier with the built-in scorers: self-labels,
// media provenance and text heuristics.
func Default() *Classifier {
	return New(SelfLabelScorer{}, MediaScorer{}, TextScorer{})
}

// Classify runs every scorer and combines the evidence. A failing scorer
// fails the call (its error is wrapped with the scorer name) so that a
// partial verdict is never stored as final.
func (c *Classifier) Classify(ctx context.Context, in *PostInput) (Verdict, error) {
	var all []Evidence
	for _, s := range c.scorers {
		if err := ctx.Err(); err != nil {
			return Verdict{}, fmt.Errorf("classify: %w", err)
		}
		ev, err := s.Score(ctx, in)
		if err != nil {
			return Verdict{}, fmt.Errorf("classify: scorer %s: %w", s.Name(), err)
		}
		all = append(all, ev...)
	}
	return Combine(all), nil
}

// Combine turns evidence into a verdict. It is a pure function of the
// evidence multiset: input order does not matter.
//
// Decision rules, in order:
//  1. any tier-0 ai_generated evidence → ai_generated;
//  2. else any tier-0 ai_assisted evidence → ai_assisted;
//  3. else human evidence at tier ≤ 1 and no AI evidence at tier ≤ 1 →
//     human_declared;
//  4. else unknown. Missing metadata is not evidence of anything, and
//     heuristics (tier ≥ 2) never set a label on their own.
//
// Confidence comes from tier-0 and tier-1 evidence only (sigmoid of their
// capped log-odds sum, or one minus it for human_declared; 0 for unknown),
// so heuristics move neither the label nor its confidence. When an AI
// declaration wins over heavier human claims, Confidence is floored at 0.5
// to flag the conflict. AIScore adds
// the capped heuristic sum and is meant for ranking leans.
func Combine(evidence []Evidence) Verdict {
	ev := dedupe(evidence)
	sortEvidence(ev)
	var sums [3]float64
	var ai0Gen, ai0Ast, aiLow, humanLow bool
	for _, e := range ev {
		t := min(max(e.Tier, 0), 2)
		if e.Class != ClassInfo {
			sums[t] += e.Weight
		}
		switch {
		case e.Tier <= TierDeterministic && e.Class == ClassAIGenerated && e.Weight > 0:
			ai0Gen = true
		case e.Tier <= TierDeterministic && e.Class == ClassAIAssisted && e.Weight > 0:
			ai0Ast = true
		}
		if e.Tier <= TierWeakClaim && e.Class.isAI() && e.Weight > 0 {
			aiLow = true
		}
		if e.Tier <= TierWeakClaim && e.Class.isHuman() && e.Weight < 0 {
			humanLow = true
		}
	}
	decisive := clip(sums[0], capTier0) + clip(sums[1], capTier1)
	p := sigmoid(decisive)
	v := Verdict{Label: LabelUnknown, AIScore: round4(sigmoid(decisive + clip(sums[2], capTier2))), Evidence: ev, Version: Version}
	switch {
	case ai0Gen:
		v.Label, v.Confidence = LabelAIGenerated, round4(max(p, 0.5))
	case ai0Ast:
		v.Label, v.Confidence = LabelAIAssisted, round4(max(p, 0.5))
	case humanLow && !aiLow:
		v.Label, v.Confidence = LabelHumanDeclared, round4(1-p)
	}
	if v.Evidence == nil {
		v.Evidence = []Evidence{}
	}
	return v
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func clip(x, c float64) float64 { return math.Max(-c, math.Min(c, x)) }

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// dedupe drops repeated observations (same signal, class, tier, locator
// and excerpt), so the same chunk seen twice does not count twice, and
// zeroes non-finite weights.
func dedupe(in []Evidence) []Evidence {
	seen := make(map[Evidence]bool, len(in))
	out := make([]Evidence, 0, len(in))
	for _, e := range in {
		if math.IsNaN(e.Weight) || math.IsInf(e.Weight, 0) {
			e.Weight = 0 // a broken plug-in scorer must not poison the sum
		}
		if seen[e] {
			continue
		}
		seen[e] = true
		out = append(out, e)
	}
	return out
}

// sortEvidence orders evidence strongest first: by tier, then by absolute
// weight, then lexically, so output is deterministic.
func sortEvidence(ev []Evidence) {
	sort.SliceStable(ev, func(i, j int) bool {
		a, b := ev[i], ev[j]
		if a.Tier != b.Tier {
			return a.Tier < b.Tier
		}
		if wa, wb := math.Abs(a.Weight), math.Abs(b.Weight); wa != wb {
			return wa > wb
		}
		if a.Signal != b.Signal {
			return a.Signal < b.Signal
		}
		if a.Locator != b.Locator {
			return a.Locator < b.Locator
		}
		if a.Class != b.Class {
			return a.Class < b.Class
		}
		if a.Excerpt != b.Excerpt {
			return a.Excerpt < b.Excerpt
		}
		return a.Weight < b.Weight
	})
}

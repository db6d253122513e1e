package classify

import (
	"context"
	"strings"
)

// Self-label scorers: author declarations on the post record
// (labels.values[].val) and on the profile record.
//
// There is no official AI self-label value; values are open strings. The
// accepted aliases follow aimod.social's vocabulary plus the community
// "ai-agent" value (AI-SIGNALS.md §2.1–2.2).

// selfLabelClass maps a post self-label value to its class.
func selfLabelClass(val string) (Class, float64, bool) {
	switch strings.ToLower(strings.TrimSpace(val)) {
	case "ai-generated", "ai-imagery", "ai-agent":
		return ClassAIGenerated, 6, true
	case "ai-assisted", "ai-modified":
		return ClassAIAssisted, 5, true
	}
	return "", 0, false
}

// SelfLabelScorer reads the post's and the author's self-labels.
type SelfLabelScorer struct{}

// Name implements Scorer.
func (SelfLabelScorer) Name() string { return "selflabel" }

// Score implements Scorer.
func (SelfLabelScorer) Score(_ context.Context, in *PostInput) ([]Evidence, error) {
	var out []Evidence
	for i, v := range in.SelfLabels {
		if i >= 16 { // the lexicon allows 10
			break
		}
		if c, w, ok := selfLabelClass(v); ok {
			out = append(out, Evidence{Signal: "selflabel.post", Class: c, Weight: w, Tier: TierDeterministic,
				Locator: "record:labels.values[" + itoa(i) + "]", Excerpt: excerpt(v)})
		}
	}
	for i, v := range in.AuthorLabels {
		if i >= 16 {
			break
		}
		loc := "profile:labels.values[" + itoa(i) + "]"
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "ai-agent":
			// The account declares itself an AI agent: what it posts is
			// AI-made. An author declaration, like a post self-label.
			out = append(out, Evidence{Signal: "selflabel.profile", Class: ClassAIGenerated, Weight: 4,
				Tier: TierDeterministic, Locator: loc, Excerpt: excerpt(v)})
		case "bot":
			// Automation is not AI content (earthquake and archive bots):
			// a small account-level lean only.
			out = append(out, Evidence{Signal: "selflabel.profile.bot", Class: ClassAutomated, Weight: 0.5,
				Tier: TierWeakClaim, Locator: loc, Excerpt: "bot"})
		}
	}
	return out, nil
}

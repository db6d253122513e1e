package classify

import (
	"context"
	"errors"
)

// Version identifies the scorer set and weight table. It is stored with
// every verdict so that posts can be re-scored when it changes.
const Version = "classify/1"

// Label is the final verdict of the classifier.
type Label string

// Verdict labels.
const (
	LabelAIGenerated   Label = "ai_generated"
	LabelAIAssisted    Label = "ai_assisted"
	LabelHumanDeclared Label = "human_declared"
	LabelUnknown       Label = "unknown"
)

// IsAI reports whether l is one of the AI labels.
func (l Label) IsAI() bool { return l == LabelAIGenerated || l == LabelAIAssisted }

// Class is what one piece of evidence speaks for.
type Class string

// Evidence classes.
const (
	// ClassAIGenerated: the content was made by a generative model.
	ClassAIGenerated Class = "ai_generated"
	// ClassAIAssisted: generative AI contributed to (edited, composited) the content.
	ClassAIAssisted Class = "ai_assisted"
	// ClassHumanDeclared: an explicit human-origin declaration (C2PA or IPTC
	// digitalCapture, a #NoAI style marker).
	ClassHumanDeclared Class = "human_declared"
	// ClassHumanCapture: camera capture metadata (EXIF Make and Model).
	ClassHumanCapture Class = "human_capture"
	// ClassAutomated: the account is automated (profile "bot" self-label).
	// Automation is not AI content; it only shifts the score a little.
	ClassAutomated Class = "automated"
	// ClassInfo: recorded for explanation only (a C2PA store without
	// actions, algorithmicMedia, a parse error); never moves the verdict.
	ClassInfo Class = "info"
)

// isAI reports whether c speaks for AI involvement.
func (c Class) isAI() bool { return c == ClassAIGenerated || c == ClassAIAssisted }

// isHuman reports whether c speaks for human origin.
func (c Class) isHuman() bool { return c == ClassHumanDeclared || c == ClassHumanCapture }

// Evidence tiers. Lower is stronger.
const (
	// TierDeterministic: a structured declaration read from the record or
	// the media bytes (self-label, C2PA action, IPTC source type, generator
	// metadata matched structurally). Tier-0 evidence decides the label.
	TierDeterministic = 0
	// TierWeakClaim: structured but weak or ambiguous claims (camera
	// Make/Model, C2PA claim generator names, profile "bot").
	TierWeakClaim = 1
	// TierHeuristic: text heuristics (hashtags, "[ai]", LLM boilerplate).
	TierHeuristic = 2
)

// Evidence is one observation made by a scorer.
type Evidence struct {
	// Signal names the kind of evidence, e.g. "c2pa.digitalSourceType",
	// "xmp.digitalSourceType", "gen.a1111", "selflabel.post", "text.hashtag".
	Signal string `json:"signal"`
	// Class says what the evidence speaks for.
	Class Class `json:"class"`
	// Weight is a signed log-odds contribution: positive toward AI,
	// negative toward human, zero for ClassInfo.
	Weight float64 `json:"weight"`
	// Tier: 0 deterministic, higher is more heuristic.
	Tier int `json:"tier"`
	// Locator says where the evidence was found, e.g.
	// "blob:bafk… png:iTXt[parameters]".
	Locator string `json:"locator"`
	// Excerpt is a short, bounded excerpt of the value (prompts may hold
	// personal data; at most maxExcerpt bytes).
	Excerpt string `json:"excerpt,omitempty"`
}

// Verdict is the classifier's output for one post (or one media item).
type Verdict struct {
	Label Label `json:"label"`
	// Confidence is the model's probability that Label is right: P(AI)
	// for AI labels, 1-P(AI) for human_declared, and 0 for unknown (the
	// classifier abstains; AIScore still shows the lean).
	Confidence float64 `json:"confidence"`
	// AIScore is P(AI) from the capped log-odds sum of all evidence; 0.5
	// when there is no evidence. Rankers may use it to break ties.
	AIScore  float64    `json:"ai_score"`
	Evidence []Evidence `json:"evidence"`
	Version  string     `json:"version"`
}

// Media is one attached blob.
type Media struct {
	// CID is the blob CID, used in locators and as a cache key.
	CID string
	// MIME is the declared MIME type. Advisory only: parsers sniff the
	// container from its magic bytes.
	MIME string
	// Bytes is the original blob (from com.atproto.sync.getBlob, never a
	// CDN rendition). Do not truncate: WebP and RIFF keep C2PA last.
	Bytes []byte
	// Alt is the image's alt text, scanned by the text heuristics only.
	Alt string
}

// PostInput is everything the classifier looks at for one post.
type PostInput struct {
	// URI is the post's at-uri (informational).
	URI string
	// Text is the post text.
	Text string
	// Langs are the post's declared languages (informational).
	Langs []string
	// Tags are hashtags from richtext tag facets and the post "tags"
	// array, without the leading '#'.
	Tags []string
	// SelfLabels are the post's labels.values[].val.
	SelfLabels []string
	// AuthorLabels are the author's profile self-label values; "bot"
	// marks an automated account.
	AuthorLabels []string
	// Media are the attached images, in embed order.
	Media []Media
}

// Scorer inspects a post and returns evidence. Built-in scorers are pure
// and never fail; the error is for pluggable scorers (labelers, models)
// that do I/O. Scorers must not retain or modify the input.
type Scorer interface {
	Name() string
	Score(ctx context.Context, in *PostInput) ([]Evidence, error)
}

// ErrTooLarge is returned when a blob exceeds MaxMediaBytes.
var ErrTooLarge = errors.New("media exceeds size cap")

// ErrTruncated is wrapped by parsers when a declared length runs past the
// end of the data.
var ErrTruncated = errors.New("truncated data")

// ErrMalformed is wrapped by parsers for structurally invalid data.
var ErrMalformed = errors.New("malformed data")

// ErrLimit is wrapped by parsers when a safety cap (depth, count,
// inflated size) is hit.
var ErrLimit = errors.New("safety limit exceeded")

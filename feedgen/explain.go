package feedgen

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/feedgen/classify"
	"github.com/hearth-social/hearth/feedgen/index"
	"github.com/hearth-social/hearth/feedgen/rank"
	"github.com/hearth-social/hearth/internal/aipref"
	"github.com/hearth-social/hearth/internal/xrpc"
)

// ExplainNSID is Hearth's query that explains a post's verdict (lexicon:
// lexicons/social/hearth/feed/explainPost.json).
const ExplainNSID = "social.hearth.feed.explainPost"

// Verdict statuses in ExplainOutput.Status.
const (
	ExplainClassified = "classified"
	// ExplainPending: the post waits for the classifier and is served as unknown.
	ExplainPending = "pending"
)

// ExplainEvidence is one piece of evidence. Numbers that are not integers are decimal
// strings: the atproto data model has no floats.
type ExplainEvidence struct {
	Signal  string `json:"signal"`
	Class   string `json:"class"`
	Weight  string `json:"weight"`
	Tier    int    `json:"tier"`
	Locator string `json:"locator"`
	Excerpt string `json:"excerpt,omitempty"`
}

// ExplainOutput is the output of social.hearth.feed.explainPost.
type ExplainOutput struct {
	URI    string `json:"uri"`
	CID    string `json:"cid"`
	Status string `json:"status"`
	Label  string `json:"label"`
	// Confidence and AIScore are decimal strings in [0, 1].
	Confidence string            `json:"confidence"`
	AIScore    string            `json:"aiScore"`
	Evidence   []ExplainEvidence `json:"evidence"`
	// Labels are the labeler values this verdict carries (tier-0 evidence only).
	Labels []string `json:"labels"`
	// Feeds are the ranked feeds the post is eligible for.
	Feeds []string `json:"feeds"`
	// FeedContext is the compact code its skeleton items carry.
	FeedContext   string `json:"feedContext"`
	ClassifiedAt  string `json:"classifiedAt,omitempty"`
	ClassifiedCID string `json:"classifiedCid,omitempty"`
	Version       string `json:"version,omitempty"`
	// AuthorAIPreferences is what the author declared about AI use of their posts.
	AuthorAIPreferences *ExplainAIPreferences `json:"authorAIPreferences,omitempty"`
}

// ExplainAIPreferences is an author's declared AI usage preferences for their posts;
// each category is "allow", "deny" or "" (undeclared).
type ExplainAIPreferences struct {
	Training         string   `json:"training,omitempty"`
	Inference        string   `json:"inference,omitempty"`
	SyntheticContent string   `json:"syntheticContent,omitempty"`
	Embedding        string   `json:"embedding,omitempty"`
	ContentUsage     string   `json:"contentUsage"`
	Records          []string `json:"records"`
}

// authorAIPreferences reads the author's declarations for their posts (nil: none).
func (s *Service) authorAIPreferences(ctx context.Context, author string) (*ExplainAIPreferences, error) {
	decls, err := s.idx.AIDeclarations(ctx, author)
	if err != nil || len(decls) == 0 {
		return nil, err
	}
	p := aipref.Effective(decls, index.CollectionPost)
	word := func(b *bool) string {
		switch {
		case b == nil:
			return ""
		case *b:
			return "allow"
		}
		return "deny"
	}
	out := &ExplainAIPreferences{Training: word(p.Training), Inference: word(p.Inference), SyntheticContent: word(p.Synthetic),
		Embedding: word(p.Embedding), ContentUsage: p.ContentUsage(), Records: []string{}}
	for _, d := range decls {
		out.Records = append(out.Records, index.URI(author, d.Collection, d.RKey))
	}
	return out, nil
}

func decimal(f float64) string { return strconv.FormatFloat(f, 'f', 4, 64) }

func (s *Service) handleExplain(w http.ResponseWriter, r *http.Request) error {
	raw := r.URL.Query().Get("uri")
	if raw == "" {
		return xrpc.InvalidRequest("uri is required")
	}
	out, _, err := s.Explain(r.Context(), raw)
	if err != nil {
		return err
	}
	xrpc.WriteJSON(w, http.StatusOK, out)
	return nil
}

// Explain is explainPost's answer for the post at raw (an AT-URI), with the indexed
// post itself (the operator dashboard shows its text next to the verdict). Errors are
// explainPost's XRPC errors.
func (s *Service) Explain(ctx context.Context, raw string) (*ExplainOutput, *index.PostInfo, error) {
	uri, err := syntax.ParseATURI(raw)
	if err != nil || uri.Collection() != index.CollectionPost {
		return nil, nil, xrpc.InvalidRequest("uri must be the AT-URI of an app.bsky.feed.post record")
	}
	c, err := s.idx.Classification(ctx, uri.String())
	if errors.Is(err, index.ErrNotFound) {
		return nil, nil, xrpc.Errorf(http.StatusBadRequest, "PostNotFound", "%s is not in this feed generator's index", raw)
	}
	if err != nil {
		return nil, nil, err
	}
	post, err := s.idx.Post(ctx, uri.String())
	if errors.Is(err, index.ErrNotFound) || (err == nil && post.Hidden) {
		return nil, nil, xrpc.Errorf(http.StatusBadRequest, "PostNotFound", "%s is not available", raw)
	}
	if err != nil {
		return nil, nil, err
	}
	out := ExplainOutput{URI: c.URI, CID: c.PostCID, Status: ExplainPending, Label: string(classify.LabelUnknown),
		Confidence: decimal(0), AIScore: decimal(0.5), Evidence: []ExplainEvidence{}, Labels: []string{}, Feeds: []string{},
		FeedContext: rank.FeedContext("unknown", "")}
	if c.Classified {
		var ev []classify.Evidence
		if err := json.Unmarshal(c.Evidence, &ev); err != nil {
			return nil, nil, err
		}
		out.Status, out.Label = ExplainClassified, c.Label
		out.Confidence, out.AIScore = decimal(c.Confidence), decimal(c.AIScore)
		out.ClassifiedAt, out.ClassifiedCID, out.Version = c.ClassifiedAt, c.ClassifiedCID, c.Version
		out.FeedContext = rank.FeedContext(c.Label, c.Signals)
		for _, e := range ev {
			out.Evidence = append(out.Evidence, ExplainEvidence{Signal: e.Signal, Class: string(e.Class), Weight: decimal(e.Weight),
				Tier: e.Tier, Locator: e.Locator, Excerpt: e.Excerpt})
		}
		out.Labels = append(out.Labels, c.LabelVals...)
		ai := classify.Label(c.Label).IsAI()
		if c.AITier >= 2 {
			out.Feeds = append(out.Feeds, rank.FeedHuman)
		}
		if ai {
			out.Feeds = append(out.Feeds, rank.FeedAI)
		}
		if ai || c.AITier >= 2 {
			out.Feeds = append(out.Feeds, rank.FeedBalanced, rank.FeedFollowingMix)
		}
	}
	if out.AuthorAIPreferences, err = s.authorAIPreferences(ctx, uri.Authority().String()); err != nil {
		return nil, nil, err
	}
	return &out, post, nil
}

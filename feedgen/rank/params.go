package rank

import (
	"fmt"
	"math"
	"time"
)

// Params holds every ranking constant, in one place. DefaultParams documents where each
// value comes from (AI-SIGNALS.md §4 and §6.2); tests and operators may override them
// through feedgen.Config.Rank.
//
// Score of one post, computed at the snapshot's time base T:
//
//	E     = Σ_kind w_kind · (n_kind − bot_kind + BotWeight · bot_kind)   kind ∈ likes, reposts, replies
//	score = (1 + E)^Gamma / (age_h + Gravity2)^Gravity · (ReplyFactor if the post is a reply)
//
// where age_h is the age in hours of min(createdAt, indexedAt) at T (a post cannot
// date itself into the future) and bot_kind counts engagement from accounts whose
// profile self-labels "bot". Inside a feed the author-diversity decay multiplies the
// n-th (0-based) post of the same author by DiversityFloor + (1−DiversityFloor)·
// DiversityDecay^n, and the author cap allows at most AuthorCap posts of one author in
// any AuthorWindow consecutive items (so in any page of up to AuthorWindow items).
type Params struct {
	// Gamma is the engagement exponent γ (Bluesky What's Hot: 1; Hacker News: 0.8).
	Gamma float64
	// Gravity is G, the age exponent (What's Hot, HN and SkyFeed's default: 1.8).
	Gravity float64
	// AgeOffsetHours is the "+2" in (age_h + 2): a new post is not infinitely hot.
	AgeOffsetHours float64
	// LikeWeight, RepostWeight and ReplyWeight weigh the engagement kinds
	// (j4ckxyz/bluesky-for-you-algo: 1, 0.7, 0.5).
	LikeWeight, RepostWeight, ReplyWeight float64
	// BotWeight multiplies engagement from "bot"-labelled accounts: automation is a
	// cheap supply of engagement (AI-SIGNALS.md §6.2).
	BotWeight float64
	// ReplyFactor multiplies the score of replies (X home-mixer M_reply: 0.75).
	ReplyFactor float64
	// DiversityDecay and DiversityFloor are X's author-diversity discount (0.5, 0.25):
	// multipliers 1, 0.625, 0.4375, … tending to 0.25. A floor of 1 turns it off.
	DiversityDecay, DiversityFloor float64
	// AuthorCap is the most posts of one author in any AuthorWindow consecutive items
	// (j4ckxyz: 3 per page; the window is the server's default page size). 0 turns the
	// cap off. When only capped authors are left, their posts are used anyway.
	AuthorCap, AuthorWindow int
	// AIShare is the target share p of AI posts in the balanced and following-mix
	// feeds: every prefix of k items holds round(p·k) AI posts, within 1/k of p, while
	// both classes have posts left.
	AIShare float64
	// Window is how far back candidates are taken from (by first-indexed time).
	Window time.Duration
	// MaxCandidates caps each class list of a snapshot (SkyFeed caps output at 1024).
	MaxCandidates int
	// SnapshotTTL is how long a first page reuses the current snapshot of its feed
	// (What's Hot refreshes its view every 60 s). 0 builds one for every first page.
	SnapshotTTL time.Duration
	// SnapshotIdle drops a snapshot not read for this long; MaxSnapshots bounds the
	// cache (a snapshot holds about 100 bytes per post, at most 2·MaxCandidates posts).
	// An evicted snapshot is rebuilt from its cursor when asked for.
	SnapshotIdle time.Duration
	MaxSnapshots int
	// MaxCursorAge refuses cursors whose time base is older than this.
	MaxCursorAge time.Duration
}

// DefaultParams returns the shipped constants.
func DefaultParams() Params {
	return Params{
		Gamma:          1,
		Gravity:        1.8,
		AgeOffsetHours: 2,
		LikeWeight:     1,
		RepostWeight:   0.7,
		ReplyWeight:    0.5,
		BotWeight:      0.1,
		ReplyFactor:    0.75,
		DiversityDecay: 0.5,
		DiversityFloor: 0.25,
		AuthorCap:      3,
		AuthorWindow:   50,
		AIShare:        0.5,
		Window:         48 * time.Hour,
		MaxCandidates:  1000,
		SnapshotTTL:    60 * time.Second,
		SnapshotIdle:   10 * time.Minute,
		MaxSnapshots:   128,
		MaxCursorAge:   24 * time.Hour,
	}
}

// Validate checks the ranges.
func (p Params) Validate() error {
	finite := func(xs ...float64) bool {
		for _, x := range xs {
			if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
				return false
			}
		}
		return true
	}
	switch {
	case !finite(p.Gamma, p.Gravity, p.AgeOffsetHours, p.LikeWeight, p.RepostWeight, p.ReplyWeight, p.BotWeight, p.ReplyFactor, p.DiversityDecay, p.DiversityFloor, p.AIShare):
		return fmt.Errorf("rank: parameters must be finite and non-negative")
	case p.AgeOffsetHours <= 0:
		return fmt.Errorf("rank: AgeOffsetHours must be positive")
	case p.AIShare > 1:
		return fmt.Errorf("rank: AIShare %v must be within [0, 1]", p.AIShare)
	case p.DiversityFloor > 1 || p.DiversityDecay > 1:
		return fmt.Errorf("rank: DiversityDecay and DiversityFloor must be within [0, 1]")
	case p.AuthorCap < 0 || p.AuthorWindow < 0 || (p.AuthorCap > 0 && p.AuthorWindow < 1):
		return fmt.Errorf("rank: AuthorCap and AuthorWindow must be non-negative (a window of at least 1 with a cap)")
	case p.Window <= 0 || p.MaxCandidates <= 0 || p.MaxSnapshots <= 0 || p.SnapshotTTL < 0 || p.SnapshotIdle <= 0 || p.MaxCursorAge <= 0:
		return fmt.Errorf("rank: Window, MaxCandidates, MaxSnapshots, SnapshotIdle and MaxCursorAge must be positive")
	}
	return nil
}

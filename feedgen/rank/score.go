package rank

import (
	"math"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/feedgen/index"
)

// Engagement is E for one candidate (see Params): bot-labelled engagement counts
// BotWeight times.
func Engagement(c *index.Candidate, p Params) float64 {
	part := func(n, bot int64, w float64) float64 {
		bot = min(max(bot, 0), max(n, 0))
		return w * (float64(max(n, 0)-bot) + p.BotWeight*float64(bot))
	}
	return part(c.Likes, c.BotLikes, p.LikeWeight) + part(c.Reposts, c.BotReposts, p.RepostWeight) + part(c.Replies, c.BotReplies, p.ReplyWeight)
}

// Score is the time-decayed engagement (1+E)^γ / (age_h + 2)^G, times ReplyFactor for a
// reply. A negative age (clock skew) counts as zero.
func Score(e, ageHours float64, reply bool, p Params) float64 {
	s := math.Pow(1+max(e, 0), p.Gamma) / math.Pow(max(ageHours, 0)+p.AgeOffsetHours, p.Gravity)
	if reply {
		s *= p.ReplyFactor
	}
	return s
}

// Diversity is the author-diversity multiplier for an author's n-th (0-based) post.
func Diversity(n int, p Params) float64 {
	return p.DiversityFloor + (1-p.DiversityFloor)*math.Pow(p.DiversityDecay, float64(n))
}

// sortTime is min(createdAt, indexedAt): the client's createdAt may be anything, but a
// post cannot date itself after the moment the index first saw it.
func sortTime(c *index.Candidate) time.Time {
	indexed, err := syntax.ParseDatetimeLenient(c.IndexedAt)
	if err != nil {
		return time.Time{}
	}
	t := indexed.Time()
	if created, err := syntax.ParseDatetimeLenient(c.CreatedAt); err == nil && created.Time().Before(t) {
		t = created.Time()
	}
	return t
}

// ageHours is the age of a candidate at asOf.
func ageHours(c *index.Candidate, asOf time.Time) float64 {
	return asOf.Sub(sortTime(c)).Hours()
}

// FeedContext is the compact feedContext of a skeleton item: the verdict and its top
// evidence signals, e.g. "v=ai_generated;e=c2pa.digitalSourceType,xmp.digitalSourceType".
// Apps echo it back with interactions; explainPost has the full evidence.
func FeedContext(label, signals string) string {
	if label == "" {
		label = "unknown"
	}
	if signals == "" {
		return "v=" + label
	}
	if len(signals) > 200 {
		signals = signals[:200]
		if i := strings.LastIndexByte(signals, ','); i > 0 {
			signals = signals[:i]
		}
	}
	return "v=" + label + ";e=" + signals
}

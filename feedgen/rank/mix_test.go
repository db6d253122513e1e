package rank

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/hearth-social/hearth/feedgen/index"
	"github.com/stretchr/testify/require"
)

func TestScore(t *testing.T) {
	p := DefaultParams()
	c := &index.Candidate{Likes: 10, BotLikes: 4, Reposts: 2, Replies: 2, BotReplies: 2}
	// likes 6 + 0.1·4, reposts 0.7·2, replies 0.5·(0 + 0.1·2)
	require.InDelta(t, 6.4+1.4+0.1, Engagement(c, p), 1e-9)
	require.InDelta(t, 4/math.Pow(2, 1.8), Score(3, 0, false, p), 1e-12)
	require.InDelta(t, 0.75*4/math.Pow(2, 1.8), Score(3, 0, true, p), 1e-12, "replies are discounted")
	require.InDelta(t, Score(3, 0, false, p), Score(3, -5, false, p), 1e-12, "a post from the future is age 0")
	require.Less(t, Score(3, 10, false, p), Score(3, 1, false, p), "older scores lower at equal engagement")
	require.Greater(t, Score(4, 1, false, p), Score(3, 1, false, p), "more engagement scores higher at equal age")

	human := &index.Candidate{Likes: 5}
	bots := &index.Candidate{Likes: 5, BotLikes: 5}
	require.Greater(t, Engagement(human, p), Engagement(bots, p), "bot likes are down-weighted")
	require.InDelta(t, 0.5, Engagement(bots, p), 1e-9)
	require.Zero(t, Engagement(&index.Candidate{Likes: 1, BotLikes: 7}, p)-0.1, "bot count is clamped to the total")

	require.Equal(t, 1.0, Diversity(0, p))
	require.Equal(t, 0.625, Diversity(1, p))
	require.Equal(t, 0.4375, Diversity(2, p))
	require.InDelta(t, 0.25, Diversity(60, p), 1e-9)

	require.Equal(t, "v=unknown", FeedContext("", ""))
	require.Equal(t, "v=ai_generated;e=c2pa.digitalSourceType,gen.a1111", FeedContext("ai_generated", "c2pa.digitalSourceType,gen.a1111"))
}

func entries(author string, ai bool, scores ...float64) []Entry {
	var out []Entry
	for i, s := range scores {
		out = append(out, Entry{URI: fmt.Sprintf("at://%s/app.bsky.feed.post/%d", author, i), Author: author, Seq: int64(100 - i), Score: s, AI: ai})
	}
	return out
}

func authorsOf(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Author)
	}
	return out
}

func TestDiversityDecay(t *testing.T) {
	p := DefaultParams()
	p.AuthorCap = 0
	in := append(entries("A", false, 10, 9, 8), entries("B", false, 6, 5)...)
	// A1 10; then A2 9·0.625=5.625 < B1 6; A2 5.625 > B2 5·0.625; A3 8·0.4375=3.5 > B2 3.125.
	require.Equal(t, []string{"A", "B", "A", "A", "B"}, authorsOf(Mix(in, nil, 0, p)))
	p.DiversityFloor = 1 // decay off: plain score order
	require.Equal(t, []string{"A", "A", "A", "B", "B"}, authorsOf(Mix(in, nil, 0, p)))
}

func TestAuthorCap(t *testing.T) {
	p := DefaultParams()
	p.DiversityFloor = 1
	p.AuthorCap, p.AuthorWindow = 2, 5
	in := entries("A", false, 100, 99, 98, 97, 96, 95, 94, 93)
	for _, a := range []string{"B", "C", "D"} {
		in = append(in, entries(a, false, 1, 0.5)...)
	}
	out := Mix(in, nil, 0, p)
	require.Len(t, out, len(in))
	// While other authors have posts, no window of 5 holds more than 2 of A's.
	got := authorsOf(out)
	require.Equal(t, []string{"A", "A", "B", "C", "D", "A", "A", "B", "C", "D", "A", "A", "A", "A"}, got)
	for i := 0; i+5 <= 10; i++ {
		n := 0
		for _, a := range got[i : i+5] {
			if a == "A" {
				n++
			}
		}
		require.LessOrEqual(t, n, 2, "window at %d", i)
	}
}

// TestMixProperties checks, over many random inputs, that Mix is a deterministic
// permutation of its input that keeps every prefix within 1/k of the AI share while
// both classes have posts left, keeps each author's posts in score order, and only
// breaks the author cap when every author left in that class is capped.
func TestMixProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	shares := []float64{0, 0.1, 0.2, 0.25, 1.0 / 3, 0.5, 0.6, 2.0 / 3, 0.75, 0.9, 1}
	for iter := range 3000 {
		p := DefaultParams()
		p.AIShare = shares[rng.IntN(len(shares))]
		if rng.IntN(3) == 0 {
			p.AIShare = rng.Float64()
		}
		p.AuthorCap, p.AuthorWindow = rng.IntN(4), 1+rng.IntN(12)
		if rng.IntN(4) == 0 {
			p.DiversityFloor = 1
		}
		authors := 1 + rng.IntN(8)
		var human, ai []Entry
		for i := range rng.IntN(60) {
			human = append(human, Entry{URI: fmt.Sprintf("at://h/%d", i), Author: fmt.Sprintf("a%d", rng.IntN(authors)), Seq: int64(rng.IntN(1000)), Score: float64(rng.IntN(20)) / 4})
		}
		for i := range rng.IntN(60) {
			ai = append(ai, Entry{URI: fmt.Sprintf("at://x/%d", i), Author: fmt.Sprintf("a%d", rng.IntN(authors)), Seq: int64(rng.IntN(1000)), Score: rng.Float64()})
		}
		out := Mix(human, ai, p.AIShare, p)
		msg := fmt.Sprintf("iter %d share %.3f cap %d/%d, %d human %d ai", iter, p.AIShare, p.AuthorCap, p.AuthorWindow, len(human), len(ai))

		// A permutation of the input, AI flags preserved.
		require.Len(t, out, len(human)+len(ai), msg)
		seen := map[string]bool{}
		for _, e := range out {
			require.False(t, seen[e.URI], msg)
			seen[e.URI] = true
			require.Equal(t, e.URI[5] == 'x', e.AI, msg)
		}

		// Prefix property while both classes have posts left.
		a, h := 0, 0
		for k, e := range out {
			if a == len(ai) || h == len(human) {
				break // one list ran dry: the rest is backfill
			}
			if e.AI {
				a++
			} else {
				h++
			}
			n := float64(k + 1)
			require.LessOrEqual(t, math.Abs(float64(a)/n-p.AIShare), 1/n+1e-9, "%s: prefix %d has %d AI", msg, k+1, a)
		}

		// Each author's posts of a class come best first (the decay is per author).
		last := map[string]float64{}
		for _, e := range out {
			key := fmt.Sprint(e.AI, e.Author)
			if prev, ok := last[key]; ok {
				require.LessOrEqual(t, e.Score, prev, msg)
			}
			last[key] = e.Score
		}

		// The cap only yields when every author left in the class is capped.
		if p.AuthorCap > 0 {
			for i, e := range out {
				window := out[max(0, i-p.AuthorWindow+1):i]
				count := func(author string) int {
					n := 0
					for _, w := range window {
						if w.Author == author {
							n++
						}
					}
					return n
				}
				if count(e.Author) < p.AuthorCap {
					continue
				}
				for _, later := range out[i+1:] {
					if later.AI == e.AI {
						require.GreaterOrEqual(t, count(later.Author), p.AuthorCap, "%s: position %d broke the cap while %s was free", msg, i, later.Author)
					}
				}
			}
		}

		// Deterministic: input order does not matter.
		rng.Shuffle(len(human), func(i, j int) { human[i], human[j] = human[j], human[i] })
		rng.Shuffle(len(ai), func(i, j int) { ai[i], ai[j] = ai[j], ai[i] })
		again := Mix(human, ai, p.AIShare, p)
		require.Equal(t, out, again, msg)
	}
}

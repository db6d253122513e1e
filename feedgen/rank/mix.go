package rank

import (
	"math"
	"sort"
)

// Entry is one scored post to arrange.
type Entry struct {
	URI    string
	Author string
	Seq    int64
	Score  float64
	// AI marks the AI class (balanced and following-mix feeds mix two classes).
	AI bool
	// Context is the item's feedContext.
	Context string
}

// better orders entries: higher value first, then newer (higher seq), then by URI, so
// the arrangement is a deterministic function of its input.
func better(va float64, a *Entry, vb float64, b *Entry) bool {
	if va != vb {
		return va > vb
	}
	if a.Seq != b.Seq {
		return a.Seq > b.Seq
	}
	return a.URI < b.URI
}

// classQueue is one class's entries, grouped by author, each author's best first.
type classQueue struct {
	authors []*authorQueue
	left    int
}

type authorQueue struct {
	author  string
	state   *authorState // shared by the author's queues in both classes
	entries []Entry
}

// authorState counts an author's placed posts: in total (diversity decay) and among the
// last AuthorWindow-1 (author cap).
type authorState struct {
	count, recent int
}

func newClassQueue(es []Entry, states map[string]*authorState) *classQueue {
	by := map[string]*authorQueue{}
	q := &classQueue{left: len(es)}
	for _, e := range es {
		aq := by[e.Author]
		if aq == nil {
			st := states[e.Author]
			if st == nil {
				st = &authorState{}
				states[e.Author] = st
			}
			aq = &authorQueue{author: e.Author, state: st}
			by[e.Author] = aq
			q.authors = append(q.authors, aq)
		}
		aq.entries = append(aq.entries, e)
	}
	for _, aq := range q.authors {
		sort.SliceStable(aq.entries, func(i, j int) bool {
			return better(aq.entries[i].Score, &aq.entries[i], aq.entries[j].Score, &aq.entries[j])
		})
	}
	return q
}

// arranger holds the state shared by both classes: per-author counts for the diversity
// decay and the sliding window for the author cap.
type arranger struct {
	p      Params
	states map[string]*authorState
	ring   []*authorState // authors of the last AuthorWindow-1 placed posts
	decay  []float64
}

func (ar *arranger) diversity(n int) float64 {
	for len(ar.decay) <= n {
		ar.decay = append(ar.decay, Diversity(len(ar.decay), ar.p))
	}
	return ar.decay[n]
}

// pick returns the index in q.authors of the best head: the highest score after the
// diversity decay among authors under the cap, or among all authors when every author
// left is capped. ok is false when q is empty.
func (ar *arranger) pick(q *classQueue) (best int, value float64, ok bool) {
	best = -1
	bestCapped, cappedValue := -1, 0.0
	for i, aq := range q.authors {
		if len(aq.entries) == 0 {
			continue
		}
		head := &aq.entries[0]
		v := head.Score * ar.diversity(aq.state.count)
		capped := ar.p.AuthorCap > 0 && aq.state.recent >= ar.p.AuthorCap
		if capped {
			if bestCapped < 0 || better(v, head, cappedValue, &q.authors[bestCapped].entries[0]) {
				bestCapped, cappedValue = i, v
			}
			continue
		}
		if best < 0 || better(v, head, value, &q.authors[best].entries[0]) {
			best, value = i, v
		}
	}
	if best >= 0 {
		return best, value, true
	}
	return bestCapped, cappedValue, bestCapped >= 0
}

// take removes and returns the head of author i and records its placement.
func (ar *arranger) take(q *classQueue, i int) Entry {
	aq := q.authors[i]
	e := aq.entries[0]
	aq.entries = aq.entries[1:]
	if len(aq.entries) == 0 {
		q.authors = append(q.authors[:i], q.authors[i+1:]...)
	}
	q.left--
	st := aq.state
	st.count++
	if ar.p.AuthorCap > 0 {
		st.recent++
		ar.ring = append(ar.ring, st)
		if len(ar.ring) > ar.p.AuthorWindow-1 {
			ar.ring[0].recent--
			ar.ring = ar.ring[1:]
		}
	}
	return e
}

// Mix arranges a human list and an AI list into one feed (AI-SIGNALS.md §4.8).
//
// At output position k (1-based), after a AI and h human items, the deficits are
// d_A = share·k − a and d_H = (1−share)·k − h; the AI class goes next when d_A > d_H,
// the human class when d_A < d_H, and on a tie the class whose next post scores higher.
// This keeps a = round(share·k), so |a/k − share| ≤ 1/(2k) for every prefix, as long as
// both lists have posts; when one runs dry the other fills the rest.
//
// Within the chosen class the next post is the one with the highest score after the
// author-diversity decay, among authors under the author cap (see Params). The class
// choice never depends on the cap, so the cap cannot break the prefix property.
//
// A feed of one class is Mix(list, nil, 0, p) (or Mix(nil, list, 1, p)).
func Mix(human, ai []Entry, share float64, p Params) []Entry {
	ar := &arranger{p: p, states: map[string]*authorState{}}
	hq, aq := newClassQueue(human, ar.states), newClassQueue(ai, ar.states)
	out := make([]Entry, 0, len(human)+len(ai))
	a, h := 0, 0
	for hq.left+aq.left > 0 {
		k := float64(a + h + 1)
		diff := (share*k - float64(a)) - ((1-share)*k - float64(h))
		hi, hv, hok := ar.pick(hq)
		ai0, av, aok := ar.pick(aq)
		useAI := false
		switch {
		case !hok:
			useAI = true
		case !aok:
			useAI = false
		case math.Abs(diff) < 1e-9:
			useAI = better(av, &aq.authors[ai0].entries[0], hv, &hq.authors[hi].entries[0])
		default:
			useAI = diff > 0
		}
		if useAI {
			e := ar.take(aq, ai0)
			e.AI = true
			out = append(out, e)
			a++
		} else {
			e := ar.take(hq, hi)
			e.AI = false
			out = append(out, e)
			h++
		}
	}
	return out
}

package rank

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hearth-social/hearth/feedgen/index"
)

// Ranked feeds: human ("No known AI"), ai, balanced and following-mix.
//
// # Snapshots and cursors
//
// A ranked feed is not ordered by a key that only grows, so keyset paging on the index
// would repeat or skip posts as likes arrive and scores move. Instead every page is cut
// from a snapshot: the whole arranged candidate list (at most 2·MaxCandidates posts),
// computed once for a time base T and the newest post seq S at that moment. The cursor
// carries (T, S, offset). A snapshot depends only on (feed, viewer, T, S):
//
//   - candidates are posts with seq ≤ S, first indexed within Window before T;
//   - likes and reposts count only if indexed before T, replies only if their seq ≤ S,
//     verdicts only if stored before T;
//   - ages, hence scores, are taken at T.
//
// Snapshots are cached (LRU, MaxSnapshots, dropped after SnapshotIdle), and first pages
// of a feed share the current snapshot for SnapshotTTL. When a cursor's snapshot is no
// longer cached (restart, eviction) it is rebuilt from the pinned (T, S), which gives
// the same list except for what was deleted, unliked or re-classified in between. So
// page 2 never repeats page 1 and never skips a post, however many posts and likes
// arrive. Posts deleted, hidden, or whose verdict no longer fits the class they were
// ranked in, are dropped when a page is served, without shifting later offsets.

// RankSource is what the ranked feeds read. *index.Index implements it.
type RankSource interface {
	MaxPostSeq(ctx context.Context) (int64, error)
	FirstSeqSince(ctx context.Context, t time.Time, maxSeq int64) (int64, error)
	RankCandidates(ctx context.Context, q index.CandidateQuery) ([]index.Candidate, error)
	PostStates(ctx context.Context, uris []string) (map[string]index.PostState, error)
}

var _ RankSource = (*index.Index)(nil)

// Kind is a ranked feed's candidate policy.
type Kind int

const (
	// KindHuman is "No known AI": classified posts with no AI evidence above the
	// heuristic tier.
	KindHuman Kind = iota
	// KindAI is posts classified ai_generated or ai_assisted.
	KindAI
	// KindBalanced interleaves both with Params.AIShare AI posts.
	KindBalanced
	// KindFollowingMix is KindBalanced restricted to the requester's follows.
	KindFollowingMix
)

// Ranker builds, caches and serves the ranked feeds' snapshots. It is safe for
// concurrent use.
type Ranker struct {
	p   Params
	now func() time.Time

	mu      sync.Mutex
	snaps   map[snapKey]*snapEntry
	current map[curKey]*snapEntry
}

type snapKey struct {
	feed   string
	viewer string
	asOf   int64 // unix ms
	maxSeq int64
}

type curKey struct{ feed, viewer string }

type snapEntry struct {
	key      snapKey
	built    time.Time
	lastUsed time.Time
	done     chan struct{}
	items    []snapItem
	err      error
}

// snapItem is what a snapshot keeps of an arranged post (authors and scores are only
// needed while arranging; contexts are interned).
type snapItem struct {
	URI     string
	Context string
	AI      bool
}

// NewRanker returns a ranker; now defaults to time.Now.
func NewRanker(p Params, now func() time.Time) *Ranker {
	if now == nil {
		now = time.Now
	}
	return &Ranker{p: p, now: now, snaps: map[snapKey]*snapEntry{}, current: map[curKey]*snapEntry{}}
}

// Params returns the ranker's parameters.
func (r *Ranker) Params() Params { return r.p }

// Feed returns the algorithm of a ranked feed.
func (r *Ranker) Feed(name string, kind Kind) Algorithm {
	return &rankedFeed{r: r, name: name, kind: kind}
}

type rankedFeed struct {
	r    *Ranker
	name string
	kind Kind
}

func (f *rankedFeed) Name() string      { return f.name }
func (f *rankedFeed) NeedsViewer() bool { return f.kind == KindFollowingMix }

// rankCursorVersion marks ranked cursors: version, T (unix ms), S, offset.
const rankCursorVersion = 2

// EncodeRankCursor makes a ranked feed's cursor.
func EncodeRankCursor(asOf time.Time, maxSeq int64, offset int) string {
	var b [21]byte
	b[0] = rankCursorVersion
	binary.BigEndian.PutUint64(b[1:], uint64(asOf.UnixMilli()))
	binary.BigEndian.PutUint64(b[9:], uint64(maxSeq))
	binary.BigEndian.PutUint32(b[17:], uint32(offset))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// DecodeRankCursor parses a ranked feed's cursor.
func DecodeRankCursor(s string) (asOf time.Time, maxSeq int64, offset int, err error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != 21 || b[0] != rankCursorVersion {
		return time.Time{}, 0, 0, ErrInvalidCursor
	}
	ms, seq, off := binary.BigEndian.Uint64(b[1:]), binary.BigEndian.Uint64(b[9:]), binary.BigEndian.Uint32(b[17:])
	if ms == 0 || ms > 1<<53 || seq > uint64(index.NoCursor) || off == 0 || off > 1<<20 {
		return time.Time{}, 0, 0, ErrInvalidCursor
	}
	return time.UnixMilli(int64(ms)).UTC(), int64(seq), int(off), nil
}

func (f *rankedFeed) Page(ctx context.Context, src Source, req Request) (*Page, error) {
	rs, ok := src.(RankSource)
	if !ok {
		return nil, fmt.Errorf("rank: feed %s needs a RankSource, got %T", f.name, src)
	}
	viewer := ""
	if f.kind == KindFollowingMix {
		if req.Viewer == "" {
			return nil, ErrAuthRequired
		}
		viewer = req.Viewer
	}
	now := f.r.now()
	var e *snapEntry
	offset := 0
	if req.Cursor == "" {
		var err error
		if e, err = f.r.currentSnapshot(ctx, rs, f, viewer, now); err != nil {
			return nil, err
		}
	} else {
		asOf, maxSeq, off, err := DecodeRankCursor(req.Cursor)
		if err != nil {
			return nil, err
		}
		if asOf.After(now.Add(time.Minute)) || asOf.Before(now.Add(-f.r.p.MaxCursorAge)) {
			return nil, ErrInvalidCursor
		}
		e = f.r.snapshot(snapKey{feed: f.name, viewer: viewer, asOf: asOf.UnixMilli(), maxSeq: maxSeq}, now)
		offset = off
	}
	items, err := f.r.wait(ctx, rs, f, e)
	if err != nil {
		return nil, err
	}
	return f.serve(ctx, rs, e.key, items, offset, req.Limit)
}

// serve cuts one page from a snapshot, dropping posts that went away or no longer fit.
func (f *rankedFeed) serve(ctx context.Context, rs RankSource, key snapKey, items []snapItem, offset, limit int) (*Page, error) {
	page := &Page{Items: []Item{}}
	i := min(offset, len(items))
	for i < len(items) && len(page.Items) < limit {
		chunk := items[i:min(len(items), i+limit-len(page.Items)+8)]
		uris := make([]string, len(chunk))
		for k := range chunk {
			uris[k] = chunk[k].URI
		}
		states, err := rs.PostStates(ctx, uris)
		if err != nil {
			return nil, err
		}
		for k := range chunk {
			i++
			it := &chunk[k]
			if st, ok := states[it.URI]; ok && fits(it, st) {
				page.Items = append(page.Items, Item{Post: it.URI, FeedContext: it.Context})
				if len(page.Items) == limit {
					break
				}
			}
		}
	}
	if i < len(items) {
		page.Cursor = EncodeRankCursor(time.UnixMilli(key.asOf), key.maxSeq, i)
	}
	return page, nil
}

// fits reports whether a post still belongs to the class it was ranked in.
func fits(it *snapItem, st index.PostState) bool {
	if !st.Visible || !st.Classified {
		return false
	}
	if it.AI {
		return st.Label == "ai_generated" || st.Label == "ai_assisted"
	}
	return st.AITier >= 2
}

// currentSnapshot returns the feed's shared first-page snapshot, making a new one when
// the current one is older than SnapshotTTL.
func (r *Ranker) currentSnapshot(ctx context.Context, rs RankSource, f *rankedFeed, viewer string, now time.Time) (*snapEntry, error) {
	ck := curKey{f.name, viewer}
	r.mu.Lock()
	if e := r.current[ck]; e != nil && r.p.SnapshotTTL > 0 && now.Sub(e.built) < r.p.SnapshotTTL && !failed(e) {
		e.lastUsed = now
		r.mu.Unlock()
		return e, nil
	}
	r.mu.Unlock()
	maxSeq, err := rs.MaxPostSeq(ctx)
	if err != nil {
		return nil, err
	}
	e := r.snapshot(snapKey{feed: f.name, viewer: viewer, asOf: now.UnixMilli(), maxSeq: maxSeq}, now)
	r.mu.Lock()
	r.current[ck] = e
	r.mu.Unlock()
	return e, nil
}

func failed(e *snapEntry) bool {
	select {
	case <-e.done:
		return e.err != nil
	default:
		return false
	}
}

// snapshot returns the cache entry for key, creating it (not yet built) when missing.
func (r *Ranker) snapshot(key snapKey, now time.Time) *snapEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.snaps[key]; e != nil {
		e.lastUsed = now
		return e
	}
	e := &snapEntry{key: key, built: now, lastUsed: now}
	r.snaps[key] = e
	r.evictLocked(now)
	return e
}

// evictLocked drops idle snapshots, then the least recently used ones over the cap.
func (r *Ranker) evictLocked(now time.Time) {
	for k, e := range r.snaps {
		if now.Sub(e.lastUsed) > r.p.SnapshotIdle {
			r.dropLocked(k, e)
		}
	}
	for len(r.snaps) > r.p.MaxSnapshots {
		var oldest *snapEntry
		for _, e := range r.snaps {
			if oldest == nil || e.lastUsed.Before(oldest.lastUsed) {
				oldest = e
			}
		}
		r.dropLocked(oldest.key, oldest)
	}
}

func (r *Ranker) dropLocked(k snapKey, e *snapEntry) {
	delete(r.snaps, k)
	ck := curKey{k.feed, k.viewer}
	if r.current[ck] == e {
		delete(r.current, ck)
	}
}

// wait builds the entry (the first caller does, others wait for it) and returns its
// items. A failed build is forgotten so the next request tries again.
func (r *Ranker) wait(ctx context.Context, rs RankSource, f *rankedFeed, e *snapEntry) ([]snapItem, error) {
	r.mu.Lock()
	build := e.done == nil
	if build {
		e.done = make(chan struct{})
	}
	done := e.done
	r.mu.Unlock()
	if build {
		var arranged []Entry
		arranged, e.err = r.build(ctx, rs, f.kind, e.key)
		if e.err == nil {
			e.items = compact(arranged)
		}
		if e.err != nil {
			r.mu.Lock()
			if r.snaps[e.key] == e {
				r.dropLocked(e.key, e)
			}
			r.mu.Unlock()
		}
		close(done)
	}
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return e.items, e.err
}

// compact keeps what serving needs, sharing equal contexts.
func compact(es []Entry) []snapItem {
	out := make([]snapItem, len(es))
	contexts := map[string]string{}
	for i, e := range es {
		c, ok := contexts[e.Context]
		if !ok {
			c = e.Context
			contexts[c] = c
		}
		out[i] = snapItem{URI: e.URI, Context: c, AI: e.AI}
	}
	return out
}

// build computes a snapshot: candidates of each class, scored at the time base, then
// arranged by Mix.
func (r *Ranker) build(ctx context.Context, rs RankSource, kind Kind, key snapKey) ([]Entry, error) {
	asOf := time.UnixMilli(key.asOf).UTC()
	minSeq, err := rs.FirstSeqSince(ctx, asOf.Add(-r.p.Window), key.maxSeq)
	if err != nil {
		return nil, err
	}
	list := func(class string) ([]Entry, error) {
		cands, err := rs.RankCandidates(ctx, index.CandidateQuery{Class: class, MinSeq: minSeq, MaxSeq: key.maxSeq, AsOf: asOf, Viewer: key.viewer, Limit: r.p.MaxCandidates})
		if err != nil {
			return nil, err
		}
		out := make([]Entry, 0, len(cands))
		for i := range cands {
			c := &cands[i]
			age := ageHours(c, asOf)
			if age > r.p.Window.Hours() {
				continue // dated (createdAt) before the window: a backfilled old post
			}
			out = append(out, Entry{URI: c.URI, Author: c.Author, Seq: c.Seq, AI: class == index.ClassAI,
				Score: Score(Engagement(c, r.p), age, c.Reply, r.p), Context: FeedContext(c.Label, c.Signals)})
		}
		return out, nil
	}
	var human, ai []Entry
	if kind != KindAI {
		if human, err = list(index.ClassHuman); err != nil {
			return nil, err
		}
	}
	if kind != KindHuman {
		if ai, err = list(index.ClassAI); err != nil {
			return nil, err
		}
	}
	switch kind {
	case KindHuman:
		return Mix(human, nil, 0, r.p), nil
	case KindAI:
		return Mix(nil, ai, 1, r.p), nil
	case KindBalanced, KindFollowingMix:
		return Mix(human, ai, r.p.AIShare, r.p), nil
	}
	return nil, errors.New("rank: unknown feed kind")
}

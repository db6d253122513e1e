package index

import (
	"container/heap"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
)

// The following feed's in-memory index.
//
// A following page is the newest visible posts below a cursor by any of the viewer's
// follows. SQLite answers it either one range per followed author (posts_author_seq,
// then a sort) or down the whole sequence filtered by the follow set; at 1,000,000
// posts both cost 0.4-0.7 ms of CPU per page, most of getFeedSkeleton's. So the index
// keeps, per author, the sequence numbers of their posts in memory (8 bytes a post),
// and per recent viewer the list of those authors (their follow set); a page is then a
// merge of the followed authors' lists below the cursor, and one read of those posts
// by seq (the covering posts_visible_seq index).
//
// The memory is only a guide: the posts are read back from SQLite with hidden = 0, so a
// post deleted or hidden an instant before the memory catches up is never served, and
// the merge goes on below it. Apply updates the memory after its commit, in commit
// order (applyMu), so a post is missing from memory only until its own commit's update,
// and every post that is missing has a sequence above all that are present: a page cut
// below a cursor is never short of a committed post.
type followIndex struct {
	// applyMu orders Apply's commits with their memory updates.
	applyMu sync.Mutex

	mu      sync.RWMutex
	authors map[string]*authorPosts

	// postsGen counts the commits that indexed, deleted, hid or showed posts (the
	// recent feed's first page is kept until it moves; read.go).
	postsGen atomic.Uint64

	// sets caches viewers' follow sets (hashicorp/golang-lru). setMu and gen make an
	// invalidation that races with a load win: a set read from SQLite is cached only if
	// no follow changed while it was read.
	setMu sync.Mutex
	gen   uint64
	sets  *lru.Cache[string, []*authorPosts]
}

// authorPosts is one author's posts in the memory index. Entries are never removed
// (cached follow sets point to them); an author whose account is deleted keeps an empty
// list.
type authorPosts struct {
	// seqs are the author's post sequence numbers, ascending (guarded by followIndex.mu).
	seqs []int64
	// hidden: the account is taken down, suspended or deactivated (all its posts are).
	hidden bool
}

// followSets is how many viewers' follow sets are kept: a set costs 8 bytes per follow.
const followSets = 2048

// memOp is one change to the memory index, recorded by an Apply transaction and
// replayed in order after it commits.
type memOp struct {
	kind   memOpKind
	author string
	seq    int64
	hidden bool
}

type memOpKind int

const (
	memPost     memOpKind = iota // a post inserted (seq), hidden or not
	memDelete                    // a post deleted (seq)
	memHidden                    // the author's posts hidden or shown
	memDrop                      // the author's posts all deleted
	memFollowed                  // the author's follows changed
)

// loadFollowIndex reads every post's (author, seq, hidden) down the covering author
// index. It runs in Open, before anything can write.
func loadFollowIndex(ctx context.Context, ix *Index) (*followIndex, error) {
	sets, err := lru.New[string, []*authorPosts](followSets)
	if err != nil {
		return nil, err
	}
	f := &followIndex{authors: map[string]*authorPosts{}, sets: sets}
	rows, err := ix.db.Read.QueryContext(ctx, `SELECT author, seq, hidden FROM posts INDEXED BY posts_author_seq ORDER BY author, seq`)
	if err != nil {
		return nil, fmt.Errorf("feed index: loading authors' posts: %w", err)
	}
	defer rows.Close()
	var cur *authorPosts
	var curDID string
	for rows.Next() {
		var author sql.RawBytes // valid until the next row: copied only when it changes
		var seq int64
		var hidden bool
		if err := rows.Scan(&author, &seq, &hidden); err != nil {
			return nil, err
		}
		if cur == nil || string(author) != curDID {
			curDID = string(author)
			cur = &authorPosts{}
			f.authors[curDID] = cur
		}
		cur.seqs = append(cur.seqs, seq)
		cur.hidden = cur.hidden || hidden
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("feed index: loading authors' posts: %w", err)
	}
	return f, nil
}

// authorLocked returns did's entry, creating it. f.mu must be held for writing.
func (f *followIndex) authorLocked(did string) *authorPosts {
	a := f.authors[did]
	if a == nil {
		a = &authorPosts{}
		f.authors[did] = a
	}
	return a
}

// apply replays a committed transaction's changes.
func (f *followIndex) apply(ops []memOp) {
	if len(ops) == 0 {
		return
	}
	var viewers []string
	posts := false
	f.mu.Lock()
	for _, op := range ops {
		posts = posts || op.kind != memFollowed
		switch op.kind {
		case memPost:
			a := f.authorLocked(op.author)
			a.hidden = op.hidden
			if i, found := slices.BinarySearch(a.seqs, op.seq); !found {
				a.seqs = slices.Insert(a.seqs, i, op.seq) // at the end but for replays
			}
		case memDelete:
			if a := f.authors[op.author]; a != nil {
				if i, found := slices.BinarySearch(a.seqs, op.seq); found {
					a.seqs = slices.Delete(a.seqs, i, i+1)
				}
			}
		case memHidden:
			f.authorLocked(op.author).hidden = op.hidden
		case memDrop:
			if a := f.authors[op.author]; a != nil {
				a.seqs = nil
			}
		case memFollowed:
			viewers = append(viewers, op.author)
		}
	}
	f.mu.Unlock()
	if posts {
		f.postsGen.Add(1)
	}
	if len(viewers) > 0 {
		f.setMu.Lock()
		f.gen++
		for _, v := range viewers {
			f.sets.Remove(v)
		}
		f.setMu.Unlock()
	}
}

// followSet returns the authors viewer follows, from the cache or SQLite.
func (f *followIndex) followSet(ctx context.Context, ix *Index, viewer string) ([]*authorPosts, error) {
	if s, ok := f.sets.Get(viewer); ok {
		return s, nil
	}
	f.setMu.Lock()
	gen := f.gen
	f.setMu.Unlock()
	lo, hi := RepoRange(viewer, CollectionFollow)
	rows, err := ix.db.Read.QueryContext(ctx, `SELECT DISTINCT subject FROM follows WHERE uri >= ? AND uri < ?`, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("feed index: follows: %w", err)
	}
	defer rows.Close()
	var subjects []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		subjects = append(subjects, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("feed index: follows: %w", err)
	}
	// Most followed authors have posts, hence entries: look them up under the read lock
	// (a writer waits for every page being merged, and blocks the next ones).
	set := make([]*authorPosts, len(subjects))
	missing := false
	f.mu.RLock()
	for i, s := range subjects {
		set[i] = f.authors[s]
		missing = missing || set[i] == nil
	}
	f.mu.RUnlock()
	if missing {
		f.mu.Lock()
		for i, s := range subjects {
			if set[i] == nil {
				set[i] = f.authorLocked(s)
			}
		}
		f.mu.Unlock()
	}
	f.setMu.Lock()
	if f.gen == gen {
		f.sets.Add(viewer, set)
	}
	f.setMu.Unlock()
	return set, nil
}

// next returns up to n sequence numbers below before from the visible authors of set,
// newest first.
func (f *followIndex) next(set []*authorPosts, before int64, n int) []int64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	h := make(seqHeap, 0, len(set))
	for _, a := range set {
		if a.hidden {
			continue
		}
		i := len(a.seqs)
		if i > 0 && a.seqs[i-1] >= before { // a first page needs no search
			i, _ = slices.BinarySearch(a.seqs, before)
		}
		if i > 0 {
			h = append(h, seqHead{a.seqs[i-1], a, i - 1})
		}
	}
	heap.Init(&h)
	out := make([]int64, 0, n)
	for len(out) < n && len(h) > 0 {
		top := &h[0]
		out = append(out, top.seq)
		if top.i == 0 {
			heap.Pop(&h)
			continue
		}
		top.i--
		top.seq = top.a.seqs[top.i]
		heap.Fix(&h, 0)
	}
	return out
}

// seqHead is an author's newest post not yet merged.
type seqHead struct {
	seq int64
	a   *authorPosts
	i   int
}

// seqHeap is a max-heap of authors' heads by seq (container/heap).
type seqHeap []seqHead

func (h seqHeap) Len() int           { return len(h) }
func (h seqHeap) Less(i, j int) bool { return h[i].seq > h[j].seq }
func (h seqHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *seqHeap) Push(x any)        { *h = append(*h, x.(seqHead)) }
func (h *seqHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// visiblePosts reads the visible posts among seqs (descending), newest first.
func (ix *Index) visiblePosts(ctx context.Context, seqs []int64) ([]FeedPost, error) {
	list := make([]byte, 0, 1+len(seqs)*9)
	list = append(list, '[')
	for i, s := range seqs {
		if i > 0 {
			list = append(list, ',')
		}
		list = strconv.AppendInt(list, s, 10)
	}
	list = append(list, ']')
	return ix.feedQuery(ctx, `SELECT seq, author, rkey FROM posts INDEXED BY posts_visible_seq
		WHERE hidden = 0 AND seq IN (SELECT value FROM json_each(?)) ORDER BY seq DESC`, string(list))
}

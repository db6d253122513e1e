// Package rank holds the feed algorithms and their registry.
//
// An Algorithm turns a request (the viewer, a limit, an opaque cursor) into one page of
// post URIs read from the index. Feeds are named by a short name, the record key of
// their app.bsky.feed.generator record; the Registry is the one place that lists them.
//
// Cursors are opaque to clients and stable. The chronological feeds page by the index
// sequence (feedgen/index posts.seq), which only grows, so the next page is "seq below
// the last one shown" no matter how many posts arrived in between. The ranked feeds
// (ranked.go) page through a snapshot pinned by the cursor; their constants are in
// params.go, scoring in score.go and the interleave, diversity decay and author cap in
// mix.go.
package rank

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/hearth-social/hearth/feedgen/index"
)

// Errors returned by algorithms; the server maps them to XRPC errors.
var (
	// ErrInvalidCursor: the cursor was not produced by this feed generator.
	ErrInvalidCursor = errors.New("invalid cursor")
	// ErrAuthRequired: the feed is personalised and the request carried no viewer.
	ErrAuthRequired = errors.New("this feed needs an authenticated viewer")
)

// Source is what algorithms read. *index.Index implements it.
type Source interface {
	RecentPosts(ctx context.Context, before int64, limit int) ([]index.FeedPost, error)
	FollowingPosts(ctx context.Context, viewer string, before int64, limit int) ([]index.FeedPost, error)
}

var _ Source = (*index.Index)(nil)

// Request is one getFeedSkeleton call after validation.
type Request struct {
	// Viewer is the requester's DID, verified from their service-auth token; "" when the
	// request was anonymous.
	Viewer string
	// Limit is 1..100.
	Limit int
	// Cursor is the opaque cursor from the previous page ("" for the first).
	Cursor string
}

// Item is one skeleton entry.
type Item struct {
	Post string
	// Reason, when set, is a skeleton reason object (e.g. a repost).
	Reason any
	// FeedContext is passed back to the feed generator with interactions.
	FeedContext string
}

// Page is one page of a feed. Cursor is "" on the last page.
type Page struct {
	Items  []Item
	Cursor string
}

// Algorithm is one feed.
type Algorithm interface {
	// Name is the feed's short name (its generator record key).
	Name() string
	// NeedsViewer reports whether the feed is personalised (requires auth).
	NeedsViewer() bool
	Page(ctx context.Context, src Source, req Request) (*Page, error)
}

// Registry maps short names to algorithms.
type Registry struct {
	byName map[string]Algorithm
	names  []string
}

// NewRegistry builds a registry; names must be unique valid record keys.
func NewRegistry(algos ...Algorithm) (*Registry, error) {
	r := &Registry{byName: make(map[string]Algorithm)}
	for _, a := range algos {
		if _, dup := r.byName[a.Name()]; dup {
			return nil, fmt.Errorf("feed %q registered twice", a.Name())
		}
		r.byName[a.Name()] = a
		r.names = append(r.names, a.Name())
	}
	return r, nil
}

// Default is the registry of the feeds Hearth ships, with the default ranking
// parameters.
func Default() *Registry { return DefaultWith(NewRanker(DefaultParams(), nil)) }

// Names of the ranked feeds.
const (
	FeedHuman        = "human"
	FeedAI           = "ai"
	FeedBalanced     = "balanced"
	FeedFollowingMix = "following-mix"
)

// DefaultWith is the registry of the feeds Hearth ships, ranked by rk: the
// chronological recent and following feeds, and the ranked human ("No known AI"), ai,
// balanced and following-mix feeds (see ranked.go).
func DefaultWith(rk *Ranker) *Registry {
	r, err := NewRegistry(Recent{}, Following{},
		rk.Feed(FeedHuman, KindHuman), rk.Feed(FeedAI, KindAI), rk.Feed(FeedBalanced, KindBalanced), rk.Feed(FeedFollowingMix, KindFollowingMix))
	if err != nil {
		panic(err) // a programming error in the list above
	}
	return r
}

// Get returns the algorithm for a short name.
func (r *Registry) Get(name string) (Algorithm, bool) {
	a, ok := r.byName[name]
	return a, ok
}

// Names lists the short names in registration order.
func (r *Registry) Names() []string { return slices.Clone(r.names) }

// cursorVersion is the first byte of every cursor, so the format can change later.
const cursorVersion = 1

// EncodeCursor makes the opaque cursor for "posts below seq".
func EncodeCursor(seq int64) string {
	var b [9]byte
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:], uint64(seq))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// DecodeCursor parses a cursor; "" means the first page (index.NoCursor).
func DecodeCursor(s string) (int64, error) {
	if s == "" {
		return index.NoCursor, nil
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != 9 || b[0] != cursorVersion {
		return 0, ErrInvalidCursor
	}
	seq := binary.BigEndian.Uint64(b[1:])
	if seq == 0 || seq > uint64(index.NoCursor) {
		return 0, ErrInvalidCursor
	}
	return int64(seq), nil
}

// pageOf turns index rows into a page; a full page gets a cursor after its last item.
func pageOf(posts []index.FeedPost, limit int) *Page {
	p := &Page{Items: make([]Item, len(posts))}
	for i, fp := range posts {
		p.Items[i] = Item{Post: fp.URI}
	}
	if len(posts) == limit && limit > 0 {
		p.Cursor = EncodeCursor(posts[len(posts)-1].Seq)
	}
	return p
}

// Recent is every visible post, newest first.
type Recent struct{}

func (Recent) Name() string      { return "recent" }
func (Recent) NeedsViewer() bool { return false }

func (Recent) Page(ctx context.Context, src Source, req Request) (*Page, error) {
	before, err := DecodeCursor(req.Cursor)
	if err != nil {
		return nil, err
	}
	posts, err := src.RecentPosts(ctx, before, req.Limit)
	if err != nil {
		return nil, err
	}
	return pageOf(posts, req.Limit), nil
}

// Following is the posts of the accounts the viewer follows, newest first.
type Following struct{}

func (Following) Name() string      { return "following" }
func (Following) NeedsViewer() bool { return true }

func (Following) Page(ctx context.Context, src Source, req Request) (*Page, error) {
	if req.Viewer == "" {
		return nil, ErrAuthRequired
	}
	before, err := DecodeCursor(req.Cursor)
	if err != nil {
		return nil, err
	}
	posts, err := src.FollowingPosts(ctx, req.Viewer, before, req.Limit)
	if err != nil {
		return nil, err
	}
	return pageOf(posts, req.Limit), nil
}

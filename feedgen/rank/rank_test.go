package rank

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/hearth-social/hearth/feedgen/index"
	"github.com/stretchr/testify/require"
)

func TestCursor(t *testing.T) {
	for _, seq := range []int64{1, 2, 255, 1 << 40, math.MaxInt64} {
		c := EncodeCursor(seq)
		got, err := DecodeCursor(c)
		require.NoError(t, err)
		require.Equal(t, seq, got)
	}
	first, err := DecodeCursor("")
	require.NoError(t, err)
	require.EqualValues(t, index.NoCursor, first)
	for _, bad := range []string{
		"x", "not base64!", EncodeCursor(5) + "A", EncodeCursor(5)[:5],
		"AgAAAAAAAAAF",     // version 2
		"AQAAAAAAAAAA",     // seq 0
		"AYAAAAAAAAAA",     // seq above MaxInt64
		"AQAAAAAAAAAF====", // padding
		"1700000000000::bafy",
	} {
		_, err := DecodeCursor(bad)
		require.ErrorIs(t, err, ErrInvalidCursor, bad)
	}
}

func TestRegistry(t *testing.T) {
	r := Default()
	require.Equal(t, []string{"recent", "following", "human", "ai", "balanced", "following-mix"}, r.Names())
	a, ok := r.Get("following")
	require.True(t, ok)
	require.True(t, a.NeedsViewer())
	_, ok = r.Get("nope")
	require.False(t, ok)
	_, err := NewRegistry(Recent{}, Recent{})
	require.Error(t, err)
}

// memSource is an in-memory Source: posts by seq, plus a follow set.
type memSource struct {
	posts   []index.FeedPost // ascending seq
	authors map[string]string
	follows map[string]map[string]bool
}

func (m *memSource) add(author string) {
	seq := int64(len(m.posts) + 1)
	uri := fmt.Sprintf("at://%s/app.bsky.feed.post/%d", author, seq)
	m.posts = append(m.posts, index.FeedPost{Seq: seq, URI: uri})
	m.authors[uri] = author
}

func (m *memSource) query(before int64, limit int, keep func(string) bool) []index.FeedPost {
	out := []index.FeedPost{}
	for i := len(m.posts) - 1; i >= 0 && len(out) < limit; i-- {
		if p := m.posts[i]; p.Seq < before && keep(p.URI) {
			out = append(out, p)
		}
	}
	return out
}

func (m *memSource) RecentPosts(_ context.Context, before int64, limit int) ([]index.FeedPost, error) {
	return m.query(before, limit, func(string) bool { return true }), nil
}

func (m *memSource) FollowingPosts(_ context.Context, viewer string, before int64, limit int) ([]index.FeedPost, error) {
	return m.query(before, limit, func(uri string) bool { return m.follows[viewer][m.authors[uri]] }), nil
}

func TestPagingWhilePostsArrive(t *testing.T) {
	ctx := context.Background()
	src := &memSource{authors: map[string]string{}, follows: map[string]map[string]bool{"did:plc:v": {"did:plc:a": true}}}
	for i := range 25 {
		src.add([]string{"did:plc:a", "did:plc:b"}[i%2])
	}
	for _, tc := range []struct {
		algo   Algorithm
		viewer string
		want   int
	}{{Recent{}, "", 25}, {Following{}, "did:plc:v", 13}} {
		t.Run(tc.algo.Name(), func(t *testing.T) {
			seen := map[string]bool{}
			cursor := ""
			for page := 0; ; page++ {
				p, err := tc.algo.Page(ctx, src, Request{Viewer: tc.viewer, Limit: 4, Cursor: cursor})
				require.NoError(t, err)
				for _, it := range p.Items {
					require.False(t, seen[it.Post], "page %d repeats %s", page, it.Post)
					seen[it.Post] = true
				}
				// New posts arrive between pages; they belong above page 1.
				src.add("did:plc:a")
				src.add("did:plc:b")
				if p.Cursor == "" {
					break
				}
				cursor = p.Cursor
			}
			require.Len(t, seen, tc.want, "every post that existed at page 1 was shown once")
		})
		// Reset the extra posts so the second case sees the same 25 originals.
		src.posts = src.posts[:25]
	}
}

func TestFollowingNeedsViewer(t *testing.T) {
	_, err := Following{}.Page(context.Background(), &memSource{}, Request{Limit: 10})
	require.ErrorIs(t, err, ErrAuthRequired)
	_, err = Recent{}.Page(context.Background(), &memSource{}, Request{Limit: 10, Cursor: "garbage"})
	require.ErrorIs(t, err, ErrInvalidCursor)
}

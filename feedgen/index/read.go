package index

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// ErrNotFound is returned by lookups of rows that are not indexed.
var ErrNotFound = errors.New("not found in the feed index")

// FeedPost is one post in a feed page: its index sequence (the paging key) and URI.
type FeedPost struct {
	Seq int64
	URI string
}

// NoCursor is the "before" value of a first page.
const NoCursor = math.MaxInt64

// RecentPosts returns visible posts with seq < before, newest first.
//
// The first page is the same for every requester until a commit indexes, deletes, hides
// or shows a post, so it is kept with the count of such commits it was read after
// (followIndex.postsGen, bumped once the commit is in memory) and served again while
// that count stands.
func (ix *Index) RecentPosts(ctx context.Context, before int64, limit int) ([]FeedPost, error) {
	var gen uint64
	if before == NoCursor {
		gen = ix.follow.postsGen.Load()
		if p := ix.recentFirst.Load(); p != nil && p.gen == gen && p.limit == limit {
			return slices.Clone(p.posts), nil
		}
	}
	posts, err := ix.feedQuery(ctx, `SELECT seq, author, rkey FROM posts INDEXED BY posts_visible_seq WHERE hidden = 0 AND seq < ? ORDER BY seq DESC LIMIT ?`, before, limit)
	if err == nil && before == NoCursor {
		ix.recentFirst.Store(&recentPage{gen: gen, limit: limit, posts: slices.Clone(posts)})
	}
	return posts, err
}

// recentPage is a kept first page of RecentPosts.
type recentPage struct {
	gen   uint64
	limit int
	posts []FeedPost
}

// FollowingPosts returns visible posts with seq < before by accounts viewer follows,
// newest first. The candidates come from the memory index (following.go), and are read
// back from the posts table, which drops any deleted or hidden since.
func (ix *Index) FollowingPosts(ctx context.Context, viewer string, before int64, limit int) ([]FeedPost, error) {
	set, err := ix.follow.followSet(ctx, ix, viewer)
	if err != nil {
		return nil, err
	}
	out := []FeedPost{}
	for len(out) < limit {
		seqs := ix.follow.next(set, before, limit-len(out))
		if len(seqs) == 0 {
			break
		}
		page, err := ix.visiblePosts(ctx, seqs)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		before = seqs[len(seqs)-1]
	}
	return out, nil
}

// feedQuery runs a query of (seq, author, rkey) rows of posts.
func (ix *Index) feedQuery(ctx context.Context, q string, args ...any) ([]FeedPost, error) {
	return scanFeed(ix.db.Read.QueryContext(ctx, q, args...))
}

func scanFeed(rows *sql.Rows, err error) ([]FeedPost, error) {
	if err != nil {
		return nil, fmt.Errorf("feed index: %w", err)
	}
	defer rows.Close()
	out := []FeedPost{}
	for rows.Next() {
		var p FeedPost
		var author, rkey string
		if err := rows.Scan(&p.Seq, &author, &rkey); err != nil {
			return nil, err
		}
		p.URI = "at://" + author + "/" + CollectionPost + "/" + rkey
		out = append(out, p)
	}
	return out, rows.Err()
}

// PostInfo is an indexed post with its counts.
type PostInfo struct {
	Seq         int64
	URI         string
	CID         string
	Author      string
	Text        string
	Langs       []string
	Tags        []string
	CreatedAt   string
	IndexedAt   string
	ReplyRoot   string
	ReplyParent string
	Images      []Image
	Labels      []string
	Hidden      bool
	LikeCount   int64
	RepostCount int64
	ReplyCount  int64
}

// Post returns an indexed post, or ErrNotFound.
func (ix *Index) Post(ctx context.Context, uri string) (*PostInfo, error) {
	var p PostInfo
	var langs, tags, images, labels string
	var root, parent sql.NullString
	err := ix.db.Read.QueryRowContext(ctx, `SELECT seq, uri, cid, author, text, langs, tags, created_at, indexed_at, reply_root, reply_parent,
		images, labels, hidden, like_count, repost_count, reply_count FROM posts WHERE uri = ?`, uri).Scan(
		&p.Seq, &p.URI, &p.CID, &p.Author, &p.Text, &langs, &tags, &p.CreatedAt, &p.IndexedAt, &root, &parent,
		&images, &labels, &p.Hidden, &p.LikeCount, &p.RepostCount, &p.ReplyCount)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("post %s: %w", uri, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	p.ReplyRoot, p.ReplyParent = root.String, parent.String
	for _, f := range []struct {
		raw string
		dst any
	}{{langs, &p.Langs}, {tags, &p.Tags}, {images, &p.Images}, {labels, &p.Labels}} {
		if err := json.Unmarshal([]byte(f.raw), f.dst); err != nil {
			return nil, fmt.Errorf("post %s: decoding column: %w", uri, err)
		}
	}
	return &p, nil
}

// AccountInfo is an account's row.
type AccountInfo struct {
	DID    string
	Handle string
	Active bool
	Status string
	Rev    string
}

// Account returns an account's row, or ErrNotFound.
func (ix *Index) Account(ctx context.Context, did string) (*AccountInfo, error) {
	a := AccountInfo{DID: did}
	err := ix.db.Read.QueryRowContext(ctx, `SELECT handle, active, status, rev FROM accounts WHERE did = ?`, did).Scan(&a.Handle, &a.Active, &a.Status, &a.Rev)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("account %s: %w", did, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// ProfileInfo is an indexed profile.
type ProfileInfo struct {
	DID         string
	DisplayName string
	Description string
	Avatar      string
	Labels      []string
}

// Profile returns an account's profile, or ErrNotFound.
func (ix *Index) Profile(ctx context.Context, did string) (*ProfileInfo, error) {
	p := ProfileInfo{DID: did}
	var labels string
	err := ix.db.Read.QueryRowContext(ctx, `SELECT display_name, description, avatar, labels FROM profiles WHERE did = ?`, did).Scan(&p.DisplayName, &p.Description, &p.Avatar, &labels)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("profile %s: %w", did, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(labels), &p.Labels); err != nil {
		return nil, err
	}
	return &p, nil
}

// Counts is the number of rows per table.
type Counts struct {
	Posts, Likes, Reposts, Follows, Profiles, Accounts, Classifications int64
}

// Count counts the rows of every table (tests and `hearth feed` diagnostics).
func (ix *Index) Count(ctx context.Context) (Counts, error) {
	var c Counts
	err := ix.db.Read.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM posts), (SELECT count(*) FROM likes), (SELECT count(*) FROM reposts), (SELECT count(*) FROM follows),
		(SELECT count(*) FROM profiles), (SELECT count(*) FROM accounts), (SELECT count(*) FROM classifications)`).Scan(
		&c.Posts, &c.Likes, &c.Reposts, &c.Follows, &c.Profiles, &c.Accounts, &c.Classifications)
	return c, err
}

// IsFollowing reports whether viewer follows subject.
func (ix *Index) IsFollowing(ctx context.Context, viewer, subject string) (bool, error) {
	var n int
	lo, hi := RepoRange(viewer, CollectionFollow)
	err := ix.db.Read.QueryRowContext(ctx, `SELECT count(*) FROM follows WHERE uri >= ? AND uri < ? AND subject = ?`, lo, hi, subject).Scan(&n)
	return n > 0, err
}

// PostLangs returns the declared languages of the given posts (absent posts and posts
// without langs are left out).
func (ix *Index) PostLangs(ctx context.Context, uris []string) (map[string][]string, error) {
	out := map[string][]string{}
	if len(uris) == 0 {
		return out, nil
	}
	args := make([]any, len(uris))
	for i, u := range uris {
		args[i] = u
	}
	rows, err := ix.db.Read.QueryContext(ctx, `SELECT uri, langs FROM posts WHERE uri IN (?`+strings.Repeat(",?", len(uris)-1)+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var uri string
		var raw sql.NullString
		if err := rows.Scan(&uri, &raw); err != nil {
			return nil, err
		}
		var langs []string
		if raw.Valid && raw.String != "" {
			if err := json.Unmarshal([]byte(raw.String), &langs); err != nil {
				continue
			}
		}
		if len(langs) > 0 {
			out[uri] = langs
		}
	}
	return out, rows.Err()
}

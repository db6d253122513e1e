package index

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Interaction events (app.bsky.feed.defs tokens) this index acts on.
const (
	InteractionRequestLess = "app.bsky.feed.defs#requestLess"
	InteractionRequestMore = "app.bsky.feed.defs#requestMore"
)

// Interaction is one app.bsky.feed.sendInteractions entry.
type Interaction struct {
	Item, Event, FeedContext, ReqID string
}

// lessWindow is how long a "see less" keeps an author out of a requester's feeds.
const lessWindow = 30 * 24 * time.Hour

// PutInteractions stores a requester's interactions. A "see more" of an author undoes
// earlier "see less" of them.
func (ix *Index) PutInteractions(ctx context.Context, viewer string, items []Interaction, now time.Time) error {
	tx, err := ix.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	at := now.UTC().Format(time.RFC3339Nano)
	for _, it := range items {
		author := AuthorOf(it.Item)
		if it.Event == InteractionRequestMore && author != "" {
			if _, err := tx.ExecContext(ctx, `DELETE FROM interactions WHERE viewer = ? AND author = ? AND event = ?`, viewer, author, InteractionRequestLess); err != nil {
				return fmt.Errorf("interactions: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO interactions (viewer, item, author, event, feed_context, req_id, at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			viewer, it.Item, author, it.Event, it.FeedContext, it.ReqID, at); err != nil {
			return fmt.Errorf("interactions: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	for _, it := range items {
		if it.Event == InteractionRequestLess {
			ix.lessViewers.Store(viewer, true)
			break
		}
	}
	return nil
}

// loadLessViewers notes the viewers who ever asked to see less (Open), so that SeeLess
// asks SQLite only about them: it runs for every authenticated feed page, and most
// requesters never send a "see less".
func (ix *Index) loadLessViewers(ctx context.Context) error {
	rows, err := ix.db.Read.QueryContext(ctx, `SELECT DISTINCT viewer FROM interactions WHERE event = ?`, InteractionRequestLess)
	if err != nil {
		return fmt.Errorf("feed index: interactions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return err
		}
		ix.lessViewers.Store(v, true)
	}
	return rows.Err()
}

// AskedSeeLess reports whether viewer ever asked to see less here (so SeeLess may
// return authors for them): without that, no page depends on who the viewer is except
// the personalised feeds'.
func (ix *Index) AskedSeeLess(viewer string) bool {
	_, ok := ix.lessViewers.Load(viewer)
	return ok
}

// SeeLess returns the authors viewer asked to see less of within the last 30 days.
func (ix *Index) SeeLess(ctx context.Context, viewer string, now time.Time) (map[string]bool, error) {
	if _, ok := ix.lessViewers.Load(viewer); !ok {
		return map[string]bool{}, nil
	}
	rows, err := ix.db.Read.QueryContext(ctx, `SELECT DISTINCT author FROM interactions WHERE viewer = ? AND event = ? AND at >= ? AND author != ''`,
		viewer, InteractionRequestLess, now.Add(-lessWindow).UTC().Format(time.RFC3339Nano))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, err
		}
		out[a] = true
	}
	return out, rows.Err()
}

// AuthorOf is the DID an at://DID/... URI names ("" otherwise), read without a full
// AT-URI parse (that costs regexps, and runs for every item of every feed page).
func AuthorOf(uri string) string {
	rest, ok := strings.CutPrefix(uri, "at://")
	if !ok {
		return ""
	}
	did, _, _ := strings.Cut(rest, "/")
	if !strings.HasPrefix(did, "did:") {
		return ""
	}
	return did
}

package index

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Classification state: the worker's queue (rows with classified_at NULL), verdicts, the
// per-blob evidence cache and the labeler outbox. See migrations/002_classify.sql.

// notifier is a broadcast: every waiter's channel is closed by the next broadcast. The
// zero value is ready to use.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
}

// Changed returns a channel that is closed when the next Apply commits: the
// classification worker waits on it instead of polling tightly.
func (ix *Index) Changed() <-chan struct{} { return ix.changes.wait() }

// PendingClassifications returns the seqs of visible posts that have no verdict yet,
// newest first (a backlog after a restart serves fresh posts first).
func (ix *Index) PendingClassifications(ctx context.Context, limit int) ([]int64, error) {
	// Down the partial index of pending rows, then each post by its key (CROSS JOIN fixes
	// that order): left to itself the planner walks every visible post through the
	// covering feed index, which grows with the index and ran after every write.
	rows, err := ix.db.Read.QueryContext(ctx, `SELECT c.post_seq FROM classifications c INDEXED BY classifications_pending
		CROSS JOIN posts p ON p.seq = c.post_seq
		WHERE c.classified_at IS NULL AND p.hidden = 0 ORDER BY c.post_seq DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("feed index: pending classifications: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return nil, err
		}
		out = append(out, seq)
	}
	return out, rows.Err()
}

// PostBySeq returns an indexed post by its sequence number, or ErrNotFound.
func (ix *Index) PostBySeq(ctx context.Context, seq int64) (*PostInfo, error) {
	var uri string
	err := ix.db.Read.QueryRowContext(ctx, `SELECT uri FROM posts WHERE seq = ?`, seq).Scan(&uri)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("post seq %d: %w", seq, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return ix.Post(ctx, uri)
}

// CachedMedia returns the evidence JSON stored for a blob CID by PutMedia.
func (ix *Index) CachedMedia(ctx context.Context, cid, version string) (evidence []byte, ok bool, err error) {
	err = ix.db.Read.QueryRowContext(ctx, `SELECT evidence FROM media_evidence WHERE cid = ? AND version = ?`, cid, version).Scan(&evidence)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("feed index: media evidence: %w", err)
	}
	return evidence, true, nil
}

// PutMedia stores the evidence (JSON) found in a blob.
func (ix *Index) PutMedia(ctx context.Context, cid string, size int64, evidence []byte, version string) error {
	_, err := ix.db.Write.ExecContext(ctx, `INSERT INTO media_evidence (cid, size, evidence, version, fetched_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (cid) DO UPDATE SET size = excluded.size, evidence = excluded.evidence, version = excluded.version, fetched_at = excluded.fetched_at`,
		cid, size, string(evidence), version, ix.now().UTC().Format(timeLayout))
	if err != nil {
		return fmt.Errorf("feed index: store media evidence: %w", err)
	}
	return nil
}

// Verdict is what the classification worker stores for one post version.
type Verdict struct {
	Seq        int64
	PostCID    string // the post version that was classified
	Label      string
	Confidence float64
	AIScore    float64
	// AITier is the lowest tier of positive AI evidence (3 when there is none).
	AITier int
	// Evidence is the JSON array of all evidence.
	Evidence []byte
	// Signals are the top evidence signals, comma separated (the feedContext).
	Signals string
	// LabelVals are the labeler values the verdict asks for (tier-0 evidence only).
	LabelVals []string
	Version   string
}

// NoAITier is Verdict.AITier when there is no AI evidence.
const NoAITier = 3

// StoreVerdict writes a verdict if the post is still at v.PostCID (an edit that raced
// with the classification wins: the post stays pending). When the verdict asks for
// labels, or the post carries labels, the post is queued for the labeler in the same
// transaction. stored is false when the post is gone or was edited.
func (ix *Index) StoreVerdict(ctx context.Context, v Verdict) (stored bool, err error) {
	tx, err := ix.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var uri string
	err = tx.QueryRowContext(ctx, `SELECT uri FROM posts WHERE seq = ? AND cid = ?`, v.Seq, v.PostCID).Scan(&uri)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	vals := jsonList(v.LabelVals)
	if _, err := tx.ExecContext(ctx, `UPDATE classifications SET label = ?, confidence = ?, evidence = ?, classified_at = ?,
		post_cid = ?, ai_score = ?, ai_tier = ?, signals = ?, label_vals = ?, version = ? WHERE post_seq = ?`,
		v.Label, v.Confidence, string(v.Evidence), ix.now().UTC().Format(timeLayout),
		v.PostCID, v.AIScore, v.AITier, v.Signals, vals, v.Version, v.Seq); err != nil {
		return false, err
	}
	if len(v.LabelVals) > 0 {
		err = enqueueLabels(ctx, tx, uri)
	} else {
		_, err = tx.ExecContext(ctx, `INSERT INTO label_outbox (uri) SELECT uri FROM labeled_posts WHERE uri = ?
			ON CONFLICT (uri) DO UPDATE SET gen = gen + 1`, uri)
	}
	if err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, err
	}
	return true, nil
}

func enqueueLabels(ctx context.Context, tx *sql.Tx, uri string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO label_outbox (uri) VALUES (?) ON CONFLICT (uri) DO UPDATE SET gen = gen + 1`, uri)
	return err
}

// ClassificationInfo is a post's stored verdict (for explainPost).
type ClassificationInfo struct {
	Seq     int64
	URI     string
	PostCID string // the post's current version
	// Classified is false while the post waits for the worker; the other fields then
	// hold the 'unknown' defaults.
	Classified   bool
	ClassifiedAt string
	// ClassifiedCID is the post version the verdict is about.
	ClassifiedCID string
	Label         string
	Confidence    float64
	AIScore       float64
	AITier        int
	Evidence      json.RawMessage
	Signals       string
	LabelVals     []string
	Version       string
}

// Classification returns the stored verdict of a post, or ErrNotFound.
func (ix *Index) Classification(ctx context.Context, uri string) (*ClassificationInfo, error) {
	var c ClassificationInfo
	var at sql.NullString
	var evidence, vals string
	err := ix.db.Read.QueryRowContext(ctx, `SELECT p.seq, p.uri, p.cid, c.classified_at, c.post_cid, c.label, c.confidence, c.ai_score, c.ai_tier,
		c.evidence, c.signals, c.label_vals, c.version FROM posts p JOIN classifications c ON c.post_seq = p.seq WHERE p.uri = ?`, uri).Scan(
		&c.Seq, &c.URI, &c.PostCID, &at, &c.ClassifiedCID, &c.Label, &c.Confidence, &c.AIScore, &c.AITier, &evidence, &c.Signals, &vals, &c.Version)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("post %s: %w", uri, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	c.Classified, c.ClassifiedAt = at.Valid, at.String
	c.Evidence = json.RawMessage(evidence)
	if err := json.Unmarshal([]byte(vals), &c.LabelVals); err != nil {
		return nil, fmt.Errorf("post %s: label values: %w", uri, err)
	}
	return &c, nil
}

// LabelTask is one labeler outbox entry with the labels its subject should carry now.
type LabelTask struct {
	URI string
	Gen int64
	// CID and Vals are the post version and values to assert; Vals is empty when the
	// post is gone, hidden, or waiting for a verdict (its labels are retracted).
	CID  string
	Vals []string
	// HadCID is the version the labels currently asserted are on ("" when none).
	HadCID string
	// DeniesTraining is set for an account subject (URI a DID) whose declarations deny
	// AI training; the worker turns it into the account label when the operator asked.
	DeniesTraining bool
}

// LabelOutbox returns up to limit subjects whose labels must be re-applied.
func (ix *Index) LabelOutbox(ctx context.Context, limit int) ([]LabelTask, error) {
	rows, err := ix.db.Read.QueryContext(ctx, `SELECT o.uri, o.gen, p.cid, p.hidden, c.classified_at IS NOT NULL, c.label_vals, l.cid
		FROM label_outbox o LEFT JOIN posts p ON p.uri = o.uri LEFT JOIN classifications c ON c.post_seq = p.seq
		LEFT JOIN labeled_posts l ON l.uri = o.uri LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("feed index: label outbox: %w", err)
	}
	defer rows.Close()
	var out []LabelTask
	for rows.Next() {
		var t LabelTask
		var cid, vals, had sql.NullString
		var hidden, classified sql.NullBool
		if err := rows.Scan(&t.URI, &t.Gen, &cid, &hidden, &classified, &vals, &had); err != nil {
			return nil, err
		}
		t.HadCID = had.String
		if cid.Valid && !hidden.Bool && classified.Bool && vals.String != "" {
			if err := json.Unmarshal([]byte(vals.String), &t.Vals); err != nil {
				return nil, err
			}
			if len(t.Vals) > 0 {
				t.CID = cid.String
			} else {
				t.Vals = nil
			}
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	// Account subjects (a DID, not a post URI): their label comes from declarations.
	for i := range out {
		if strings.HasPrefix(out[i].URI, "did:") {
			if out[i].DeniesTraining, err = deniesTraining(ctx, ix.db.Read, out[i].URI); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// LabelDone records that the labeler now asserts t.Vals on t.URI at t.CID and drops the
// outbox entry unless it was re-queued since it was read.
func (ix *Index) LabelDone(ctx context.Context, t LabelTask) error {
	tx, err := ix.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if len(t.Vals) == 0 {
		_, err = tx.ExecContext(ctx, `DELETE FROM labeled_posts WHERE uri = ?`, t.URI)
	} else {
		vals := append([]string(nil), t.Vals...)
		sort.Strings(vals)
		_, err = tx.ExecContext(ctx, `INSERT INTO labeled_posts (uri, cid, vals) VALUES (?, ?, ?)
			ON CONFLICT (uri) DO UPDATE SET cid = excluded.cid, vals = excluded.vals`, t.URI, t.CID, jsonList(vals))
	}
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM label_outbox WHERE uri = ? AND gen = ?`, t.URI, t.Gen); err != nil {
		return err
	}
	return tx.Commit()
}

// MaxPostSeq is the largest post seq in the index (0 when empty).
func (ix *Index) MaxPostSeq(ctx context.Context) (int64, error) {
	var seq sql.NullInt64
	if err := ix.db.Read.QueryRowContext(ctx, `SELECT max(seq) FROM posts`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("feed index: max seq: %w", err)
	}
	return seq.Int64, nil
}

// FirstSeqSince returns the smallest post seq (≤ maxSeq) first indexed at or after t, or
// maxSeq+1 when there is none. indexed_at grows with seq (both are set when a post is
// first stored), so a binary search over the sequence finds it in a few row lookups.
func (ix *Index) FirstSeqSince(ctx context.Context, t time.Time, maxSeq int64) (int64, error) {
	since := t.UTC().Format(timeLayout)
	at := func(seq int64) (int64, string, bool, error) {
		var s int64
		var ts string
		err := ix.db.Read.QueryRowContext(ctx, `SELECT seq, indexed_at FROM posts WHERE seq >= ? ORDER BY seq LIMIT 1`, seq).Scan(&s, &ts)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, "", false, nil
		}
		return s, ts, err == nil, err
	}
	lo, hi := int64(1), maxSeq+1 // invariant: every post below lo is older than t; the answer is ≤ hi
	for lo < hi {
		mid := lo + (hi-lo)/2
		s, ts, ok, err := at(mid)
		if err != nil {
			return 0, fmt.Errorf("feed index: window start: %w", err)
		}
		switch {
		case !ok || s > maxSeq:
			hi = mid
		case ts >= since:
			hi = min(mid, s)
		default:
			lo = s + 1
		}
	}
	return lo, nil
}

// Candidate classes for RankCandidates.
const (
	// ClassHuman: "no known AI": classified, and no AI evidence above the heuristic tier.
	ClassHuman = "human"
	// ClassAI: classified ai_generated or ai_assisted.
	ClassAI = "ai"
)

// CandidateQuery selects the posts a ranked feed is built from. Everything that moves
// with time is pinned to AsOf and MaxSeq, so the same query later returns the same rows
// (apart from deletions and unlikes).
type CandidateQuery struct {
	Class  string // ClassHuman or ClassAI
	MinSeq int64  // window start (FirstSeqSince)
	MaxSeq int64  // newest post of the snapshot
	AsOf   time.Time
	// Viewer, when set, keeps posts by accounts the viewer follows.
	Viewer string
	Limit  int
}

// Candidate is one post with the counts its score needs.
type Candidate struct {
	Seq       int64
	URI       string
	Author    string
	CreatedAt string
	IndexedAt string
	Reply     bool
	Label     string
	AITier    int
	Signals   string
	// Engagement counted as of the query's AsOf (strictly before it, so rows written in
	// the millisecond of AsOf, possibly after the snapshot was built, never count); Bot*
	// are the parts from accounts whose
	// profile carries the "bot" self-label.
	Likes, BotLikes, Reposts, BotReposts, Replies, BotReplies int64
}

// isBot is an SQL predicate on an author column: the profile self-labels "bot".
func isBot(col string) string {
	return `EXISTS (SELECT 1 FROM profiles pr, json_each(pr.labels) j WHERE pr.did = ` + col + ` AND j.value = 'bot')`
}

// RankCandidates returns the newest posts of a class in [MinSeq, MaxSeq] with their
// engagement, newest first.
func (ix *Index) RankCandidates(ctx context.Context, q CandidateQuery) ([]Candidate, error) {
	var class string
	switch q.Class {
	case ClassHuman:
		class = `c.ai_tier >= 2`
	case ClassAI:
		class = `c.label IN ('ai_generated', 'ai_assisted')`
	default:
		return nil, fmt.Errorf("feed index: unknown candidate class %q", q.Class)
	}
	asOf := q.AsOf.UTC().Format(timeLayout)
	args := []any{asOf, q.MaxSeq, q.MinSeq}
	follows := ""
	if q.Viewer != "" {
		lo, hi := RepoRange(q.Viewer, CollectionFollow)
		follows = `AND p.author IN (SELECT subject FROM follows WHERE uri >= ?4 AND uri < ?5)`
		args = append(args, lo, hi)
	} else {
		args = append(args, nil, nil)
	}
	args = append(args, q.Limit)
	query := `SELECT p.seq, p.uri, p.author, p.created_at, p.indexed_at, p.reply_parent IS NOT NULL, c.label, c.ai_tier, c.signals,
		(SELECT count(*) FROM likes l WHERE l.subject = p.uri AND l.indexed_at < ?1),
		(SELECT count(*) FROM likes l WHERE l.subject = p.uri AND l.indexed_at < ?1 AND ` + isBot("l.author") + `),
		(SELECT count(*) FROM reposts r WHERE r.subject = p.uri AND r.indexed_at < ?1),
		(SELECT count(*) FROM reposts r WHERE r.subject = p.uri AND r.indexed_at < ?1 AND ` + isBot("r.author") + `),
		(SELECT count(*) FROM posts x WHERE x.reply_parent = p.uri AND x.seq <= ?2 AND x.hidden = 0),
		(SELECT count(*) FROM posts x WHERE x.reply_parent = p.uri AND x.seq <= ?2 AND x.hidden = 0 AND ` + isBot("x.author") + `)
		FROM posts p JOIN classifications c ON c.post_seq = p.seq
		WHERE p.seq <= ?2 AND p.seq >= ?3 AND p.hidden = 0 AND c.classified_at IS NOT NULL AND c.classified_at < ?1 AND ` + class + ` ` + follows + `
		ORDER BY p.seq DESC LIMIT ?6`
	rows, err := ix.db.Read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("feed index: candidates: %w", err)
	}
	defer rows.Close()
	out := []Candidate{}
	for rows.Next() {
		var c Candidate
		if err := rows.Scan(&c.Seq, &c.URI, &c.Author, &c.CreatedAt, &c.IndexedAt, &c.Reply, &c.Label, &c.AITier, &c.Signals,
			&c.Likes, &c.BotLikes, &c.Reposts, &c.BotReposts, &c.Replies, &c.BotReplies); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// PostState is what a snapshot re-checks when it serves a post.
type PostState struct {
	Visible    bool
	Classified bool // false while an edited post waits for a new verdict
	Label      string
	AITier     int
}

// PostStates returns the current state of the given posts; posts that are gone are
// missing from the map.
func (ix *Index) PostStates(ctx context.Context, uris []string) (map[string]PostState, error) {
	out := make(map[string]PostState, len(uris))
	if len(uris) == 0 {
		return out, nil
	}
	list, _ := json.Marshal(uris)
	rows, err := ix.db.Read.QueryContext(ctx, `SELECT p.uri, p.hidden, c.label, c.ai_tier, c.classified_at IS NOT NULL
		FROM posts p JOIN classifications c ON c.post_seq = p.seq WHERE p.uri IN (SELECT value FROM json_each(?))`, string(list))
	if err != nil {
		return nil, fmt.Errorf("feed index: post states: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var uri, label string
		var hidden, classified bool
		var tier int
		if err := rows.Scan(&uri, &hidden, &label, &tier, &classified); err != nil {
			return nil, err
		}
		out[uri] = PostState{Visible: !hidden, Classified: classified, Label: label, AITier: tier}
	}
	return out, rows.Err()
}

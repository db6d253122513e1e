package index

import (
	"context"
	"encoding/json"
)

// TextClassifier classifies a post without media from what the index holds (its text,
// tags and self-labels, and the author's profile labels). Ingest calls it inside Apply's
// transaction, so a text-only post is stored with its verdict at once: nothing for the
// classification worker to fetch, and no second transaction per post. ok false leaves
// the post to the worker. Seq and PostCID of the verdict are filled in by the index.
type TextClassifier func(ctx context.Context, uri string, p *Post, authorLabels []string) (v Verdict, ok bool)

// textVerdict classifies p inline when it has no media and a classifier is set.
func (t *txn) textVerdict(did, uri string, p *Post) (Verdict, bool, error) {
	if t.ix.classifyText == nil || len(p.Images) > 0 {
		return Verdict{}, false, nil
	}
	var raw string
	found, err := t.queryRow(`SELECT labels FROM profiles WHERE did = ?`, []any{did}, &raw)
	if err != nil {
		return Verdict{}, false, err
	}
	var labels []string
	if found {
		if err := json.Unmarshal([]byte(raw), &labels); err != nil {
			return Verdict{}, false, err
		}
	}
	v, ok := t.ix.classifyText(t.ctx, uri, p, labels)
	return v, ok, nil
}

// putVerdict stores a verdict classified inline for post seq at cid (a new post's row
// is created with it) and queues the labeler as StoreVerdict does.
func (t *txn) putVerdict(seq int64, uri, cid string, v Verdict, create bool) error {
	q := `UPDATE classifications SET label = ?3, confidence = ?4, evidence = ?5, classified_at = ?6, post_cid = ?7, ai_score = ?8,
		ai_tier = ?9, signals = ?10, label_vals = ?11, version = ?12 WHERE post_seq = ?1`
	if create {
		q = `INSERT INTO classifications (post_seq, post_uri, label, confidence, evidence, classified_at, post_cid, ai_score, ai_tier, signals, label_vals, version)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)`
	}
	if _, err := t.exec(q, seq, uri, v.Label, v.Confidence, string(v.Evidence), t.now, cid, v.AIScore, v.AITier, v.Signals,
		jsonList(v.LabelVals), v.Version); err != nil {
		return err
	}
	t.classified++
	if len(v.LabelVals) > 0 {
		_, err := t.exec(`INSERT INTO label_outbox (uri) VALUES (?) ON CONFLICT (uri) DO UPDATE SET gen = gen + 1`, uri)
		return err
	}
	if create {
		return nil // a new post has no labels to withdraw
	}
	var had string
	found, err := t.queryRow(`SELECT uri FROM labeled_posts WHERE uri = ?`, []any{uri}, &had)
	if err != nil || !found {
		return err
	}
	_, err = t.exec(`INSERT INTO label_outbox (uri) VALUES (?) ON CONFLICT (uri) DO UPDATE SET gen = gen + 1`, uri)
	return err
}

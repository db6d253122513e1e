package index

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// Apply writes events, in order, and then the cursor for service (the largest Seq
// among them, when any is non-zero) in one transaction. service "" stores no cursor
// (backfill snapshots).
func (ix *Index) Apply(ctx context.Context, service string, events []Event) (Stats, error) {
	var st Stats
	if len(events) == 0 {
		return st, nil
	}
	tx, err := ix.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return st, fmt.Errorf("feed index: begin: %w", err)
	}
	t := &txn{ix: ix, ctx: ctx, tx: tx, now: ix.now().UTC().Format(timeLayout), stmts: make(map[string]*sql.Stmt)}
	var cursor int64
	for i := range events {
		ev := &events[i]
		switch {
		case ev.Commit != nil:
			err = t.commit(ev.Commit, &st)
		case ev.Account != nil:
			err = t.account(ev.Account)
		case ev.Identity != nil:
			err = t.identity(ev.Identity)
		case ev.Sync != nil:
			err = t.sync(ev.Sync)
		}
		if err != nil {
			tx.Rollback()
			return Stats{}, fmt.Errorf("feed index: event seq %d: %w", ev.Seq, err)
		}
		if ev.Seq > 0 {
			cursor = ev.Seq
		}
	}
	if cursor > 0 && service != "" {
		if _, err := t.exec(`INSERT INTO cursors (service, seq, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (service) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at`, service, cursor, t.now); err != nil {
			tx.Rollback()
			return Stats{}, fmt.Errorf("feed index: cursor: %w", err)
		}
	}
	// The memory index follows commits in their order (following.go).
	ix.follow.applyMu.Lock()
	if err := tx.Commit(); err != nil {
		ix.follow.applyMu.Unlock()
		return Stats{}, fmt.Errorf("feed index: commit: %w", err)
	}
	ix.follow.apply(t.mem)
	ix.follow.applyMu.Unlock()
	st.Classified = t.classified
	ix.changes.broadcast()
	if len(t.missed) > 0 {
		ix.prepareWrites(ctx, t.missed)
	}
	return st, nil
}

// txn is one Apply transaction with its statement cache.
type txn struct {
	ix *Index
	// missed are the statements this transaction had to prepare itself; Apply prepares
	// them on the write connection after it, for the next ones.
	missed []string
	// classified counts the posts classified inline (inline_verdict.go).
	classified int
	// mem are the changes to the memory index, applied after the commit.
	mem   []memOp
	ctx   context.Context
	tx    *sql.Tx
	now   string
	stmts map[string]*sql.Stmt
}

func (t *txn) stmt(q string) (*sql.Stmt, error) {
	if s, ok := t.stmts[q]; ok {
		return s, nil
	}
	if base := t.ix.writeStmt(q); base != nil {
		s := t.tx.StmtContext(t.ctx, base) // reuses base's statement on the one write connection
		t.stmts[q] = s
		return s, nil
	}
	s, err := t.tx.PrepareContext(t.ctx, q)
	if err != nil {
		return nil, err
	}
	t.stmts[q] = s
	t.missed = append(t.missed, q)
	return s, nil
}

func (t *txn) exec(q string, args ...any) (int64, error) {
	s, err := t.stmt(q)
	if err != nil {
		return 0, err
	}
	res, err := s.ExecContext(t.ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// queryRow runs a query expected to return at most one row; found is false for none.
func (t *txn) queryRow(q string, args []any, dest ...any) (found bool, err error) {
	s, err := t.stmt(q)
	if err != nil {
		return false, err
	}
	err = s.QueryRowContext(t.ctx, args...).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

type accountState struct {
	exists bool
	active bool
	status string
	rev    string
}

func (t *txn) loadAccount(did string) (accountState, error) {
	var a accountState
	found, err := t.queryRow(`SELECT active, status, rev FROM accounts WHERE did = ?`, []any{did}, &a.active, &a.status, &a.rev)
	a.exists = found
	if !found {
		a.active, a.status = true, StatusActive
	}
	return a, err
}

func (t *txn) commit(c *Commit, st *Stats) error {
	acct, err := t.loadAccount(c.DID)
	if err != nil {
		return err
	}
	switch {
	case acct.status == StatusDeleted:
		st.Stale++
		return nil
	case acct.rev != "" && c.Snapshot && c.Rev < acct.rev,
		acct.rev != "" && !c.Snapshot && c.Rev <= acct.rev:
		st.Stale++
		return nil
	}
	hidden := !acct.active
	for i := range c.Ops {
		if err := t.op(c.DID, hidden, &c.Ops[i]); err != nil {
			return fmt.Errorf("%s %s/%s: %w", c.Ops[i].Action, c.Ops[i].Collection, c.Ops[i].RKey, err)
		}
	}
	if _, err := t.exec(`INSERT INTO accounts (did, rev, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (did) DO UPDATE SET rev = max(rev, excluded.rev), updated_at = excluded.updated_at`, c.DID, c.Rev, t.now); err != nil {
		return err
	}
	st.Commits++
	st.Ops += len(c.Ops)
	return nil
}

func (t *txn) op(did string, hidden bool, op *Op) error {
	uri := URI(did, op.Collection, op.RKey)
	if op.Action != ActionDelete && op.Record == nil {
		return nil // a record the extractor could not read: nothing to index
	}
	switch op.Collection {
	case CollectionPost:
		if op.Action == ActionDelete {
			return t.deletePost(uri)
		}
		p, ok := op.Record.(*Post)
		if !ok {
			return fmt.Errorf("record is %T, want *Post", op.Record)
		}
		return t.putPost(did, uri, op.RKey, op.CID, p, hidden)
	case CollectionLike, CollectionRepost:
		table, counter := "likes", "like_count"
		if op.Collection == CollectionRepost {
			table, counter = "reposts", "repost_count"
		}
		if op.Action != ActionCreate {
			// An update may change the subject: treat it as delete + create.
			if err := t.deleteInteraction(table, counter, uri); err != nil {
				return err
			}
		}
		if op.Action == ActionDelete {
			return nil
		}
		var subject, subjectCID, createdAt string
		switch r := op.Record.(type) {
		case *Like:
			subject, subjectCID, createdAt = r.Subject, r.SubjectCID, r.CreatedAt
		case *Repost:
			subject, subjectCID, createdAt = r.Subject, r.SubjectCID, r.CreatedAt
		default:
			return fmt.Errorf("record is %T, want *Like or *Repost", op.Record)
		}
		return t.putInteraction(table, counter, uri, op.CID, did, subject, subjectCID, createdAt)
	case CollectionFollow:
		t.mem = append(t.mem, memOp{kind: memFollowed, author: did})
		if op.Action == ActionDelete {
			_, err := t.exec(`DELETE FROM follows WHERE uri = ?`, uri)
			return err
		}
		f, ok := op.Record.(*Follow)
		if !ok {
			return fmt.Errorf("record is %T, want *Follow", op.Record)
		}
		_, err := t.exec(`INSERT INTO follows (uri, cid, author, subject, created_at, indexed_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (uri) DO UPDATE SET cid = excluded.cid, subject = excluded.subject, created_at = excluded.created_at`,
			uri, op.CID, did, f.Subject, t.createdAt(f.CreatedAt), t.now)
		return err
	case CollectionFeedGen:
		if op.Action == ActionDelete {
			_, err := t.exec(`DELETE FROM feed_generators WHERE uri = ?`, uri)
			return err
		}
		g, ok := op.Record.(*FeedGenerator)
		if !ok {
			return fmt.Errorf("record is %T, want *FeedGenerator", op.Record)
		}
		_, err := t.exec(`INSERT INTO feed_generators (uri, publisher, rkey, service_did, indexed_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (uri) DO UPDATE SET service_did = excluded.service_did, indexed_at = excluded.indexed_at`,
			uri, did, op.RKey, g.ServiceDID, t.now)
		return err
	case CollectionAIPreference, CollectionUserIntents:
		return t.aiDeclaration(did, op)
	case CollectionProfile:
		if op.RKey != "self" {
			return nil
		}
		if op.Action == ActionDelete {
			_, err := t.exec(`DELETE FROM profiles WHERE did = ?`, did)
			return err
		}
		p, ok := op.Record.(*Profile)
		if !ok {
			return fmt.Errorf("record is %T, want *Profile", op.Record)
		}
		_, err := t.exec(`INSERT INTO profiles (did, cid, display_name, description, avatar, labels, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (did) DO UPDATE SET cid = excluded.cid, display_name = excluded.display_name, description = excluded.description,
				avatar = excluded.avatar, labels = excluded.labels, indexed_at = excluded.indexed_at`,
			did, op.CID, p.DisplayName, p.Description, p.Avatar, jsonList(p.Labels), t.now)
		return err
	}
	return nil
}

// createdAt keeps a record's createdAt when present; the index time otherwise.
func (t *txn) createdAt(s string) string {
	if s == "" {
		return t.now
	}
	return s
}

func (t *txn) putPost(did, uri, rkey, cid string, p *Post, hidden bool) error {
	root, parent := nullable(p.ReplyRoot), nullable(p.ReplyParent)
	hiddenInt := 0
	if hidden {
		hiddenInt = 1
	}
	// Counts start from what is already indexed (likes and replies may arrive first).
	var seq int64
	inserted, err := t.queryRow(`INSERT INTO posts (uri, cid, author, rkey, text, langs, tags, created_at, indexed_at, reply_root, reply_parent, images, labels, hidden,
			like_count, repost_count, reply_count)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,
			(SELECT count(*) FROM likes WHERE subject = ?1), (SELECT count(*) FROM reposts WHERE subject = ?1), (SELECT count(*) FROM posts WHERE reply_parent = ?1))
		ON CONFLICT (uri) DO NOTHING RETURNING seq`,
		[]any{uri, cid, did, rkey, p.Text, jsonList(p.Langs), jsonList(p.Tags), t.createdAt(p.CreatedAt), t.now, root, parent,
			jsonImages(p.Images), jsonList(p.Labels), hiddenInt}, &seq)
	if err != nil {
		return err
	}
	if inserted {
		t.mem = append(t.mem, memOp{kind: memPost, author: did, seq: seq, hidden: hidden})
		if err := t.bump("reply_count", p.ReplyParent, +1); err != nil {
			return err
		}
		if v, ok, err := t.textVerdict(did, uri, p); err != nil {
			return err
		} else if ok {
			return t.putVerdict(seq, uri, cid, v, true)
		}
		_, err = t.exec(`INSERT INTO classifications (post_seq, post_uri) VALUES (?, ?)`, seq, uri)
		return err
	}

	// The post exists: an update (or the same record again, from a snapshot).
	var oldCID string
	var oldParent sql.NullString
	if _, err := t.queryRow(`SELECT seq, cid, reply_parent FROM posts WHERE uri = ?`, []any{uri}, &seq, &oldCID, &oldParent); err != nil {
		return err
	}
	if oldCID == cid {
		return nil
	}
	if _, err := t.exec(`UPDATE posts SET cid = ?, text = ?, langs = ?, tags = ?, created_at = ?, reply_root = ?, reply_parent = ?, images = ?, labels = ? WHERE seq = ?`,
		cid, p.Text, jsonList(p.Langs), jsonList(p.Tags), t.createdAt(p.CreatedAt), root, parent, jsonImages(p.Images), jsonList(p.Labels), seq); err != nil {
		return err
	}
	if oldParent.String != p.ReplyParent {
		if err := t.bump("reply_count", oldParent.String, -1); err != nil {
			return err
		}
		if err := t.bump("reply_count", p.ReplyParent, +1); err != nil {
			return err
		}
	}
	// New content: the old verdict no longer applies.
	if v, ok, err := t.textVerdict(did, uri, p); err != nil {
		return err
	} else if ok {
		return t.putVerdict(seq, uri, cid, v, false)
	}
	_, err = t.exec(`UPDATE classifications SET label = 'unknown', confidence = 0, evidence = '[]', classified_at = NULL WHERE post_seq = ?`, seq)
	return err
}

func (t *txn) deletePost(uri string) error {
	var parent sql.NullString
	var seq int64
	var author string
	found, err := t.queryRow(`DELETE FROM posts WHERE uri = ? RETURNING reply_parent, seq, author`, []any{uri}, &parent, &seq, &author)
	if err != nil || !found {
		return err
	}
	t.mem = append(t.mem, memOp{kind: memDelete, author: author, seq: seq})
	return t.bump("reply_count", parent.String, -1)
}

// bump adds delta to a post's counter; it never goes below zero.
func (t *txn) bump(counter, uri string, delta int) error {
	if uri == "" {
		return nil
	}
	var q string
	switch {
	case counter == "like_count" && delta > 0:
		q = `UPDATE posts SET like_count = like_count + 1 WHERE uri = ?`
	case counter == "like_count":
		q = `UPDATE posts SET like_count = like_count - 1 WHERE uri = ? AND like_count > 0`
	case counter == "repost_count" && delta > 0:
		q = `UPDATE posts SET repost_count = repost_count + 1 WHERE uri = ?`
	case counter == "repost_count":
		q = `UPDATE posts SET repost_count = repost_count - 1 WHERE uri = ? AND repost_count > 0`
	case counter == "reply_count" && delta > 0:
		q = `UPDATE posts SET reply_count = reply_count + 1 WHERE uri = ?`
	case counter == "reply_count":
		q = `UPDATE posts SET reply_count = reply_count - 1 WHERE uri = ? AND reply_count > 0`
	default:
		return fmt.Errorf("unknown counter %q", counter)
	}
	_, err := t.exec(q, uri)
	return err
}

// putInteraction stores a like or repost; the subject's counter moves only when the row
// is new, so replays count once.
func (t *txn) putInteraction(table, counter, uri, cid, did, subject, subjectCID, createdAt string) error {
	if subject == "" {
		return nil
	}
	n, err := t.exec(`INSERT INTO `+table+` (uri, cid, author, subject, subject_cid, created_at, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (uri) DO NOTHING`, uri, cid, did, subject, subjectCID, t.createdAt(createdAt), t.now)
	if err != nil || n == 0 {
		return err
	}
	return t.bump(counter, subject, +1)
}

func (t *txn) deleteInteraction(table, counter, uri string) error {
	var subject string
	found, err := t.queryRow(`DELETE FROM `+table+` WHERE uri = ? RETURNING subject`, []any{uri}, &subject)
	if err != nil || !found {
		return err
	}
	return t.bump(counter, subject, -1)
}

func (t *txn) account(a *Account) error {
	status := a.Status
	switch {
	case a.Active:
		status = StatusActive
	case status == "":
		status = StatusDeactivated
	}
	if _, err := t.exec(`INSERT INTO accounts (did, active, status, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (did) DO UPDATE SET active = excluded.active, status = excluded.status, updated_at = excluded.updated_at`,
		a.DID, a.Active, status, t.now); err != nil {
		return err
	}
	if err := t.enqueueAccountLabel(a.DID); err != nil { // hidden accounts carry no label
		return err
	}
	switch {
	case a.Active:
		t.mem = append(t.mem, memOp{kind: memHidden, author: a.DID, hidden: false})
		_, err := t.exec(`UPDATE posts SET hidden = 0 WHERE author = ? AND hidden = 1`, a.DID)
		return err
	case status == StatusDeleted:
		t.mem = append(t.mem, memOp{kind: memDrop, author: a.DID}, memOp{kind: memFollowed, author: a.DID})
		return t.dropAccount(a.DID)
	default:
		t.mem = append(t.mem, memOp{kind: memHidden, author: a.DID, hidden: true})
		_, err := t.exec(`UPDATE posts SET hidden = 1 WHERE author = ? AND hidden = 0`, a.DID)
		return err
	}
}

// dropAccount removes a deleted account's records, taking its likes, reposts and
// replies out of other posts' counts.
//
// Records are found by URI range: every URI of an account starts with at://DID/ (see
// RepoRange), so the primary keys serve as author indexes.
func (t *txn) dropAccount(did string) error {
	if err := t.enqueueAccountLabel(did); err != nil {
		return err
	}
	lo, hi := RepoRange(did)
	for _, q := range []string{
		`DELETE FROM ai_declarations WHERE uri >= ?1 AND uri < ?2`,
		`UPDATE posts SET like_count = max(0, like_count - (SELECT count(*) FROM likes l WHERE l.uri >= ?1 AND l.uri < ?2 AND l.subject = posts.uri))
			WHERE uri IN (SELECT subject FROM likes WHERE uri >= ?1 AND uri < ?2)`,
		`DELETE FROM likes WHERE uri >= ?1 AND uri < ?2`,
		`UPDATE posts SET repost_count = max(0, repost_count - (SELECT count(*) FROM reposts r WHERE r.uri >= ?1 AND r.uri < ?2 AND r.subject = posts.uri))
			WHERE uri IN (SELECT subject FROM reposts WHERE uri >= ?1 AND uri < ?2)`,
		`DELETE FROM reposts WHERE uri >= ?1 AND uri < ?2`,
		`UPDATE posts SET reply_count = max(0, reply_count - (SELECT count(*) FROM posts c WHERE c.uri >= ?1 AND c.uri < ?2 AND c.reply_parent = posts.uri))
			WHERE uri IN (SELECT reply_parent FROM posts WHERE uri >= ?1 AND uri < ?2 AND reply_parent IS NOT NULL) AND NOT (uri >= ?1 AND uri < ?2)`,
		`DELETE FROM posts WHERE uri >= ?1 AND uri < ?2`,
		`DELETE FROM follows WHERE uri >= ?1 AND uri < ?2`,
		`DELETE FROM feed_generators WHERE uri >= ?1 AND uri < ?2`,
	} {
		if _, err := t.exec(q, lo, hi); err != nil {
			return err
		}
	}
	_, err := t.exec(`DELETE FROM profiles WHERE did = ?`, did)
	return err
}

func (t *txn) identity(id *Identity) error {
	_, err := t.exec(`INSERT INTO accounts (did, handle, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (did) DO UPDATE SET handle = excluded.handle, updated_at = excluded.updated_at`, id.DID, id.Handle, t.now)
	return err
}

func (t *txn) sync(s *Sync) error {
	_, err := t.exec(`INSERT INTO accounts (did, rev, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (did) DO UPDATE SET rev = max(rev, excluded.rev), updated_at = excluded.updated_at`, s.DID, s.Rev, t.now)
	return err
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func jsonList(v []string) string {
	if len(v) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func jsonImages(v []Image) string {
	if len(v) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

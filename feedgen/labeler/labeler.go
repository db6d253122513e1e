package labeler

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/labeling"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/sqlitedb"
	"github.com/hearth-social/hearth/internal/stream"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Label values this labeler publishes (see Definitions for their declarations).
const (
	ValueAIGenerated = "ai-generated"
	ValueAIAssisted  = "ai-assisted"
	// ValueNoAITraining is an account label (opt-in by the operator): the account's AI
	// usage declarations deny training.
	ValueNoAITraining = "no-ai-training"
)

// ctsFormat is the label timestamp format (RFC 3339, UTC, milliseconds).
const ctsFormat = "2006-01-02T15:04:05.000Z"

// Defaults for the zero fields of Config (PingInterval, WriteTimeout and MaxLag take
// internal/stream's).
const (
	DefaultPageSize       = 500
	DefaultMaxSubscribers = 1000
)

// Config configures a Labeler.
type Config struct {
	// Path is the labeler's SQLite file (created if missing).
	Path string
	// DID is the labeler's DID, the src of every label it signs (the feed generator's
	// service DID). Required.
	DID string
	// Synchronous is the SQLite synchronous level ("FULL", the default, or "NORMAL").
	Synchronous string
	// PingInterval is how often subscribeLabels pings an idle subscriber (default 30s);
	// a subscriber silent for two intervals is dropped.
	PingInterval time.Duration
	// WriteTimeout bounds one websocket write; a subscriber that cannot take a frame in
	// that time is a slow consumer and is dropped (default 10s).
	WriteTimeout time.Duration
	// PageSize is how many labels a subscriber reads from the log per query (default 500).
	PageSize int
	// MaxLag is how many labels a live subscriber may fall behind before it is
	// disconnected with ConsumerTooSlow (default 10000).
	MaxLag int
	// MaxSubscribers caps concurrent subscribeLabels connections (default 1000).
	MaxSubscribers int
	// Logger receives the labeler's logs (default slog.Default()).
	Logger *slog.Logger
}

// Labeler signs, stores and serves labels. It is safe for concurrent use.
type Labeler struct {
	cfg Config
	db  *sqlitedb.DB
	key *atcrypto.PrivateKeyK256
	pub atcrypto.PublicKey
	log *slog.Logger

	// srv serves subscribeLabels; labelFeed is its source.
	srv *stream.Server

	// last is the highest seq committed, so subscribers can measure their lag without
	// a query.
	last atomic.Int64

	mu   sync.Mutex
	wake chan struct{} // closed (and replaced) whenever labels are committed; see Notify
}

// Open opens (creating if needed) the labeler database, and generates the signing key
// on first use.
func Open(ctx context.Context, cfg Config) (*Labeler, error) {
	if cfg.Path == "" {
		return nil, errors.New("labeler: Path is required")
	}
	if _, err := syntax.ParseDID(cfg.DID); err != nil {
		return nil, fmt.Errorf("labeler: DID %q: %w", cfg.DID, err)
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.MaxSubscribers <= 0 {
		cfg.MaxSubscribers = DefaultMaxSubscribers
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	db, err := sqlitedb.Open(ctx, cfg.Path, sub, sqlitedb.Options{Synchronous: cfg.Synchronous, Readers: 4})
	if err != nil {
		return nil, fmt.Errorf("labeler: %w", err)
	}
	key, err := loadOrCreateKey(ctx, db.Write)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("labeler: signing key: %w", err)
	}
	pub, err := key.PublicKey()
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("labeler: signing key: %w", err)
	}
	l := &Labeler{
		cfg:  cfg,
		db:   db,
		key:  key,
		pub:  pub,
		log:  cfg.Logger.With("component", "labeler"),
		wake: make(chan struct{}),
	}
	last, err := l.LastSeq(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("labeler: reading last seq: %w", err)
	}
	l.last.Store(last)
	l.srv = stream.New(labelFeed{l}, stream.Config{
		Method:         "subscribeLabels",
		Kind:           "label",
		PingInterval:   cfg.PingInterval,
		WriteTimeout:   cfg.WriteTimeout,
		MaxLag:         cfg.MaxLag,
		MaxSubscribers: cfg.MaxSubscribers,
		ReadBatch:      cfg.PageSize,
		Log:            l.log,
	})
	return l, nil
}

func loadOrCreateKey(ctx context.Context, db *sql.DB) (*atcrypto.PrivateKeyK256, error) {
	var raw []byte
	err := db.QueryRowContext(ctx, `SELECT k256 FROM signing_key WHERE id = 1`).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		k, gerr := atcrypto.GeneratePrivateKeyK256()
		if gerr != nil {
			return nil, gerr
		}
		if _, err := db.ExecContext(ctx, `INSERT OR IGNORE INTO signing_key (id, k256, created_at) VALUES (1, ?, ?)`,
			k.Bytes(), time.Now().UTC().Format(ctsFormat)); err != nil {
			return nil, err
		}
		// Re-read: another process may have won the insert.
		err = db.QueryRowContext(ctx, `SELECT k256 FROM signing_key WHERE id = 1`).Scan(&raw)
	}
	if err != nil {
		return nil, err
	}
	return atcrypto.ParsePrivateBytesK256(raw)
}

// DID is the labeler's DID (the src of its labels).
func (l *Labeler) DID() string { return l.cfg.DID }

// PublicKey is the public half of the signing key.
func (l *Labeler) PublicKey() atcrypto.PublicKey { return l.pub }

// DIDKey is the signing key as a did:key.
func (l *Labeler) DIDKey() string { return l.pub.DIDKey() }

// PublicKeyMultibase is the signing key in the multibase form DID documents use.
func (l *Labeler) PublicKeyMultibase() string { return l.pub.Multibase() }

// valRE is the label value syntax: lowercase ASCII letters and '-', with an optional
// leading '!' for the global "imperative" values.
var valRE = regexp.MustCompile(`^!?[a-z][a-z-]*$`)

// checkSubject validates a label subject: an AT-URI or a DID, and an optional CID.
func checkSubject(uri, cid string) error {
	if _, err := syntax.ParseATURI(uri); err != nil {
		if _, err2 := syntax.ParseDID(uri); err2 != nil {
			return fmt.Errorf("label subject %q is neither an AT-URI nor a DID", uri)
		}
		if cid != "" {
			return fmt.Errorf("label subject %q: an account label has no CID", uri)
		}
	}
	if cid != "" {
		if _, err := syntax.ParseCID(cid); err != nil {
			return fmt.Errorf("label CID %q: %w", cid, err)
		}
	}
	return nil
}

// current is the latest label of one (uri, val).
type current struct {
	neg bool
	cid string
}

// Apply makes vals the complete set of label values this labeler asserts on the
// subject uri (an AT-URI or a DID), at version cid ("" for none). It emits a label for
// each value newly present (or present with a different CID), a negation for each value
// no longer present, and nothing when the set is unchanged, all in one transaction.
// Apply(ctx, uri, "", nil) retracts everything (the post was deleted). It returns the
// labels emitted, in sequence order.
func (l *Labeler) Apply(ctx context.Context, uri, cid string, vals []string) ([]labeling.Label, error) {
	if err := checkSubject(uri, cid); err != nil {
		return nil, err
	}
	want := make([]string, 0, len(vals))
	for _, v := range vals {
		if len(v) > 128 || !valRE.MatchString(v) {
			return nil, fmt.Errorf("label value %q: want lowercase letters and '-', at most 128", v)
		}
		if !slices.Contains(want, v) {
			want = append(want, v)
		}
	}
	slices.Sort(want)

	tx, err := l.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	have, err := l.currentTx(ctx, tx, uri)
	if err != nil {
		return nil, err
	}
	cts := time.Now().UTC().Format(ctsFormat)
	var out []labeling.Label
	for _, v := range want {
		if h, ok := have[v]; ok && !h.neg && h.cid == cid {
			continue
		}
		out = append(out, l.newLabel(uri, cid, v, false, cts))
	}
	gone := make([]string, 0, len(have))
	for v, h := range have {
		if !h.neg && !slices.Contains(want, v) {
			gone = append(gone, v)
		}
	}
	slices.Sort(gone)
	for _, v := range gone {
		// The negation names the version the label it retracts was on.
		out = append(out, l.newLabel(uri, have[v].cid, v, true, cts))
	}
	if len(out) == 0 {
		return nil, nil
	}
	var top int64
	for i := range out {
		if err := out[i].Sign(l.key); err != nil {
			return nil, fmt.Errorf("signing label: %w", err)
		}
		seq, err := insertLabel(ctx, tx, &out[i])
		if err != nil {
			return nil, err
		}
		top = max(top, seq)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("committing labels: %w", err)
	}
	l.committed(top)
	return out, nil
}

func (l *Labeler) newLabel(uri, cid, val string, neg bool, cts string) labeling.Label {
	lab := labeling.Label{
		Version:   labeling.ATPROTO_LABEL_VERSION,
		SourceDID: l.cfg.DID,
		URI:       uri,
		Val:       val,
		CreatedAt: cts,
	}
	if cid != "" {
		lab.CID = &cid
	}
	if neg {
		t := true
		lab.Negated = &t
	}
	return lab
}

func (l *Labeler) currentTx(ctx context.Context, tx *sql.Tx, uri string) (map[string]current, error) {
	rows, err := tx.QueryContext(ctx, `SELECT s.val, s.neg, l.cid FROM label_state s JOIN labels l ON l.seq = s.seq
		WHERE s.src = ? AND s.uri = ?`, l.cfg.DID, uri)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := map[string]current{}
	for rows.Next() {
		var val string
		var neg bool
		var cid sql.NullString
		if err := rows.Scan(&val, &neg, &cid); err != nil {
			return nil, err
		}
		have[val] = current{neg: neg, cid: cid.String}
	}
	return have, rows.Err()
}

// insertLabel appends lab to the log and returns its seq.
func insertLabel(ctx context.Context, tx *sql.Tx, lab *labeling.Label) (int64, error) {
	neg := lab.Negated != nil && *lab.Negated
	res, err := tx.ExecContext(ctx, `INSERT INTO labels (uri, cid, val, neg, cts, exp, sig, src) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		lab.URI, lab.CID, lab.Val, neg, lab.CreatedAt, lab.ExpiresAt, []byte(lab.Sig), lab.SourceDID)
	if err != nil {
		return 0, fmt.Errorf("inserting label: %w", err)
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("reading label seq: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO label_state (src, uri, val, seq, neg) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (src, uri, val) DO UPDATE SET seq = excluded.seq, neg = excluded.neg`,
		lab.SourceDID, lab.URI, lab.Val, seq, neg); err != nil {
		return 0, fmt.Errorf("updating label state: %w", err)
	}
	return seq, nil
}

// committed records that labels up to seq are durable and wakes every reader waiting on
// Notify. last is raised first, so a woken subscriber measures its lag against it.
func (l *Labeler) committed(seq int64) {
	for {
		cur := l.last.Load()
		if seq <= cur || l.last.CompareAndSwap(cur, seq) {
			break
		}
	}
	l.mu.Lock()
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}

// Notify returns a channel closed after the next commit of labels (a new channel each
// time, as the PDS store's Notify). Take it before reading the log, so a commit after the
// read is not missed.
func (l *Labeler) Notify() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wake
}

// Current returns the labels in force on the subject uri (latest per value, negations
// excluded), ordered by value.
func (l *Labeler) Current(ctx context.Context, uri string) ([]labeling.Label, error) {
	rows, err := l.db.Read.QueryContext(ctx, `SELECT `+labelCols+` FROM current_labels WHERE uri = ? ORDER BY val, src`, uri)
	if err != nil {
		return nil, err
	}
	ls, err := scanLabels(rows)
	if err != nil {
		return nil, err
	}
	out := make([]labeling.Label, len(ls))
	for i := range ls {
		out[i] = ls[i].Label
	}
	return out, nil
}

// LastSeq is the sequence number of the latest label (0 when there is none).
func (l *Labeler) LastSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := l.db.Read.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM labels`).Scan(&seq)
	return seq, err
}

// stored is a label with its log sequence number.
type stored struct {
	Seq int64
	labeling.Label
}

const labelCols = `seq, uri, cid, val, neg, cts, exp, sig, src`

func scanLabels(rows *sql.Rows) ([]stored, error) {
	defer rows.Close()
	var out []stored
	for rows.Next() {
		var s stored
		var cid, exp sql.NullString
		var neg bool
		var sig []byte
		if err := rows.Scan(&s.Seq, &s.URI, &cid, &s.Val, &neg, &s.CreatedAt, &exp, &sig, &s.SourceDID); err != nil {
			return nil, err
		}
		s.Version = labeling.ATPROTO_LABEL_VERSION
		if cid.Valid {
			s.CID = &cid.String
		}
		if exp.Valid {
			s.ExpiresAt = &exp.String
		}
		if neg {
			s.Negated = &neg
		}
		s.Sig = sig
		out = append(out, s)
	}
	return out, rows.Err()
}

// labelsAfter reads up to n labels of the log after seq, in order.
func (l *Labeler) labelsAfter(ctx context.Context, seq int64, n int) ([]stored, error) {
	rows, err := l.db.Read.QueryContext(ctx, `SELECT `+labelCols+` FROM labels WHERE seq > ? ORDER BY seq LIMIT ?`, seq, n)
	if err != nil {
		return nil, err
	}
	return scanLabels(rows)
}

// Shutdown stops serving subscribeLabels: every subscriber gets a close frame
// (1001, going away) and new subscriptions are refused. It waits for the subscribers to
// finish until ctx is done. Call it before the HTTP server's Shutdown, which does not
// track hijacked (websocket) connections.
func (l *Labeler) Shutdown(ctx context.Context) error { return l.srv.Shutdown(ctx) }

// Close shuts the subscriptions down (waiting up to 5s) and closes the database.
func (l *Labeler) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := l.Shutdown(ctx)
	if cerr := l.db.Close(); cerr != nil {
		return cerr
	}
	return err
}

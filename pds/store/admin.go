package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// AdminAccount is an account as the admin API shows it (com.atproto.admin.defs#accountView).
type AdminAccount struct {
	Account
	// EmailConfirmedAt is when the current address was confirmed (zero: not confirmed).
	EmailConfirmedAt time.Time
	// InvitesDisabled: disableAccountInvites; InviteNote is the administrator's note.
	InvitesDisabled bool
	InviteNote      string
}

const adminAccountCols = accountCols + `, coalesce(email_confirmed_ms, 0), invites_disabled, coalesce(invite_note, '')`

func scanAdminAccounts(rows *sql.Rows) ([]*AdminAccount, error) {
	defer rows.Close()
	var out []*AdminAccount
	for rows.Next() {
		var a AdminAccount
		var confirmedMS int64
		if err := rows.Scan(&a.DID, &a.Handle, &a.Email, &a.PasswordHash, &a.SigningKey, &a.Status, &a.CreatedAt,
			&a.EmailConfirmed, &a.EmailAuthFactor, &confirmedMS, &a.InvitesDisabled, &a.InviteNote); err != nil {
			return nil, err
		}
		if confirmedMS > 0 {
			a.EmailConfirmedAt = time.UnixMilli(confirmedMS)
		}
		out = append(out, &a)
	}
	return out, rows.Err()
}

// AdminAccounts returns the accounts among dids that exist and are not deleted, in DID
// order.
func (s *Store) AdminAccounts(ctx context.Context, dids []string) ([]*AdminAccount, error) {
	if len(dids) == 0 {
		return nil, nil
	}
	args := make([]any, len(dids))
	for i, d := range dids {
		args[i] = d
	}
	rows, err := s.db.Read.QueryContext(ctx, `SELECT `+adminAccountCols+` FROM accounts WHERE status != 'deleted' AND did IN (?`+
		strings.Repeat(", ?", len(dids)-1)+`) ORDER BY did`, args...)
	if err != nil {
		return nil, err
	}
	return scanAdminAccounts(rows)
}

// AccountSearch is a searchAccounts query. Email matches addresses starting with it;
// Term matches handles or addresses starting with it (both lower-cased; empty matches
// every account). Pages are in DID order after Cursor (a DID).
type AccountSearch struct {
	Email, Term, Cursor string
	Limit               int
}

// SearchAccounts lists the accounts (not deleted) matching q.
func (s *Store) SearchAccounts(ctx context.Context, q AccountSearch) ([]*AdminAccount, error) {
	email, term := strings.ToLower(q.Email), strings.ToLower(q.Term)
	// substr comparisons instead of LIKE: no pattern characters to escape. A PDS holds
	// few enough accounts for the scan.
	rows, err := s.db.Read.QueryContext(ctx, `SELECT `+adminAccountCols+` FROM accounts
		WHERE status != 'deleted' AND did > ?1
		AND (?2 = '' OR substr(coalesce(email, ''), 1, length(?2)) = ?2)
		AND (?3 = '' OR substr(handle, 1, length(?3)) = ?3 OR substr(coalesce(email, ''), 1, length(?3)) = ?3)
		ORDER BY did LIMIT ?4`, q.Cursor, email, term, q.Limit)
	if err != nil {
		return nil, err
	}
	return scanAdminAccounts(rows)
}

// SetInvitesDisabled turns an account's invites off or on, with the administrator's note
// (kept when note is empty).
func (t *Tx) SetInvitesDisabled(did string, disabled bool, note string) error {
	res, err := t.exec(`UPDATE accounts SET invites_disabled = ?, invite_note = coalesce(nullif(?, ''), invite_note) WHERE did = ? AND status != 'deleted'`, disabled, note, did)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// InvitesDisabled reports whether did's invites are disabled.
func (s *Store) InvitesDisabled(ctx context.Context, did string) (bool, error) {
	var v bool
	err := s.db.Read.QueryRowContext(ctx, `SELECT invites_disabled FROM accounts WHERE did = ?`, did).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return false, ErrNotFound
	}
	return v, err
}

// DisableInviteCodes disables the named codes and every code made for the named
// accounts (their uses stay).
func (t *Tx) DisableInviteCodes(codes, accounts []string) error {
	for _, c := range codes {
		if _, err := t.exec(`UPDATE invite_codes SET disabled = 1 WHERE code = ?`, c); err != nil {
			return err
		}
	}
	for _, a := range accounts {
		if _, err := t.exec(`UPDATE invite_codes SET disabled = 1 WHERE for_account = ?`, a); err != nil {
			return err
		}
	}
	return nil
}

// InviteSort orders ListInviteCodes: newest first, or most used first.
type InviteSort int

const (
	InviteSortRecent InviteSort = iota
	InviteSortUsage
)

// InviteCursor is where a page of ListInviteCodes starts: after the code Code whose
// creation time (InviteSortRecent) or use count (InviteSortUsage) is Key.
type InviteCursor struct {
	Key  string
	Code string
}

// ListInviteCodes pages through every invite code with its uses; cursor nil starts at
// the top.
func (s *Store) ListInviteCodes(ctx context.Context, sort InviteSort, cursor *InviteCursor, limit int) ([]InviteCode, error) {
	const inner = `SELECT code, for_account, created_by, available, disabled, created_at,
		(SELECT count(*) FROM invite_code_uses u WHERE u.code = c.code) AS used FROM invite_codes c`
	var q string
	var args []any
	switch sort {
	case InviteSortRecent:
		q = `SELECT code, for_account, created_by, available, disabled, created_at FROM (` + inner + `)`
		if cursor != nil {
			q += ` WHERE (created_at, code) < (?, ?)`
			args = append(args, cursor.Key, cursor.Code)
		}
		q += ` ORDER BY created_at DESC, code DESC LIMIT ?`
	case InviteSortUsage:
		q = `SELECT code, for_account, created_by, available, disabled, created_at FROM (` + inner + `)`
		if cursor != nil {
			q += ` WHERE (used, code) < (CAST(? AS INTEGER), ?)`
			args = append(args, cursor.Key, cursor.Code)
		}
		q += ` ORDER BY used DESC, code DESC LIMIT ?`
	default:
		return nil, fmt.Errorf("unknown invite sort %d", sort)
	}
	rows, err := s.db.Read.QueryContext(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	codes, err := scanInviteCodes(rows)
	if err != nil {
		return nil, err
	}
	return codes, s.loadInviteUses(ctx, codes)
}

// InvitedBy returns the code each of dids signed up with (accounts that used none are
// absent).
func (s *Store) InvitedBy(ctx context.Context, dids []string) (map[string]InviteCode, error) {
	out := map[string]InviteCode{}
	for _, did := range dids {
		rows, err := s.db.Read.QueryContext(ctx, `SELECT c.code, c.for_account, c.created_by, c.available, c.disabled, c.created_at
			FROM invite_code_uses u JOIN invite_codes c ON c.code = u.code WHERE u.used_by = ? ORDER BY u.used_at LIMIT 1`, did)
		if err != nil {
			return nil, err
		}
		codes, err := scanInviteCodes(rows)
		if err != nil {
			return nil, err
		}
		if err := s.loadInviteUses(ctx, codes); err != nil {
			return nil, err
		}
		if len(codes) == 1 {
			out[did] = codes[0]
		}
	}
	return out, nil
}

func scanInviteCodes(rows *sql.Rows) ([]InviteCode, error) {
	defer rows.Close()
	var out []InviteCode
	for rows.Next() {
		var c InviteCode
		if err := rows.Scan(&c.Code, &c.ForAccount, &c.CreatedBy, &c.Available, &c.Disabled, &c.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s *Store) loadInviteUses(ctx context.Context, codes []InviteCode) error {
	for i := range codes {
		rows, err := s.db.Read.QueryContext(ctx, `SELECT used_by, used_at FROM invite_code_uses WHERE code = ? ORDER BY used_at`, codes[i].Code)
		if err != nil {
			return err
		}
		codes[i].Uses = []InviteUse{}
		for rows.Next() {
			var u InviteUse
			if err := rows.Scan(&u.UsedBy, &u.UsedAt); err != nil {
				rows.Close()
				return err
			}
			codes[i].Uses = append(codes[i].Uses, u)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// Usage is the storage an account uses: its records' DAG-CBOR bytes with the signed
// head commit, and its uploaded blobs' bytes.
type Usage struct {
	RepoBytes int64
	BlobBytes int64
}

// AccountUsage measures did's storage.
func (s *Store) AccountUsage(ctx context.Context, did string) (Usage, error) {
	var u Usage
	// length() of a BLOB reads the record header, not the value's overflow pages.
	err := s.db.Read.QueryRowContext(ctx, `SELECT
		coalesce((SELECT sum(length(value)) FROM records WHERE did = ?1), 0) + coalesce((SELECT length(commit_data) FROM repos WHERE did = ?1), 0),
		coalesce((SELECT sum(size) FROM blobs WHERE did = ?1), 0)`, did).Scan(&u.RepoBytes, &u.BlobBytes)
	return u, err
}

// BlobBytesExcept is the bytes of did's blobs other than the one with CID c (raw bytes),
// inside the transaction that is about to record c (its upload's quota check).
func (t *Tx) BlobBytesExcept(did string, c []byte) (int64, error) {
	var n int64
	err := t.queryRow(`SELECT coalesce(sum(size), 0) FROM blobs WHERE did = ? AND cid != ?`, did, c).Scan(&n)
	return n, err
}

// Takedown kinds: a record (Subject is collection/rkey) or a blob (Subject is its CID).
const (
	TakedownRecord = "record"
	TakedownBlob   = "blob"
)

// Takedown is a record or blob an administrator took down.
type Takedown struct {
	DID, Kind, Subject, Ref string
	At                      time.Time
}

// PutTakedown takes a record or blob down (again: the ref and time are replaced).
func (t *Tx) PutTakedown(td Takedown) error {
	_, err := t.exec(`INSERT INTO takedowns (did, kind, subject, ref, created_ms) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (did, kind, subject) DO UPDATE SET ref = excluded.ref, created_ms = excluded.created_ms`,
		td.DID, td.Kind, td.Subject, td.Ref, t.now.UnixMilli())
	return err
}

// DeleteTakedown lifts a takedown (a no-op if there is none).
func (t *Tx) DeleteTakedown(did, kind, subject string) error {
	_, err := t.exec(`DELETE FROM takedowns WHERE did = ? AND kind = ? AND subject = ?`, did, kind, subject)
	return err
}

// Takedowns lists every record and blob takedown in force.
func (s *Store) Takedowns(ctx context.Context) ([]Takedown, error) {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT did, kind, subject, ref, created_ms FROM takedowns`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Takedown
	for rows.Next() {
		var td Takedown
		var ms int64
		if err := rows.Scan(&td.DID, &td.Kind, &td.Subject, &td.Ref, &ms); err != nil {
			return nil, err
		}
		td.At = time.UnixMilli(ms)
		out = append(out, td)
	}
	return out, rows.Err()
}

// ModerationEntry is one row of the moderation log: Actor applied (or lifted) a
// takedown of an account (Subject is the DID), a record (its AT-URI, CID the version
// named) or a blob (its CID), with the reference and the reason given.
type ModerationEntry struct {
	ID      int64
	At      time.Time
	Actor   string
	Kind    string // "account", "record", "blob"
	DID     string
	Subject string
	CID     string
	Applied bool
	Ref     string
	Reason  string
}

// AppendModerationLog records a takedown or restore, in the transaction that makes it.
func (t *Tx) AppendModerationLog(e ModerationEntry) error {
	_, err := t.exec(`INSERT INTO moderation_log (created_ms, actor, kind, did, subject, cid, applied, ref, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.now.UnixMilli(), e.Actor, e.Kind, e.DID, e.Subject, e.CID, e.Applied, e.Ref, e.Reason)
	return err
}

// ModerationLog pages through the log newest first: entries before the ID before (0:
// from the newest), of one account when did is set.
func (s *Store) ModerationLog(ctx context.Context, did string, before int64, limit int) ([]ModerationEntry, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := s.db.Read.QueryContext(ctx, `SELECT id, created_ms, actor, kind, did, subject, cid, applied, ref, reason FROM moderation_log
		WHERE (?1 = '' OR did = ?1) AND id < ?2 ORDER BY id DESC LIMIT ?3`, did, before, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ModerationEntry
	for rows.Next() {
		var e ModerationEntry
		var ms int64
		if err := rows.Scan(&e.ID, &ms, &e.Actor, &e.Kind, &e.DID, &e.Subject, &e.CID, &e.Applied, &e.Ref, &e.Reason); err != nil {
			return nil, err
		}
		e.At = time.UnixMilli(ms)
		out = append(out, e)
	}
	return out, rows.Err()
}

// RecordPathsByCID lists the paths (collection/rkey) of did's records whose CID is c
// (raw bytes): one block can be the value of several identical records.
func (s *Store) RecordPathsByCID(ctx context.Context, did string, c []byte) ([]string, error) {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT collection, rkey FROM records WHERE did = ? AND cid = ?`, did, c)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var coll, rkey string
		if err := rows.Scan(&coll, &rkey); err != nil {
			return nil, err
		}
		out = append(out, coll+"/"+rkey)
	}
	return out, rows.Err()
}

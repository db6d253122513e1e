package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hearth-social/hearth/internal/sqlitedb"
)

// Account statuses, as com.atproto.sync.getRepoStatus reports them.
const (
	StatusActive      = "active"
	StatusDeactivated = "deactivated"
	StatusTakendown   = "takendown"
	StatusDeleted     = "deleted"
)

var (
	// ErrNotFound is returned when a looked-up row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrHandleTaken: another account holds the handle.
	ErrHandleTaken = errors.New("handle already taken")
	// ErrEmailTaken: another account holds the email.
	ErrEmailTaken = errors.New("email already taken")
)

// Account is one hosted account.
type Account struct {
	DID          string
	Handle       string
	Email        string
	PasswordHash string
	SigningKey   []byte
	Status       string
	CreatedAt    string
	// EmailConfirmed: the current Email was confirmed with a mailed token (changing the
	// address clears it). EmailAuthFactor: a password login also needs a mailed code.
	EmailConfirmed  bool
	EmailAuthFactor bool
}

// Active reports whether the account can be read and written.
func (a *Account) Active() bool { return a.Status == StatusActive }

const accountCols = `did, handle, coalesce(email, ''), password_hash, signing_key, status, created_at,
	email_confirmed_ms IS NOT NULL, email_auth_factor`

func scanAccount(row interface{ Scan(...any) error }) (*Account, error) {
	var a Account
	if err := row.Scan(&a.DID, &a.Handle, &a.Email, &a.PasswordHash, &a.SigningKey, &a.Status, &a.CreatedAt, &a.EmailConfirmed, &a.EmailAuthFactor); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	return &a, nil
}

// AccountByDID looks an account up by DID.
func (s *Store) AccountByDID(ctx context.Context, did string) (*Account, error) {
	return scanAccount(s.rd.accountDID.QueryRowContext(ctx, did))
}

// AccountByHandle looks an account up by handle (case-insensitive: handles are stored
// lower-case).
func (s *Store) AccountByHandle(ctx context.Context, handle string) (*Account, error) {
	return scanAccount(s.db.Read.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE handle = ?`, strings.ToLower(handle)))
}

// AccountByEmail looks an account up by email (case-insensitive).
func (s *Store) AccountByEmail(ctx context.Context, email string) (*Account, error) {
	return scanAccount(s.db.Read.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE email = ?`, strings.ToLower(email)))
}

// DIDForHandle resolves a local handle.
func (s *Store) DIDForHandle(ctx context.Context, handle string) (string, error) {
	var did string
	err := s.rd.handleToDID.QueryRowContext(ctx, strings.ToLower(handle)).Scan(&did)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return did, err
}

// HandleExists reports whether a handle is taken.
func (s *Store) HandleExists(ctx context.Context, handle string) (bool, error) {
	_, err := s.DIDForHandle(ctx, handle)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// CreateAccount inserts the account row.
func (t *Tx) CreateAccount(a *Account) error {
	var email any
	if a.Email != "" {
		email = strings.ToLower(a.Email)
	}
	if a.CreatedAt == "" {
		a.CreatedAt = t.now.UTC().Format(time.RFC3339Nano)
	}
	_, err := t.exec(`INSERT INTO accounts (did, handle, email, password_hash, signing_key, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		a.DID, strings.ToLower(a.Handle), email, a.PasswordHash, a.SigningKey, StatusActive, a.CreatedAt)
	if err != nil {
		switch {
		case sqlitedb.IsUniqueViolation(err, "accounts.handle"):
			return ErrHandleTaken
		case sqlitedb.IsUniqueViolation(err, "accounts.email"):
			return ErrEmailTaken
		}
		return fmt.Errorf("inserting account: %w", err)
	}
	return nil
}

// SetAccountStatus changes an account's status.
func (t *Tx) SetAccountStatus(did, status string) error {
	res, err := t.exec(`UPDATE accounts SET status = ? WHERE did = ?`, status, did)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// SetHandle changes an account's handle.
func (t *Tx) SetHandle(did, handle string) error {
	_, err := t.exec(`UPDATE accounts SET handle = ? WHERE did = ?`, strings.ToLower(handle), did)
	if sqlitedb.IsUniqueViolation(err, "accounts.handle") {
		return ErrHandleTaken
	}
	return err
}

// ListedRepo is one row of com.atproto.sync.listRepos.
type ListedRepo struct {
	DID    string
	Head   []byte
	Rev    string
	Status string
}

// ListRepos pages through repositories ordered by DID, after cursor.
func (s *Store) ListRepos(ctx context.Context, cursor string, limit int) ([]ListedRepo, error) {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT r.did, r.commit_cid, r.rev, a.status FROM repos r JOIN accounts a ON a.did = r.did WHERE r.did > ? ORDER BY r.did LIMIT ?`, cursor, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ListedRepo
	for rows.Next() {
		var r ListedRepo
		if err := rows.Scan(&r.DID, &r.Head, &r.Rev, &r.Status); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// DeleteAccountData removes an account's repository, records, sessions, app passwords,
// preferences, blob rows and firehose events (the caller appends the final #account
// deleted event after this), frees its handle (the row keeps the DID, so it is not
// reused by accident, with the DID itself in the handle column, which no handle can
// equal) and marks the account deleted. It returns the blob CIDs whose bytes to remove.
// Events have no index by DID (it would cost every commit); the scan runs only here.
func (t *Tx) DeleteAccountData(did string) ([][]byte, error) {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT cid FROM blobs WHERE did = ?`, did)
	if err != nil {
		return nil, err
	}
	var blobs [][]byte
	for rows.Next() {
		var c []byte
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return nil, err
		}
		blobs = append(blobs, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	t.s.recent.purged = append(t.s.recent.purged, did)
	for _, q := range []string{
		`DELETE FROM records WHERE did = ?`,
		`DELETE FROM record_blobs WHERE did = ?`,
		`DELETE FROM blobs WHERE did = ?`,
		`DELETE FROM repos WHERE did = ?`,
		`DELETE FROM refresh_tokens WHERE did = ?`,
		`DELETE FROM app_passwords WHERE did = ?`,
		`DELETE FROM preferences WHERE did = ?`,
		`DELETE FROM email_tokens WHERE did = ?`,
		`DELETE FROM events WHERE did = ?`, // and from the in-memory window, once durable
		`DELETE FROM takedowns WHERE did = ?`,
		`UPDATE accounts SET status = 'deleted', handle = did, email = NULL, password_hash = '', signing_key = x'' WHERE did = ?`,
	} {
		if _, err := t.exec(q, did); err != nil {
			return nil, fmt.Errorf("deleting account data: %w", err)
		}
	}
	return blobs, nil
}

// SetDeleteAfter schedules (or, with the zero time, cancels) the deletion of a
// deactivated account.
func (t *Tx) SetDeleteAfter(did string, at time.Time) error {
	var v any
	if !at.IsZero() {
		v = at.UnixMilli()
	}
	_, err := t.exec(`UPDATE accounts SET delete_after_ms = ? WHERE did = ?`, v, did)
	return err
}

// DeletionDue lists deactivated accounts whose scheduled deletion time has passed.
func (s *Store) DeletionDue(ctx context.Context, now time.Time, limit int) ([]string, error) {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT did FROM accounts WHERE status = 'deactivated' AND delete_after_ms IS NOT NULL AND delete_after_ms <= ? LIMIT ?`, now.UnixMilli(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// StillDueForDeletion reports, inside the deleting transaction, that did is still
// deactivated with its deletion time passed (it may have reactivated meanwhile).
func (t *Tx) StillDueForDeletion(did string) (bool, error) {
	var n int
	err := t.queryRow(`SELECT count(*) FROM accounts WHERE did = ? AND status = 'deactivated' AND delete_after_ms IS NOT NULL AND delete_after_ms <= ?`, did, t.now.UnixMilli()).Scan(&n)
	return n > 0, err
}

// MarkSignedAway records that a PLC operation moving did elsewhere was signed now
// (the zero time clears the mark).
func (t *Tx) MarkSignedAway(did string, at time.Time) error {
	var v any
	if !at.IsZero() {
		v = at.UnixMilli()
	}
	_, err := t.exec(`UPDATE accounts SET signed_away_ms = ? WHERE did = ?`, v, did)
	return err
}

// SignedAway lists active accounts with a signed-away mark, and when it was set.
func (s *Store) SignedAway(ctx context.Context, limit int) (map[string]time.Time, error) {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT did, signed_away_ms FROM accounts WHERE status = 'active' AND signed_away_ms IS NOT NULL LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var did string
		var ms int64
		if err := rows.Scan(&did, &ms); err != nil {
			return nil, err
		}
		out[did] = time.UnixMilli(ms)
	}
	return out, rows.Err()
}

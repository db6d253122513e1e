package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hearth-social/hearth/internal/sqlitedb"
)

// ErrAppPasswordExists: the account already has an app password with that name.
var ErrAppPasswordExists = errors.New("app password name already used")

// RefreshToken is a stored, revocable refresh session.
type RefreshToken struct {
	ID          string
	DID         string
	AppPassword string // name of the app password the session was made with, or ""
	Scope       string // the access scope the session grants ("" on rows made before scopes were stored)
	Expires     time.Time
}

// PutRefreshToken stores a new refresh token.
func (t *Tx) PutRefreshToken(r RefreshToken) error {
	_, err := t.exec(`INSERT INTO refresh_tokens (id, did, app_password, scope, expires_ms) VALUES (?, ?, ?, ?, ?)`,
		r.ID, r.DID, nullable(r.AppPassword), nullable(r.Scope), r.Expires.UnixMilli())
	return err
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// RotateRefreshToken marks refresh token id as replaced by newID and returns it, so the
// caller can store the replacement in the same Tx. The old token stays valid for grace
// (no longer than it would have anyway): a second refresh with it in that window gets the
// same replacement back (reused is true, nothing new is stored), so two app tabs
// refreshing at once keep one session instead of ending it. ErrNotFound if the token was
// never stored, was revoked, has expired, or its replacement has since been revoked.
func (t *Tx) RotateRefreshToken(id, newID string, grace time.Duration) (old *RefreshToken, next string, reused bool, err error) {
	var r RefreshToken
	var app, scope, nextID sql.NullString
	var ms int64
	err = t.queryRow(`SELECT did, app_password, scope, next_id, expires_ms FROM refresh_tokens WHERE id = ?`, id).Scan(&r.DID, &app, &scope, &nextID, &ms)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", false, ErrNotFound
	}
	if err != nil {
		return nil, "", false, err
	}
	r.ID, r.AppPassword, r.Scope, r.Expires = id, app.String, scope.String, time.UnixMilli(ms)
	if !t.now.Before(r.Expires) {
		_, err := t.exec(`DELETE FROM refresh_tokens WHERE id = ?`, id)
		if err != nil {
			return nil, "", false, err
		}
		return nil, "", false, ErrNotFound
	}
	if nextID.Valid {
		// Within the grace period: hand out the replacement again, if it still stands
		// and has not been rotated itself (then this token is stale).
		var n int
		if err := t.queryRow(`SELECT count(*) FROM refresh_tokens WHERE id = ? AND next_id IS NULL`, nextID.String).Scan(&n); err != nil {
			return nil, "", false, err
		}
		if n == 0 {
			return nil, "", false, ErrNotFound
		}
		return &r, nextID.String, true, nil
	}
	until := t.now.Add(grace)
	if until.After(r.Expires) {
		until = r.Expires
	}
	if _, err := t.exec(`UPDATE refresh_tokens SET next_id = ?, expires_ms = ? WHERE id = ?`, newID, until.UnixMilli(), id); err != nil {
		return nil, "", false, err
	}
	return &r, newID, false, nil
}

// RefreshTokenExpiry returns when a stored refresh token expires (ErrNotFound if it is
// not stored).
func (t *Tx) RefreshTokenExpiry(id string) (time.Time, error) {
	var ms int64
	err := t.queryRow(`SELECT expires_ms FROM refresh_tokens WHERE id = ?`, id).Scan(&ms)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, ErrNotFound
	}
	return time.UnixMilli(ms), err
}

// RevokeSessions ends every session and app password of an account (takedown,
// deletion).
func (t *Tx) RevokeSessions(did string) error {
	for _, q := range []string{`DELETE FROM refresh_tokens WHERE did = ?`, `DELETE FROM app_passwords WHERE did = ?`,
		`DELETE FROM oauth_tokens WHERE did = ?`, `DELETE FROM web_sessions WHERE did = ?`} {
		if _, err := t.exec(q, did); err != nil {
			return fmt.Errorf("revoking sessions: %w", err)
		}
	}
	return nil
}

// DeleteRefreshToken revokes one refresh session: the token and the rotated tokens still
// in their grace period that lead to it.
func (t *Tx) DeleteRefreshToken(id string) error {
	_, err := t.exec(`DELETE FROM refresh_tokens WHERE id = ? OR next_id = ?`, id, id)
	return err
}

// MaxAppPasswords is how many app passwords one account may hold (as the reference PDS).
const MaxAppPasswords = 25

// ErrTooManyAppPasswords: the account already holds MaxAppPasswords.
var ErrTooManyAppPasswords = errors.New("too many app passwords")

// AppPassword is a named, separately revocable password.
type AppPassword struct {
	Name string
	// Lookup is the keyed hash the password is found by; PasswordHash is set instead
	// (scrypt) only on rows made before lookups existed.
	Lookup       []byte
	PasswordHash string
	Privileged   bool
	CreatedAt    string
}

// PutAppPassword stores an app password, refusing more than MaxAppPasswords per account.
func (t *Tx) PutAppPassword(did string, p AppPassword) error {
	var n int
	if err := t.queryRow(`SELECT count(*) FROM app_passwords WHERE did = ?`, did).Scan(&n); err != nil {
		return err
	}
	if n >= MaxAppPasswords {
		return ErrTooManyAppPasswords
	}
	_, err := t.exec(`INSERT INTO app_passwords (did, name, lookup, password_hash, privileged, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		did, p.Name, p.Lookup, p.PasswordHash, p.Privileged, p.CreatedAt)
	if sqlitedb.IsUniqueViolation(err) {
		return ErrAppPasswordExists
	}
	return err
}

// AppPasswordByLookup finds an account's app password by its keyed hash.
func (s *Store) AppPasswordByLookup(ctx context.Context, did string, lookup []byte) (*AppPassword, error) {
	var p AppPassword
	err := s.db.Read.QueryRowContext(ctx, `SELECT name, lookup, password_hash, privileged, created_at FROM app_passwords WHERE did = ? AND lookup = ?`, did, lookup).
		Scan(&p.Name, &p.Lookup, &p.PasswordHash, &p.Privileged, &p.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// SetAppPasswordLookup gives a pre-lookup (scrypt) app password its keyed hash, once its
// password has been seen.
func (t *Tx) SetAppPasswordLookup(did, name string, lookup []byte) error {
	_, err := t.exec(`UPDATE app_passwords SET lookup = ?, password_hash = '' WHERE did = ? AND name = ?`, lookup, did, name)
	return err
}

// DeleteAppPassword revokes an app password and every session made with it.
func (t *Tx) DeleteAppPassword(did, name string) error {
	if _, err := t.exec(`DELETE FROM app_passwords WHERE did = ? AND name = ?`, did, name); err != nil {
		return err
	}
	_, err := t.exec(`DELETE FROM refresh_tokens WHERE did = ? AND app_password = ?`, did, name)
	return err
}

// AppPasswords lists an account's app passwords.
func (s *Store) AppPasswords(ctx context.Context, did string) ([]AppPassword, error) {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT name, lookup, password_hash, privileged, created_at FROM app_passwords WHERE did = ? ORDER BY created_at`, did)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AppPassword
	for rows.Next() {
		var p AppPassword
		if err := rows.Scan(&p.Name, &p.Lookup, &p.PasswordHash, &p.Privileged, &p.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// ErrAppPasswordExists: the account already has an app password with that name.
var ErrAppPasswordExists = errors.New("app password name already used")

// RefreshToken is a stored, revocable refresh session.
type RefreshToken struct {
	ID          string
	DID         string
	AppPassword string // name of the app password the session was made with, or ""
	Expires     time.Time
}

// PutRefreshToken stores a new refresh token.
func (t *Tx) PutRefreshToken(r RefreshToken) error {
	var app any
	if r.AppPassword != "" {
		app = r.AppPassword
	}
	_, err := t.exec(`INSERT INTO refresh_tokens (id, did, app_password, expires_ms) VALUES (?, ?, ?, ?)`, r.ID, r.DID, app, r.Expires.UnixMilli())
	return err
}

// TakeRefreshToken deletes a refresh token and returns it; ErrNotFound if it was not
// stored (already used, revoked) or has expired. Rotation is take + put in one Tx.
func (t *Tx) TakeRefreshToken(id string) (*RefreshToken, error) {
	var r RefreshToken
	var app sql.NullString
	var ms int64
	err := t.queryRow(`DELETE FROM refresh_tokens WHERE id = ? RETURNING did, app_password, expires_ms`, id).Scan(&r.DID, &app, &ms)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	r.ID, r.AppPassword, r.Expires = id, app.String, time.UnixMilli(ms)
	if t.now.After(r.Expires) {
		return nil, ErrNotFound
	}
	return &r, nil
}

// DeleteRefreshToken revokes one refresh token.
func (t *Tx) DeleteRefreshToken(id string) error {
	_, err := t.exec(`DELETE FROM refresh_tokens WHERE id = ?`, id)
	return err
}

// AppPassword is a named, separately revocable password.
type AppPassword struct {
	Name         string
	PasswordHash string
	Privileged   bool
	CreatedAt    string
}

// PutAppPassword stores an app password.
func (t *Tx) PutAppPassword(did string, p AppPassword) error {
	_, err := t.exec(`INSERT INTO app_passwords (did, name, password_hash, privileged, created_at) VALUES (?, ?, ?, ?, ?)`,
		did, p.Name, p.PasswordHash, p.Privileged, p.CreatedAt)
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return ErrAppPasswordExists
	}
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
	rows, err := s.db.Read.QueryContext(ctx, `SELECT name, password_hash, privileged, created_at FROM app_passwords WHERE did = ? ORDER BY created_at`, did)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AppPassword
	for rows.Next() {
		var p AppPassword
		if err := rows.Scan(&p.Name, &p.PasswordHash, &p.Privileged, &p.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

package store

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/hearth-social/hearth/internal/sqlitedb"
)

// Account reads an account inside the transaction (what a check-then-write needs).
func (t *Tx) Account(did string) (*Account, error) {
	return scanAccount(t.queryRow(`SELECT `+accountCols+` FROM accounts WHERE did = ?`, did))
}

// ConfirmEmail marks the account's address confirmed, if it is still email (a change of
// address in between leaves it unconfirmed: ErrNotFound).
func (t *Tx) ConfirmEmail(did, email string) error {
	res, err := t.exec(`UPDATE accounts SET email_confirmed_ms = ? WHERE did = ? AND email = ?`,
		t.now.UnixMilli(), did, strings.ToLower(email))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// UpdateEmail sets the account's address. A new address is unconfirmed: its
// confirmation is cleared, the email second factor switched off, and the tokens mailed to
// the old address for confirming or changing it dropped. authFactor, when given, sets the
// second factor (the caller checks the address is confirmed). ErrEmailTaken when another
// account holds the address.
func (t *Tx) UpdateEmail(did, email string, authFactor *bool) error {
	email = strings.ToLower(email)
	var cur sql.NullString
	if err := t.queryRow(`SELECT email FROM accounts WHERE did = ?`, did).Scan(&cur); errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	if cur.String != email {
		_, err := t.exec(`UPDATE accounts SET email = ?, email_confirmed_ms = NULL, email_auth_factor = 0 WHERE did = ?`, email, did)
		if sqlitedb.IsUniqueViolation(err, "accounts.email") {
			return ErrEmailTaken
		} else if err != nil {
			return err
		}
		if _, err := t.exec(`DELETE FROM email_tokens WHERE did = ? AND purpose IN ('confirm_email', 'update_email')`, did); err != nil {
			return err
		}
	}
	if authFactor != nil {
		if _, err := t.exec(`UPDATE accounts SET email_auth_factor = ? WHERE did = ?`, *authFactor, did); err != nil {
			return err
		}
	}
	return nil
}

// SetPassword replaces the account's password hash and notes when (PasswordsChanged).
func (t *Tx) SetPassword(did, hash string) error {
	res, err := t.exec(`UPDATE accounts SET password_hash = ?, password_changed_ms = ? WHERE did = ?`, hash, t.now.UnixMilli(), did)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// PasswordsChanged returns the accounts whose password was changed (SetPassword) after
// since, with when.
func (s *Store) PasswordsChanged(ctx context.Context, since time.Time) (map[string]time.Time, error) {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT did, password_changed_ms FROM accounts WHERE password_changed_ms > ?`, since.UnixMilli())
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

// DeleteEmailTokens drops every mailed token of the account.
func (t *Tx) DeleteEmailTokens(did string) error {
	_, err := t.exec(`DELETE FROM email_tokens WHERE did = ?`, did)
	return err
}

// TakeEmailTokenFor is TakeEmailToken for a token that names no account (a password
// reset): it finds the account whose token for purpose it is, consumes the token and
// returns the account's DID. The token is looked up by its SHA-256, so lookup timing
// says nothing about the token; the stored hash is compared in constant time anyway.
func (t *Tx) TakeEmailTokenFor(purpose, token string) (string, error) {
	want := emailTokenHash(token)
	var did string
	var hash []byte
	var ms int64
	err := t.queryRow(`SELECT did, token_hash, expires_ms FROM email_tokens WHERE purpose = ? AND token_hash = ?`, purpose, want).Scan(&did, &hash, &ms)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	} else if err != nil {
		return "", err
	}
	if subtle.ConstantTimeCompare(hash, want) != 1 {
		return "", ErrNotFound
	}
	if _, err := t.exec(`DELETE FROM email_tokens WHERE did = ? AND purpose = ?`, did, purpose); err != nil {
		return "", err
	}
	if !t.now.Before(time.UnixMilli(ms)) {
		return did, ErrTokenExpired
	}
	return did, nil
}

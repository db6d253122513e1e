package store

import (
	"context"
	"database/sql"
	"errors"
)

// Preferences returns did's stored preferences: a JSON array, "[]" when none were set.
func (s *Store) Preferences(ctx context.Context, did string) ([]byte, error) {
	var b []byte
	err := s.db.Read.QueryRowContext(ctx, `SELECT prefs FROM preferences WHERE did = ?`, did).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return []byte("[]"), nil
	}
	return b, err
}

// Preferences is Store.Preferences inside a write transaction (for read-modify-write).
func (t *Tx) Preferences(did string) ([]byte, error) {
	var b []byte
	err := t.queryRow(`SELECT prefs FROM preferences WHERE did = ?`, did).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return []byte("[]"), nil
	}
	return b, err
}

// PutPreferences replaces did's preferences with prefs (a JSON array).
func (t *Tx) PutPreferences(did string, prefs []byte) error {
	_, err := t.exec(`INSERT INTO preferences (did, prefs, updated_ms) VALUES (?, ?, ?)
		ON CONFLICT (did) DO UPDATE SET prefs = excluded.prefs, updated_ms = excluded.updated_ms`,
		did, prefs, t.now.UnixMilli())
	return err
}

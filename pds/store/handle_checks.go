package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
)

// HandleCheck is the verification state of an account's custom-domain handle.
type HandleCheck struct {
	DID    string
	Handle string // the account's current handle
	// Invalid: the last check found the handle no longer points at the account.
	Invalid bool
	// Failures counts the checks in a row that got no answer.
	Failures  int
	CheckedMs int64
}

// WatchHandle records that did's handle is a custom-domain handle, verified now.
func (t *Tx) WatchHandle(did, handle string) error {
	_, err := t.exec(`INSERT INTO handle_checks (did, handle, checked_ms, invalid, failures) VALUES (?, ?, ?, 0, 0)
		ON CONFLICT (did) DO UPDATE SET handle = excluded.handle, checked_ms = excluded.checked_ms, invalid = 0, failures = 0`,
		did, strings.ToLower(handle), t.now.UnixMilli())
	return err
}

// UnwatchHandle forgets did's handle checks (its handle is under this PDS's domains).
func (t *Tx) UnwatchHandle(did string) error {
	_, err := t.exec(`DELETE FROM handle_checks WHERE did = ?`, did)
	return err
}

// RecordHandleCheck stores the outcome of checking handle for did, if handle is still
// the account's handle and the handle is still watched. It reports whether the row
// changed from valid to invalid or back (changed is false when nothing was written).
func (t *Tx) RecordHandleCheck(did, handle string, invalid bool, failures int, checkedMs int64) (changed bool, err error) {
	var was bool
	err = t.queryRow(`SELECT c.invalid FROM handle_checks c JOIN accounts a ON a.did = c.did WHERE c.did = ? AND a.handle = ?`,
		did, strings.ToLower(handle)).Scan(&was)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if _, err := t.exec(`UPDATE handle_checks SET handle = ?, checked_ms = ?, invalid = ?, failures = ? WHERE did = ?`,
		strings.ToLower(handle), checkedMs, invalid, failures, did); err != nil {
		return false, err
	}
	return was != invalid, nil
}

// HandleCheckFor returns did's handle check (ErrNotFound: its handle is not a watched
// custom-domain handle).
func (s *Store) HandleCheckFor(ctx context.Context, did string) (*HandleCheck, error) {
	var c HandleCheck
	err := s.db.Read.QueryRowContext(ctx, `SELECT c.did, a.handle, c.invalid, c.failures, c.checked_ms
		FROM handle_checks c JOIN accounts a ON a.did = c.did WHERE c.did = ?`, did).Scan(&c.DID, &c.Handle, &c.Invalid, &c.Failures, &c.CheckedMs)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return &c, err
}

// HandleChecksDue returns up to limit watched handles of active accounts last checked
// before beforeMs, the longest unchecked first.
func (s *Store) HandleChecksDue(ctx context.Context, beforeMs int64, limit int) ([]HandleCheck, error) {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT c.did, a.handle, c.invalid, c.failures, c.checked_ms
		FROM handle_checks c JOIN accounts a ON a.did = c.did
		WHERE c.checked_ms < ? AND a.status = ? ORDER BY c.checked_ms LIMIT ?`, beforeMs, StatusActive, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []HandleCheck
	for rows.Next() {
		var c HandleCheck
		if err := rows.Scan(&c.DID, &c.Handle, &c.Invalid, &c.Failures, &c.CheckedMs); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

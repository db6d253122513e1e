package store

import (
	"context"
	"database/sql"
	"errors"
)

// ErrInviteUnavailable: the invite code does not exist, is disabled or used up.
var ErrInviteUnavailable = errors.New("invite code not available")

// InviteCode is a code with its uses.
type InviteCode struct {
	Code       string
	ForAccount string
	CreatedBy  string
	Available  int
	Disabled   bool
	CreatedAt  string
	Uses       []InviteUse
}

// InviteUse is one account created with a code.
type InviteUse struct {
	UsedBy string
	UsedAt string
}

// PutInviteCode stores a new invite code.
func (t *Tx) PutInviteCode(c InviteCode) error {
	_, err := t.exec(`INSERT INTO invite_codes (code, for_account, created_by, available, created_at) VALUES (?, ?, ?, ?, ?)`,
		c.Code, c.ForAccount, c.CreatedBy, c.Available, c.CreatedAt)
	return err
}

// UseInviteCode consumes one use of a code, atomically with the account creation that
// runs in the same Tx (two sign-ups cannot both take the last use).
func (t *Tx) UseInviteCode(code, usedBy, usedAt string) error {
	var available, used int
	var disabled bool
	err := t.queryRow(`SELECT available, disabled, (SELECT count(*) FROM invite_code_uses WHERE code = ?1) FROM invite_codes WHERE code = ?1`, code).Scan(&available, &disabled, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrInviteUnavailable
	}
	if err != nil {
		return err
	}
	if disabled || used >= available {
		return ErrInviteUnavailable
	}
	_, err = t.exec(`INSERT INTO invite_code_uses (code, used_by, used_at) VALUES (?, ?, ?)`, code, usedBy, usedAt)
	return err
}

// InviteCodesFor lists the codes made for an account, with their uses.
func (s *Store) InviteCodesFor(ctx context.Context, did string) ([]InviteCode, error) {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT code, for_account, created_by, available, disabled, created_at FROM invite_codes WHERE for_account = ? ORDER BY created_at`, did)
	if err != nil {
		return nil, err
	}
	var out []InviteCode
	for rows.Next() {
		var c InviteCode
		if err := rows.Scan(&c.Code, &c.ForAccount, &c.CreatedBy, &c.Available, &c.Disabled, &c.CreatedAt); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		urows, err := s.db.Read.QueryContext(ctx, `SELECT used_by, used_at FROM invite_code_uses WHERE code = ? ORDER BY used_at`, out[i].Code)
		if err != nil {
			return nil, err
		}
		out[i].Uses = []InviteUse{}
		for urows.Next() {
			var u InviteUse
			if err := urows.Scan(&u.UsedBy, &u.UsedAt); err != nil {
				urows.Close()
				return nil, err
			}
			out[i].Uses = append(out[i].Uses, u)
		}
		urows.Close()
	}
	return out, nil
}

// Secret returns a named server secret, creating it with gen on first use.
func (s *Store) Secret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	var v []byte
	err := s.db.Read.QueryRowContext(ctx, `SELECT value FROM secrets WHERE name = ?`, name).Scan(&v)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	fresh, err := gen()
	if err != nil {
		return nil, err
	}
	err = s.Write(ctx, func(t *Tx) error {
		if _, err := t.exec(`INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)`, name, fresh); err != nil {
			return err
		}
		return t.queryRow(`SELECT value FROM secrets WHERE name = ?`, name).Scan(&v)
	})
	return v, err
}

// InviteRemaining returns how many uses a code has left; ErrInviteUnavailable when it
// does not exist, is disabled or is used up.
func (s *Store) InviteRemaining(ctx context.Context, code string) (int, error) {
	var available, used int
	var disabled bool
	err := s.db.Read.QueryRowContext(ctx, `SELECT available, disabled, (SELECT count(*) FROM invite_code_uses WHERE code = ?1) FROM invite_codes WHERE code = ?1`, code).Scan(&available, &disabled, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrInviteUnavailable
	}
	if err != nil {
		return 0, err
	}
	if disabled || used >= available {
		return 0, ErrInviteUnavailable
	}
	return available - used, nil
}

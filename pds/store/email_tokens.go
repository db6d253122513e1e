package store

import (
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// ErrTokenExpired: the emailed token was right but is past its expiry.
var ErrTokenExpired = errors.New("token has expired")

func emailTokenHash(token string) []byte {
	h := sha256.Sum256([]byte(strings.ToUpper(strings.TrimSpace(token))))
	return h[:]
}

// PutEmailToken stores the account's token for purpose, replacing an earlier one.
func (t *Tx) PutEmailToken(did, purpose, token string, expires time.Time) error {
	_, err := t.exec(`INSERT INTO email_tokens (did, purpose, token_hash, expires_ms) VALUES (?, ?, ?, ?)
		ON CONFLICT (did, purpose) DO UPDATE SET token_hash = excluded.token_hash, expires_ms = excluded.expires_ms`,
		did, purpose, emailTokenHash(token), expires.UnixMilli())
	return err
}

// TakeEmailToken checks token against the account's token for purpose and, if it
// matches and has not expired, deletes it (tokens are single-use). ErrNotFound when
// there is none or it does not match; ErrTokenExpired when it matches too late.
func (t *Tx) TakeEmailToken(did, purpose, token string) error {
	var hash []byte
	var ms int64
	err := t.queryRow(`SELECT token_hash, expires_ms FROM email_tokens WHERE did = ? AND purpose = ?`, did, purpose).Scan(&hash, &ms)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(hash, emailTokenHash(token)) != 1 {
		return ErrNotFound
	}
	if _, err := t.exec(`DELETE FROM email_tokens WHERE did = ? AND purpose = ?`, did, purpose); err != nil {
		return err
	}
	if !t.now.Before(time.UnixMilli(ms)) {
		return ErrTokenExpired
	}
	return nil
}

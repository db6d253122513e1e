package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// OAuthRequest is a pushed authorization request (pds/oauth), from PAR until its code is
// exchanged. Params is the request as JSON; DID and CodeHash are set once the account
// holder consented.
type OAuthRequest struct {
	ID          string
	ClientID    string
	Params      []byte
	DPoPJKT     string
	ClientAuth  string
	Expires     time.Time
	DID         string
	DeviceID    string
	CodeHash    []byte
	CodeExpires time.Time
	Used        bool
}

const oauthRequestCols = `id, client_id, params, dpop_jkt, client_auth, expires_ms, did, device_id, code_hash, code_expires_ms, used`

func scanOAuthRequest(row interface{ Scan(...any) error }) (*OAuthRequest, error) {
	var r OAuthRequest
	var exp int64
	var did, dev sql.NullString
	var codeExp sql.NullInt64
	err := row.Scan(&r.ID, &r.ClientID, &r.Params, &r.DPoPJKT, &r.ClientAuth, &exp, &did, &dev, &r.CodeHash, &codeExp, &r.Used)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	r.Expires, r.DID, r.DeviceID = time.UnixMilli(exp), did.String, dev.String
	if codeExp.Valid {
		r.CodeExpires = time.UnixMilli(codeExp.Int64)
	}
	return &r, nil
}

// PutOAuthRequest stores a new authorization request and drops expired ones.
func (t *Tx) PutOAuthRequest(r OAuthRequest) error {
	if _, err := t.exec(`DELETE FROM oauth_requests WHERE expires_ms < ?`, t.now.UnixMilli()); err != nil {
		return err
	}
	_, err := t.exec(`INSERT INTO oauth_requests (id, client_id, params, dpop_jkt, client_auth, expires_ms) VALUES (?, ?, ?, ?, ?, ?)`,
		r.ID, r.ClientID, r.Params, r.DPoPJKT, r.ClientAuth, r.Expires.UnixMilli())
	return err
}

// OAuthRequest returns a stored, unexpired authorization request.
func (s *Store) OAuthRequest(ctx context.Context, id string) (*OAuthRequest, error) {
	r, err := scanOAuthRequest(s.db.Read.QueryRowContext(ctx, `SELECT `+oauthRequestCols+` FROM oauth_requests WHERE id = ?`, id))
	if err != nil {
		return nil, err
	}
	if !time.Now().Before(r.Expires) {
		return nil, ErrNotFound
	}
	return r, nil
}

// AuthorizeOAuthRequest records the account's consent and the code that redeems it.
func (t *Tx) AuthorizeOAuthRequest(id, did, deviceID string, codeHash []byte, codeExpires time.Time) error {
	res, err := t.exec(`UPDATE oauth_requests SET did = ?, device_id = ?, code_hash = ?, code_expires_ms = ?, expires_ms = max(expires_ms, ?)
		WHERE id = ? AND code_hash IS NULL AND expires_ms > ?`, did, deviceID, codeHash, codeExpires.UnixMilli(), codeExpires.UnixMilli(), id, t.now.UnixMilli())
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteOAuthRequest drops a request (denied, or abandoned).
func (t *Tx) DeleteOAuthRequest(id string) error {
	_, err := t.exec(`DELETE FROM oauth_requests WHERE id = ?`, id)
	return err
}

// TakeOAuthCode marks the request a code belongs to as used and returns it. A code
// presented again returns the request with Used already true: the caller then revokes
// what the first use issued (RFC 6749 section 4.1.2). ErrNotFound for unknown or expired
// codes.
func (t *Tx) TakeOAuthCode(codeHash []byte) (*OAuthRequest, error) {
	r, err := scanOAuthRequest(t.queryRow(`SELECT `+oauthRequestCols+` FROM oauth_requests WHERE code_hash = ?`, codeHash))
	if err != nil {
		return nil, err
	}
	if r.Used {
		return r, nil
	}
	if !t.now.Before(r.CodeExpires) {
		return nil, ErrNotFound
	}
	if _, err := t.exec(`UPDATE oauth_requests SET used = 1 WHERE id = ?`, r.ID); err != nil {
		return nil, err
	}
	return r, nil
}

// OAuthToken is one OAuth session: the refresh token (hashed) and what every access token
// issued for it carries. Access tokens name the session by ID and die with it.
type OAuthToken struct {
	ID          string
	DID         string
	ClientID    string
	ClientName  string
	ClientAuth  string
	Scope       string
	DPoPJKT     string
	RefreshHash []byte
	CodeHash    []byte
	DeviceID    string
	Created     time.Time
	Updated     time.Time
	Expires     time.Time
}

const oauthTokenCols = `id, did, client_id, client_name, client_auth, scope, dpop_jkt, refresh_hash, code_hash, device_id, created_ms, updated_ms, expires_ms`

func scanOAuthToken(row interface{ Scan(...any) error }) (*OAuthToken, error) {
	var o OAuthToken
	var dev sql.NullString
	var c, u, e int64
	err := row.Scan(&o.ID, &o.DID, &o.ClientID, &o.ClientName, &o.ClientAuth, &o.Scope, &o.DPoPJKT, &o.RefreshHash, &o.CodeHash, &dev, &c, &u, &e)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	o.DeviceID, o.Created, o.Updated, o.Expires = dev.String, time.UnixMilli(c), time.UnixMilli(u), time.UnixMilli(e)
	return &o, nil
}

// PutOAuthToken stores a new OAuth session.
func (t *Tx) PutOAuthToken(o OAuthToken) error {
	_, err := t.exec(`INSERT INTO oauth_tokens (`+oauthTokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		o.ID, o.DID, o.ClientID, o.ClientName, o.ClientAuth, o.Scope, o.DPoPJKT, o.RefreshHash, o.CodeHash, nullable(o.DeviceID),
		t.now.UnixMilli(), t.now.UnixMilli(), o.Expires.UnixMilli())
	return err
}

// OAuthTokenByID returns an unexpired OAuth session (ErrNotFound once revoked).
func (s *Store) OAuthTokenByID(ctx context.Context, id string) (*OAuthToken, error) {
	o, err := scanOAuthToken(s.db.Read.QueryRowContext(ctx, `SELECT `+oauthTokenCols+` FROM oauth_tokens WHERE id = ?`, id))
	if err != nil {
		return nil, err
	}
	if !time.Now().Before(o.Expires) {
		return nil, ErrNotFound
	}
	return o, nil
}

// OAuthTokenByRefresh finds the session a current refresh token belongs to.
func (t *Tx) OAuthTokenByRefresh(hash []byte) (*OAuthToken, error) {
	o, err := scanOAuthToken(t.queryRow(`SELECT `+oauthTokenCols+` FROM oauth_tokens WHERE refresh_hash = ?`, hash))
	if err != nil {
		return nil, err
	}
	if !t.now.Before(o.Expires) {
		return nil, ErrNotFound
	}
	return o, nil
}

// RefreshWasRotated reports which session a refresh token that was already rotated away
// belonged to ("" when it never was one).
func (t *Tx) RefreshWasRotated(hash []byte) (string, error) {
	var id string
	err := t.queryRow(`SELECT token_id FROM oauth_used_refresh WHERE hash = ?`, hash).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// RotateOAuthRefresh replaces a session's refresh token, remembering the old one so a
// second use of it is recognised.
func (t *Tx) RotateOAuthRefresh(id string, oldHash, newHash []byte) error {
	res, err := t.exec(`UPDATE oauth_tokens SET refresh_hash = ?, updated_ms = ? WHERE id = ? AND refresh_hash = ?`, newHash, t.now.UnixMilli(), id, oldHash)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	var exp int64
	if err := t.queryRow(`SELECT expires_ms FROM oauth_tokens WHERE id = ?`, id).Scan(&exp); err != nil {
		return err
	}
	_, err = t.exec(`INSERT OR REPLACE INTO oauth_used_refresh (hash, token_id, expires_ms) VALUES (?, ?, ?)`, oldHash, id, exp)
	return err
}

// RevokeOAuthToken ends one OAuth session (its access tokens are refused from now on).
func (t *Tx) RevokeOAuthToken(id string) error {
	if _, err := t.exec(`DELETE FROM oauth_tokens WHERE id = ?`, id); err != nil {
		return err
	}
	_, err := t.exec(`DELETE FROM oauth_used_refresh WHERE token_id = ? OR expires_ms < ?`, id, t.now.UnixMilli())
	return err
}

// RevokeOAuthByCode ends the session issued for a code (the code was presented twice).
func (t *Tx) RevokeOAuthByCode(codeHash []byte) error {
	_, err := t.exec(`DELETE FROM oauth_tokens WHERE code_hash = ?`, codeHash)
	return err
}

// RevokeOAuthClient ends every session an account granted one client.
func (t *Tx) RevokeOAuthClient(did, clientID string) error {
	_, err := t.exec(`DELETE FROM oauth_tokens WHERE did = ? AND client_id = ?`, did, clientID)
	return err
}

// RevokeOAuthAccount ends every OAuth session and browser sign-in of an account.
func (t *Tx) RevokeOAuthAccount(did string) error {
	for _, q := range []string{`DELETE FROM oauth_tokens WHERE did = ?`, `DELETE FROM web_sessions WHERE did = ?`} {
		if _, err := t.exec(q, did); err != nil {
			return err
		}
	}
	return nil
}

// OAuthTokens lists an account's unexpired OAuth sessions, newest first.
func (s *Store) OAuthTokens(ctx context.Context, did string) ([]OAuthToken, error) {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT `+oauthTokenCols+` FROM oauth_tokens WHERE did = ? AND expires_ms > ? ORDER BY updated_ms DESC`, did, time.Now().UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []OAuthToken
	for rows.Next() {
		o, err := scanOAuthToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *o)
	}
	return out, rows.Err()
}

// WebSession is a browser signed in to the authorization and account pages.
type WebSession struct {
	IDHash    []byte
	DeviceID  string
	DID       string
	UserAgent string
	IP        string
	Created   time.Time
	LastSeen  time.Time
	Expires   time.Time
}

const webSessionCols = `id_hash, device_id, did, user_agent, ip, created_ms, last_seen_ms, expires_ms`

func scanWebSession(row interface{ Scan(...any) error }) (*WebSession, error) {
	var w WebSession
	var c, l, e int64
	err := row.Scan(&w.IDHash, &w.DeviceID, &w.DID, &w.UserAgent, &w.IP, &c, &l, &e)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	w.Created, w.LastSeen, w.Expires = time.UnixMilli(c), time.UnixMilli(l), time.UnixMilli(e)
	return &w, nil
}

// PutWebSession stores a browser sign-in and drops expired ones.
func (t *Tx) PutWebSession(w WebSession) error {
	if _, err := t.exec(`DELETE FROM web_sessions WHERE expires_ms < ?`, t.now.UnixMilli()); err != nil {
		return err
	}
	_, err := t.exec(`INSERT INTO web_sessions (`+webSessionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		w.IDHash, w.DeviceID, w.DID, w.UserAgent, w.IP, t.now.UnixMilli(), t.now.UnixMilli(), w.Expires.UnixMilli())
	return err
}

// WebSession returns an unexpired browser sign-in by its hashed id.
func (s *Store) WebSession(ctx context.Context, idHash []byte) (*WebSession, error) {
	w, err := scanWebSession(s.db.Read.QueryRowContext(ctx, `SELECT `+webSessionCols+` FROM web_sessions WHERE id_hash = ?`, idHash))
	if err != nil {
		return nil, err
	}
	if !time.Now().Before(w.Expires) {
		return nil, ErrNotFound
	}
	return w, nil
}

// WebSessions lists an account's browser sign-ins, most recently seen first.
func (s *Store) WebSessions(ctx context.Context, did string) ([]WebSession, error) {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT `+webSessionCols+` FROM web_sessions WHERE did = ? AND expires_ms > ? ORDER BY last_seen_ms DESC`, did, time.Now().UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []WebSession
	for rows.Next() {
		w, err := scanWebSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *w)
	}
	return out, rows.Err()
}

// DeleteWebSessionDevice signs one browser out.
func (t *Tx) DeleteWebSessionDevice(did, deviceID string) error {
	_, err := t.exec(`DELETE FROM web_sessions WHERE did = ? AND device_id = ?`, did, deviceID)
	return err
}

// EndOtherSessions ends every legacy refresh session, OAuth session and browser sign-in
// of an account except the browser keepDevice (a password change from the account page).
func (t *Tx) EndOtherSessions(did, keepDevice string) error {
	for _, q := range []string{`DELETE FROM oauth_tokens WHERE did = ?`, `DELETE FROM refresh_tokens WHERE did = ?`} {
		if _, err := t.exec(q, did); err != nil {
			return err
		}
	}
	_, err := t.exec(`DELETE FROM web_sessions WHERE did = ? AND device_id != ?`, did, keepDevice)
	return err
}

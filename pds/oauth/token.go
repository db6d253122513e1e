package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/hearth-social/hearth/pds/store"
)

// accessClaims are the claims of Hearth's access tokens (typ at+jwt, RFC 9068).
type accessClaims struct {
	jwt.Claims
	Scope    string `json:"scope"`
	ClientID string `json:"client_id"`
	// Session is the OAuth session (oauth_tokens row) the token belongs to.
	Session string `json:"sid"`
	Cnf     struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	Sub          string `json:"sub"`
}

func (p *Provider) handleToken(w http.ResponseWriter, r *http.Request) {
	p.setNonce(w)
	resp, err := p.token(w, r)
	if err != nil {
		writeError(w, p.log, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) (*tokenResponse, error) {
	form, err := readForm(w, r)
	if err != nil {
		return nil, err
	}
	proof, perr := p.checkProof(r, p.endpoint("/oauth/token"), "")
	if perr != nil {
		return nil, perr
	}
	md, ca, err := p.authenticateClient(r.Context(), form)
	if err != nil {
		return nil, err
	}
	switch form.Get("grant_type") {
	case "authorization_code":
		return p.codeGrant(r.Context(), form, md, ca, proof)
	case "refresh_token":
		return p.refreshGrant(r.Context(), form, md, ca, proof)
	default:
		return nil, oerr(http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
	}
}

func (p *Provider) codeGrant(ctx context.Context, form url.Values, md *ClientMetadata, ca clientAuth, proof *Proof) (*tokenResponse, error) {
	code, verifier := form.Get("code"), form.Get("code_verifier")
	if code == "" || verifier == "" {
		return nil, invalidRequest("code and code_verifier are required")
	}
	codeHash := hashSecret(code)
	var req *store.OAuthRequest
	if err := p.store.Write(ctx, func(tx *store.Tx) error {
		var err error
		req, err = tx.TakeOAuthCode(codeHash)
		if err == nil && req.Used {
			// Presented again: whatever the first use issued is revoked (RFC 6749 4.1.2).
			return tx.RevokeOAuthByCode(codeHash)
		}
		return err
	}); errors.Is(err, store.ErrNotFound) {
		return nil, invalidGrant("code is unknown or has expired")
	} else if err != nil {
		return nil, err
	}
	if req.Used {
		return nil, invalidGrant("code was already used; the tokens issued for it are revoked")
	}
	var ar AuthRequest
	if err := json.Unmarshal(req.Params, &ar); err != nil {
		return nil, err
	}
	if req.ClientID != md.ClientID {
		return nil, invalidGrant("code was issued to another client")
	}
	if ru := form.Get("redirect_uri"); ru != ar.RedirectURI {
		return nil, invalidGrant("redirect_uri does not match the authorization request")
	}
	if parseClientAuth(req.ClientAuth).Method != ca.Method {
		return nil, invalidGrant("client authentication method differs from the authorization request")
	}
	if req.DPoPJKT != proof.JKT {
		return nil, invalidDPoP("DPoP key differs from the one the authorization request was bound to")
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(ar.CodeChallenge)) != 1 {
		return nil, invalidGrant("code_verifier does not match the code_challenge")
	}
	refresh, err := randomToken("ref-", 32)
	if err != nil {
		return nil, err
	}
	sid, err := randomToken("", 18)
	if err != nil {
		return nil, err
	}
	// The session holds the permissions its include: scopes stand for (permset.go).
	scope, err := p.expandScope(ctx, ar.Scope)
	if err != nil {
		return nil, oerr(http.StatusBadRequest, "invalid_scope", "%v", err)
	}
	ttl := PublicSessionTTL
	if md.Confidential() {
		ttl = ConfidentialSessionTTL
	}
	sess := store.OAuthToken{ID: sid, DID: req.DID, ClientID: md.ClientID, ClientName: md.ClientName, ClientAuth: ca.String(),
		Scope: scope, DPoPJKT: proof.JKT, RefreshHash: hashSecret(refresh), CodeHash: codeHash, DeviceID: req.DeviceID,
		Expires: p.now().Add(ttl)}
	if err := p.store.Write(ctx, func(tx *store.Tx) error { return tx.PutOAuthToken(sess) }); err != nil {
		return nil, err
	}
	return p.issue(&sess, refresh)
}

func (p *Provider) refreshGrant(ctx context.Context, form url.Values, md *ClientMetadata, ca clientAuth, proof *Proof) (*tokenResponse, error) {
	old := form.Get("refresh_token")
	if old == "" {
		return nil, invalidRequest("refresh_token is required")
	}
	oldHash := hashSecret(old)
	next, err := randomToken("ref-", 32)
	if err != nil {
		return nil, err
	}
	var sess *store.OAuthToken
	var replayed bool
	var refuse *Error
	err = p.store.Write(ctx, func(tx *store.Tx) error {
		var err error
		sess, err = tx.OAuthTokenByRefresh(oldHash)
		if errors.Is(err, store.ErrNotFound) {
			// A refresh token rotated away and presented again: the session ends (the
			// revocation is committed, hence no error from this function).
			id, err := tx.RefreshWasRotated(oldHash)
			if err != nil || id == "" {
				return err
			}
			replayed = true
			return tx.RevokeOAuthToken(id)
		} else if err != nil {
			return err
		}
		switch prev := parseClientAuth(sess.ClientAuth); {
		case sess.ClientID != md.ClientID:
			refuse = invalidGrant("refresh token was issued to another client")
		case prev.Method != ca.Method || prev.KID != ca.KID:
			refuse = invalidGrant("client authentication differs from the one the session was made with")
		case sess.DPoPJKT != proof.JKT:
			refuse = invalidDPoP("DPoP key differs from the one the session is bound to")
		}
		if refuse != nil {
			return nil
		}
		if err := tx.RotateOAuthRefresh(sess.ID, oldHash, hashSecret(next)); err != nil {
			return err
		}
		sess.RefreshHash = hashSecret(next)
		return nil
	})
	switch {
	case err != nil:
		return nil, err
	case replayed:
		p.log.Warn("oauth refresh token replayed: session revoked", "client_id", md.ClientID)
		return nil, invalidGrant("refresh token was already used; the session is revoked")
	case sess == nil:
		return nil, invalidGrant("refresh token is unknown, expired or revoked")
	case refuse != nil:
		return nil, refuse
	}
	return p.issue(sess, next)
}

// issue signs an access token for a session and answers with it and refresh.
func (p *Provider) issue(sess *store.OAuthToken, refresh string) (*tokenResponse, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: p.key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", p.kid))
	if err != nil {
		return nil, err
	}
	jti, err := randomToken("", 16)
	if err != nil {
		return nil, err
	}
	now := p.now()
	exp := now.Add(AccessTokenTTL)
	if exp.After(sess.Expires) {
		exp = sess.Expires
	}
	var c accessClaims
	c.Issuer, c.Subject, c.Audience, c.ID = p.cfg.Issuer, sess.DID, jwt.Audience{p.cfg.Audience}, jti
	c.IssuedAt, c.Expiry = jwt.NewNumericDate(now), jwt.NewNumericDate(exp)
	c.Scope, c.ClientID, c.Session, c.Cnf.JKT = sess.Scope, sess.ClientID, sess.ID, sess.DPoPJKT
	at, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		return nil, err
	}
	return &tokenResponse{AccessToken: at, TokenType: "DPoP", ExpiresIn: int(exp.Sub(now).Seconds()),
		RefreshToken: refresh, Scope: sess.Scope, Sub: sess.DID}, nil
}

// parseAccess verifies an access token's signature, issuer, audience and expiry.
func (p *Provider) parseAccess(token string) (*accessClaims, error) {
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(tok.Headers) != 1 {
		return nil, errors.New("not an ES256 JWT")
	}
	if typ, _ := tok.Headers[0].ExtraHeaders[jose.HeaderType].(string); typ != "at+jwt" {
		return nil, errors.New("not an access token")
	}
	var c accessClaims
	if err := tok.Claims(&p.key.PublicKey, &c); err != nil {
		return nil, err
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: p.cfg.Issuer, AnyAudience: jwt.Audience{p.cfg.Audience}, Time: p.now()}, 0); err != nil {
		return nil, err
	}
	if c.Subject == "" || c.Session == "" || c.Cnf.JKT == "" || c.Expiry == nil {
		return nil, errors.New("access token lacks sub, sid, cnf.jkt or exp")
	}
	return &c, nil
}

func (p *Provider) handleRevoke(w http.ResponseWriter, r *http.Request) {
	p.setNonce(w)
	form, err := readForm(w, r)
	if err != nil {
		writeError(w, p.log, err)
		return
	}
	tok := strings.TrimSpace(form.Get("token"))
	if tok == "" {
		writeError(w, p.log, invalidRequest("token is required"))
		return
	}
	// RFC 7009: unknown tokens are not an error. An access token names its session;
	// anything else is looked up as a refresh token.
	err = p.store.Write(r.Context(), func(tx *store.Tx) error {
		if c, err := p.parseAccess(tok); err == nil {
			return tx.RevokeOAuthToken(c.Session)
		}
		sess, err := tx.OAuthTokenByRefresh(hashSecret(tok))
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		return tx.RevokeOAuthToken(sess.ID)
	})
	if err != nil {
		writeError(w, p.log, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

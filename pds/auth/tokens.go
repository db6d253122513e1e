package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token scopes, as the reference PDS names them.
const (
	ScopeAccess           = "com.atproto.access"
	ScopeAppPass          = "com.atproto.appPass"
	ScopeAppPassPrivilege = "com.atproto.appPassPrivileged"
	ScopeRefresh          = "com.atproto.refresh"

	typAccess  = "at+jwt"
	typRefresh = "refresh+jwt"
)

// Errors from token checks; the HTTP layer maps them to XRPC errors.
var (
	ErrNoToken      = errors.New("authentication required")
	ErrExpiredToken = errors.New("token has expired")
	ErrInvalidToken = errors.New("token is invalid")
	ErrWrongType    = errors.New("wrong token type")
)

// Sessions issues and checks session JWTs.
type Sessions struct {
	key        []byte
	issuer     string // the server's DID
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	now        func() time.Time
}

// NewSessions returns a token issuer signing with key (HS256) for the server DID.
func NewSessions(key []byte, serverDID string) *Sessions {
	return &Sessions{key: key, issuer: serverDID, AccessTTL: time.Hour, RefreshTTL: 90 * 24 * time.Hour, now: time.Now}
}

// Claims are the claims of Hearth's session tokens.
type Claims struct {
	Scope string `json:"scope"`
	jwt.RegisteredClaims
}

// Pair is a fresh access + refresh token pair.
type Pair struct {
	Access         string
	Refresh        string
	RefreshID      string
	RefreshExpires time.Time
}

// Issue makes a token pair for did with the access scope and a new refresh token ID.
func (s *Sessions) Issue(did, scope string) (*Pair, error) {
	id, err := RandomID(24)
	if err != nil {
		return nil, err
	}
	return s.IssueFor(did, scope, id, time.Time{})
}

// IssueFor makes a token pair whose refresh token has the given ID, expiring at
// refreshExpires (zero: RefreshTTL from now). A concurrent refresh in the grace period
// gets the pair of the session that already replaced the old one.
func (s *Sessions) IssueFor(did, scope, refreshID string, refreshExpires time.Time) (*Pair, error) {
	now := s.now()
	access := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{
		Scope: scope,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   did,
			Audience:  jwt.ClaimStrings{s.issuer},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.AccessTTL)),
		},
	})
	access.Header["typ"] = typAccess
	at, err := access.SignedString(s.key)
	if err != nil {
		return nil, err
	}
	id, exp := refreshID, refreshExpires
	if exp.IsZero() {
		exp = now.Add(s.RefreshTTL)
	}
	refresh := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{
		Scope: ScopeRefresh,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   did,
			Audience:  jwt.ClaimStrings{s.issuer},
			ID:        id,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
	})
	refresh.Header["typ"] = typRefresh
	rt, err := refresh.SignedString(s.key)
	if err != nil {
		return nil, err
	}
	return &Pair{Access: at, Refresh: rt, RefreshID: id, RefreshExpires: exp}, nil
}

func (s *Sessions) parse(token, wantTyp string) (*Claims, error) {
	var c Claims
	tok, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) { return s.key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(s.now), jwt.WithAudience(s.issuer), jwt.WithExpirationRequired())
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, ErrExpiredToken
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if typ, _ := tok.Header["typ"].(string); typ != wantTyp {
		return nil, ErrWrongType
	}
	if c.Subject == "" {
		return nil, ErrInvalidToken
	}
	return &c, nil
}

// CheckAccess validates an access token and returns its claims.
func (s *Sessions) CheckAccess(token string) (*Claims, error) {
	c, err := s.parse(token, typAccess)
	if err != nil {
		return nil, err
	}
	switch c.Scope {
	case ScopeAccess, ScopeAppPass, ScopeAppPassPrivilege:
		return c, nil
	}
	return nil, ErrWrongType
}

// CheckRefresh validates a refresh token's signature and expiry; the caller also checks
// that its ID is still stored.
func (s *Sessions) CheckRefresh(token string) (*Claims, error) {
	c, err := s.parse(token, typRefresh)
	if err != nil {
		return nil, err
	}
	if c.Scope != ScopeRefresh || c.ID == "" {
		return nil, ErrWrongType
	}
	return c, nil
}

// BearerToken extracts the token from an Authorization: Bearer header.
func BearerToken(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", ErrNoToken
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", fmt.Errorf("%w: expected a Bearer token", ErrInvalidToken)
	}
	return strings.TrimSpace(tok), nil
}

// CheckAdmin reports whether the request carries Basic admin:<password>.
func CheckAdmin(r *http.Request, password string) bool {
	user, pw, ok := r.BasicAuth()
	if !ok || user != "admin" || password == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(pw), []byte(password)) == 1
}

// RandomID returns n random bytes, base64url-encoded.
func RandomID(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

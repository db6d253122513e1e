package pds

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/auth"
	"github.com/hearth-social/hearth/pds/mail"
	"github.com/hearth-social/hearth/pds/oauth"
	"github.com/hearth-social/hearth/pds/store"
	"github.com/hearth-social/hearth/pds/web"
)

// setupOAuth builds the OAuth authorization server (pds/oauth) and the pages
// (pds/web), with their keys kept in the store.
func (s *Server) setupOAuth(ctx context.Context) error {
	der, err := s.store.Secret(ctx, "oauth-es256", oauth.GenerateSigningKey)
	if err != nil {
		return fmt.Errorf("loading OAuth signing key: %w", err)
	}
	key, err := oauth.ParseSigningKey(der)
	if err != nil {
		return fmt.Errorf("parsing OAuth signing key: %w", err)
	}
	nonceKey, err := s.store.Secret(ctx, "oauth-dpop-nonce", func() ([]byte, error) {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		return b, err
	})
	if err != nil {
		return fmt.Errorf("loading DPoP nonce key: %w", err)
	}
	issuer := strings.TrimRight(s.cfg.PublicURL, "/")
	if s.oauth, err = oauth.New(oauth.Config{Issuer: issuer, Audience: s.cfg.ServerDID(), Store: s.store,
		HTTPClient: s.cfg.OAuthClientHTTP, SigningKey: key, NonceKey: nonceKey, Lexicons: s.handleDir,
		Log: s.log.With("component", "oauth")}); err != nil {
		return err
	}
	s.pages, err = web.New(web.Config{ServerName: s.cfg.ServerName, LogoURL: s.cfg.ServerLogoURL, PublicURL: issuer,
		Store: s.store, OAuth: s.oauth, Backend: webBackend{s}, Log: s.log.With("component", "web")})
	return err
}

// registerOAuth adds the OAuth endpoints and the pages to the PDS's mux.
func (s *Server) registerOAuth(mux *http.ServeMux) {
	s.oauth.Register(mux)
	s.pages.Register(mux)
}

// dpopError is a refused DPoP-authenticated call: an XRPC error that also carries the
// WWW-Authenticate header (fail sends it).
type dpopError struct {
	xe  *xrpc.Error
	www string
}

func (e *dpopError) Error() string { return e.xe.Error() }
func (e *dpopError) Unwrap() error { return e.xe }

// setAuthHeaders sends the WWW-Authenticate of a refused DPoP call.
func setAuthHeaders(w http.ResponseWriter, err error) {
	var de *dpopError
	if errors.As(err, &de) && de.www != "" {
		w.Header().Set("WWW-Authenticate", de.www)
	}
}

// authenticateDPoP checks an `Authorization: DPoP` call (resource server). The caller
// is as restricted as an app-password session (requireFullAccess refuses it) and
// carries its grant for the scope checks (oauth_scopes.go); privileged methods (chat)
// are governed by its rpc: permissions, not by an app password's privilege, as in the
// reference PDS.
func (s *Server) authenticateDPoP(r *http.Request) (*caller, error) {
	g, err := s.oauth.Authenticate(r)
	var re *oauth.ResourceError
	if errors.As(err, &re) {
		return nil, &dpopError{xe: xrpc.Errorf(re.Status, re.Name, "%s", re.Message), www: re.WWWAuthenticate}
	} else if err != nil {
		return nil, err
	}
	return &caller{DID: g.DID, Scope: auth.ScopeAppPass, OAuth: g}, nil
}

// webBackend is what the pages (pds/web) do with accounts.
type webBackend struct{ s *Server }

func webAccount(a *store.Account) *web.Account {
	return &web.Account{DID: a.DID, Handle: a.Handle, Email: a.Email, EmailConfirmed: a.EmailConfirmed, EmailAuthFactor: a.EmailAuthFactor}
}

// Login accepts the account password only (an app password is for one app, not for
// granting others), with the email second factor as createSession has it.
func (b webBackend) Login(ctx context.Context, ident, password, code string) (*web.Account, error) {
	s := b.s
	if ident == "" || password == "" {
		return nil, web.ErrBadLogin
	}
	var xe *xrpc.Error
	if err := s.checkSignIn(ctx, ident); errors.As(err, &xe) && xe.Status == http.StatusTooManyRequests {
		secs, _ := strconv.Atoi(xe.RetryAfter)
		return nil, &web.TooManyAttempts{RetryAfter: time.Duration(max(secs, 1)) * time.Second}
	} else if err != nil {
		return nil, err
	}
	acct, _, scope, err := s.checkLogin(ctx, ident, password)
	if errors.As(err, &xe) && xe.Status == http.StatusUnauthorized {
		return nil, web.ErrBadLogin
	} else if err != nil {
		return nil, err
	}
	if scope != auth.ScopeAccess {
		return nil, fmt.Errorf("app passwords cannot sign in here: use your account password")
	}
	if acct.Status == store.StatusTakendown || acct.Status == store.StatusDeleted {
		return nil, fmt.Errorf("this account is not available")
	}
	if needsAuthFactor(acct, scope) {
		if code == "" {
			if err := s.mailToken(ctx, acct.DID, mail.PurposeSignIn); err != nil {
				return nil, err
			}
			return nil, web.ErrCodeRequired
		}
		if err := s.store.Write(ctx, func(tx *store.Tx) error { return takeToken(tx, acct.DID, mail.PurposeSignIn, code) }); err != nil {
			return nil, web.ErrBadLogin
		}
	}
	return webAccount(acct), nil
}

func (b webBackend) Account(ctx context.Context, did string) (*web.Account, error) {
	acct, err := b.s.store.AccountByDID(ctx, did)
	if err != nil {
		return nil, err
	}
	if acct.Status == store.StatusTakendown || acct.Status == store.StatusDeleted {
		return nil, store.ErrNotFound
	}
	return webAccount(acct), nil
}

func (b webBackend) AppPasswords(ctx context.Context, did string) ([]web.AppPassword, error) {
	pws, err := b.s.store.AppPasswords(ctx, did)
	if err != nil {
		return nil, err
	}
	out := make([]web.AppPassword, 0, len(pws))
	for _, p := range pws {
		out = append(out, web.AppPassword{Name: p.Name, Privileged: p.Privileged, CreatedAt: p.CreatedAt})
	}
	return out, nil
}

func (b webBackend) CreateAppPassword(ctx context.Context, did, name string, privileged bool) (string, error) {
	if name == "" || len(name) > 64 {
		return "", errors.New("the name must be 1 to 64 characters")
	}
	pw, err := auth.NewAppPassword()
	if err != nil {
		return "", err
	}
	created := time.Now().UTC().Format(syntax.AtprotoDatetimeLayout)
	err = b.s.store.Write(ctx, func(tx *store.Tx) error {
		return tx.PutAppPassword(did, store.AppPassword{Name: name, Lookup: auth.AppPasswordLookup(b.s.appPassKey, pw), Privileged: privileged, CreatedAt: created})
	})
	switch {
	case errors.Is(err, store.ErrAppPasswordExists):
		return "", errors.New("an app password with that name exists")
	case errors.Is(err, store.ErrTooManyAppPasswords):
		return "", fmt.Errorf("an account may hold at most %d app passwords", store.MaxAppPasswords)
	}
	return pw, err
}

func (b webBackend) RevokeAppPassword(ctx context.Context, did, name string) error {
	return b.s.store.Write(ctx, func(tx *store.Tx) error { return tx.DeleteAppPassword(did, name) })
}

// ChangePassword sets a new password and, as a reset does, ends the other sessions:
// legacy refresh tokens (and access tokens issued before now), OAuth sessions, and the
// other browsers. App passwords stay: each was made for one app by the owner.
func (b webBackend) ChangePassword(ctx context.Context, did, current, next, keepDevice string) error {
	s := b.s
	acct, err := s.store.AccountByDID(ctx, did)
	if err != nil {
		return err
	}
	ok, err := s.hasher.Verify(ctx, acct.PasswordHash, current)
	if err != nil {
		return err
	}
	if !ok {
		return web.ErrBadLogin
	}
	hash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return err
	}
	if err := s.store.Write(ctx, func(tx *store.Tx) error {
		if err := tx.SetPassword(did, hash); err != nil {
			return err
		}
		return tx.EndOtherSessions(did, keepDevice)
	}); err != nil {
		return err
	}
	s.cutoffs.set(did, time.Now(), s.sessions.AccessTTL)
	return nil
}

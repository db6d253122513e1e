package pds

import (
	"context"
	"errors"
	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"net/http"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/auth"
	"github.com/hearth-social/hearth/pds/mail"
	"github.com/hearth-social/hearth/pds/store"
)

func (s *Server) handleDescribeServer(w http.ResponseWriter, r *http.Request) error {
	xrpc.WriteJSON(w, http.StatusOK, map[string]any{
		"did":                       s.cfg.ServerDID(),
		"availableUserDomains":      s.cfg.HandleDomains,
		"inviteCodeRequired":        s.cfg.InviteRequired,
		"phoneVerificationRequired": false,
		"blobUploadLimit":           s.cfg.MaxBlobBytes,
		"links":                     map[string]any{},
		"contact":                   map[string]any{},
	})
	return nil
}

// validateNewHandle checks a requested handle: valid syntax, under a configured domain,
// and a single label in front of it.
func (s *Server) validateNewHandle(raw string) (syntax.Handle, error) {
	h, err := syntax.ParseHandle(strings.ToLower(strings.TrimSpace(raw)))
	if err != nil {
		return "", xrpc.Errorf(http.StatusBadRequest, "InvalidHandle", "invalid handle %q: %v", raw, err)
	}
	for _, d := range s.cfg.HandleDomains {
		if label, ok := strings.CutSuffix(h.String(), d); ok {
			if label == "" || strings.Contains(label, ".") {
				return "", xrpc.Errorf(http.StatusBadRequest, "InvalidHandle", "handle must be one label followed by %s", d)
			}
			if len(label) < 3 || len(label) > 18 {
				return "", xrpc.Errorf(http.StatusBadRequest, "InvalidHandle", "the part before %s must be 3 to 18 characters", d)
			}
			return h, nil
		}
	}
	return "", xrpc.Errorf(http.StatusBadRequest, "UnsupportedDomain", "handle must end with one of %s", strings.Join(s.cfg.HandleDomains, ", "))
}

type createSessionInput struct {
	Identifier      string `json:"identifier"`
	Password        string `json:"password"`
	AuthFactorToken string `json:"authFactorToken"`
}

// lookupAccount finds an account by handle (with or without a leading @), DID or email.
func (s *Server) lookupAccount(ctx context.Context, ident string) (*store.Account, error) {
	ident = strings.TrimSpace(ident)
	switch {
	case strings.HasPrefix(ident, "did:"):
		return s.store.AccountByDID(ctx, ident)
	case strings.HasPrefix(ident, "@"):
		return s.store.AccountByHandle(ctx, strings.ToLower(strings.TrimPrefix(ident, "@")))
	case strings.Contains(ident, "@"):
		return s.store.AccountByEmail(ctx, ident)
	default:
		return s.store.AccountByHandle(ctx, strings.ToLower(ident))
	}
}

// refreshGrace is how long a rotated refresh token still works (answering with the same
// replacement), so concurrent refreshes from one app do not end its session.
const refreshGrace = 10 * time.Minute

// checkLogin finds the account and what the password unlocks: the account password
// (full access) or one app password. Every failed login costs one scrypt, whether or not
// the identifier exists, and however many app passwords the account has: app passwords
// are found by a keyed hash, not by trying each.
func (s *Server) checkLogin(ctx context.Context, ident, password string) (*store.Account, string, string, error) {
	invalid := xrpc.Errorf(http.StatusUnauthorized, "AuthenticationRequired", "invalid identifier or password")
	acct, err := s.lookupAccount(ctx, ident)
	if errors.Is(err, store.ErrNotFound) || (err == nil && acct.Status == store.StatusDeleted) {
		_, _ = s.hasher.Verify(ctx, s.dummyHash, password)
		return nil, "", "", invalid
	} else if err != nil {
		return nil, "", "", err
	}
	if auth.LooksLikeAppPassword(password) {
		lookup := auth.AppPasswordLookup(s.appPassKey, password)
		p, err := s.store.AppPasswordByLookup(ctx, acct.DID, lookup)
		if err == nil {
			return acct, p.Name, appPassScope(p.Privileged), nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, "", "", err
		}
	}
	ok, err := s.hasher.Verify(ctx, acct.PasswordHash, password)
	if err != nil {
		return nil, "", "", err
	}
	if ok {
		return acct, "", auth.ScopeAccess, nil
	}
	if name, scope, ok, err := s.checkLegacyAppPassword(ctx, acct.DID, password); err != nil || ok {
		return acct, name, scope, err
	}
	return nil, "", "", invalid
}

// checkLegacyAppPassword checks app passwords stored before the keyed lookup existed
// (scrypt only), and gives the matching one its lookup so the next login is fast. Only
// passwords with the app-password shape are tried.
func (s *Server) checkLegacyAppPassword(ctx context.Context, did, password string) (string, string, bool, error) {
	if !auth.LooksLikeAppPassword(password) {
		return "", "", false, nil
	}
	pws, err := s.store.AppPasswords(ctx, did)
	if err != nil {
		return "", "", false, err
	}
	for _, p := range pws {
		if p.Lookup != nil || p.PasswordHash == "" {
			continue
		}
		if m, err := s.hasher.Verify(ctx, p.PasswordHash, password); err == nil && m {
			lookup := auth.AppPasswordLookup(s.appPassKey, password)
			if err := s.store.Write(ctx, func(tx *store.Tx) error { return tx.SetAppPasswordLookup(did, p.Name, lookup) }); err != nil {
				return "", "", false, err
			}
			return p.Name, appPassScope(p.Privileged), true, nil
		}
	}
	return "", "", false, nil
}

func appPassScope(privileged bool) string {
	if privileged {
		return auth.ScopeAppPassPrivilege
	}
	return auth.ScopeAppPass
}

func (s *Server) handleCreateSession(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in createSessionInput
	if err := xrpc.DecodeJSON(w, r, 64<<10, &in); err != nil {
		return err
	}
	if in.Identifier == "" || in.Password == "" {
		return xrpc.InvalidRequest("identifier and password are required")
	}
	acct, appPass, scope, err := s.checkLogin(ctx, in.Identifier, in.Password)
	if err != nil {
		return err
	}
	if acct.Status == store.StatusTakendown {
		return xrpc.Errorf(http.StatusUnauthorized, "AccountTakedown", "account has been taken down")
	}
	// The email second factor (email_handlers.go): the code is consumed with the session.
	factor := needsAuthFactor(acct, scope)
	if factor && strings.TrimSpace(in.AuthFactorToken) == "" {
		return s.requireAuthFactor(ctx, acct.DID)
	}
	pair, err := s.sessions.Issue(acct.DID, scope)
	if err != nil {
		return err
	}
	if err := s.store.Write(ctx, func(tx *store.Tx) error {
		if factor {
			if err := takeToken(tx, acct.DID, mail.PurposeSignIn, in.AuthFactorToken); err != nil {
				return err
			}
		}
		return tx.PutRefreshToken(store.RefreshToken{ID: pair.RefreshID, DID: acct.DID, AppPassword: appPass, Scope: scope, Expires: pair.RefreshExpires})
	}); err != nil {
		return err
	}
	xrpc.WriteJSON(w, http.StatusOK, s.sessionOutput(r.Context(), acct, pair))
	return nil
}

func (s *Server) sessionOutput(ctx context.Context, acct *store.Account, pair *auth.Pair) *comatproto.ServerCreateSession_Output {
	v := s.sessionView(ctx, acct)
	return &comatproto.ServerCreateSession_Output{
		Did: v.Did, Handle: v.Handle, Active: v.Active, Status: v.Status, Email: v.Email, EmailConfirmed: v.EmailConfirmed, EmailAuthFactor: v.EmailAuthFactor,
		AccessJwt: pair.Access, RefreshJwt: pair.Refresh,
	}
}

// sessionView is what every session answer says of the account: its handle as the
// network sees it (handle.invalid for a custom-domain handle that stopped verifying).
func (s *Server) sessionView(ctx context.Context, acct *store.Account) *comatproto.ServerGetSession_Output {
	active := acct.Active()
	out := &comatproto.ServerGetSession_Output{Did: acct.DID, Handle: s.shownHandle(ctx, acct.DID, acct.Handle), Active: &active}
	if acct.Email != "" {
		email, confirmed, factor := acct.Email, acct.EmailConfirmed, acct.EmailAuthFactor
		out.Email, out.EmailConfirmed, out.EmailAuthFactor = &email, &confirmed, &factor
	}
	if !active {
		st := acct.Status
		out.Status = &st
	}
	return out
}

func (s *Server) handleRefreshSession(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c := callerFrom(ctx)
	acct, err := s.store.AccountByDID(ctx, c.DID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && acct.Status == store.StatusDeleted) {
		return xrpc.Errorf(http.StatusUnauthorized, "InvalidToken", "account not found")
	} else if err != nil {
		return err
	}
	if acct.Status == store.StatusTakendown {
		return xrpc.Errorf(http.StatusUnauthorized, "AccountTakedown", "account has been taken down")
	}
	newID, err := auth.RandomID(24)
	if err != nil {
		return err
	}
	var pair *auth.Pair
	err = s.store.Write(ctx, func(tx *store.Tx) error {
		old, next, reused, err := tx.RotateRefreshToken(c.RefreshID, newID, refreshGrace)
		if err != nil {
			return err
		}
		scope := old.Scope
		if scope == "" { // rows made before scopes were stored
			scope = auth.ScopeAccess
			if old.AppPassword != "" {
				scope = auth.ScopeAppPass
			}
		}
		if reused {
			exp, err := tx.RefreshTokenExpiry(next)
			if err != nil {
				return err
			}
			pair, err = s.sessions.IssueFor(c.DID, scope, next, exp)
			return err
		}
		if pair, err = s.sessions.IssueFor(c.DID, scope, next, time.Time{}); err != nil {
			return err
		}
		return tx.PutRefreshToken(store.RefreshToken{ID: pair.RefreshID, DID: c.DID, AppPassword: old.AppPassword, Scope: scope, Expires: pair.RefreshExpires})
	})
	if errors.Is(err, store.ErrNotFound) {
		return xrpc.Errorf(http.StatusUnauthorized, "ExpiredToken", "refresh token has been revoked or already used")
	} else if err != nil {
		return err
	}
	xrpc.WriteJSON(w, http.StatusOK, s.sessionOutput(r.Context(), acct, pair))
	return nil
}

func (s *Server) handleGetSession(w http.ResponseWriter, r *http.Request) error {
	c := callerFrom(r.Context())
	acct, err := s.store.AccountByDID(r.Context(), c.DID)
	if errors.Is(err, store.ErrNotFound) {
		return xrpc.Errorf(http.StatusUnauthorized, "InvalidToken", "account not found")
	} else if err != nil {
		return err
	}
	out := s.sessionView(r.Context(), acct)
	redactSession(c, out)
	if doc, err := s.plc.Resolve(r.Context(), syntax.DID(acct.DID)); err == nil {
		var d any = doc
		out.DidDoc = &d
	}
	xrpc.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleDeleteSession(w http.ResponseWriter, r *http.Request) error {
	c := callerFrom(r.Context())
	if err := s.store.Write(r.Context(), func(tx *store.Tx) error { return tx.DeleteRefreshToken(c.RefreshID) }); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// requireFullAccess refuses app-password sessions for account-management methods.
func requireFullAccess(c *caller) error {
	if c.Scope != auth.ScopeAccess {
		return xrpc.Errorf(http.StatusForbidden, "Forbidden", "app passwords cannot do this")
	}
	return nil
}

func (s *Server) handleCreateAppPassword(w http.ResponseWriter, r *http.Request) error {
	c := callerFrom(r.Context())
	if err := requireFullAccess(c); err != nil {
		return err
	}
	var in struct {
		Name       string `json:"name"`
		Privileged bool   `json:"privileged"`
	}
	if err := xrpc.DecodeJSON(w, r, 16<<10, &in); err != nil {
		return err
	}
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > 64 {
		return xrpc.InvalidRequest("name must be 1 to 64 characters")
	}
	pw, err := auth.NewAppPassword()
	if err != nil {
		return err
	}
	created := time.Now().UTC().Format(syntax.AtprotoDatetimeLayout)
	err = s.store.Write(r.Context(), func(tx *store.Tx) error {
		return tx.PutAppPassword(c.DID, store.AppPassword{Name: in.Name, Lookup: auth.AppPasswordLookup(s.appPassKey, pw), Privileged: in.Privileged, CreatedAt: created})
	})
	if errors.Is(err, store.ErrAppPasswordExists) {
		return xrpc.Errorf(http.StatusBadRequest, "DuplicateName", "an app password named %q already exists", in.Name)
	} else if errors.Is(err, store.ErrTooManyAppPasswords) {
		return xrpc.Errorf(http.StatusBadRequest, "TooManyAppPasswords", "an account may hold at most %d app passwords; revoke one first", store.MaxAppPasswords)
	} else if err != nil {
		return err
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]any{"name": in.Name, "password": pw, "createdAt": created, "privileged": in.Privileged})
	return nil
}

func (s *Server) handleListAppPasswords(w http.ResponseWriter, r *http.Request) error {
	c := callerFrom(r.Context())
	if err := requireFullAccess(c); err != nil {
		return err
	}
	pws, err := s.store.AppPasswords(r.Context(), c.DID)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(pws))
	for _, p := range pws {
		out = append(out, map[string]any{"name": p.Name, "createdAt": p.CreatedAt, "privileged": p.Privileged})
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]any{"passwords": out})
	return nil
}

func (s *Server) handleRevokeAppPassword(w http.ResponseWriter, r *http.Request) error {
	c := callerFrom(r.Context())
	if err := requireFullAccess(c); err != nil {
		return err
	}
	var in struct {
		Name string `json:"name"`
	}
	if err := xrpc.DecodeJSON(w, r, 16<<10, &in); err != nil {
		return err
	}
	if err := s.store.Write(r.Context(), func(tx *store.Tx) error { return tx.DeleteAppPassword(c.DID, in.Name) }); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) newInviteCodes(ctx context.Context, forAccount string, uses, count int) ([]string, error) {
	if uses < 1 || uses > 10000 {
		return nil, xrpc.InvalidRequest("useCount must be between 1 and 10000")
	}
	if count < 1 || count > 100 {
		return nil, xrpc.InvalidRequest("codeCount must be between 1 and 100")
	}
	if forAccount == "" {
		forAccount = "admin"
	} else if _, err := syntax.ParseDID(forAccount); err != nil {
		return nil, xrpc.InvalidRequest("forAccount must be a DID")
	}
	if err := s.checkInvitesAllowed(ctx, forAccount); err != nil {
		return nil, err
	}
	host := strings.ReplaceAll(s.cfg.Hostname, ".", "-")
	codes := make([]string, count)
	for i := range codes {
		id, err := auth.RandomID(8)
		if err != nil {
			return nil, err
		}
		id = strings.ToLower(strings.NewReplacer("-", "x", "_", "y").Replace(id))
		codes[i] = host + "-" + id[:5] + "-" + id[5:10]
	}
	created := time.Now().UTC().Format(syntax.AtprotoDatetimeLayout)
	err := s.store.Write(ctx, func(tx *store.Tx) error {
		for _, c := range codes {
			if err := tx.PutInviteCode(store.InviteCode{Code: c, ForAccount: forAccount, CreatedBy: "admin", Available: uses, CreatedAt: created}); err != nil {
				return err
			}
		}
		return nil
	})
	return codes, err
}

func (s *Server) handleCreateInviteCode(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		UseCount   int    `json:"useCount"`
		ForAccount string `json:"forAccount"`
	}
	if err := xrpc.DecodeJSON(w, r, 16<<10, &in); err != nil {
		return err
	}
	codes, err := s.newInviteCodes(r.Context(), in.ForAccount, in.UseCount, 1)
	if err != nil {
		return err
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]any{"code": codes[0]})
	return nil
}

func (s *Server) handleCreateInviteCodes(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		CodeCount   int      `json:"codeCount"`
		UseCount    int      `json:"useCount"`
		ForAccounts []string `json:"forAccounts"`
	}
	if err := xrpc.DecodeJSON(w, r, 64<<10, &in); err != nil {
		return err
	}
	if in.CodeCount == 0 {
		in.CodeCount = 1
	}
	targets := in.ForAccounts
	if len(targets) == 0 {
		targets = []string{""}
	}
	if len(targets) > 100 {
		return xrpc.InvalidRequest("at most 100 accounts")
	}
	out := []map[string]any{}
	for _, acct := range targets {
		codes, err := s.newInviteCodes(r.Context(), acct, in.UseCount, in.CodeCount)
		if err != nil {
			return err
		}
		name := acct
		if name == "" {
			name = "admin"
		}
		out = append(out, map[string]any{"account": name, "codes": codes})
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]any{"codes": out})
	return nil
}

func (s *Server) handleGetAccountInviteCodes(w http.ResponseWriter, r *http.Request) error {
	c := callerFrom(r.Context())
	codes, err := s.store.InviteCodesFor(r.Context(), c.DID)
	if err != nil {
		return err
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]any{"codes": viewInviteCodes(codes)})
	return nil
}

package pds

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	netmail "net/mail"
	"strings"
	"sync"
	"time"

	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/auth"
	"github.com/hearth-social/hearth/pds/mail"
	"github.com/hearth-social/hearth/pds/store"
)

// Email and recovery: confirming the account's address, changing it, resetting a
// forgotten password, and the optional email second factor of createSession
// (server_handlers.go). Every token is mailed (mailToken), single-use, valid for
// emailTokenTTL, stored as its hash and compared in constant time (store), never
// logged; the methods that mail or check one are rate-limited together (ratelimit.go).

// emailTokenTTL is how long a mailed token works (the reference's 15 minutes).
const emailTokenTTL = 15 * time.Minute

// mailToken makes a fresh single-use token for did and purpose and mails it to the
// account's address. The token is never logged.
func (s *Server) mailToken(ctx context.Context, did, purpose string) error {
	acct, err := s.store.AccountByDID(ctx, did)
	if err != nil {
		return err
	}
	if acct.Email == "" {
		return xrpc.InvalidRequest("the account has no email address to send the token to")
	}
	tok, err := auth.NewEmailToken()
	if err != nil {
		return err
	}
	if err := s.store.Write(ctx, func(tx *store.Tx) error {
		return tx.PutEmailToken(did, purpose, tok, time.Now().Add(emailTokenTTL))
	}); err != nil {
		return err
	}
	subject, body := mail.TokenMail(purpose, acct.Handle, tok, s.cfg.PublicURL, emailTokenTTL)
	if err := s.cfg.Mailer.Send(ctx, mail.Message{To: acct.Email, Subject: subject, Body: body, DID: did, Purpose: purpose, Token: tok}); err != nil {
		s.log.Error("sending mail", "did", did, "purpose", purpose, "err", err)
		return xrpc.Errorf(http.StatusInternalServerError, "InternalServerError", "the mail could not be sent")
	}
	return nil
}

// tokenError is the XRPC error clients expect for a refused mailed token.
func tokenError(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return xrpc.Errorf(http.StatusBadRequest, "InvalidToken", "token is invalid")
	case errors.Is(err, store.ErrTokenExpired):
		return xrpc.Errorf(http.StatusBadRequest, "ExpiredToken", "token has expired")
	}
	return err
}

// takeToken consumes an emailed token, answering the XRPC errors clients expect.
func takeToken(tx *store.Tx, did, purpose, token string) error {
	return tokenError(tx.TakeEmailToken(did, purpose, token))
}

// parseEmail checks an address as createAccount does and returns it lower-cased.
func parseEmail(raw string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(raw))
	if a, err := netmail.ParseAddress(e); err != nil || a.Address != e || len(e) > 254 {
		return "", xrpc.InvalidRequest("invalid email address")
	}
	return e, nil
}

func writeOK(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusOK)
	return nil
}

// handleRequestEmailConfirmation mails the account a token for confirmEmail.
func (s *Server) handleRequestEmailConfirmation(w http.ResponseWriter, r *http.Request) error {
	if err := s.mailToken(r.Context(), callerFrom(r.Context()).DID, mail.PurposeConfirmEmail); err != nil {
		return err
	}
	return writeOK(w)
}

// handleConfirmEmail confirms the account's address with the token mailed to it.
func (s *Server) handleConfirmEmail(w http.ResponseWriter, r *http.Request) error {
	did := callerFrom(r.Context()).DID
	var in struct {
		Email string `json:"email"`
		Token string `json:"token"`
	}
	if err := xrpc.DecodeJSON(w, r, 16<<10, &in); err != nil {
		return err
	}
	if in.Email == "" || in.Token == "" {
		return xrpc.InvalidRequest("email and token are required")
	}
	invalidEmail := xrpc.Errorf(http.StatusBadRequest, "InvalidEmail", "that is not the account's email address")
	err := s.store.Write(r.Context(), func(tx *store.Tx) error {
		acct, err := tx.Account(did)
		if errors.Is(err, store.ErrNotFound) {
			return xrpc.Errorf(http.StatusBadRequest, "AccountNotFound", "account not found")
		} else if err != nil {
			return err
		}
		if acct.Email == "" || !strings.EqualFold(strings.TrimSpace(in.Email), acct.Email) {
			return invalidEmail
		}
		if err := takeToken(tx, did, mail.PurposeConfirmEmail, in.Token); err != nil {
			return err
		}
		return tx.ConfirmEmail(did, acct.Email)
	})
	if err != nil {
		return err
	}
	return writeOK(w)
}

// handleRequestEmailUpdate mails a token for updateEmail when the current address is
// confirmed (then only its owner may change it); an unconfirmed one changes without.
func (s *Server) handleRequestEmailUpdate(w http.ResponseWriter, r *http.Request) error {
	c := callerFrom(r.Context())
	if err := requireFullAccess(c); err != nil {
		return err
	}
	acct, err := s.store.AccountByDID(r.Context(), c.DID)
	if err != nil {
		return err
	}
	if acct.Email == "" {
		return xrpc.InvalidRequest("the account has no email address")
	}
	if acct.EmailConfirmed {
		if err := s.mailToken(r.Context(), c.DID, mail.PurposeUpdateEmail); err != nil {
			return err
		}
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]bool{"tokenRequired": acct.EmailConfirmed})
	return nil
}

// handleUpdateEmail changes the account's address and, with emailAuthFactor, turns the
// email second factor on or off. A confirmed address needs requestEmailUpdate's token; a
// new address starts unconfirmed, with the second factor off, and the factor can only be
// turned on for a confirmed address.
func (s *Server) handleUpdateEmail(w http.ResponseWriter, r *http.Request) error {
	c := callerFrom(r.Context())
	if err := requireFullAccess(c); err != nil {
		return err
	}
	var in struct {
		Email           string `json:"email"`
		EmailAuthFactor *bool  `json:"emailAuthFactor"`
		Token           string `json:"token"`
	}
	if err := xrpc.DecodeJSON(w, r, 16<<10, &in); err != nil {
		return err
	}
	email, err := parseEmail(in.Email)
	if err != nil {
		return err
	}
	err = s.store.Write(r.Context(), func(tx *store.Tx) error {
		acct, err := tx.Account(c.DID)
		if err != nil {
			return err
		}
		changes := email != acct.Email
		if in.EmailAuthFactor != nil && *in.EmailAuthFactor && (changes || !acct.EmailConfirmed) {
			return xrpc.InvalidRequest("confirm the email address before turning on sign-in codes")
		}
		if acct.EmailConfirmed {
			if in.Token == "" {
				return xrpc.Errorf(http.StatusBadRequest, "TokenRequired", "the account's email is confirmed: a token from requestEmailUpdate is required")
			}
			if err := takeToken(tx, c.DID, mail.PurposeUpdateEmail, in.Token); err != nil {
				return err
			}
		}
		return tx.UpdateEmail(c.DID, email, in.EmailAuthFactor)
	})
	if errors.Is(err, store.ErrEmailTaken) {
		return xrpc.InvalidRequest("this email address is already in use; please use another")
	} else if err != nil {
		return err
	}
	return writeOK(w)
}

// handleRequestPasswordReset mails a reset token to the account with that address. The
// answer is the same whether or not there is one, and so is its timing: the lookup and
// the mail happen after the answer, on the mail queue.
func (s *Server) handleRequestPasswordReset(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Email string `json:"email"`
	}
	if err := xrpc.DecodeJSON(w, r, 16<<10, &in); err != nil {
		return err
	}
	email := strings.ToLower(strings.TrimSpace(in.Email))
	if email == "" {
		return xrpc.InvalidRequest("email is required")
	}
	if !s.mailq.add(func(ctx context.Context) { s.mailPasswordReset(ctx, email) }) {
		s.log.Warn("mail queue full; a password reset request was dropped")
	}
	return writeOK(w)
}

func (s *Server) mailPasswordReset(ctx context.Context, email string) {
	acct, err := s.store.AccountByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) || (err == nil && acct.Status == store.StatusDeleted) {
		return
	} else if err != nil {
		s.log.Warn("password reset: looking up the account", "err", err)
		return
	}
	if err := s.mailToken(ctx, acct.DID, mail.PurposeResetPassword); err != nil {
		s.log.Warn("password reset: mailing the token", "did", acct.DID, "err", err)
	}
}

// handleResetPassword sets a new password with a reset token. It ends every session of
// the account and removes its app passwords (whoever knew the old password may have
// made some); the old password stops working.
func (s *Server) handleResetPassword(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in struct {
		Token    string `json:"token"`
		Password string `json:"password"`
	}
	if err := xrpc.DecodeJSON(w, r, 16<<10, &in); err != nil {
		return err
	}
	if in.Token == "" {
		return xrpc.InvalidRequest("token is required")
	}
	did, err := s.replacePassword(ctx, in.Password, func(tx *store.Tx) (string, error) {
		did, err := tx.TakeEmailTokenFor(mail.PurposeResetPassword, in.Token)
		if err != nil {
			return "", tokenError(err)
		}
		return did, nil
	})
	if err != nil {
		return err
	}
	s.log.Info("password reset", "did", did)
	return writeOK(w)
}

// needsAuthFactor: a login with the account password needs a mailed sign-in code (the
// email second factor is on and the address confirmed). App passwords need none, as with
// the Bluesky PDS: a signed-in owner made each for one app.
func needsAuthFactor(acct *store.Account, scope string) bool {
	return scope == auth.ScopeAccess && acct.EmailAuthFactor && acct.EmailConfirmed && acct.Email != ""
}

// requireAuthFactor mails a sign-in code and answers AuthFactorTokenRequired; the next
// createSession with that code as authFactorToken signs in.
func (s *Server) requireAuthFactor(ctx context.Context, did string) error {
	if err := s.mailToken(ctx, did, mail.PurposeSignIn); err != nil {
		return err
	}
	return xrpc.Errorf(http.StatusUnauthorized, "AuthFactorTokenRequired", "a sign-in code has been sent to your email address")
}

// mailQueueLen bounds the mail jobs waiting (past it new ones are dropped; the rate
// limits keep the queue from filling).
const mailQueueLen = 64

// mailQueue runs the mail work a request must not wait for: a password reset, whose
// answer and timing must not say whether the address has an account. Run drains it.
type mailQueue struct {
	once sync.Once
	ch   chan func(context.Context)
}

func (q *mailQueue) jobs() chan func(context.Context) {
	q.once.Do(func() { q.ch = make(chan func(context.Context), mailQueueLen) })
	return q.ch
}

// add queues job, reporting false when the queue is full.
func (q *mailQueue) add(job func(context.Context)) bool {
	select {
	case q.jobs() <- job:
		return true
	default:
		return false
	}
}

// runMailQueue runs queued mail jobs, one at a time and each bounded, until ctx ends.
func (s *Server) runMailQueue(ctx context.Context) {
	jobs := s.mailq.jobs()
	for {
		select {
		case <-ctx.Done():
			return
		case job := <-jobs:
			jctx, cancel := context.WithTimeout(ctx, time.Minute)
			job(jctx)
			cancel()
		}
	}
}

// sessionCutoffs remembers when each account's password was last reset, for as long as
// an access token issued before could still be alive (AccessTTL): such tokens are
// refused (authenticate), so a stolen session ends with the reset instead of an hour
// later. Refresh tokens need none of this: the reset deletes them. Loaded from the
// store at start, so a restart does not bring old tokens back.
type sessionCutoffs struct {
	mu sync.RWMutex
	m  map[string]time.Time
}

// set notes a reset of did at; entries older than keep are dropped meanwhile.
func (c *sessionCutoffs) set(did string, at time.Time, keep time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]time.Time{}
	}
	for d, t := range c.m {
		if time.Since(t) > keep {
			delete(c.m, d)
		}
	}
	c.m[did] = at
}

// revoked: a token of did issued at issued (JWT seconds) predates the account's last
// reset. A token issued in the very second of the reset is let through, so the session
// the user opens right after works.
func (c *sessionCutoffs) revoked(did string, issued time.Time) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	at, ok := c.m[did]
	return ok && issued.Unix() < at.Unix()
}

func (s *Server) loadSessionCutoffs(ctx context.Context) error {
	changed, err := s.store.PasswordsChanged(ctx, time.Now().Add(-s.sessions.AccessTTL))
	if err != nil {
		return fmt.Errorf("loading password changes: %w", err)
	}
	for did, at := range changed {
		s.cutoffs.set(did, at, s.sessions.AccessTTL)
	}
	return nil
}

// accessRevoked: the access token's account reset its password after it was issued.
func (s *Server) accessRevoked(c *auth.Claims) bool {
	var issued time.Time
	if c.IssuedAt != nil {
		issued = c.IssuedAt.Time
	}
	return s.cutoffs.revoked(c.Subject, issued)
}

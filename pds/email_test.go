package pds_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"

	"github.com/hearth-social/hearth/pds"
	"github.com/hearth-social/hearth/pds/mail"
	"github.com/hearth-social/hearth/pds/store"
)

// smtpSink is a real SMTP server on 127.0.0.1 (implicit TLS, AUTH PLAIN) that keeps the
// mail the PDS sends it; tests read the tokens from the mail as a user would.
type smtpSink struct {
	mu    sync.Mutex
	mails []sunkMail
	read  map[string]int // per recipient: how many of its mails next has returned
	delay time.Duration  // how long DATA takes (a slow mail server)
}

type sunkMail struct{ to, subject, body string }

const smtpUser, smtpPass = "hearth", "smtp-secret"

func (s *smtpSink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }

type sinkSession struct {
	s    *smtpSink
	auth bool
	to   string
}

func (ss *sinkSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (ss *sinkSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != smtpUser || pass != smtpPass {
			return errors.New("bad credentials")
		}
		ss.auth = true
		return nil
	}), nil
}
func (ss *sinkSession) Mail(string, *smtp.MailOptions) error {
	if !ss.auth {
		return smtp.ErrAuthRequired
	}
	return nil
}
func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error { ss.to = to; return nil }
func (ss *sinkSession) Reset()                                    {}
func (ss *sinkSession) Logout() error                             { return nil }
func (ss *sinkSession) Data(r io.Reader) error {
	msg, err := netmail.ReadMessage(r)
	if err != nil {
		return err
	}
	var body io.Reader = msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	delay := ss.s.delay
	ss.s.mu.Unlock()
	time.Sleep(delay)
	ss.s.mu.Lock()
	ss.s.mails = append(ss.s.mails, sunkMail{to: ss.to, subject: msg.Header.Get("Subject"), body: string(b)})
	ss.s.mu.Unlock()
	return nil
}

// withSMTP starts an smtpSink and points the PDS's mailer at it over smtps.
func withSMTP(t *testing.T) (*smtpSink, func(*pds.Config)) {
	t.Helper()
	ts := httptest.NewTLSServer(nil) // only for its certificate, valid for 127.0.0.1
	cert := ts.TLS.Certificates[0]
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	ts.Close()
	sink := &smtpSink{read: map[string]int{}}
	srv := smtp.NewServer(sink)
	srv.Domain = "127.0.0.1"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv.TLSConfig)
	require.NoError(t, err)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	m, err := mail.New(mail.Config{SMTPURL: "smtps://" + smtpUser + ":" + smtpPass + "@" + ln.Addr().String(), From: "pds@hearth.test", TLS: &tls.Config{RootCAs: pool}})
	require.NoError(t, err)
	return sink, func(c *pds.Config) { c.Mailer = m }
}

var tokenRE = regexp.MustCompile(`\b[A-Z2-7]{5}-[A-Z2-7]{5}\b`)

// next waits (bounded) for the next mail to `to` and returns it with its token; the
// subject must contain subject.
func (s *smtpSink) next(t *testing.T, to, subject string) (sunkMail, string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s.mu.Lock()
		seen := 0
		for _, m := range s.mails {
			if m.to != to {
				continue
			}
			if seen++; seen > s.read[to] {
				s.read[to] = seen
				s.mu.Unlock()
				require.Contains(t, m.subject, subject, "mail to %s", to)
				tok := tokenRE.FindString(m.body)
				require.NotEmpty(t, tok, "no token in the mail: %q", m.body)
				return m, tok
			}
		}
		s.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no %q mail to %s", subject, to)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *smtpSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mails)
}

func emailOf(a *account) string { return strings.TrimSuffix(a.Handle, ".test") + "@example.com" }

// session is getSession's answer for a.
func (e *env) session(token string) *resp {
	e.t.Helper()
	r := e.get("com.atproto.server.getSession", nil, token)
	requireOK(e.t, r)
	return r
}

func (e *env) login(ident, password, factor string) *resp {
	e.t.Helper()
	in := map[string]any{"identifier": ident, "password": password}
	if factor != "" {
		in["authFactorToken"] = factor
	}
	return e.post("com.atproto.server.createSession", in, "")
}

// confirm confirms a's email through the mail.
func (e *env) confirm(sink *smtpSink, a *account) {
	e.t.Helper()
	requireOK(e.t, e.post("com.atproto.server.requestEmailConfirmation", nil, a.Access))
	_, tok := sink.next(e.t, emailOf(a), "Confirm your email")
	requireOK(e.t, e.post("com.atproto.server.confirmEmail", map[string]any{"email": emailOf(a), "token": tok}, a.Access))
}

// expire makes a mailed token past its expiry, as if the user waited too long.
func (e *env) expire(did, purpose, tok string) {
	e.t.Helper()
	require.NoError(e.t, e.srv.Store().Write(context.Background(), func(tx *store.Tx) error {
		return tx.PutEmailToken(did, purpose, tok, time.Now().Add(-time.Second))
	}))
}

func TestEmailConfirm(t *testing.T) {
	sink, useSMTP := withSMTP(t)
	e := newEnv(t, useSMTP)
	alice := e.createAccount("alice")
	s := e.session(alice.Access)
	require.Equal(t, "alice@example.com", s.JSON["email"])
	require.Equal(t, false, s.JSON["emailConfirmed"])

	requireOK(t, e.post("com.atproto.server.requestEmailConfirmation", nil, alice.Access))
	m, tok := sink.next(t, "alice@example.com", "Confirm your email")
	// Short and plain: what it is, the server that sent it, what to do if it was not you.
	require.Contains(t, m.body, e.cfg.PublicURL)
	require.Contains(t, m.body, "ignore this mail")
	requireXRPCError(t, e.post("com.atproto.server.confirmEmail", map[string]any{"email": "bob@example.com", "token": tok}, alice.Access), 400, "InvalidEmail")
	requireXRPCError(t, e.post("com.atproto.server.confirmEmail", map[string]any{"email": "alice@example.com"}, alice.Access), 400, "InvalidRequest")
	// Typed in another case, the address and the token still match.
	requireOK(t, e.post("com.atproto.server.confirmEmail", map[string]any{"email": "Alice@Example.com", "token": strings.ToLower(tok)}, alice.Access))
	require.Equal(t, true, e.session(alice.Access).JSON["emailConfirmed"])
	login := e.login("alice.test", alice.Password, "")
	requireOK(t, login)
	require.Equal(t, true, login.JSON["emailConfirmed"])
	require.Equal(t, false, login.JSON["emailAuthFactor"])

	// An account without an address has nothing to confirm.
	r := e.post("com.atproto.server.createAccount", map[string]any{"handle": "noemail.test", "password": "pw"}, "")
	requireOK(t, r)
	requireXRPCError(t, e.post("com.atproto.server.requestEmailConfirmation", nil, r.Str("accessJwt")), 400, "InvalidRequest")
	requireXRPCError(t, e.post("com.atproto.server.confirmEmail", map[string]any{"email": "x@example.com", "token": tok}, r.Str("accessJwt")), 400, "InvalidEmail")
}

func TestEmailUpdate(t *testing.T) {
	sink, useSMTP := withSMTP(t)
	e := newEnv(t, useSMTP)
	alice := e.createAccount("alice")
	e.createAccount("bob")

	// Unconfirmed: no token needed, none mailed.
	r := e.post("com.atproto.server.requestEmailUpdate", nil, alice.Access)
	requireOK(t, r)
	require.Equal(t, false, r.JSON["tokenRequired"])
	requireXRPCError(t, e.post("com.atproto.server.updateEmail", map[string]any{"email": "not an address"}, alice.Access), 400, "InvalidRequest")
	requireXRPCError(t, e.post("com.atproto.server.updateEmail", map[string]any{"email": "bob@example.com"}, alice.Access), 400, "InvalidRequest")
	requireXRPCError(t, e.post("com.atproto.server.updateEmail", map[string]any{"email": "alice@example.com", "emailAuthFactor": true}, alice.Access), 400, "InvalidRequest")
	requireOK(t, e.post("com.atproto.server.updateEmail", map[string]any{"email": "Alice2@example.com"}, alice.Access))
	s := e.session(alice.Access)
	require.Equal(t, "alice2@example.com", s.JSON["email"])
	require.Equal(t, false, s.JSON["emailConfirmed"])
	require.Zero(t, sink.count(), "no mail for an unconfirmed address")

	// Confirmed: the change needs the token mailed to the current address.
	requireOK(t, e.post("com.atproto.server.requestEmailConfirmation", nil, alice.Access))
	_, tok := sink.next(t, "alice2@example.com", "Confirm your email")
	requireOK(t, e.post("com.atproto.server.confirmEmail", map[string]any{"email": "alice2@example.com", "token": tok}, alice.Access))
	r = e.post("com.atproto.server.requestEmailUpdate", nil, alice.Access)
	requireOK(t, r)
	require.Equal(t, true, r.JSON["tokenRequired"])
	m, tok := sink.next(t, "alice2@example.com", "email change")
	require.Contains(t, m.body, "change your password")
	requireXRPCError(t, e.post("com.atproto.server.updateEmail", map[string]any{"email": "alice3@example.com"}, alice.Access), 400, "TokenRequired")
	// A new address cannot get the second factor before it is confirmed.
	requireXRPCError(t, e.post("com.atproto.server.updateEmail", map[string]any{"email": "alice3@example.com", "token": tok, "emailAuthFactor": true}, alice.Access), 400, "InvalidRequest")
	requireOK(t, e.post("com.atproto.server.updateEmail", map[string]any{"email": "alice3@example.com", "token": tok}, alice.Access))
	s = e.session(alice.Access)
	require.Equal(t, "alice3@example.com", s.JSON["email"])
	require.Equal(t, false, s.JSON["emailConfirmed"], "a new address starts unconfirmed")
	requireOK(t, e.login("alice3@example.com", alice.Password, ""))

	// App passwords cannot change the address.
	r = e.post("com.atproto.server.createAppPassword", map[string]any{"name": "app"}, alice.Access)
	requireOK(t, r)
	app := e.login("alice.test", r.Str("password"), "")
	requireOK(t, app)
	requireXRPCError(t, e.post("com.atproto.server.requestEmailUpdate", nil, app.Str("accessJwt")), 403, "Forbidden")
	requireXRPCError(t, e.post("com.atproto.server.updateEmail", map[string]any{"email": "evil@example.com"}, app.Str("accessJwt")), 403, "Forbidden")
}

func TestPasswordReset(t *testing.T) {
	sink, useSMTP := withSMTP(t)
	e := newEnv(t, useSMTP)
	alice := e.createAccount("alice")
	r := e.post("com.atproto.server.createAppPassword", map[string]any{"name": "phone"}, alice.Access)
	requireOK(t, r)
	appPw := r.Str("password")
	app := e.login("alice.test", appPw, "")
	requireOK(t, app)

	// A slow mail server: the answer does not wait for it, so an address with an
	// account is answered as fast as one without, with the same answer.
	sink.mu.Lock()
	sink.delay = 1500 * time.Millisecond
	sink.mu.Unlock()
	ask := func(email string) (*resp, time.Duration) {
		start := time.Now()
		r := e.post("com.atproto.server.requestPasswordReset", map[string]any{"email": email}, "")
		return r, time.Since(start)
	}
	unknown, _ := ask("nobody@example.com")
	known, took := ask("ALICE@example.com")
	requireOK(t, known)
	require.Equal(t, unknown.Status, known.Status)
	require.Equal(t, unknown.Body, known.Body)
	require.Less(t, took, 1500*time.Millisecond, "the answer waited for the mail")
	m, tok := sink.next(t, "alice@example.com", "Reset your password")
	require.Contains(t, m.body, "your password stays as it is")
	require.Equal(t, 1, sink.count(), "mail only for the address with an account")
	requireXRPCError(t, e.post("com.atproto.server.requestPasswordReset", map[string]any{}, ""), 400, "InvalidRequest")

	requireXRPCError(t, e.post("com.atproto.server.resetPassword", map[string]any{"token": "AAAAA-BBBBB", "password": "new-pw"}, ""), 400, "InvalidToken")
	requireXRPCError(t, e.post("com.atproto.server.resetPassword", map[string]any{"token": tok}, ""), 400, "InvalidRequest")
	requireOK(t, e.post("com.atproto.server.resetPassword", map[string]any{"token": tok, "password": "new-pw"}, ""))
	requireXRPCError(t, e.post("com.atproto.server.resetPassword", map[string]any{"token": tok, "password": "other-pw"}, ""), 400, "InvalidToken")

	// The old password, sessions and app passwords stop working; the new password works.
	requireXRPCError(t, e.login("alice.test", alice.Password, ""), 401, "AuthenticationRequired")
	requireXRPCError(t, e.login("alice.test", appPw, ""), 401, "AuthenticationRequired")
	requireXRPCError(t, e.post("com.atproto.server.refreshSession", nil, alice.Refresh), 401, "ExpiredToken")
	requireXRPCError(t, e.post("com.atproto.server.refreshSession", nil, app.Str("refreshJwt")), 401, "ExpiredToken")
	// Access tokens issued before the reset (over a second before: the mail took 1.5 s)
	// end with it too, instead of living out their hour.
	requireXRPCError(t, e.get("com.atproto.server.getSession", nil, alice.Access), 401, "ExpiredToken")
	requireXRPCError(t, e.post("com.atproto.server.createAppPassword", map[string]any{"name": "backdoor"}, alice.Access), 401, "ExpiredToken")
	requireXRPCError(t, e.get("com.atproto.server.getSession", nil, app.Str("accessJwt")), 401, "ExpiredToken")
	login := e.login("alice.test", "new-pw", "")
	requireOK(t, login)
	e.session(login.Str("accessJwt"))
	r = e.get("com.atproto.server.listAppPasswords", nil, login.Str("accessJwt"))
	requireOK(t, r)
	require.Empty(t, r.JSON["passwords"])
}

func TestEmailAuthFactor(t *testing.T) {
	sink, useSMTP := withSMTP(t)
	e := newEnv(t, useSMTP)
	alice := e.createAccount("alice")
	r := e.post("com.atproto.server.createAppPassword", map[string]any{"name": "app"}, alice.Access)
	requireOK(t, r)
	appPw := r.Str("password")
	e.confirm(sink, alice)
	setFactor := func(on bool) {
		t.Helper()
		requireOK(t, e.post("com.atproto.server.requestEmailUpdate", nil, alice.Access))
		_, tok := sink.next(t, "alice@example.com", "email change")
		requireOK(t, e.post("com.atproto.server.updateEmail", map[string]any{"email": "alice@example.com", "emailAuthFactor": on, "token": tok}, alice.Access))
		s := e.session(alice.Access)
		require.Equal(t, on, s.JSON["emailAuthFactor"])
		require.Equal(t, true, s.JSON["emailConfirmed"], "the same address stays confirmed")
	}
	setFactor(true)

	requireXRPCError(t, e.login("alice.test", alice.Password, ""), 401, "AuthFactorTokenRequired")
	m, code := sink.next(t, "alice@example.com", "sign-in code")
	require.Contains(t, m.body, "reset it")
	// A wrong password gets no code and says nothing of the factor.
	requireXRPCError(t, e.login("alice.test", "wrong", ""), 401, "AuthenticationRequired")
	requireXRPCError(t, e.login("alice.test", alice.Password, "AAAAA-BBBBB"), 400, "InvalidToken")
	login := e.login("alice.test", alice.Password, code)
	requireOK(t, login)
	require.Equal(t, true, login.JSON["emailAuthFactor"])
	// App passwords, made by the signed-in owner for one app, need no code.
	requireOK(t, e.login("alice.test", appPw, ""))

	setFactor(false)
	requireOK(t, e.login("alice.test", alice.Password, ""))
	// Confirmation, two email-change tokens and one sign-in code: no code once it is off.
	require.Equal(t, 4, countTo(sink, "alice@example.com"))
}

func countTo(s *smtpSink, to string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.mails {
		if m.to == to {
			n++
		}
	}
	return n
}

// TestEmailTokensRefused: every mailed token is refused with the lexicon's error when
// wrong, when expired, and when used a second time.
func TestEmailTokensRefused(t *testing.T) {
	sink, useSMTP := withSMTP(t)
	e := newEnv(t, useSMTP)
	for _, tc := range []struct {
		name, purpose, subject string
		setup                  func(a *account) // before the token is asked for
		ask                    func(a *account)
		use                    func(a *account, tok string) *resp
	}{{
		name: "confirmEmail", purpose: mail.PurposeConfirmEmail, subject: "Confirm your email",
		ask: func(a *account) { requireOK(t, e.post("com.atproto.server.requestEmailConfirmation", nil, a.Access)) },
		use: func(a *account, tok string) *resp {
			return e.post("com.atproto.server.confirmEmail", map[string]any{"email": emailOf(a), "token": tok}, a.Access)
		},
	}, {
		name: "updateEmail", purpose: mail.PurposeUpdateEmail, subject: "email change",
		setup: func(a *account) { e.confirm(sink, a) },
		ask:   func(a *account) { requireOK(t, e.post("com.atproto.server.requestEmailUpdate", nil, a.Access)) },
		// The same address with the factor switched: still confirmed, so a reuse is checked.
		use: func(a *account, tok string) *resp {
			return e.post("com.atproto.server.updateEmail", map[string]any{"email": emailOf(a), "emailAuthFactor": true, "token": tok}, a.Access)
		},
	}, {
		name: "resetPassword", purpose: mail.PurposeResetPassword, subject: "Reset your password",
		ask: func(a *account) {
			requireOK(t, e.post("com.atproto.server.requestPasswordReset", map[string]any{"email": emailOf(a)}, ""))
		},
		use: func(a *account, tok string) *resp {
			return e.post("com.atproto.server.resetPassword", map[string]any{"token": tok, "password": a.Password}, "")
		},
	}, {
		name: "createSession authFactorToken", purpose: mail.PurposeSignIn, subject: "sign-in code",
		setup: func(a *account) {
			e.confirm(sink, a)
			requireOK(t, e.post("com.atproto.server.requestEmailUpdate", nil, a.Access))
			_, tok := sink.next(t, emailOf(a), "email change")
			requireOK(t, e.post("com.atproto.server.updateEmail", map[string]any{"email": emailOf(a), "emailAuthFactor": true, "token": tok}, a.Access))
		},
		ask: func(a *account) {
			requireXRPCError(t, e.login(a.Handle, a.Password, ""), 401, "AuthFactorTokenRequired")
		},
		use: func(a *account, tok string) *resp { return e.login(a.Handle, a.Password, tok) },
	}} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.createAccount(strings.ToLower(strings.Fields(tc.name)[0]))
			if tc.setup != nil {
				tc.setup(a)
			}
			tc.ask(a)
			_, tok := sink.next(t, emailOf(a), tc.subject)
			requireXRPCError(t, tc.use(a, "AAAAA-BBBBB"), 400, "InvalidToken")
			e.expire(a.DID, tc.purpose, tok)
			requireXRPCError(t, tc.use(a, tok), 400, "ExpiredToken")
			tc.ask(a)
			_, tok = sink.next(t, emailOf(a), tc.subject)
			requireOK(t, tc.use(a, tok))
			requireXRPCError(t, tc.use(a, tok), 400, "InvalidToken")
		})
	}
}

// TestPasswordResetRateLimit: requestPasswordReset counts per address as well as per
// client, so one inbox cannot be flooded from many clients nor addresses swept from one.
func TestPasswordResetRateLimit(t *testing.T) {
	e := newEnv(t, limited(func(rl *pds.RateLimits) {
		rl.EmailRequests = perMinute(2)
		rl.TrustForwardedFor = true // the test's clients are told apart by X-Forwarded-For
	}))
	ask := func(client, email string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, e.http.URL+"/xrpc/com.atproto.server.requestPasswordReset", strings.NewReader(`{"email":"`+email+`"}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", client)
		res, err := e.client.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	// One address from three clients.
	require.Equal(t, 200, ask("10.0.0.1", "alice@example.com"))
	require.Equal(t, 200, ask("10.0.0.2", "alice@example.com"))
	require.Equal(t, 429, ask("10.0.0.3", "ALICE@example.com"))
	// Three addresses from one client (10.0.0.4 is new; its third request is refused).
	require.Equal(t, 200, ask("10.0.0.4", "a@example.com"))
	require.Equal(t, 200, ask("10.0.0.4", "b@example.com"))
	require.Equal(t, 429, ask("10.0.0.4", "c@example.com"))
}

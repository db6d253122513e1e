// Package web is the PDS's server-rendered pages: OAuth sign-in and consent (the
// /oauth/authorize step of pds/oauth), error pages, and the account page (/account):
// signed-in browsers and OAuth apps with revoke, app passwords, password change, email
// status. html/template with an embedded stylesheet, no external resources except the
// client's logo on consent, CSRF-protected forms (a cookie token echoed in every form,
// plus an Origin check), and a strict Content-Security-Policy with frame-ancestors
// 'none'. It reaches accounts through Backend (pds) and never writes SQL itself.
package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hearth-social/hearth/internal/htmlpage"
	"github.com/hearth-social/hearth/pds/oauth"
	"github.com/hearth-social/hearth/pds/store"
)

//go:embed assets
var assets embed.FS

// Account is what the pages show of an account.
type Account struct {
	DID             string
	Handle          string
	Email           string
	EmailConfirmed  bool
	EmailAuthFactor bool
}

// AppPassword is one app password as listed.
type AppPassword struct {
	Name       string
	Privileged bool
	CreatedAt  string
}

// AIPreferences is the account's declared default for AI use of its public data: each
// category "allow", "deny" or "" (not stated).
type AIPreferences struct {
	Training, Inference, SyntheticContent, Embedding string
}

// ErrCodeRequired: the password was right but the account's email second factor is on;
// a code has been mailed and the sign-in must be repeated with it.
var ErrCodeRequired = errors.New("a sign-in code has been sent to your email address")

// ErrBadLogin: the identifier or password (or code) is wrong.
var ErrBadLogin = errors.New("wrong handle, email or password")

// TooManyAttempts: the client or the identifier used up its sign-in budget; the page
// answers 429 with Retry-After.
type TooManyAttempts struct {
	// RetryAfter is how long until the next attempt may be made.
	RetryAfter time.Duration
}

func (e *TooManyAttempts) Error() string {
	wait := fmt.Sprintf("%d seconds", int(e.RetryAfter.Round(time.Second)/time.Second))
	if e.RetryAfter > 90*time.Second {
		wait = fmt.Sprintf("%d minutes", int((e.RetryAfter+time.Minute-1)/time.Minute))
	}
	return "Too many sign-in attempts. Wait " + wait + " and try again."
}

// signInFailure is how a sign-in form answers a failed Login: status, message, whether
// to ask for the emailed code; it sets Retry-After on a 429.
func signInFailure(w http.ResponseWriter, err error, codeSent bool) (int, string, bool) {
	var tm *TooManyAttempts
	switch {
	case errors.As(err, &tm):
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int((tm.RetryAfter+time.Second-1)/time.Second))))
		return http.StatusTooManyRequests, tm.Error(), codeSent
	case errors.Is(err, ErrCodeRequired):
		return http.StatusUnauthorized, err.Error(), true
	case errors.Is(err, ErrBadLogin):
		return http.StatusUnauthorized, err.Error(), codeSent
	default:
		return http.StatusUnauthorized, "Sign-in failed: " + err.Error(), false
	}
}

// Backend is what the pages need of the PDS.
type Backend interface {
	// Login checks an identifier (handle, email or DID) and the account password (never
	// an app password) and, when the account has the email second factor, the mailed
	// code (ErrCodeRequired mails one when code is empty). *TooManyAttempts refuses an
	// attempt past the rate limits.
	Login(ctx context.Context, identifier, password, code string) (*Account, error)
	Account(ctx context.Context, did string) (*Account, error)
	AppPasswords(ctx context.Context, did string) ([]AppPassword, error)
	CreateAppPassword(ctx context.Context, did, name string, privileged bool) (string, error)
	RevokeAppPassword(ctx context.Context, did, name string) error
	// ChangePassword checks the current password, sets the new one and ends the
	// account's other sessions (legacy, OAuth and browsers but keepDevice).
	ChangePassword(ctx context.Context, did, current, next, keepDevice string) error
	// AIPreferences reads the account's AI usage declaration (its default); Set writes it
	// as a record in the account's repo (nothing stated: the record is removed).
	AIPreferences(ctx context.Context, did string) (AIPreferences, error)
	SetAIPreferences(ctx context.Context, did string, p AIPreferences) error
}

// Config configures the pages.
type Config struct {
	// ServerName and LogoURL brand every page (LogoURL: an https URL or a path on this
	// server; empty shows the name's initial). New refuses others: the pages' CSP and
	// html/template would not show them.
	ServerName string
	LogoURL    string
	// PublicURL is the server's origin (cookies are Secure when it is https).
	PublicURL string
	Store     *store.Store
	OAuth     *oauth.Provider
	Backend   Backend
	Log       *slog.Logger
}

// Pages serves the pages.
type Pages struct {
	cfg    Config
	log    *slog.Logger
	secure bool
	origin string
	pages  *htmlpage.Set
}

const (
	sessionCookie = "hearth_session"
	csrfCookie    = "hearth_csrf"
	sessionTTL    = 30 * 24 * time.Hour
)

// New parses the templates.
func New(cfg Config) (*Pages, error) {
	if cfg.ServerName == "" {
		cfg.ServerName = "Hearth"
	}
	if err := checkBranding(cfg.ServerName, cfg.LogoURL); err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || u.Host == "" {
		return nil, errors.New("web: PublicURL must be an absolute URL")
	}
	p := &Pages{cfg: cfg, log: log, secure: u.Scheme == "https", origin: u.Scheme + "://" + u.Host}
	funcs := template.FuncMap{"initial": func(s string) string {
		r, _ := utf8.DecodeRuneInString(s)
		return strings.ToUpper(string(r))
	}}
	if p.pages, err = htmlpage.Parse(assets, funcs, log, "signin", "consent", "error", "account"); err != nil {
		return nil, err
	}
	return p, nil
}

// checkBranding refuses a server name that is too long or holds control characters and
// a logo that is neither an https URL nor a path on this server.
func checkBranding(name, logo string) error {
	if utf8.RuneCountInString(name) > 64 || strings.ContainsFunc(name, unicode.IsControl) || !utf8.ValidString(name) {
		return fmt.Errorf("server name %q must be at most 64 characters, without control characters", name)
	}
	if logo == "" {
		return nil
	}
	u, err := url.Parse(logo)
	path := err == nil && u.Scheme == "" && u.Host == "" && strings.HasPrefix(logo, "/") && !strings.HasPrefix(logo, "//")
	https := err == nil && u.Scheme == "https" && u.Host != "" && u.User == nil
	if !path && !https {
		return fmt.Errorf("server logo URL %q must be an https URL or a path on this server (/logo.png)", logo)
	}
	return nil
}

// Register adds the pages to mux.
func (p *Pages) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /web/style.css", p.pages.Stylesheet("public, max-age=3600"))
	mux.HandleFunc("GET /oauth/authorize", p.handleAuthorize)
	mux.HandleFunc("POST /oauth/authorize/sign-in", p.form(p.handleAuthorizeSignIn))
	mux.HandleFunc("POST /oauth/authorize/consent", p.form(p.handleConsent))
	mux.HandleFunc("GET /account", p.handleAccount)
	mux.HandleFunc("POST /account/sign-in", p.form(p.handleAccountSignIn))
	mux.HandleFunc("POST /account/sign-out", p.form(p.handleSignOut))
	mux.HandleFunc("POST /account/apps/revoke", p.form(p.handleRevokeApp))
	mux.HandleFunc("POST /account/devices/revoke", p.form(p.handleRevokeDevice))
	mux.HandleFunc("POST /account/app-passwords", p.form(p.handleCreateAppPassword))
	mux.HandleFunc("POST /account/app-passwords/revoke", p.form(p.handleRevokeAppPassword))
	mux.HandleFunc("POST /account/password", p.form(p.handleChangePassword))
	mux.HandleFunc("POST /account/ai-preferences", p.form(p.handleAIPreferences))
}

// page is the data every template gets.
type page struct {
	Title, ServerName, LogoURL, CSRF string
}

func (p *Pages) base(title, csrf string) page {
	return page{Title: title, ServerName: p.cfg.ServerName, LogoURL: p.cfg.LogoURL, CSRF: csrf}
}

// securityHeaders: no framing, no scripts, styles and images from here only (client
// logos on https too); formTarget is a further origin forms may lead to (the client's
// redirect URI after consent).
func (p *Pages) securityHeaders(w http.ResponseWriter, formTarget string) {
	formAction := "'self'"
	if formTarget != "" {
		formAction += " " + formTarget
	}
	// Client logos (consent) and the operator's logo may be https images.
	htmlpage.SecurityHeaders(w.Header(), "'self' https: data:", formAction)
	w.Header().Del("Access-Control-Allow-Origin")
}

func (p *Pages) render(w http.ResponseWriter, status int, name, formTarget string, data any) {
	p.securityHeaders(w, formTarget)
	p.pages.Render(w, status, name, data)
}

type errorPage struct {
	page
	Heading, Error string
}

func (p *Pages) renderError(w http.ResponseWriter, status int, heading, msg string) {
	p.render(w, status, "error", "", errorPage{page: p.base(heading, ""), Heading: heading, Error: msg})
}

// csrfToken returns the browser's CSRF token, setting the cookie on first visit.
func (p *Pages) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	tok := randomString(24)
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: tok, Path: "/", HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteStrictMode})
	return tok
}

// form wraps a POST handler: bounded form body, same-origin request, CSRF token equal
// to the cookie's.
func (p *Pages) form(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 32<<10)
		if err := r.ParseForm(); err != nil {
			p.renderError(w, http.StatusBadRequest, "Bad request", "The form could not be read.")
			return
		}
		if o := r.Header.Get("Origin"); o != "" && o != p.origin {
			p.renderError(w, http.StatusForbidden, "Forbidden", "This form was sent from another site.")
			return
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
			p.renderError(w, http.StatusForbidden, "Forbidden", "This form was sent from another site.")
			return
		}
		c, err := r.Cookie(csrfCookie)
		if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostForm.Get("csrf"))) != 1 {
			p.renderError(w, http.StatusForbidden, "Session expired", "The page was open too long or cookies are blocked. Reload it and try again.")
			return
		}
		next(w, r)
	}
}

// session returns the browser's sign-in, or nil.
func (p *Pages) session(r *http.Request) *store.WebSession {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	ws, err := p.cfg.Store.WebSession(r.Context(), hashString(c.Value))
	if err != nil {
		return nil
	}
	return ws
}

// signIn stores a browser sign-in for did and sets its cookie.
func (p *Pages) signIn(w http.ResponseWriter, r *http.Request, did string) error {
	id, device := randomString(32), randomString(12)
	ua := r.UserAgent()
	if len(ua) > 200 {
		ua = ua[:200]
	}
	err := p.cfg.Store.Write(r.Context(), func(tx *store.Tx) error {
		return tx.PutWebSession(store.WebSession{IDHash: hashString(id), DeviceID: device, DID: did, UserAgent: ua,
			IP: clientIP(r), Expires: time.Now().Add(sessionTTL)})
	})
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, Secure: p.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(sessionTTL.Seconds())})
	return nil
}

func (p *Pages) clearSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

func clientIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		host = strings.Trim(host[:i], "[]")
	}
	return host
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashString(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

func seeOther(w http.ResponseWriter, to string) {
	w.Header().Set("Location", to)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusSeeOther)
}

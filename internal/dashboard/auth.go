package dashboard

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hearth-social/hearth/internal/ratelimit"
)

const (
	sessionCookie = "hearth_dashboard"
	// preCookie holds the sign-in form's CSRF token, before there is a session.
	preCookie   = "hearth_dashboard_signin"
	sessionTTL  = 12 * time.Hour
	maxSessions = 64
)

// session is one signed-in browser.
type session struct {
	csrf    string
	expires time.Time
}

// sessions are the signed-in browsers, in memory (a restart signs everyone out),
// keyed by the SHA-256 of the cookie value, at most max of them (the oldest go first).
type sessions struct {
	mu  sync.Mutex
	m   map[[sha256.Size]byte]*session
	max int
	ttl time.Duration
}

func newSessions(max int, ttl time.Duration) *sessions {
	return &sessions{m: map[[sha256.Size]byte]*session{}, max: max, ttl: ttl}
}

// create stores a new session and returns its cookie value.
func (s *sessions) create(now time.Time) string {
	id := rand.Text()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.m {
		if now.After(v.expires) {
			delete(s.m, k)
		}
	}
	for len(s.m) >= s.max {
		var oldest [sha256.Size]byte
		var at time.Time
		for k, v := range s.m {
			if at.IsZero() || v.expires.Before(at) {
				oldest, at = k, v.expires
			}
		}
		delete(s.m, oldest)
	}
	s.m[sha256.Sum256([]byte(id))] = &session{csrf: rand.Text(), expires: now.Add(s.ttl)}
	return id
}

// get returns the live session of a cookie value, or nil.
func (s *sessions) get(id string, now time.Time) *session {
	if id == "" {
		return nil
	}
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.m[k]
	if v == nil || now.After(v.expires) {
		delete(s.m, k)
		return nil
	}
	cp := *v
	return &cp
}

func (s *sessions) end(id string) {
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	delete(s.m, k)
	s.mu.Unlock()
}

// secure reports a request that reached the dashboard over https (directly or through
// a proxy that says so), whose cookies must be Secure.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (d *Dashboard) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: secure(r),
		SameSite: http.SameSiteStrictMode, MaxAge: maxAge})
}

// sameOrigin refuses requests another site made the browser send: an Origin that is not
// this host, or a Sec-Fetch-Site other than same-origin (or none: typed by the user).
func sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host || (u.Scheme != "http" && u.Scheme != "https") {
			return false
		}
	}
	site := r.Header.Get("Sec-Fetch-Site")
	return site == "" || site == "same-origin" || site == "none"
}

func tokensEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// clientKey is what sign-in attempts are counted by: the client's address (an IPv6
// client's /64).
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() != nil {
		return host
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// authed wraps a page: no session redirects to the sign-in page (GET) or is refused
// (POST); a POST must come from this origin with the session's CSRF token.
func (d *Dashboard) authed(next func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var sess *session
		if c, err := r.Cookie(sessionCookie); err == nil {
			sess = d.sessions.get(c.Value, time.Now())
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, 32<<10)
			if err := r.ParseForm(); err != nil {
				d.renderError(w, http.StatusBadRequest, "The form could not be read.")
				return
			}
			switch {
			case !sameOrigin(r):
				d.renderError(w, http.StatusForbidden, "This form was sent from another site.")
				return
			case sess == nil:
				d.renderError(w, http.StatusForbidden, "You are signed out. Sign in again and retry.")
				return
			case !tokensEqual(sess.csrf, r.PostForm.Get("csrf")):
				d.renderError(w, http.StatusForbidden, "The form's security token is missing or wrong. Reload the page and try again.")
				return
			}
		} else if sess == nil {
			http.Redirect(w, r, "/sign-in?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		next(w, r, sess)
	}
}

type signInPage struct {
	page
	Next, Error string
}

// localPath keeps a post-sign-in redirect on this site.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/accounts"
	}
	return next
}

func (d *Dashboard) handleSignInPage(w http.ResponseWriter, r *http.Request) {
	tok := rand.Text()
	d.setCookie(w, r, preCookie, tok, 3600)
	d.render(w, http.StatusOK, "signin", signInPage{page: d.base("Sign in", tok, ""), Next: localPath(r.URL.Query().Get("next"))})
}

// handleSignIn checks the admin password: counted per client address first, compared
// in constant time (over hashes, so the length does not show either).
func (d *Dashboard) handleSignIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		d.renderError(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	next := localPath(r.PostForm.Get("next"))
	again := func(status int, msg string) {
		tok := rand.Text()
		d.setCookie(w, r, preCookie, tok, 3600)
		d.render(w, status, "signin", signInPage{page: d.base("Sign in", tok, ""), Next: next, Error: msg})
	}
	c, err := r.Cookie(preCookie)
	if !sameOrigin(r) || err != nil || !tokensEqual(c.Value, r.PostForm.Get("csrf")) {
		again(http.StatusForbidden, "The sign-in form expired or was sent from another site. Try again.")
		return
	}
	if res := d.signIns.Allow(clientKey(r), 1); res.Limited() && !res.Allowed {
		wait := ratelimit.RetryAfter(res)
		w.Header().Set("Retry-After", wait)
		d.log.Warn("dashboard sign-in rate limited", "client", clientKey(r))
		again(http.StatusTooManyRequests, "Too many sign-in attempts. Wait "+wait+" seconds and try again.")
		return
	}
	got, want := sha256.Sum256([]byte(r.PostForm.Get("password"))), sha256.Sum256([]byte(d.cfg.Password))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		d.log.Warn("dashboard sign-in with a wrong password", "client", clientKey(r))
		again(http.StatusUnauthorized, "Wrong admin password.")
		return
	}
	d.setCookie(w, r, preCookie, "", -1)
	d.setCookie(w, r, sessionCookie, d.sessions.create(time.Now()), int(sessionTTL.Seconds()))
	d.log.Info("dashboard sign-in", "client", clientKey(r))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (d *Dashboard) handleSignOut(w http.ResponseWriter, r *http.Request, _ *session) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		d.sessions.end(c.Value)
	}
	d.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
}

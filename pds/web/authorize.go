package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/hearth-social/hearth/pds/oauth"
)

type signInPage struct {
	page
	Action, Error, Identifier string
	NeedCode                  bool
	// Set when signing in for an OAuth client.
	Client                *oauth.ClientMetadata
	ClientName, ClientURL string
	RequestURI, ClientID  string
}

type consentPage struct {
	page
	Client                        *oauth.ClientMetadata
	ClientName, ClientURL, Handle string
	Loopback                      bool
	Permissions                   []oauth.Described
	RequestURI, ClientID          string
}

// clientLabel is the name and URL a page shows for a client: its declared name and
// client_uri, else its client_id's host.
func clientLabel(md *oauth.ClientMetadata) (string, string) {
	name, uri := md.ClientName, md.ClientURI
	if md.Loopback() {
		if name == "" {
			name = "A development app on this computer"
		}
		return name, ""
	}
	if uri == "" {
		uri = md.ClientID
	}
	if name == "" {
		if u, err := url.Parse(md.ClientID); err == nil {
			name = u.Host
		}
	}
	return name, uri
}

// pending reads the request an authorization page is about (query or form).
func (p *Pages) pending(w http.ResponseWriter, r *http.Request, clientID, requestURI string) *oauth.Pending {
	if requestURI == "" {
		p.renderError(w, http.StatusBadRequest, "Sign-in could not start", "This server needs apps to push their authorization request first (PAR); the request_uri is missing.")
		return nil
	}
	pd, err := p.cfg.OAuth.Pending(r.Context(), clientID, requestURI)
	if errors.Is(err, oauth.ErrUnknownRequest) {
		p.renderError(w, http.StatusBadRequest, "Sign-in expired", "This sign-in request is unknown, expired or already used.")
		return nil
	}
	var oe *oauth.Error
	if errors.As(err, &oe) {
		p.renderError(w, http.StatusBadRequest, "The app could not be verified", oe.Description)
		return nil
	} else if err != nil {
		p.log.Error("looking up an authorization request", "err", err)
		p.renderError(w, http.StatusInternalServerError, "Something went wrong", "The sign-in request could not be read. Try again.")
		return nil
	}
	return pd
}

func (p *Pages) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pd := p.pending(w, r, q.Get("client_id"), q.Get("request_uri"))
	if pd == nil {
		return
	}
	csrf := p.csrfToken(w, r)
	ws := p.session(r)
	prompt := pd.Request.Prompt
	if ws != nil && (prompt == "login" || prompt == "select_account") && q.Get("signed_in") == "" {
		ws = nil
	}
	if ws == nil {
		if prompt == "none" {
			to, err := p.cfg.OAuth.Deny(r.Context(), pd)
			if err == nil {
				seeOther(w, strings.Replace(to, "error=access_denied", "error=login_required", 1))
				return
			}
		}
		p.renderSignIn(w, http.StatusOK, csrf, pd, pd.Request.LoginHint, "", false)
		return
	}
	acct, err := p.cfg.Backend.Account(r.Context(), ws.DID)
	if err != nil {
		p.clearSession(w)
		p.renderSignIn(w, http.StatusOK, csrf, pd, "", "", false)
		return
	}
	p.renderConsent(w, r, csrf, pd, acct.Handle)
}

func (p *Pages) renderSignIn(w http.ResponseWriter, status int, csrf string, pd *oauth.Pending, ident, msg string, needCode bool) {
	name, uri := clientLabel(pd.Client)
	p.render(w, status, "signin", "", signInPage{page: p.base("Sign in", csrf), Action: "/oauth/authorize/sign-in", Error: msg,
		Identifier: ident, NeedCode: needCode, Client: pd.Client, ClientName: name, ClientURL: uri,
		RequestURI: pd.RequestURI, ClientID: pd.Client.ClientID})
}

func (p *Pages) renderConsent(w http.ResponseWriter, r *http.Request, csrf string, pd *oauth.Pending, handle string) {
	name, uri := clientLabel(pd.Client)
	p.render(w, http.StatusOK, "consent", redirectOrigin(pd.Request.RedirectURI), consentPage{page: p.base("Allow access", csrf),
		Client: pd.Client, ClientName: name, ClientURL: uri, Handle: handle, Loopback: pd.Client.Loopback(),
		Permissions: p.cfg.OAuth.DescribeScope(r.Context(), pd.Request.Scope), RequestURI: pd.RequestURI, ClientID: pd.Client.ClientID})
}

// redirectOrigin is the CSP source for a redirect URI (consent's form leads there).
func redirectOrigin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	if u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
		return u.Scheme + "://" + u.Host
	}
	if u.Scheme != "" && !strings.ContainsAny(u.Scheme, " ;'") {
		return u.Scheme + ":"
	}
	return ""
}

func (p *Pages) handleAuthorizeSignIn(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	pd := p.pending(w, r, f.Get("client_id"), f.Get("request_uri"))
	if pd == nil {
		return
	}
	csrf := f.Get("csrf")
	ident := strings.TrimSpace(f.Get("identifier"))
	acct, err := p.cfg.Backend.Login(r.Context(), ident, f.Get("password"), strings.TrimSpace(f.Get("code")))
	if err != nil {
		status, msg, needCode := signInFailure(w, err, f.Get("code") != "")
		p.renderSignIn(w, status, csrf, pd, ident, msg, needCode)
		return
	}
	if err := p.signIn(w, r, acct.DID); err != nil {
		p.log.Error("storing a browser sign-in", "err", err)
		p.renderError(w, http.StatusInternalServerError, "Something went wrong", "Could not sign you in. Try again.")
		return
	}
	seeOther(w, "/oauth/authorize?"+url.Values{"client_id": {pd.Client.ClientID}, "request_uri": {pd.RequestURI}, "signed_in": {"1"}}.Encode())
}

func (p *Pages) handleConsent(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	pd := p.pending(w, r, f.Get("client_id"), f.Get("request_uri"))
	if pd == nil {
		return
	}
	ws := p.session(r)
	if ws == nil {
		p.renderSignIn(w, http.StatusUnauthorized, f.Get("csrf"), pd, "", "Your sign-in expired. Sign in again.", false)
		return
	}
	var to string
	var err error
	if f.Get("decision") == "allow" {
		to, err = p.cfg.OAuth.Approve(r.Context(), pd, ws.DID, ws.DeviceID)
	} else {
		to, err = p.cfg.OAuth.Deny(r.Context(), pd)
	}
	if err != nil {
		p.log.Error("deciding an authorization request", "err", err)
		p.renderError(w, http.StatusBadRequest, "Sign-in expired", "This sign-in request expired or was already used.")
		return
	}
	p.securityHeaders(w, redirectOrigin(pd.Request.RedirectURI))
	seeOther(w, to)
}

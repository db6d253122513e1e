package web

import (
	"errors"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/hearth-social/hearth/pds/oauth"
	"github.com/hearth-social/hearth/pds/store"
)

type appView struct {
	Name, ClientID   string
	Permissions      []string
	Created, Updated string
	Sessions         int
}

type deviceView struct {
	ID, UserAgent, IP, Created, LastSeen string
	Current                              bool
}

type newAppPassword struct{ Name, Password string }

type accountPage struct {
	page
	Account        *Account
	Apps           []appView
	Devices        []deviceView
	AppPasswords   []AppPassword
	NewAppPassword *newAppPassword
	AI             []aiChoice
	Notice, Error  string
}

// aiChoice is one category of the AI preferences form.
type aiChoice struct {
	Field, Label, Help, Value string
}

// aiCategories are the form's fields, in the order of the declaration's lexicon.
func aiCategories(p AIPreferences) []aiChoice {
	return []aiChoice{
		{"training", "Training AI models", "Used to train, fine-tune or distil machine-learning models.", p.Training},
		{"synthetic", "Generating content", "Used to generate synthetic content or interactions.", p.SyntheticContent},
		{"inference", "Answering with AI", "Retrieved by AI systems at answer time (search, RAG).", p.Inference},
		{"embedding", "Embeddings and indexing", "Turned into vector embeddings for semantic search.", p.Embedding},
	}
}

func (p *Pages) handleAIPreferences(w http.ResponseWriter, r *http.Request) {
	ws := p.signedIn(w, r)
	if ws == nil {
		return
	}
	f := r.PostForm
	pick := func(name string) (string, bool) {
		switch v := f.Get(name); v {
		case "", "allow", "deny":
			return v, true
		}
		return "", false
	}
	var prefs AIPreferences
	var ok [4]bool
	prefs.Training, ok[0] = pick("training")
	prefs.SyntheticContent, ok[1] = pick("synthetic")
	prefs.Inference, ok[2] = pick("inference")
	prefs.Embedding, ok[3] = pick("embedding")
	if ok != [4]bool{true, true, true, true} {
		p.renderAccount(w, r, ws, f.Get("csrf"), accountPage{Error: "Choose allow, do not allow or not stated for each use."})
		return
	}
	if err := p.cfg.Backend.SetAIPreferences(r.Context(), ws.DID, prefs); err != nil {
		p.log.Warn("writing AI preferences from the account page", "did", ws.DID, "err", err)
		p.renderAccount(w, r, ws, f.Get("csrf"), accountPage{Error: "Could not save your AI preferences: " + err.Error()})
		return
	}
	seeOther(w, "/account?done=ai-preferences")
}

func when(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") }

func (p *Pages) handleAccount(w http.ResponseWriter, r *http.Request) {
	csrf := p.csrfToken(w, r)
	ws := p.session(r)
	if ws == nil {
		p.render(w, http.StatusOK, "signin", "", signInPage{page: p.base("Sign in", csrf), Action: "/account/sign-in"})
		return
	}
	p.renderAccount(w, r, ws, csrf, accountPage{Notice: noticeText(r.URL.Query().Get("done"))})
}

func noticeText(done string) string {
	switch done {
	case "app-revoked":
		return "The app's access was revoked."
	case "device-revoked":
		return "That browser was signed out."
	case "app-password-revoked":
		return "The app password was revoked."
	case "ai-preferences":
		return "Your AI preferences were saved in your repository; they go wherever your data goes."
	case "password-changed":
		return "Your password was changed. Other sessions and apps were signed out."
	}
	return ""
}

func (p *Pages) renderAccount(w http.ResponseWriter, r *http.Request, ws *store.WebSession, csrf string, data accountPage) {
	ctx := r.Context()
	acct, err := p.cfg.Backend.Account(ctx, ws.DID)
	if err != nil {
		p.clearSession(w)
		p.renderError(w, http.StatusUnauthorized, "Signed out", "Your account could not be found. Sign in again.")
		return
	}
	data.page, data.Account = p.base("Your account", csrf), acct
	toks, err := p.cfg.Store.OAuthTokens(ctx, ws.DID)
	if err == nil {
		byClient := map[string]*appView{}
		for _, t := range toks {
			a := byClient[t.ClientID]
			if a == nil {
				a = &appView{Name: appName(t.ClientName, t.ClientID), ClientID: t.ClientID, Permissions: oauth.Describe(t.Scope), Created: when(t.Created), Updated: when(t.Updated)}
				byClient[t.ClientID] = a
			}
			a.Sessions++
		}
		for _, a := range byClient {
			data.Apps = append(data.Apps, *a)
		}
		sort.Slice(data.Apps, func(i, j int) bool { return data.Apps[i].Name < data.Apps[j].Name })
	}
	if devs, err := p.cfg.Store.WebSessions(ctx, ws.DID); err == nil {
		for _, d := range devs {
			data.Devices = append(data.Devices, deviceView{ID: d.DeviceID, UserAgent: shortUA(d.UserAgent), IP: d.IP,
				Created: when(d.Created), LastSeen: when(d.LastSeen), Current: d.DeviceID == ws.DeviceID})
		}
	}
	if aps, err := p.cfg.Backend.AppPasswords(ctx, ws.DID); err == nil {
		data.AppPasswords = aps
	}
	prefs, err := p.cfg.Backend.AIPreferences(ctx, ws.DID)
	if err != nil {
		p.log.Warn("reading AI preferences for the account page", "did", ws.DID, "err", err)
	}
	data.AI = aiCategories(prefs)
	status := http.StatusOK
	if data.Error != "" {
		status = http.StatusBadRequest
	}
	p.render(w, status, "account", "", data)
}

// appName is how the account page names a client: its declared name, else what the
// consent page called it.
func appName(name, clientID string) string {
	if name != "" {
		return name
	}
	n, _ := clientLabel(&oauth.ClientMetadata{ClientID: clientID})
	return n
}

// shortUA names a browser from its User-Agent, roughly.
func shortUA(ua string) string {
	browser, os := "Browser", ""
	for _, b := range []struct{ key, name string }{{"Edg/", "Edge"}, {"Firefox/", "Firefox"}, {"HeadlessChrome/", "Headless Chrome"}, {"Chrome/", "Chrome"}, {"Safari/", "Safari"}, {"curl/", "curl"}} {
		if strings.Contains(ua, b.key) {
			browser = b.name
			break
		}
	}
	for _, o := range []struct{ key, name string }{{"Android", "Android"}, {"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Mac OS X", "macOS"}, {"Windows", "Windows"}, {"Linux", "Linux"}} {
		if strings.Contains(ua, o.key) {
			os = o.name
			break
		}
	}
	if os != "" {
		return browser + " on " + os
	}
	return browser
}

// signedIn returns the browser's sign-in for a form post, or answers with the sign-in
// page.
func (p *Pages) signedIn(w http.ResponseWriter, r *http.Request) *store.WebSession {
	ws := p.session(r)
	if ws == nil {
		seeOther(w, "/account")
	}
	return ws
}

func (p *Pages) handleAccountSignIn(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	ident := strings.TrimSpace(f.Get("identifier"))
	acct, err := p.cfg.Backend.Login(r.Context(), ident, f.Get("password"), strings.TrimSpace(f.Get("code")))
	if err != nil {
		status, msg, needCode := signInFailure(w, err, f.Get("code") != "")
		p.render(w, status, "signin", "", signInPage{page: p.base("Sign in", f.Get("csrf")), Action: "/account/sign-in",
			Error: msg, Identifier: ident, NeedCode: needCode})
		return
	}
	if err := p.signIn(w, r, acct.DID); err != nil {
		p.log.Error("storing a browser sign-in", "err", err)
		p.renderError(w, http.StatusInternalServerError, "Something went wrong", "Could not sign you in. Try again.")
		return
	}
	seeOther(w, "/account")
}

func (p *Pages) handleSignOut(w http.ResponseWriter, r *http.Request) {
	if ws := p.session(r); ws != nil {
		if err := p.cfg.Store.Write(r.Context(), func(tx *store.Tx) error { return tx.DeleteWebSessionDevice(ws.DID, ws.DeviceID) }); err != nil {
			p.log.Error("signing a browser out", "err", err)
		}
	}
	p.clearSession(w)
	seeOther(w, "/account")
}

func (p *Pages) handleRevokeApp(w http.ResponseWriter, r *http.Request) {
	ws := p.signedIn(w, r)
	if ws == nil {
		return
	}
	clientID := r.PostForm.Get("client_id")
	if err := p.cfg.Store.Write(r.Context(), func(tx *store.Tx) error { return tx.RevokeOAuthClient(ws.DID, clientID) }); err != nil {
		p.renderAccount(w, r, ws, r.PostForm.Get("csrf"), accountPage{Error: "Could not revoke the app."})
		return
	}
	p.log.Info("oauth app revoked from the account page", "did", ws.DID, "client_id", clientID)
	seeOther(w, "/account?done=app-revoked")
}

func (p *Pages) handleRevokeDevice(w http.ResponseWriter, r *http.Request) {
	ws := p.signedIn(w, r)
	if ws == nil {
		return
	}
	dev := r.PostForm.Get("device_id")
	if err := p.cfg.Store.Write(r.Context(), func(tx *store.Tx) error { return tx.DeleteWebSessionDevice(ws.DID, dev) }); err != nil {
		p.renderAccount(w, r, ws, r.PostForm.Get("csrf"), accountPage{Error: "Could not sign that browser out."})
		return
	}
	seeOther(w, "/account?done=device-revoked")
}

func (p *Pages) handleCreateAppPassword(w http.ResponseWriter, r *http.Request) {
	ws := p.signedIn(w, r)
	if ws == nil {
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	pw, err := p.cfg.Backend.CreateAppPassword(r.Context(), ws.DID, name, r.PostForm.Get("privileged") == "1")
	if err != nil {
		p.renderAccount(w, r, ws, r.PostForm.Get("csrf"), accountPage{Error: "Could not create the app password: " + err.Error()})
		return
	}
	// Shown once, on this answer only (no redirect: the password is never in a URL).
	p.renderAccount(w, r, ws, r.PostForm.Get("csrf"), accountPage{NewAppPassword: &newAppPassword{Name: name, Password: pw}})
}

func (p *Pages) handleRevokeAppPassword(w http.ResponseWriter, r *http.Request) {
	ws := p.signedIn(w, r)
	if ws == nil {
		return
	}
	if err := p.cfg.Backend.RevokeAppPassword(r.Context(), ws.DID, r.PostForm.Get("name")); err != nil {
		p.renderAccount(w, r, ws, r.PostForm.Get("csrf"), accountPage{Error: "Could not revoke the app password."})
		return
	}
	seeOther(w, "/account?done=app-password-revoked")
}

func (p *Pages) handleChangePassword(w http.ResponseWriter, r *http.Request) {
	ws := p.signedIn(w, r)
	if ws == nil {
		return
	}
	f := r.PostForm
	next := f.Get("new")
	if len(next) < 8 || len(next) > 256 {
		p.renderAccount(w, r, ws, f.Get("csrf"), accountPage{Error: "The new password must be 8 to 256 characters."})
		return
	}
	if err := p.cfg.Backend.ChangePassword(r.Context(), ws.DID, f.Get("current"), next, ws.DeviceID); err != nil {
		msg := "Could not change the password."
		if errors.Is(err, ErrBadLogin) {
			msg = "The current password is wrong."
		}
		p.renderAccount(w, r, ws, f.Get("csrf"), accountPage{Error: msg})
		return
	}
	p.log.Info("password changed from the account page", "did", ws.DID)
	seeOther(w, "/account?done=password-changed")
}

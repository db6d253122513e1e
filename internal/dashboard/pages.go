package dashboard

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/htmlpage"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds"
	"github.com/hearth-social/hearth/pds/store"
)

var pageNames = []string{"signin", "error", "accounts", "account", "invites", "moderation", "health", "firehose", "feed"}

var funcs = template.FuncMap{
	"bytes": formatBytes,
	"statusClass": func(s string) string {
		switch s {
		case "active":
			return "ok"
		case "takendown":
			return "bad"
		}
		return "warn"
	},
}

// formatBytes writes n in binary units, one decimal.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Handler serves the dashboard.
func (d *Dashboard) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /assets/style.css", d.pages.Stylesheet("no-cache"))
	mux.HandleFunc("GET /sign-in", d.handleSignInPage)
	mux.HandleFunc("POST /sign-in", d.handleSignIn)
	mux.HandleFunc("POST /sign-out", d.authed(d.handleSignOut))
	mux.HandleFunc("GET /{$}", d.authed(func(w http.ResponseWriter, r *http.Request, _ *session) {
		http.Redirect(w, r, "/accounts", http.StatusSeeOther)
	}))
	mux.HandleFunc("GET /accounts", d.authed(d.handleAccounts))
	mux.HandleFunc("GET /accounts/{did}", d.authed(d.handleAccount))
	mux.HandleFunc("POST /accounts/{did}/takedown", d.authed(d.handleTakedown(true)))
	mux.HandleFunc("POST /accounts/{did}/restore", d.authed(d.handleTakedown(false)))
	mux.HandleFunc("POST /accounts/{did}/reset-password", d.authed(d.handleResetPassword))
	mux.HandleFunc("GET /invites", d.authed(d.handleInvites))
	mux.HandleFunc("POST /invites", d.authed(d.handleCreateInvite))
	mux.HandleFunc("POST /invites/disable", d.authed(d.handleDisableInvite))
	mux.HandleFunc("GET /moderation", d.authed(d.handleModeration))
	mux.HandleFunc("GET /health", d.authed(d.handleHealth))
	mux.HandleFunc("GET /firehose", d.authed(d.handleFirehose))
	mux.HandleFunc("POST /firehose/crawl", d.authed(d.handleRequestCrawl))
	mux.HandleFunc("GET /feed", d.authed(d.handleFeed))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		d.renderError(w, http.StatusNotFound, "There is no such page.")
	})
	return mux
}

// page is what every template gets.
type page struct {
	Title, ServerName, Version, CSRF, Nav string
	SignedIn                              bool
}

func (d *Dashboard) base(title, csrf, nav string) page {
	return page{Title: title, ServerName: d.cfg.ServerName, Version: d.cfg.Version, CSRF: csrf, Nav: nav, SignedIn: nav != ""}
}

func (d *Dashboard) signedIn(title string, s *session, nav string) page {
	return d.base(title, s.csrf, nav)
}

// render writes a page: nothing but this origin's stylesheet and images may load, no
// scripts at all, forms only to here.
func (d *Dashboard) render(w http.ResponseWriter, status int, name string, data any) {
	htmlpage.SecurityHeaders(w.Header(), "'self'", "'self'")
	d.pages.Render(w, status, name, data)
}

type errorPage struct {
	page
	Error string
}

func (d *Dashboard) renderError(w http.ResponseWriter, status int, msg string) {
	d.render(w, status, "error", errorPage{page: d.base(http.StatusText(status), "", ""), Error: msg})
}

// failed answers an error of the admin code: its XRPC message when it is the caller's
// (bad input, not found), a generic page (and a log line) otherwise.
func (d *Dashboard) failed(w http.ResponseWriter, what string, err error) {
	var xe *xrpc.Error
	if errors.As(err, &xe) && xe.Status < 500 {
		d.renderError(w, http.StatusBadRequest, what+": "+xe.Message)
		return
	}
	d.log.Error("dashboard: "+what, "err", err)
	d.renderError(w, http.StatusInternalServerError, what+": an internal error occurred (see the server log).")
}

const accountsPerPage = 50

type accountsPage struct {
	page
	Query, Next string
	Accounts    []pds.AccountView
}

func (d *Dashboard) handleAccounts(w http.ResponseWriter, r *http.Request, s *session) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	cursor := r.URL.Query().Get("cursor")
	if cursor != "" {
		if _, err := syntax.ParseDID(cursor); err != nil {
			d.renderError(w, http.StatusBadRequest, "That page link is not valid.")
			return
		}
	}
	views, next, err := d.cfg.Admin.AdminSearchAccounts(r.Context(), q, cursor, accountsPerPage)
	if err != nil {
		d.failed(w, "Searching accounts", err)
		return
	}
	if next != "" {
		next = "/accounts?" + url.Values{"q": {q}, "cursor": {next}}.Encode()
	}
	d.render(w, http.StatusOK, "accounts", accountsPage{page: d.signedIn("Accounts", s, "accounts"), Query: q, Next: next, Accounts: views})
}

type accountPage struct {
	page
	Account     *pds.AccountView
	Log         []store.ModerationEntry
	Notice      string
	NewPassword string
}

var notices = map[string]string{
	"takedown": "The account is taken down: its repository, records and blobs are no longer served and its sessions cannot act.",
	"restore":  "The account is restored.",
}

func (d *Dashboard) renderAccount(w http.ResponseWriter, r *http.Request, s *session, did string, data accountPage) {
	acct, err := d.cfg.Admin.AdminAccountInfo(r.Context(), did)
	if err != nil {
		d.failed(w, "Reading the account", err)
		return
	}
	logs, err := d.cfg.Admin.AdminModerationLog(r.Context(), acct.DID, 0, 20)
	if err != nil {
		d.failed(w, "Reading the moderation log", err)
		return
	}
	data.page, data.Account, data.Log = d.signedIn(acct.Handle, s, "accounts"), acct, logs
	d.render(w, http.StatusOK, "account", data)
}

func (d *Dashboard) handleAccount(w http.ResponseWriter, r *http.Request, s *session) {
	d.renderAccount(w, r, s, r.PathValue("did"), accountPage{Notice: notices[r.URL.Query().Get("done")]})
}

// handleTakedown takes the account down (or restores it) through the admin code, which
// writes the moderation log entry with the reason.
func (d *Dashboard) handleTakedown(applied bool) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		did := r.PathValue("did")
		reason := strings.TrimSpace(r.PostForm.Get("reason"))
		if applied && reason == "" {
			d.renderAccount(w, r, s, did, accountPage{Notice: "Give a reason for the takedown: it is kept in the moderation log."})
			return
		}
		if err := d.cfg.Admin.AdminSetAccountTakedown(r.Context(), did, applied, d.cfg.Admin.AdminActor(r)+" (dashboard)", reason); err != nil {
			d.failed(w, "Changing the account's status", err)
			return
		}
		done := "restore"
		if applied {
			done = "takedown"
		}
		http.Redirect(w, r, "/accounts/"+url.PathEscape(did)+"?done="+done, http.StatusSeeOther)
	}
}

// handleResetPassword shows the generated password once, on this answer only.
func (d *Dashboard) handleResetPassword(w http.ResponseWriter, r *http.Request, s *session) {
	did := r.PathValue("did")
	pw, err := d.cfg.Admin.AdminResetPassword(r.Context(), did)
	if err != nil {
		d.failed(w, "Resetting the password", err)
		return
	}
	d.renderAccount(w, r, s, did, accountPage{NewPassword: pw})
}

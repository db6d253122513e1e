package pds

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/mail"
	"github.com/hearth-social/hearth/pds/store"
)

// The admin API's account and invite methods (com.atproto.admin.*), the ones goat's
// `pds admin` and the reference PDS's tools call, behind HTTP Basic admin auth. Shapes
// are the pinned lexicons'; errors the reference PDS's where it names one. Takedowns are
// in takedowns.go, handles in handle_domain.go, deletion in account_handlers.go.

// inviteCodeView is com.atproto.server.defs#inviteCode. available is the code's total
// uses, as the reference answers (apps show available - len(uses) as what is left).
type inviteCodeView struct {
	Code       string          `json:"code"`
	Available  int             `json:"available"`
	Disabled   bool            `json:"disabled"`
	ForAccount string          `json:"forAccount"`
	CreatedBy  string          `json:"createdBy"`
	CreatedAt  string          `json:"createdAt"`
	Uses       []inviteUseView `json:"uses"`
}

type inviteUseView struct {
	UsedBy string `json:"usedBy"`
	UsedAt string `json:"usedAt"`
}

func viewInviteCode(c store.InviteCode) inviteCodeView {
	v := inviteCodeView{Code: c.Code, Available: c.Available, Disabled: c.Disabled, ForAccount: c.ForAccount,
		CreatedBy: c.CreatedBy, CreatedAt: c.CreatedAt, Uses: make([]inviteUseView, 0, len(c.Uses))}
	for _, u := range c.Uses {
		v.Uses = append(v.Uses, inviteUseView{UsedBy: u.UsedBy, UsedAt: u.UsedAt})
	}
	return v
}

func viewInviteCodes(codes []store.InviteCode) []inviteCodeView {
	out := make([]inviteCodeView, 0, len(codes))
	for _, c := range codes {
		out = append(out, viewInviteCode(c))
	}
	return out
}

// accountView is com.atproto.admin.defs#accountView, with two Hearth additions the
// lexicon's open object allows: the account's status and, from getAccountInfo(s), its
// storage use and quotas.
type accountView struct {
	DID              string           `json:"did"`
	Handle           string           `json:"handle"`
	Email            string           `json:"email,omitempty"`
	IndexedAt        string           `json:"indexedAt"`
	InvitedBy        *inviteCodeView  `json:"invitedBy,omitempty"`
	Invites          []inviteCodeView `json:"invites"`
	InvitesDisabled  bool             `json:"invitesDisabled"`
	EmailConfirmedAt string           `json:"emailConfirmedAt,omitempty"`
	InviteNote       string           `json:"inviteNote,omitempty"`
	Status           string           `json:"status"`
	Storage          *Storage         `json:"storage,omitempty"`
}

// accountViews builds the views of accts (with storage when withStorage).
func (s *Server) accountViews(ctx context.Context, accts []*store.AdminAccount, withStorage bool) ([]accountView, error) {
	dids := make([]string, len(accts))
	for i, a := range accts {
		dids[i] = a.DID
	}
	invitedBy, err := s.store.InvitedBy(ctx, dids)
	if err != nil {
		return nil, err
	}
	out := make([]accountView, 0, len(accts))
	for _, a := range accts {
		codes, err := s.store.InviteCodesFor(ctx, a.DID)
		if err != nil {
			return nil, err
		}
		v := accountView{DID: a.DID, Handle: a.Handle, Email: a.Email, IndexedAt: atprotoTime(a.CreatedAt), Invites: viewInviteCodes(codes),
			InvitesDisabled: a.InvitesDisabled, InviteNote: a.InviteNote, Status: a.Status}
		if !a.EmailConfirmedAt.IsZero() {
			v.EmailConfirmedAt = a.EmailConfirmedAt.UTC().Format(syntax.AtprotoDatetimeLayout)
		}
		if code, ok := invitedBy[a.DID]; ok {
			iv := viewInviteCode(code)
			v.InvitedBy = &iv
		}
		if withStorage {
			st, err := s.accountStorage(ctx, a.DID)
			if err != nil {
				return nil, err
			}
			v.Storage = &st
		}
		out = append(out, v)
	}
	return out, nil
}

// atprotoTime writes a stored RFC 3339 time (created_at has nanoseconds) in the
// atproto datetime form, millisecond precision; anything else is passed as stored.
func atprotoTime(raw string) string {
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return raw
	}
	return t.UTC().Format(syntax.AtprotoDatetimeLayout)
}

func (s *Server) handleAdminGetAccountInfo(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	raw := r.URL.Query().Get("did")
	did, err := syntax.ParseDID(raw)
	if err != nil {
		return xrpc.InvalidRequest("invalid did %q", raw)
	}
	accts, err := s.store.AdminAccounts(ctx, []string{did.String()})
	if err != nil {
		return err
	}
	if len(accts) == 0 {
		return xrpc.Errorf(http.StatusBadRequest, "NotFound", "Account not found")
	}
	views, err := s.accountViews(ctx, accts, true)
	if err != nil {
		return err
	}
	xrpc.WriteJSON(w, http.StatusOK, views[0])
	return nil
}

// maxAccountInfos bounds one getAccountInfos call.
const maxAccountInfos = 100

// handleAdminGetAccountInfos answers the accounts among dids that exist; unknown DIDs
// are left out, as the reference does.
func (s *Server) handleAdminGetAccountInfos(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	raw := r.URL.Query()["dids"]
	if len(raw) == 0 {
		return xrpc.InvalidRequest("dids is required")
	}
	if len(raw) > maxAccountInfos {
		return xrpc.InvalidRequest("at most %d dids", maxAccountInfos)
	}
	for _, d := range raw {
		if _, err := syntax.ParseDID(d); err != nil {
			return xrpc.InvalidRequest("invalid did %q", d)
		}
	}
	accts, err := s.store.AdminAccounts(ctx, raw)
	if err != nil {
		return err
	}
	views, err := s.accountViews(ctx, accts, true)
	if err != nil {
		return err
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]any{"infos": views})
	return nil
}

// handleAdminSearchAccounts lists accounts whose email starts with email (the lexicon's
// parameter) or, with Hearth's term parameter, whose handle or email starts with term;
// neither lists every account. Paged in DID order.
func (s *Server) handleAdminSearchAccounts(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := parseLimit(q.Get("limit"), 50, 100)
	if err != nil {
		return err
	}
	cursor := q.Get("cursor")
	if cursor != "" {
		if _, err := syntax.ParseDID(cursor); err != nil {
			return xrpc.InvalidRequest("invalid cursor")
		}
	}
	email, term := strings.TrimSpace(q.Get("email")), strings.TrimPrefix(strings.TrimSpace(q.Get("term")), "@")
	if len(email) > 254 || len(term) > 254 {
		return xrpc.InvalidRequest("search terms are at most 254 characters")
	}
	accts, err := s.store.SearchAccounts(r.Context(), store.AccountSearch{Email: email, Term: term, Cursor: cursor, Limit: limit})
	if err != nil {
		return err
	}
	views, err := s.accountViews(r.Context(), accts, false)
	if err != nil {
		return err
	}
	out := map[string]any{"accounts": views}
	if len(accts) == limit {
		out["cursor"] = accts[len(accts)-1].DID
	}
	xrpc.WriteJSON(w, http.StatusOK, out)
	return nil
}

// adminAccountByID finds a not-deleted account by DID or handle, whatever its status.
func (s *Server) adminAccountByID(ctx context.Context, raw string) (*store.Account, error) {
	id, err := syntax.ParseAtIdentifier(raw)
	if err != nil {
		return nil, xrpc.InvalidRequest("invalid account %q: must be a DID or handle", raw)
	}
	var acct *store.Account
	if did, derr := id.AsDID(); derr == nil {
		acct, err = s.store.AccountByDID(ctx, did.String())
	} else {
		h, _ := id.AsHandle()
		acct, err = s.store.AccountByHandle(ctx, h.Normalize().String())
	}
	if errors.Is(err, store.ErrNotFound) || (err == nil && acct.Status == store.StatusDeleted) {
		return nil, xrpc.InvalidRequest("Account does not exist: %s", raw)
	}
	return acct, err
}

// handleAdminUpdateAccountEmail sets an account's address; like updateEmail, the new
// address starts unconfirmed with the email second factor off.
func (s *Server) handleAdminUpdateAccountEmail(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in struct {
		Account string `json:"account"`
		Email   string `json:"email"`
	}
	if err := xrpc.DecodeJSON(w, r, 16<<10, &in); err != nil {
		return err
	}
	acct, err := s.adminAccountByID(ctx, in.Account)
	if err != nil {
		return err
	}
	email, err := parseEmail(in.Email)
	if err != nil {
		return err
	}
	err = s.store.Write(ctx, func(tx *store.Tx) error { return tx.UpdateEmail(acct.DID, email, nil) })
	if errors.Is(err, store.ErrEmailTaken) {
		return xrpc.InvalidRequest("this email address is already in use by another account")
	} else if err != nil {
		return err
	}
	s.log.Info("admin changed an account's email", "did", acct.DID)
	return writeOK(w)
}

// handleAdminUpdateAccountPassword sets an account's password. As with resetPassword,
// every session, app password and access token issued before ends.
func (s *Server) handleAdminUpdateAccountPassword(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in struct {
		DID      string `json:"did"`
		Password string `json:"password"`
	}
	if err := xrpc.DecodeJSON(w, r, 16<<10, &in); err != nil {
		return err
	}
	acct, err := s.adminAccount(ctx, in.DID)
	if err != nil {
		return err
	}
	if _, err := s.replacePassword(ctx, in.Password, func(*store.Tx) (string, error) { return acct.DID, nil }); err != nil {
		return err
	}
	s.log.Info("admin changed an account's password", "did", acct.DID)
	return writeOK(w)
}

// Bounds of an admin email.
const (
	maxAdminMailSubject = 200
	maxAdminMailContent = 50_000
)

// handleAdminSendEmail mails content to an account's address through the configured
// mailer (SMTP, or the data dir's outbox).
func (s *Server) handleAdminSendEmail(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in struct {
		RecipientDID string `json:"recipientDid"`
		Content      string `json:"content"`
		Subject      string `json:"subject"`
		SenderDID    string `json:"senderDid"`
		Comment      string `json:"comment"`
	}
	if err := xrpc.DecodeJSON(w, r, 128<<10, &in); err != nil {
		return err
	}
	recipient, err := syntax.ParseDID(in.RecipientDID)
	if err != nil {
		return xrpc.InvalidRequest("invalid recipientDid %q", in.RecipientDID)
	}
	if _, err := syntax.ParseDID(in.SenderDID); err != nil {
		return xrpc.InvalidRequest("invalid senderDid %q", in.SenderDID)
	}
	if strings.TrimSpace(in.Content) == "" {
		return xrpc.InvalidRequest("content is required")
	}
	if len(in.Content) > maxAdminMailContent {
		return xrpc.InvalidRequest("content is longer than %d bytes", maxAdminMailContent)
	}
	subject := strings.TrimSpace(in.Subject)
	if subject == "" {
		subject = "Message via your PDS" // the reference's default
	}
	if len(subject) > maxAdminMailSubject || strings.ContainsAny(subject, "\r\n") {
		return xrpc.InvalidRequest("subject must be one line of at most %d bytes", maxAdminMailSubject)
	}
	acct, err := s.store.AccountByDID(ctx, recipient.String())
	if errors.Is(err, store.ErrNotFound) || (err == nil && acct.Status == store.StatusDeleted) {
		return xrpc.InvalidRequest("Recipient not found")
	} else if err != nil {
		return err
	}
	if acct.Email == "" {
		return xrpc.InvalidRequest("account does not have an email address")
	}
	body := in.Content + "\n\n-- The administrator of " + s.cfg.PublicURL + "\n"
	if err := s.cfg.Mailer.Send(ctx, mail.Message{To: acct.Email, Subject: subject, Body: body, DID: acct.DID, Purpose: mail.PurposeAdminMessage}); err != nil {
		s.log.Error("sending admin mail", "did", acct.DID, "err", err)
		return xrpc.Errorf(http.StatusInternalServerError, "InternalServerError", "the mail could not be sent")
	}
	s.log.Info("admin mailed an account", "did", acct.DID, "sender", in.SenderDID)
	xrpc.WriteJSON(w, http.StatusOK, map[string]bool{"sent": true})
	return nil
}

// handleAdminGetInviteCodes pages through every invite code, newest or most used first.
func (s *Server) handleAdminGetInviteCodes(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := parseLimit(q.Get("limit"), 100, 500)
	if err != nil {
		return err
	}
	var sort store.InviteSort
	switch q.Get("sort") {
	case "", "recent":
		sort = store.InviteSortRecent
	case "usage":
		sort = store.InviteSortUsage
	default:
		return xrpc.InvalidRequest("unknown sort method: %s", q.Get("sort"))
	}
	var cursor *store.InviteCursor
	if raw := q.Get("cursor"); raw != "" {
		key, code, ok := strings.Cut(raw, "::")
		if !ok || key == "" || code == "" {
			return xrpc.InvalidRequest("Malformed cursor")
		}
		cursor = &store.InviteCursor{Key: key, Code: code}
	}
	codes, err := s.store.ListInviteCodes(r.Context(), sort, cursor, limit)
	if err != nil {
		return err
	}
	out := map[string]any{"codes": viewInviteCodes(codes)}
	if len(codes) == limit {
		last := codes[len(codes)-1]
		key := last.CreatedAt
		if sort == store.InviteSortUsage {
			key = strconv.Itoa(len(last.Uses))
		}
		out["cursor"] = key + "::" + last.Code
	}
	xrpc.WriteJSON(w, http.StatusOK, out)
	return nil
}

// handleAdminDisableInviteCodes disables codes by name and every code of the accounts
// named; the admin's own codes cannot be disabled by account.
func (s *Server) handleAdminDisableInviteCodes(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Codes    []string `json:"codes"`
		Accounts []string `json:"accounts"`
	}
	if err := xrpc.DecodeJSON(w, r, 256<<10, &in); err != nil {
		return err
	}
	if len(in.Codes) > 1000 || len(in.Accounts) > 1000 {
		return xrpc.InvalidRequest("at most 1000 codes and 1000 accounts")
	}
	for _, a := range in.Accounts {
		if a == "admin" {
			return xrpc.InvalidRequest("cannot disable admin invite codes")
		}
	}
	if err := s.store.Write(r.Context(), func(tx *store.Tx) error { return tx.DisableInviteCodes(in.Codes, in.Accounts) }); err != nil {
		return err
	}
	return writeOK(w)
}

func (s *Server) handleAdminEnableAccountInvites(w http.ResponseWriter, r *http.Request) error {
	return s.setAccountInvites(w, r, false)
}

func (s *Server) handleAdminDisableAccountInvites(w http.ResponseWriter, r *http.Request) error {
	return s.setAccountInvites(w, r, true)
}

// setAccountInvites turns an account's invites off (no new codes may be made for it; its
// codes keep working) or on again.
func (s *Server) setAccountInvites(w http.ResponseWriter, r *http.Request, disabled bool) error {
	var in struct {
		Account string `json:"account"`
		Note    string `json:"note"`
	}
	if err := xrpc.DecodeJSON(w, r, 16<<10, &in); err != nil {
		return err
	}
	if len(in.Note) > 1000 {
		return xrpc.InvalidRequest("note is longer than 1000 characters")
	}
	acct, err := s.adminAccount(r.Context(), in.Account)
	if err != nil {
		return err
	}
	if err := s.store.Write(r.Context(), func(tx *store.Tx) error { return tx.SetInvitesDisabled(acct.DID, disabled, in.Note) }); err != nil {
		return err
	}
	return writeOK(w)
}

// checkInvitesAllowed refuses new invite codes for an account whose invites are disabled.
func (s *Server) checkInvitesAllowed(ctx context.Context, forAccount string) error {
	if forAccount == "admin" {
		return nil
	}
	disabled, err := s.store.InvitesDisabled(ctx, forAccount)
	if errors.Is(err, store.ErrNotFound) {
		return nil // codes may be made for an account that does not exist yet
	} else if err != nil {
		return err
	}
	if disabled {
		return xrpc.InvalidRequest("invites are disabled for %s (com.atproto.admin.enableAccountInvites turns them on)", forAccount)
	}
	return nil
}

// replacePassword sets the password (1 to 256 characters) of the account that account
// names, inside the transaction (resetPassword consumes its token there), and ends what
// the old password let in: mailed tokens, every session and app password in the same
// transaction, and the access tokens issued before (sessionCutoffs). It returns the DID.
func (s *Server) replacePassword(ctx context.Context, password string, account func(*store.Tx) (string, error)) (string, error) {
	if len(password) < 1 || len(password) > 256 {
		return "", xrpc.InvalidRequest("password must be 1 to 256 characters")
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return "", err
	}
	var did string
	err = s.store.Write(ctx, func(tx *store.Tx) error {
		var err error
		if did, err = account(tx); err != nil {
			return err
		}
		if err := tx.SetPassword(did, hash); err != nil {
			return err
		}
		if err := tx.DeleteEmailTokens(did); err != nil {
			return err
		}
		return tx.RevokeSessions(did)
	})
	if err != nil {
		return "", err
	}
	s.cutoffs.set(did, time.Now(), s.sessions.AccessTTL)
	return did, nil
}

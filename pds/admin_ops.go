package pds

import (
	"context"
	"crypto/rand"
	"net/http"
	"strings"

	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/store"
)

// The admin API in-process, for the operator dashboard (internal/dashboard), which runs
// on a listener of its own inside `hearth serve`: each method is the XRPC admin
// handler's own code path (the same store calls, views, checks, moderation log and
// session revocation), without the HTTP round trip or the Basic auth the dashboard
// replaces with its own sign-in. Errors are the handlers' *xrpc.Error values.

// AccountView is com.atproto.admin.defs#accountView as getAccountInfo answers it.
type AccountView = accountView

// InviteCodeView is com.atproto.server.defs#inviteCode.
type InviteCodeView = inviteCodeView

// AdminSearchAccounts lists the accounts whose handle or email starts with term (every
// account when term is empty), with their storage, in DID order after cursor; next is
// the cursor of the following page ("" at the end).
func (s *Server) AdminSearchAccounts(ctx context.Context, term, cursor string, limit int) (views []AccountView, next string, err error) {
	term = strings.TrimPrefix(strings.TrimSpace(term), "@")
	if len(term) > 254 {
		return nil, "", xrpc.InvalidRequest("search terms are at most 254 characters")
	}
	accts, err := s.store.SearchAccounts(ctx, store.AccountSearch{Term: term, Cursor: cursor, Limit: limit})
	if err != nil {
		return nil, "", err
	}
	if views, err = s.accountViews(ctx, accts, true); err != nil {
		return nil, "", err
	}
	if len(accts) == limit {
		next = accts[len(accts)-1].DID
	}
	return views, next, nil
}

// AdminAccountInfo is getAccountInfo's view of did (AccountNotFound when there is none).
func (s *Server) AdminAccountInfo(ctx context.Context, did string) (*AccountView, error) {
	acct, err := s.adminAccount(ctx, did)
	if err != nil {
		return nil, err
	}
	accts, err := s.store.AdminAccounts(ctx, []string{acct.DID})
	if err != nil {
		return nil, err
	}
	if len(accts) == 0 {
		return nil, xrpc.Errorf(http.StatusBadRequest, "AccountNotFound", "no account %s", did)
	}
	views, err := s.accountViews(ctx, accts, true)
	if err != nil {
		return nil, err
	}
	return &views[0], nil
}

// AdminSetAccountTakedown takes did's account down (applied) or restores it, as
// updateSubjectStatus does, logging actor and reason in the moderation log.
func (s *Server) AdminSetAccountTakedown(ctx context.Context, did string, applied bool, actor, reason string) error {
	if len(reason) > 2000 {
		return xrpc.InvalidRequest("the reason is longer than 2000 characters")
	}
	return s.updateSubjectStatus(ctx, subjectRef{Type: typeRepoRef, DID: did}, &statusAttr{Applied: applied}, actor, reason)
}

// AdminResetPassword gives did's account a new random password (returned, to be shown
// once) and ends its sessions, app passwords and older access tokens, as
// updateAccountPassword does.
func (s *Server) AdminResetPassword(ctx context.Context, did string) (string, error) {
	acct, err := s.adminAccount(ctx, did)
	if err != nil {
		return "", err
	}
	pw := rand.Text() // as `hearth admin reset-password` generates one
	if _, err := s.replacePassword(ctx, pw, func(*store.Tx) (string, error) { return acct.DID, nil }); err != nil {
		return "", err
	}
	s.log.Info("admin reset an account's password", "did", acct.DID)
	return pw, nil
}

// AdminInviteCodes lists the newest invite codes (getInviteCodes, sort recent).
func (s *Server) AdminInviteCodes(ctx context.Context, limit int) ([]InviteCodeView, error) {
	codes, err := s.store.ListInviteCodes(ctx, store.InviteSortRecent, nil, limit)
	if err != nil {
		return nil, err
	}
	return viewInviteCodes(codes), nil
}

// AdminDisableInviteCodes disables codes (disableInviteCodes by code).
func (s *Server) AdminDisableInviteCodes(ctx context.Context, codes []string) error {
	return s.store.Write(ctx, func(tx *store.Tx) error { return tx.DisableInviteCodes(codes, nil) })
}

// AdminCreateInviteCode makes one code of uses uses, for forAccount (a DID; "" for the
// admin), as createInviteCode does.
func (s *Server) AdminCreateInviteCode(ctx context.Context, forAccount string, uses int) (string, error) {
	codes, err := s.newInviteCodes(ctx, forAccount, uses, 1)
	if err != nil {
		return "", err
	}
	return codes[0], nil
}

// AdminModerationLog is getModerationLog's page: entries about did ("" for all), newest
// first, with id < before (0: from the newest).
func (s *Server) AdminModerationLog(ctx context.Context, did string, before int64, limit int) ([]store.ModerationEntry, error) {
	return s.store.ModerationLog(ctx, did, before, limit)
}

// AdminActor names who made an admin change through r, for the moderation log.
func (s *Server) AdminActor(r *http.Request) string { return s.adminActor(r) }

// FirehoseStatus is the firehose's current sequence number and how many subscribers
// are connected.
type FirehoseStatus struct {
	Seq         int64
	Subscribers int
}

// Firehose reports the firehose's status.
func (s *Server) Firehose(ctx context.Context) (FirehoseStatus, error) {
	seq, err := s.store.LastSeq(ctx)
	if err != nil {
		return FirehoseStatus{}, err
	}
	return FirehoseStatus{Seq: seq, Subscribers: s.seq.Subscribers()}, nil
}

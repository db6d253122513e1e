package pds

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/auth"
	"github.com/hearth-social/hearth/pds/plc"
	"github.com/hearth-social/hearth/pds/store"
)

type createAccountInput struct {
	Handle     string `json:"handle"`
	Email      string `json:"email"`
	Password   string `json:"password"`
	InviteCode string `json:"inviteCode"`
	DID        string `json:"did"`
}

// handleCreateAccount signs an account up. Everything that can refuse the sign-up (the
// invite code, the handle, the email) is checked and reserved before the PLC genesis
// operation is published, so a refused sign-up publishes nothing: a DID in the directory
// is never left without an account.
func (s *Server) handleCreateAccount(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in createAccountInput
	if err := xrpc.DecodeJSON(w, r, 64<<10, &in); err != nil {
		return err
	}
	// A handle outside this PDS's domains must resolve to the account's DID, so, as in
	// the reference PDS, it is accepted only from an account that brings its DID
	// (arriving from another PDS), and checked once that DID's token is.
	handle, custom, err := s.checkHandleSyntax(in.Handle)
	if err != nil {
		return err
	}
	if custom && in.DID == "" {
		return xrpc.Errorf(http.StatusBadRequest, "UnsupportedDomain", "Not a supported handle domain: a handle outside %s needs an existing DID that it resolves to", strings.Join(s.cfg.HandleDomains, ", "))
	}
	if len(in.Password) < 1 || len(in.Password) > 256 {
		return xrpc.InvalidRequest("password must be 1 to 256 characters")
	}
	if in.Email != "" {
		if _, err := mail.ParseAddress(in.Email); err != nil || strings.ContainsAny(in.Email, " <>") {
			return xrpc.InvalidRequest("invalid email address")
		}
	}
	in.InviteCode = strings.TrimSpace(in.InviteCode)
	if s.cfg.InviteRequired && in.InviteCode == "" {
		return xrpc.Errorf(http.StatusBadRequest, "InvalidInviteCode", "an invite code is required")
	}

	// An account arriving from another PDS brings its DID, with a service-auth token
	// from that PDS (account_arrive.go); checked before anything is reserved.
	var arriving syntax.DID
	if in.DID != "" {
		if arriving, err = s.checkArrivalAuth(ctx, r, in.DID); err != nil {
			return err
		}
	}
	if custom {
		if err := s.verifyHandle(ctx, handle, arriving); err != nil {
			return refuseUnverified(handle, arriving, err)
		}
	}

	release, err := s.reserveSignup(ctx, handle.String(), in.Email, in.InviteCode)
	if err != nil {
		return err
	}
	defer release()

	hash, err := s.hasher.Hash(ctx, in.Password)
	if err != nil {
		return err
	}
	if arriving != "" {
		if err := s.createArrivingAccount(ctx, w, arriving, handle, in, hash); err != nil || !custom {
			return err
		}
		// The answer is written: a failure here only delays the handle's first re-check.
		if err := s.store.Write(ctx, func(tx *store.Tx) error { return tx.WatchHandle(arriving.String(), handle.String()) }); err != nil {
			s.log.Warn("recording a custom-domain handle for re-checks", "did", arriving, "handle", handle, "err", err)
		}
		return nil
	}
	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		return err
	}
	pub, err := key.PublicKey()
	if err != nil {
		return err
	}
	rotPub, err := s.rotation.PublicKey()
	if err != nil {
		return err
	}
	op, did, err := plc.NewGenesis(handle.String(), s.cfg.PublicURL, pub, []atcrypto.PublicKey{rotPub}, s.rotation)
	if err != nil {
		return fmt.Errorf("building PLC genesis: %w", err)
	}
	if err := s.plc.Submit(ctx, did, op); err != nil {
		return xrpc.Errorf(http.StatusBadGateway, "UpstreamFailure", "registering the DID with the PLC directory failed: %v", err)
	}
	pair, err := s.sessions.Issue(did.String(), auth.ScopeAccess)
	if err != nil {
		return err
	}
	acct := &store.Account{DID: did.String(), Handle: handle.String(), Email: in.Email, PasswordHash: hash, SigningKey: key.Bytes()}
	err = s.store.Write(ctx, func(tx *store.Tx) error {
		if err := tx.CreateAccount(acct); err != nil {
			return err
		}
		if s.cfg.InviteRequired {
			if err := tx.UseInviteCode(in.InviteCode, did.String(), tx.Now().UTC().Format(time.RFC3339)); err != nil {
				return err
			}
		}
		if _, err := genesis(ctx, tx, did, handle.String(), key); err != nil {
			return err
		}
		return tx.PutRefreshToken(store.RefreshToken{ID: pair.RefreshID, DID: did.String(), Expires: pair.RefreshExpires})
	})
	if err := signupError(err, handle); err != nil {
		return err
	}
	s.log.Info("account created", "did", did, "handle", handle)
	doc, _ := plc.DocFromOp(did, op)
	xrpc.WriteJSON(w, http.StatusOK, map[string]any{
		"handle":     handle.String(),
		"did":        did.String(),
		"didDoc":     doc,
		"accessJwt":  pair.Access,
		"refreshJwt": pair.Refresh,
	})
	return nil
}

// reserveSignup checks that the handle and email are free and the invite code (when one
// is required) has a use left, and holds them for this sign-up until release is called,
// so that concurrent sign-ups cannot all pass the checks and then publish DIDs that only
// one of them can turn into an account.
func (s *Server) reserveSignup(ctx context.Context, handle, email, invite string) (release func(), err error) {
	var held []string
	release = func() { s.signups.release(held...) }
	fail := func(e error) (func(), error) { release(); return nil, e }

	if !s.signups.reserve("handle:"+handle, 1) {
		return fail(xrpc.Errorf(http.StatusBadRequest, "HandleNotAvailable", "handle already taken: %s", handle))
	}
	held = append(held, "handle:"+handle)
	if taken, err := s.store.HandleExists(ctx, handle); err != nil {
		return fail(err)
	} else if taken {
		return fail(xrpc.Errorf(http.StatusBadRequest, "HandleNotAvailable", "handle already taken: %s", handle))
	}
	if email != "" {
		key := "email:" + strings.ToLower(email)
		if !s.signups.reserve(key, 1) {
			return fail(xrpc.InvalidRequest("email already taken"))
		}
		held = append(held, key)
		if _, err := s.store.AccountByEmail(ctx, email); err == nil {
			return fail(xrpc.InvalidRequest("email already taken"))
		} else if !errors.Is(err, store.ErrNotFound) {
			return fail(err)
		}
	}
	if s.cfg.InviteRequired {
		left, err := s.store.InviteRemaining(ctx, invite)
		if errors.Is(err, store.ErrInviteUnavailable) {
			return fail(xrpc.Errorf(http.StatusBadRequest, "InvalidInviteCode", "invite code not available"))
		} else if err != nil {
			return fail(err)
		}
		if !s.signups.reserve("invite:"+invite, left) {
			return fail(xrpc.Errorf(http.StatusBadRequest, "InvalidInviteCode", "invite code not available"))
		}
		held = append(held, "invite:"+invite)
	}
	return release, nil
}

// reservations counts what in-flight sign-ups hold (a handle, an email, uses of an
// invite code) between their checks and their commit.
type reservations struct {
	mu   sync.Mutex
	held map[string]int
}

func newReservations() *reservations { return &reservations{held: make(map[string]int)} }

// reserve takes one of limit for key; false when limit are already held.
func (r *reservations) reserve(key string, limit int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held[key] >= limit {
		return false
	}
	r.held[key]++
	return true
}

func (r *reservations) release(keys ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		if r.held[k]--; r.held[k] <= 0 {
			delete(r.held, k)
		}
	}
}

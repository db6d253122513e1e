package pds

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	indigoauth "github.com/bluesky-social/indigo/atproto/auth"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/auth"
	"github.com/hearth-social/hearth/pds/store"
)

const (
	// defaultServiceAuthTTL is the lifetime of a service-auth token when the client
	// names no exp, and of the tokens the proxy attaches.
	defaultServiceAuthTTL = time.Minute
	// maxServiceAuthTTL bounds a requested exp; a token without lxm may live at most
	// defaultServiceAuthTTL (both as the reference PDS does).
	maxServiceAuthTTL = time.Hour
)

// protectedMethods are account-management methods that must be called on the PDS
// itself: no service-auth token is issued for them and they are never proxied
// (the reference PDS's list).
var protectedMethods = map[string]bool{
	"com.atproto.admin.sendEmail":                       true,
	"com.atproto.identity.requestPlcOperationSignature": true,
	"com.atproto.identity.signPlcOperation":             true,
	"com.atproto.identity.updateHandle":                 true,
	"com.atproto.server.activateAccount":                true,
	"com.atproto.server.confirmEmail":                   true,
	"com.atproto.server.createAppPassword":              true,
	"com.atproto.server.deactivateAccount":              true,
	"com.atproto.server.getAccountInviteCodes":          true,
	"com.atproto.server.listAppPasswords":               true,
	"com.atproto.server.requestAccountDelete":           true,
	"com.atproto.server.requestEmailConfirmation":       true,
	"com.atproto.server.requestEmailUpdate":             true,
	"com.atproto.server.revokeAppPassword":              true,
	"com.atproto.server.updateEmail":                    true,
}

// privilegedMethods need a full session or a privileged app password (direct messages,
// account creation on another service), as in the reference PDS.
var privilegedMethods = map[string]bool{
	"chat.bsky.actor.deleteAccount":        true,
	"chat.bsky.actor.exportAccountData":    true,
	"chat.bsky.convo.deleteMessageForSelf": true,
	"chat.bsky.convo.getConvo":             true,
	"chat.bsky.convo.getConvoForMembers":   true,
	"chat.bsky.convo.getLog":               true,
	"chat.bsky.convo.getMessages":          true,
	"chat.bsky.convo.leaveConvo":           true,
	"chat.bsky.convo.listConvos":           true,
	"chat.bsky.convo.muteConvo":            true,
	"chat.bsky.convo.sendMessage":          true,
	"chat.bsky.convo.sendMessageBatch":     true,
	"chat.bsky.convo.unmuteConvo":          true,
	"chat.bsky.convo.updateRead":           true,
	"com.atproto.server.createAccount":     true,
}

// privileged reports whether a session scope may use privileged methods.
func privileged(scope string) bool {
	return scope == auth.ScopeAccess || scope == auth.ScopeAppPassPrivilege
}

// accountSigningKey loads did's repo signing key, refusing taken-down accounts.
func (s *Server) accountSigningKey(ctx context.Context, did string) (atcrypto.PrivateKey, error) {
	acct, err := s.store.AccountByDID(ctx, did)
	if errors.Is(err, store.ErrNotFound) {
		return nil, xrpc.Errorf(http.StatusUnauthorized, "InvalidToken", "account not found")
	} else if err != nil {
		return nil, err
	}
	if acct.Status == store.StatusTakendown {
		return nil, xrpc.Errorf(http.StatusUnauthorized, "AccountTakedown", "account has been taken down")
	}
	k, err := atcrypto.ParsePrivateBytesK256(acct.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("parsing signing key of %s: %w", did, err)
	}
	return k, nil
}

// serviceAuthToken signs a service-auth JWT {iss: did, aud, lxm, exp: now+ttl} with the
// account's repo signing key (ES256K), verifiable against its DID document.
func (s *Server) serviceAuthToken(ctx context.Context, did, aud string, lxm *syntax.NSID, ttl time.Duration) (string, error) {
	key, err := s.accountSigningKey(ctx, did)
	if err != nil {
		return "", err
	}
	iss, err := syntax.ParseDID(did)
	if err != nil {
		return "", fmt.Errorf("account DID %q: %w", did, err)
	}
	return indigoauth.SignServiceAuth(iss, aud, ttl, lxm, key)
}

// parseServiceRef checks a service reference: a DID, optionally with a "#service_id"
// fragment naming one of its services (e.g. did:web:api.bsky.app#bsky_appview).
func parseServiceRef(raw string) (string, error) {
	did, frag, hasFrag := strings.Cut(raw, "#")
	if _, err := syntax.ParseDID(did); err != nil {
		return "", err
	}
	if hasFrag {
		if frag == "" || len(frag) > 64 {
			return "", fmt.Errorf("bad service fragment %q", frag)
		}
		for _, c := range frag {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
				return "", fmt.Errorf("bad service fragment %q", frag)
			}
		}
	}
	return raw, nil
}

func (s *Server) handleGetServiceAuth(w http.ResponseWriter, r *http.Request) error {
	c := callerFrom(r.Context())
	if c.DID == "" {
		return xrpc.InvalidRequest("getServiceAuth needs a user session")
	}
	q := r.URL.Query()
	aud, err := parseServiceRef(q.Get("aud"))
	if err != nil {
		return xrpc.InvalidRequest("aud must be a DID or a DID#service reference: %q", q.Get("aud"))
	}
	var lxm *syntax.NSID
	if raw := q.Get("lxm"); raw != "" {
		n, err := syntax.ParseNSID(raw)
		if err != nil {
			return xrpc.InvalidRequest("lxm must be an NSID: %q", raw)
		}
		if protectedMethods[n.String()] {
			return xrpc.InvalidRequest("cannot request a service auth token for the protected method %s", n)
		}
		// An OAuth caller's rpc: permission was checked by checkOAuthRoute.
		if privilegedMethods[n.String()] && c.OAuth == nil && !privileged(c.Scope) {
			return xrpc.InvalidRequest("insufficient access to request a service auth token for %s", n)
		}
		lxm = &n
	}
	ttl := defaultServiceAuthTTL
	if raw := q.Get("exp"); raw != "" {
		exp, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return xrpc.InvalidRequest("exp must be an integer (seconds since the epoch)")
		}
		ttl = time.Until(time.Unix(exp, 0))
		switch {
		case ttl <= 0:
			return xrpc.Errorf(http.StatusBadRequest, "BadExpiration", "expiration is in the past")
		case ttl > maxServiceAuthTTL:
			return xrpc.Errorf(http.StatusBadRequest, "BadExpiration", "cannot request a token that expires more than an hour in the future")
		case lxm == nil && ttl > defaultServiceAuthTTL:
			return xrpc.Errorf(http.StatusBadRequest, "BadExpiration", "cannot request a method-less token that expires more than a minute in the future")
		}
	}
	tok, err := s.serviceAuthToken(r.Context(), c.DID, aud, lxm, ttl)
	if err != nil {
		return err
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]string{"token": tok})
	return nil
}

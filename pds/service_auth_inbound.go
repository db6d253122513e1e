package pds

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	indigoauth "github.com/bluesky-social/indigo/atproto/auth"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/golang-jwt/jwt/v5"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/store"
)

// scopeServiceAuth is the caller scope of a request authorised by an inbound
// service-auth JWT (one method, on behalf of a local account): not a session.
const scopeServiceAuth = "com.hearth.serviceAuth"

// isServiceAuthJWT reports whether tok is signed with an atproto key (ES256K/ES256)
// rather than being one of Hearth's own HS256 session tokens.
func isServiceAuthJWT(tok string) bool {
	head, _, ok := strings.Cut(tok, ".")
	if !ok {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(raw, &h) != nil {
		return false
	}
	return h.Alg == "ES256K" || h.Alg == "ES256"
}

// checkInboundServiceAuth verifies a service-auth JWT another service presents on a
// local account's behalf (the video service calling uploadBlob with the token the app
// got from getServiceAuth): iss a local account, the signature by that account's
// current signing key, aud this PDS's service DID, lxm the method called, exp at most
// maxServiceAuthTTL ahead.
func (s *Server) checkInboundServiceAuth(ctx context.Context, tok, nsid string) (*caller, error) {
	lxm, err := syntax.ParseNSID(nsid)
	if err != nil {
		return nil, err
	}
	// Read unverified first: the issuer's standing comes before the signature, so a
	// taken-down account hears so rather than that its key cannot be found, and the
	// expiry bound below needs exp (Validate checks the signature and that exp is ahead).
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &claims); err != nil {
		return nil, xrpc.Errorf(http.StatusUnauthorized, "InvalidToken", "service auth token rejected: %v", err)
	}
	if iss, err := syntax.ParseDID(claims.Issuer); err == nil {
		if err := s.checkCallerAccount(ctx, iss.String()); err != nil {
			return nil, err
		}
	}
	v := indigoauth.ServiceAuthValidator{Audience: s.cfg.ServerDID(), Dir: localAccounts{s}}
	did, err := v.Validate(ctx, tok, &lxm)
	if err != nil {
		return nil, xrpc.Errorf(http.StatusUnauthorized, "InvalidToken", "service auth token rejected: %v", err)
	}
	if claims.ExpiresAt == nil {
		return nil, xrpc.Errorf(http.StatusUnauthorized, "InvalidToken", "service auth token has no expiry")
	}
	if time.Until(claims.ExpiresAt.Time) > maxServiceAuthTTL+time.Minute {
		return nil, xrpc.Errorf(http.StatusUnauthorized, "InvalidToken", "service auth token lives longer than %s", maxServiceAuthTTL)
	}
	return &caller{DID: did.String(), Scope: scopeServiceAuth}, nil
}

// localAccounts is an identity.Directory over this PDS's own accounts: an inbound
// service-auth JWT must come from an account hosted here, and it verifies against the
// signing key Hearth holds for it (what its DID document publishes), with no network.
type localAccounts struct{ s *Server }

func (d localAccounts) LookupDID(ctx context.Context, did syntax.DID) (*identity.Identity, error) {
	key, err := d.s.accountSigningKey(ctx, did.String())
	if err != nil {
		var xe *xrpc.Error
		if errors.As(err, &xe) || errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s is not an account on this PDS", identity.ErrDIDNotFound, did)
		}
		return nil, err
	}
	pub, err := key.PublicKey()
	if err != nil {
		return nil, err
	}
	return &identity.Identity{DID: did, Keys: map[string]identity.VerificationMethod{
		"atproto": {Type: "Multikey", PublicKeyMultibase: pub.Multibase()},
	}}, nil
}

func (d localAccounts) LookupHandle(context.Context, syntax.Handle) (*identity.Identity, error) {
	return nil, identity.ErrHandleNotFound
}

func (d localAccounts) Lookup(ctx context.Context, atid syntax.AtIdentifier) (*identity.Identity, error) {
	if did, err := atid.AsDID(); err == nil {
		return d.LookupDID(ctx, did)
	}
	return nil, identity.ErrHandleNotFound
}

func (d localAccounts) Purge(context.Context, syntax.AtIdentifier) error { return nil }

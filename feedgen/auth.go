package feedgen

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/bluesky-social/indigo/atproto/auth"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/golang-jwt/jwt/v5"
	"github.com/hearth-social/hearth/internal/xrpc"
)

// The methods a requester token may be minted for here.
var (
	lxmGetFeedSkeleton  = syntax.NSID("app.bsky.feed.getFeedSkeleton")
	lxmSendInteractions = syntax.NSID("app.bsky.feed.sendInteractions")
)

// requesterAuth verifies service-auth JWTs from requesters (minted by their PDS when an
// app calls app.bsky.feed.getFeed). The audience may be the bare service DID (what the
// reference PDS sends today) or DID#bsky_fg (what the XRPC spec now asks for).
type requesterAuth struct {
	bare, fragment auth.ServiceAuthValidator
	serviceDID     string
}

func newRequesterAuth(serviceDID string, dir identity.Directory) *requesterAuth {
	return &requesterAuth{
		bare:       auth.ServiceAuthValidator{Audience: serviceDID, Dir: dir},
		fragment:   auth.ServiceAuthValidator{Audience: serviceDID + "#bsky_fg", Dir: dir},
		serviceDID: serviceDID,
	}
}

// viewer returns the requester's DID from a token for lxm, "" when the request carries
// no token, or a 401.
func (a *requesterAuth) viewer(ctx context.Context, r *http.Request, lxm syntax.NSID) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", nil
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", invalidToken("Authorization must be a Bearer service-auth token")
	}
	token = strings.TrimSpace(token)
	// Pick the validator by the token's own aud claim (checked again, with the
	// signature, by the validator).
	v := &a.bare
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &claims); err != nil {
		return "", invalidToken("malformed token")
	}
	for _, aud := range claims.Audience {
		if aud == a.serviceDID+"#bsky_fg" {
			v = &a.fragment
		}
	}
	did, err := v.Validate(ctx, token, &lxm)
	switch {
	case err == nil:
		return did.String(), nil
	case errors.Is(err, jwt.ErrTokenExpired):
		return "", &xrpc.Error{Status: http.StatusUnauthorized, Name: "ExpiredToken", Message: "token has expired"}
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "", invalidToken("token audience is not " + a.serviceDID)
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return "", invalidToken("token is not for " + lxm.String())
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "", invalidToken("token signature does not verify against the issuer's DID document")
	}
	return "", invalidToken("invalid token")
}

func invalidToken(msg string) error {
	return &xrpc.Error{Status: http.StatusUnauthorized, Name: "InvalidToken", Message: msg}
}

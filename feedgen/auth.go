package feedgen

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/auth"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"
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
//
// The AppView calls a feed with the requester's token on every page, and verifying an
// ES256K signature costs more than serving a page (~0.15 ms of CPU), so tokens that
// verified are remembered (keyed by the whole token and the method, bounded by
// hashicorp/golang-lru) until their exp, at most verifiedTokenTTL: a token that
// verified once verifies again until it expires, except that a key rotated in the
// issuer's DID document is noticed only after verifiedTokenTTL, which is shorter than
// the identity cache's own trust in a resolved document (internal/resolve,
// DefaultCacheTTL). Failed tokens are not remembered.
type requesterAuth struct {
	bare, fragment auth.ServiceAuthValidator
	serviceDID     string
	verified       *lru.Cache[string, verifiedToken]
	now            func() time.Time
}

// verifiedToken is a token that verified: its issuer and until when it may be reused.
type verifiedToken struct {
	did   string
	until time.Time
}

const (
	verifiedTokens   = 10_000
	verifiedTokenTTL = 5 * time.Minute
)

func newRequesterAuth(serviceDID string, dir identity.Directory) *requesterAuth {
	verified, err := lru.New[string, verifiedToken](verifiedTokens)
	if err != nil {
		panic(err) // only for a size <= 0
	}
	return &requesterAuth{
		bare:       auth.ServiceAuthValidator{Audience: serviceDID, Dir: dir},
		fragment:   auth.ServiceAuthValidator{Audience: serviceDID + "#bsky_fg", Dir: dir},
		serviceDID: serviceDID,
		verified:   verified,
		now:        time.Now,
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
	key := lxm.String() + " " + token
	if t, ok := a.verified.Get(key); ok {
		if a.now().Before(t.until) {
			return t.did, nil
		}
		a.verified.Remove(key)
	}
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
		if claims.ExpiresAt != nil { // always set: the validator requires exp
			until := a.now().Add(verifiedTokenTTL)
			if claims.ExpiresAt.Before(until) {
				until = claims.ExpiresAt.Time
			}
			a.verified.Add(key, verifiedToken{did: did.String(), until: until})
		}
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

package feedgen

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

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

// requesterToken is a request's service-auth token whose claims have been checked
// (claims) but whose signature has not been, yet (verify).
type requesterToken struct {
	// did is the issuer the token claims; "" when the request carries no token.
	did   string
	token string
	v     *auth.ServiceAuthValidator
}

// viewer returns the requester's DID from a token for lxm, its signature verified
// against the issuer's DID document; "" when the request carries no token, or a 401.
func (a *requesterAuth) viewer(ctx context.Context, r *http.Request, lxm syntax.NSID) (string, error) {
	t, err := a.claims(r, lxm)
	if err != nil || t.did == "" {
		return "", err
	}
	return a.verify(ctx, t, lxm)
}

// claims checks what a token for lxm says, without its signature: a Bearer JWT of a
// supported algorithm, an issuer that is a DID, this service as audience, lxm as method,
// an expiry not past and an issued-at not in the future. These cost microseconds; the
// signature check (verify) costs an ECDSA verification and a DID document.
func (a *requesterAuth) claims(r *http.Request, lxm syntax.NSID) (requesterToken, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return requesterToken{}, nil
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return requesterToken{}, invalidToken("Authorization must be a Bearer service-auth token")
	}
	token = strings.TrimSpace(token)
	var claims struct {
		jwt.RegisteredClaims
		LexMethod string `json:"lxm"`
	}
	parsed, _, err := jwt.NewParser().ParseUnverified(token, &claims)
	if err != nil {
		return requesterToken{}, invalidToken("malformed token")
	}
	if !slices.Contains(supportedAlgs, parsed.Method.Alg()) {
		return requesterToken{}, invalidToken("token algorithm " + parsed.Method.Alg() + " is not ES256K or ES256")
	}
	// Pick the validator by the token's own aud claim (checked again, with the
	// signature, by the validator).
	v := &a.bare
	for _, aud := range claims.Audience {
		if aud == a.serviceDID+"#bsky_fg" {
			v = &a.fragment
		}
	}
	did, err := syntax.ParseDID(claims.Issuer)
	if err != nil {
		return requesterToken{}, invalidToken("token issuer is not a DID")
	}
	// The same checks, leeway included, as the validator's parser makes.
	err = jwt.NewValidator(jwt.WithAudience(v.Audience), jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(5*time.Second)).Validate(claims)
	if err == nil && claims.LexMethod != lxm.String() {
		err = fmt.Errorf("%w: Lexicon endpoint (LXM)", jwt.ErrTokenInvalidClaims)
	}
	if err != nil {
		return requesterToken{}, a.refusal(err, lxm)
	}
	return requesterToken{did: did.String(), token: token, v: v}, nil
}

// supportedAlgs are the JWT algorithms atproto service auth uses (what indigo's
// validator accepts).
var supportedAlgs = []string{"ES256K", "ES256"}

// verify checks the token's signature against the issuer's current DID document (and
// its claims again) and returns the issuer.
func (a *requesterAuth) verify(ctx context.Context, t requesterToken, lxm syntax.NSID) (string, error) {
	did, err := t.v.Validate(ctx, t.token, &lxm)
	if err != nil {
		return "", a.refusal(err, lxm)
	}
	return did.String(), nil
}

// refusal is the 401 for a token the claims or the validator refused.
func (a *requesterAuth) refusal(err error, lxm syntax.NSID) error {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return &xrpc.Error{Status: http.StatusUnauthorized, Name: "ExpiredToken", Message: "token has expired"}
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return invalidToken("token audience is not " + a.serviceDID)
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return invalidToken("token is not for " + lxm.String())
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return invalidToken("token signature does not verify against the issuer's DID document")
	}
	return invalidToken("invalid token")
}

func invalidToken(msg string) error {
	return &xrpc.Error{Status: http.StatusUnauthorized, Name: "InvalidToken", Message: msg}
}

package feedgen

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/auth"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/stretchr/testify/require"
)

// countingDirectory counts identity lookups, i.e. signature verifications.
type countingDirectory struct {
	identity.Directory
	lookups int
}

func (d *countingDirectory) LookupDID(ctx context.Context, did syntax.DID) (*identity.Identity, error) {
	d.lookups++
	return d.Directory.LookupDID(ctx, did)
}

// TestVerifiedTokenCache: a token that verified is reused without verifying again, only
// for the method it names and only until it expires (or verifiedTokenTTL); tokens that
// fail are checked every time.
func TestVerifiedTokenCache(t *testing.T) {
	ctx := context.Background()
	const service = "did:web:feeds.example.com"
	key, err := atcrypto.GeneratePrivateKeyK256()
	require.NoError(t, err)
	pub, err := key.PublicKey()
	require.NoError(t, err)
	alice := syntax.DID("did:plc:alice")
	mock := identity.NewMockDirectory()
	mock.Insert(identity.Identity{DID: alice, Handle: syntax.HandleInvalid, Keys: map[string]identity.VerificationMethod{
		"atproto": {Type: "Multikey", PublicKeyMultibase: pub.Multibase()},
	}})
	dir := &countingDirectory{Directory: mock}
	a := newRequesterAuth(service, dir)
	clock := time.Now()
	a.now = func() time.Time { return clock }
	request := func(tok string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "http://feeds.example.com/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}
	tok, err := auth.SignServiceAuth(alice, service, time.Hour, &lxmGetFeedSkeleton, key)
	require.NoError(t, err)
	for range 3 {
		did, err := a.viewer(ctx, request(tok), lxmGetFeedSkeleton)
		require.NoError(t, err)
		require.Equal(t, alice.String(), did)
	}
	require.Equal(t, 1, dir.lookups, "verified once")
	// Another method: not from the cache, and refused (the token names getFeedSkeleton).
	_, err = a.viewer(ctx, request(tok), lxmSendInteractions)
	var xe *xrpc.Error
	require.ErrorAs(t, err, &xe)
	require.Equal(t, http.StatusUnauthorized, xe.Status)
	// After verifiedTokenTTL the token is verified again.
	lookups := dir.lookups
	clock = clock.Add(verifiedTokenTTL + time.Second)
	_, err = a.viewer(ctx, request(tok), lxmGetFeedSkeleton)
	require.NoError(t, err)
	require.Equal(t, lookups+1, dir.lookups)

	// A short-lived token is remembered until its exp, not longer.
	clock = time.Now()
	short, err := auth.SignServiceAuth(alice, service, 30*time.Second, &lxmGetFeedSkeleton, key)
	require.NoError(t, err)
	_, err = a.viewer(ctx, request(short), lxmGetFeedSkeleton)
	require.NoError(t, err)
	clock = clock.Add(31 * time.Second)
	lookups = dir.lookups
	_, err = a.viewer(ctx, request(short), lxmGetFeedSkeleton)
	require.NoError(t, err, "the validator itself still accepts it: its clock is the real one")
	require.Equal(t, lookups+1, dir.lookups, "an expired cache entry is verified again")

	// A token with a bad signature fails every time.
	other, err := atcrypto.GeneratePrivateKeyK256()
	require.NoError(t, err)
	forged, err := auth.SignServiceAuth(alice, service, time.Hour, &lxmGetFeedSkeleton, other)
	require.NoError(t, err)
	for range 2 {
		_, err = a.viewer(ctx, request(forged), lxmGetFeedSkeleton)
		require.ErrorAs(t, err, &xe)
		require.Equal(t, "InvalidToken", xe.Name)
	}
}

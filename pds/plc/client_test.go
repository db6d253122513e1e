package plc

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/resolve"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestResolveAgainstDirectory: internal/resolve (what services use to resolve
// accounts) reads this directory's documents: keys that verify the account's signatures,
// the PDS endpoint, and not-found for an unknown DID.
func TestResolveAgainstDirectory(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	a := e.register(t, "alice.test", newK256(t))
	b := e.register(t, "bob.test", newP256(t))
	dir := resolve.New(resolve.Config{PLCURL: e.client.BaseURL})
	for _, acct := range []*account{a, b} {
		ident, err := dir.LookupDID(ctx, acct.did)
		require.NoError(t, err)
		assert.Equal(t, acct.did, ident.DID)
		assert.Equal(t, syntax.HandleInvalid, ident.Handle, "handles are not verified by default")
		assert.Equal(t, "https://pds.example.com", ident.PDSEndpoint())
		key, err := ident.PublicKey()
		require.NoError(t, err)
		msg := []byte("unsigned commit bytes")
		sig, err := acct.sign.HashAndSign(msg)
		require.NoError(t, err)
		assert.NoError(t, key.HashAndVerify(msg, sig))
	}
	_, err := dir.LookupDID(ctx, "did:plc:dddddddddddddddddddddddd")
	assert.ErrorIs(t, err, identity.ErrDIDNotFound)
}

func TestClientTimeoutAndErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("non-2xx without JSON keeps the body", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "upstream broke", http.StatusBadGateway)
		}))
		defer srv.Close()
		c := &Client{BaseURL: srv.URL + "/"}
		err := c.Health(ctx)
		var se *StatusError
		require.True(t, errors.As(err, &se), "%v", err)
		assert.Equal(t, http.StatusBadGateway, se.StatusCode)
		assert.Equal(t, "upstream broke", se.Message)
	})
	t.Run("caller deadline applies", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		c := &Client{BaseURL: srv.URL}
		ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.Resolve(ctx, "did:plc:eeeeeeeeeeeeeeeeeeeeeeee")
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Less(t, time.Since(start), 5*time.Second)
	})
}

package identity

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolver(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	a := e.register(t, "alice.test", newK256(t))
	b := e.register(t, "bob.test", newP256(t))
	handles := map[syntax.Handle]syntax.DID{
		"alice.test": a.did,
		"bob.test":   a.did, // bob's handle points elsewhere: not bi-directional
	}
	withHandles := &Resolver{PLC: e.client, ResolveHandle: func(ctx context.Context, h syntax.Handle) (syntax.DID, error) {
		if did, ok := handles[h]; ok {
			return did, nil
		}
		return "", identity.ErrHandleNotFound
	}}
	bare := &Resolver{PLC: e.client}
	var _ identity.Directory = bare

	cases := []struct {
		name       string
		dir        *Resolver
		atid       string
		wantDID    syntax.DID
		wantHandle syntax.Handle
		wantErr    error
	}{
		{"did with verified handle", withHandles, a.did.String(), a.did, "alice.test", nil},
		{"did whose handle points elsewhere", withHandles, b.did.String(), b.did, syntax.HandleInvalid, nil},
		{"did without handle resolver", bare, a.did.String(), a.did, syntax.HandleInvalid, nil},
		{"handle lookup", withHandles, "ALICE.test", a.did, "alice.test", nil},
		{"handle mismatch", withHandles, "bob.test", "", "", identity.ErrHandleMismatch},
		{"unknown handle", withHandles, "carol.test", "", "", identity.ErrHandleNotFound},
		{"handle without resolver", bare, "alice.test", "", "", identity.ErrHandleNotFound},
		{"unknown did", bare, "did:plc:dddddddddddddddddddddddd", "", "", identity.ErrDIDNotFound},
		{"non-plc did", bare, "did:web:example.com", "", "", identity.ErrDIDResolutionFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			atid, err := syntax.ParseAtIdentifier(tc.atid)
			require.NoError(t, err)
			ident, err := tc.dir.Lookup(ctx, atid)
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantDID, ident.DID)
			assert.Equal(t, tc.wantHandle, ident.Handle)
			assert.Equal(t, "https://pds.example.com", ident.PDSEndpoint())
		})
	}

	t.Run("signing key verifies repo-style signatures", func(t *testing.T) {
		ident, err := bare.LookupDID(ctx, a.did)
		require.NoError(t, err)
		key, err := ident.PublicKey()
		require.NoError(t, err)
		msg := []byte("unsigned commit bytes")
		sig, err := a.sign.HashAndSign(msg)
		require.NoError(t, err)
		assert.NoError(t, key.HashAndVerify(msg, sig))
		assert.NoError(t, bare.Purge(ctx, a.did.AtIdentifier()))
	})
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

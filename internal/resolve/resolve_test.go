package resolve

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/netguard"
	"github.com/stretchr/testify/require"
)

func testDoc(t *testing.T, did syntax.DID, pdsURL string) (identity.DIDDocument, string) {
	t.Helper()
	priv, err := atcrypto.GeneratePrivateKeyK256()
	require.NoError(t, err)
	pub, err := priv.PublicKey()
	require.NoError(t, err)
	return identity.DIDDocument{
		DID: did,
		VerificationMethod: []identity.DocVerificationMethod{{
			ID: did.String() + "#atproto", Type: "Multikey", Controller: did.String(), PublicKeyMultibase: pub.Multibase(),
		}},
		Service: []identity.DocService{{ID: "#atproto_pds", Type: "AtprotoPersonalDataServer", ServiceEndpoint: pdsURL}},
	}, pub.Multibase()
}

// TestPLC: did:plc comes from the configured directory, even on loopback with the guard
// on; a document for another DID and an unknown DID are told apart.
func TestPLC(t *testing.T) {
	did := syntax.DID("did:plc:abcdefghijklmnopqrstuvwx")
	doc, key := testDoc(t, did, "https://pds.example.com")
	var hits atomic.Int32
	plc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/" + did.String(), "/did:plc:liarliarliarliarliarliar":
			json.NewEncoder(w).Encode(doc)
		default:
			http.NotFound(w, r)
		}
	}))
	defer plc.Close()
	ctx := context.Background()
	dir := New(Config{PLCURL: plc.URL + "/"})
	for range 2 {
		ident, err := dir.LookupDID(ctx, did)
		require.NoError(t, err)
		k, err := ident.PublicKey()
		require.NoError(t, err)
		require.Equal(t, key, k.Multibase())
		require.Equal(t, "https://pds.example.com", ident.PDSEndpoint())
		require.Equal(t, syntax.HandleInvalid, ident.Handle)
	}
	require.EqualValues(t, 1, hits.Load(), "the second lookup is cached")
	_, err := dir.LookupDID(ctx, "did:plc:liarliarliarliarliarliar")
	require.ErrorIs(t, err, identity.ErrDIDResolutionFailed)
	_, err = dir.LookupDID(ctx, "did:plc:missingmissingmissingmis")
	require.ErrorIs(t, err, identity.ErrDIDNotFound)
	_, err = dir.LookupDID(ctx, "did:example:123")
	require.ErrorIs(t, err, identity.ErrDIDResolutionFailed)
}

// TestDIDWebGuard: did:web hosts on private addresses are refused at dial time unless
// allowed; when allowed, localhost did:web is fetched over http.
func TestDIDWebGuard(t *testing.T) {
	var did syntax.DID
	var doc identity.DIDDocument
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != "/.well-known/did.json" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(doc)
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	ctx := context.Background()

	for _, d := range []syntax.DID{"did:web:localhost%3A" + syntax.DID(port), "did:web:127.0.0.1%3A" + syntax.DID(port)} {
		did = d
		doc, _ = testDoc(t, did, "http://localhost:2583")
		ident, err := NewUncached(Config{AllowPrivate: true}).LookupDID(ctx, did)
		require.NoError(t, err, did)
		require.Equal(t, "http://localhost:2583", ident.PDSEndpoint())

		_, err = NewUncached(Config{}).LookupDID(ctx, did)
		require.ErrorIs(t, err, netguard.ErrRefused, did)
		require.ErrorIs(t, err, identity.ErrDIDResolutionFailed, did)
	}
	before := hits.Load()
	_, err := NewUncached(Config{}).LookupDID(ctx, "did:web:localhost")
	require.ErrorContains(t, err, "non-public")
	require.Equal(t, before, hits.Load(), "nothing reached the server without AllowPrivate")

	for _, bad := range []syntax.DID{"did:web:localhost%3A1:path", "did:web:exa_mple%3A80"} {
		_, err = NewUncached(Config{AllowPrivate: true}).LookupDID(ctx, bad)
		require.ErrorIs(t, err, identity.ErrDIDResolutionFailed, bad)
		require.ErrorIs(t, err, ErrMalformed, bad)
	}

	// A document for another DID, a missing one and one over the cap.
	did = "did:web:localhost%3A" + syntax.DID(port)
	doc, _ = testDoc(t, "did:web:other.example.com", "")
	_, err = NewUncached(Config{AllowPrivate: true}).LookupDID(ctx, did)
	require.ErrorIs(t, err, identity.ErrDIDResolutionFailed)
	doc, _ = testDoc(t, did, "http://localhost:2583/"+strings.Repeat("x", 2048))
	_, err = NewUncached(Config{AllowPrivate: true, MaxDocBytes: 1024}).LookupDID(ctx, did)
	require.ErrorIs(t, err, ErrTooLarge)
}

func TestCapped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("a", 100)))
	}))
	defer srv.Close()
	for _, tc := range []struct {
		max     int64
		tooLong bool
	}{{99, true}, {100, false}, {101, false}} {
		rt := &router{web: http.DefaultTransport, max: tc.max}
		res, err := (&http.Client{Transport: rt}).Get(srv.URL)
		if err != nil {
			require.True(t, tc.tooLong)
			continue
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if tc.tooLong {
			require.ErrorIs(t, err, ErrTooLarge)
		} else {
			require.NoError(t, err)
			require.Len(t, body, 100)
		}
	}
}

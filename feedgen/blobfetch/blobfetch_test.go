package blobfetch

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/netguard"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"
)

func blobCID(t *testing.T, data []byte) string {
	t.Helper()
	sum := sha256.Sum256(data)
	mh, err := multihash.Encode(sum[:], multihash.SHA2_256)
	require.NoError(t, err)
	return cid.NewCidV1(cid.Raw, mh).String()
}

// blobPDS serves getBlob from a map, and counts requests.
type blobPDS struct {
	blobs map[string][]byte
	hits  atomic.Int64
}

func (p *blobPDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.hits.Add(1)
	if r.URL.Path != "/xrpc/com.atproto.sync.getBlob" {
		http.NotFound(w, r)
		return
	}
	b, ok := p.blobs[r.URL.Query().Get("cid")]
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"BlobNotFound","message":"blob not found"}`))
		return
	}
	w.Write(b)
}

func blobDir(did syntax.DID, endpoint string) identity.Directory {
	dir := identity.NewMockDirectory()
	dir.Insert(identity.Identity{DID: did, Handle: "alice.test", Services: map[string]identity.ServiceEndpoint{
		"atproto_pds": {Type: "AtprotoPersonalDataServer", URL: endpoint},
	}})
	return dir
}

func TestBlobFetch(t *testing.T) {
	ctx := context.Background()
	good := []byte("\x89PNG\r\n\x1a\n a blob")
	goodCID := blobCID(t, good)
	evilCID := blobCID(t, []byte("what the post embeds"))
	big := make([]byte, 2048)
	bigCID := blobCID(t, big)
	pds := &blobPDS{blobs: map[string][]byte{goodCID: good, evilCID: []byte("something else"), bigCID: big}}
	srv := httptest.NewServer(pds)
	defer srv.Close()
	did := testDID("alice")

	// With private addresses allowed (hearth serve on loopback, tests), it works.
	f := New(blobDir(did, srv.URL), Config{AllowPrivate: true, MaxBytes: 1024, Timeout: 5 * time.Second})
	got, err := f.Fetch(ctx, did.String(), goodCID)
	require.NoError(t, err)
	require.Equal(t, good, got)

	// Bytes that do not hash to the CID are refused.
	_, err = f.Fetch(ctx, did.String(), evilCID)
	require.ErrorIs(t, err, ErrCIDMismatch)
	require.True(t, IsPermanent(err))

	// Over the cap.
	_, err = f.Fetch(ctx, did.String(), bigCID)
	require.ErrorIs(t, err, ErrTooLarge)

	// Missing.
	_, err = f.Fetch(ctx, did.String(), blobCID(t, []byte("never uploaded")))
	require.ErrorIs(t, err, ErrNotFound)

	// Not a blob CID (dag-cbor), or not a CID.
	_, err = f.Fetch(ctx, did.String(), "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm")
	require.ErrorIs(t, err, ErrRefused)
	_, err = f.Fetch(ctx, did.String(), "not-a-cid")
	require.ErrorIs(t, err, ErrRefused)

	// Unknown DID.
	_, err = f.Fetch(ctx, testDID("nobody").String(), goodCID)
	require.Error(t, err)
}

// TestBlobSSRFGuard: without the development flag, a PDS endpoint on loopback is
// refused, whether named by address or by a host name resolving to it, over https
// (refused when dialling) or http (refused by scheme). No request reaches the server.
func TestBlobSSRFGuard(t *testing.T) {
	ctx := context.Background()
	data := []byte("blob bytes")
	c := blobCID(t, data)
	pds := &blobPDS{blobs: map[string][]byte{c: data}}
	tlsSrv := httptest.NewTLSServer(pds)
	defer tlsSrv.Close()
	plain := httptest.NewServer(pds)
	defer plain.Close()
	did := testDID("mallory")
	port := tlsSrv.URL[strings.LastIndexByte(tlsSrv.URL, ':'):]
	for _, ep := range []string{tlsSrv.URL, "https://localhost" + port, plain.URL, "https://[::1]" + port, "https://169.254.169.254", "https://10.0.0.1"} {
		f := New(blobDir(did, ep), Config{Timeout: 2 * time.Second})
		_, err := f.Fetch(ctx, did.String(), c)
		require.ErrorIs(t, err, ErrRefused, ep)
		require.True(t, IsPermanent(err))
	}
	require.Zero(t, pds.hits.Load(), "nothing reached the loopback server")

	for _, ep := range []string{"ftp://example.com", "https://user:pw@example.com", "https://"} {
		f := New(blobDir(did, ep), Config{AllowPrivate: true, Timeout: time.Second})
		_, err := f.Fetch(ctx, did.String(), c)
		require.ErrorIs(t, err, ErrRefused, ep)
	}

	for _, a := range []string{"127.0.0.1", "10.1.2.3", "192.168.1.1", "172.16.0.1", "169.254.169.254", "::1", "fe80::1", "fc00::1", "100.64.0.1", "0.0.0.0", "::ffff:127.0.0.1"} {
		require.False(t, netguard.IsPublic(netip.MustParseAddr(a)), a)
	}
	require.True(t, netguard.IsPublic(netip.MustParseAddr("93.184.216.34")))
}

func TestVerifyBlob(t *testing.T) {
	data := []byte("hello")
	c, err := CheckCID(blobCID(t, data))
	require.NoError(t, err)
	require.NoError(t, Verify(c, data))
	require.ErrorIs(t, Verify(c, []byte("hellO")), ErrCIDMismatch)
	require.ErrorIs(t, Verify(c, nil), ErrCIDMismatch)
}

// Inside `hearth serve` the co-hosted PDS is reached on its own listener, with no general
// permission for private addresses: another loopback endpoint stays refused.
func TestBlobFetchLocalPDS(t *testing.T) {
	ctx := context.Background()
	good := []byte("\x89PNG\r\n\x1a\n a blob")
	goodCID := blobCID(t, good)
	srv := httptest.NewServer(&blobPDS{blobs: map[string][]byte{goodCID: good}})
	defer srv.Close()
	alice, bob := testDID("alice"), testDID("bob")
	dir := identity.NewMockDirectory()
	for did, ep := range map[syntax.DID]string{alice: "http://localhost:2583/", bob: srv.URL} {
		dir.Insert(identity.Identity{DID: did, Handle: syntax.Handle(did.Identifier() + ".test"), Services: map[string]identity.ServiceEndpoint{
			"atproto_pds": {Type: "AtprotoPersonalDataServer", URL: ep},
		}})
	}
	f := New(dir, Config{Local: map[string]string{"http://localhost:2583": srv.URL}, Timeout: 5 * time.Second})
	got, err := f.Fetch(ctx, alice.String(), goodCID)
	require.NoError(t, err)
	require.Equal(t, good, got)
	_, err = f.Fetch(ctx, bob.String(), goodCID)
	require.ErrorIs(t, err, ErrRefused)
}

// testDID derives a did:plc-shaped DID from a name.
func testDID(name string) syntax.DID {
	sum := sha256.Sum256([]byte(name))
	return syntax.DID("did:plc:" + strings.ToLower(base32.StdEncoding.EncodeToString(sum[:]))[:24])
}

package plc

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type testEnv struct {
	dir    *Server
	srv    *httptest.Server
	client *Client
	path   string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plc.sqlite")
	dir, err := OpenServer(context.Background(), path, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	srv := httptest.NewServer(dir.Handler()) // listens on 127.0.0.1
	require.True(t, strings.HasPrefix(srv.URL, "http://127.0.0.1:"), srv.URL)
	t.Cleanup(func() {
		srv.Close()
		dir.Close()
	})
	return &testEnv{dir: dir, srv: srv, client: &Client{BaseURL: srv.URL}, path: path}
}

// account is a registered test DID with its keys and latest op.
type account struct {
	did     syntax.DID
	rot     atcrypto.PrivateKey
	sign    atcrypto.PrivateKey
	ops     []*Op
	lastCID string
}

func (e *testEnv) register(t *testing.T, handle string, rot atcrypto.PrivateKey) *account {
	t.Helper()
	sign := newK256(t)
	op, did, err := NewGenesis(handle, "https://pds.example.com", pub(t, sign), []atcrypto.PublicKey{pub(t, rot)}, rot)
	require.NoError(t, err)
	require.NoError(t, e.client.Submit(context.Background(), did, op))
	c, err := OpCID(op)
	require.NoError(t, err)
	return &account{did: did, rot: rot, sign: sign, ops: []*Op{op}, lastCID: c.String()}
}

func (a *account) last() *Op { return a.ops[len(a.ops)-1] }

func requireRejected(t *testing.T, err error, status int, msg string) {
	t.Helper()
	require.Error(t, err)
	var se *StatusError
	require.True(t, errors.As(err, &se), "want StatusError, got %v", err)
	assert.Equal(t, status, se.StatusCode, se.Message)
	assert.Contains(t, se.Message, msg)
}

func TestGenesisRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		rot  func(*testing.T) atcrypto.PrivateKeyExportable
	}{{"k256 rotation key", newK256}, {"p256 rotation key", newP256}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newTestEnv(t)
			a := e.register(t, "alice.test", tc.rot(t))

			doc, err := e.client.Resolve(ctx, a.did)
			require.NoError(t, err)
			ident := identity.ParseIdentity(doc)
			key, err := ident.PublicKey()
			require.NoError(t, err)
			assert.True(t, key.Equal(pub(t, a.sign)))
			assert.Equal(t, "https://pds.example.com", ident.PDSEndpoint())
			h, err := ident.DeclaredHandle()
			require.NoError(t, err)
			assert.Equal(t, syntax.Handle("alice.test"), h)

			last, err := e.client.LastOp(ctx, a.did)
			require.NoError(t, err)
			c, err := OpCID(last)
			require.NoError(t, err)
			assert.Equal(t, a.lastCID, c.String())

			data, err := e.client.Data(ctx, a.did)
			require.NoError(t, err)
			assert.Equal(t, a.last().RotationKeys, data.RotationKeys)
			assert.Equal(t, a.last().VerificationMethods, data.VerificationMethods)
			assert.Equal(t, a.last().Services, data.Services)

			audit, err := e.client.AuditLog(ctx, a.did)
			require.NoError(t, err)
			require.Len(t, audit, 1)
			assert.Equal(t, a.did, audit[0].DID)
			assert.Equal(t, a.lastCID, audit[0].CID)
			assert.False(t, audit[0].Nullified)
			assert.NotEmpty(t, audit[0].CreatedAt)

			ops, err := e.client.Log(ctx, a.did)
			require.NoError(t, err)
			require.Len(t, ops, 1)
			assert.Equal(t, a.last().Sig, ops[0].Sig)
			require.NoError(t, e.client.Health(ctx))
		})
	}
}

func TestUpdateHandleAndEndpoint(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	a := e.register(t, "alice.test", newK256(t))

	last, err := e.client.LastOp(ctx, a.did)
	require.NoError(t, err)
	upd, err := NewUpdate(last, "", func(op *Op) {
		WithHandle("alice2.test")(op)
		WithPDSEndpoint("https://pds2.example.com")(op)
	}, a.rot)
	require.NoError(t, err)
	require.Equal(t, a.lastCID, *upd.Prev)
	require.NoError(t, e.client.Submit(ctx, a.did, upd))

	doc, err := e.client.Resolve(ctx, a.did)
	require.NoError(t, err)
	ident := identity.ParseIdentity(doc)
	h, err := ident.DeclaredHandle()
	require.NoError(t, err)
	assert.Equal(t, syntax.Handle("alice2.test"), h)
	assert.Equal(t, "https://pds2.example.com", ident.PDSEndpoint())

	audit, err := e.client.AuditLog(ctx, a.did)
	require.NoError(t, err)
	require.Len(t, audit, 2)
	assert.Equal(t, audit[0].CID, *audit[1].Operation.Prev)

	// The state survives reopening the database.
	e.srv.Close()
	require.NoError(t, e.dir.Close())
	dir, err := OpenServer(ctx, e.path, nil)
	require.NoError(t, err)
	defer dir.Close()
	d2, err := dir.Document(ctx, a.did)
	require.NoError(t, err)
	assert.Equal(t, []string{"at://alice2.test"}, d2.AlsoKnownAs)
}

// The real atproto.com log is accepted as-is and renders like plc.directory's document.
func TestDirectoryAcceptsRealLog(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	for _, entry := range loadAtprotoAudit(t) {
		resp, err := http.Post(e.srv.URL+"/"+entry.DID, "application/json", bytes.NewReader(entry.Operation))
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	}
	did := syntax.DID("did:plc:ewvi7nxzyoun6zhxrhs64oiz")
	resp, err := http.Get(e.srv.URL + "/" + did.String())
	require.NoError(t, err)
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	want := `{
	  "@context": ["https://www.w3.org/ns/did/v1","https://w3id.org/security/multikey/v1","https://w3id.org/security/suites/secp256k1-2019/v1"],
	  "id": "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
	  "alsoKnownAs": ["at://atproto.com"],
	  "verificationMethod": [{
	    "id": "did:plc:ewvi7nxzyoun6zhxrhs64oiz#atproto",
	    "type": "Multikey",
	    "controller": "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
	    "publicKeyMultibase": "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"
	  }],
	  "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": "https://bsky.social"}]
	}`
	assert.JSONEq(t, want, string(got))

	audit, err := e.client.AuditLog(ctx, did)
	require.NoError(t, err)
	require.Len(t, audit, 2)
	assert.Equal(t, "bafyreihljrd4zlm6egppxzwq52fgzdrh7hv2bkjnbgyjteqasmpjgqmryi", audit[1].CID)
}

func postRaw(t *testing.T, e *testEnv, did string, body string) error {
	t.Helper()
	resp, err := http.Post(e.srv.URL+"/"+did, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var m struct {
		Message string `json:"message"`
	}
	require.NoError(t, json.Unmarshal(b, &m), string(b))
	return &StatusError{StatusCode: resp.StatusCode, Message: m.Message}
}

// signedGenesis signs op with priv and returns it with the DID it derives.
func signedGenesis(t *testing.T, op *Op, priv atcrypto.PrivateKey) (*Op, syntax.DID) {
	t.Helper()
	require.NoError(t, SignOp(op, priv))
	did, err := DIDForGenesis(op)
	require.NoError(t, err)
	return op, did
}

func TestRejections(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	rot := newK256(t)
	stranger := newK256(t)
	a := e.register(t, "alice.test", rot)
	// A second op so that the genesis CID is stale.
	upd, err := NewUpdate(a.last(), a.lastCID, WithHandle("alice2.test"), rot)
	require.NoError(t, err)
	require.NoError(t, e.client.Submit(ctx, a.did, upd))
	genesisCID := a.lastCID
	c, err := OpCID(upd)
	require.NoError(t, err)
	a.ops, a.lastCID = append(a.ops, upd), c.String()

	tomb := e.register(t, "gone.test", rot)
	ts, err := NewTombstone(tomb.lastCID, rot)
	require.NoError(t, err)
	require.NoError(t, e.client.Submit(ctx, tomb.did, ts))
	tsCID, err := OpCID(ts)
	require.NoError(t, err)

	rotDK := pub(t, rot).DIDKey()
	baseOp := func() *Op {
		return &Op{Type: OpTypeOperation, RotationKeys: []string{rotDK},
			VerificationMethods: map[string]string{"atproto": rotDK}, AlsoKnownAs: []string{"at://x.test"},
			Services: map[string]Service{}}
	}
	flipSig := func(op *Op) {
		raw, err := base64.RawURLEncoding.DecodeString(op.Sig)
		require.NoError(t, err)
		raw[10] ^= 0xff
		op.Sig = base64.RawURLEncoding.EncodeToString(raw)
	}

	type submission struct {
		did syntax.DID
		op  *Op
	}
	cases := []struct {
		name  string
		build func(t *testing.T) submission
		msg   string
	}{
		{"bad signature on genesis", func(t *testing.T) submission {
			op := baseOp()
			require.NoError(t, SignOp(op, rot))
			flipSig(op)
			did, err := DIDForGenesis(op)
			require.NoError(t, err)
			return submission{did, op}
		}, "invalid signature"},
		{"bad signature on update", func(t *testing.T) submission {
			op, err := NewUpdate(a.last(), a.lastCID, WithHandle("alice3.test"), rot)
			require.NoError(t, err)
			flipSig(op)
			return submission{a.did, op}
		}, "invalid signature"},
		{"genesis signed by a key not in its rotation keys", func(t *testing.T) submission {
			op, did := signedGenesis(t, baseOp(), stranger)
			return submission{did, op}
		}, "invalid signature"},
		{"update signed by a non-rotation key", func(t *testing.T) submission {
			op := cloneOp(a.last())
			op.Prev = &a.lastCID
			op.RotationKeys = []string{pub(t, stranger).DIDKey()} // new keys don't authorise themselves
			require.NoError(t, SignOp(op, stranger))
			return submission{a.did, op}
		}, "invalid signature"},
		{"stale prev", func(t *testing.T) submission {
			op, err := NewUpdate(a.ops[0], genesisCID, WithHandle("alice4.test"), rot)
			require.NoError(t, err)
			return submission{a.did, op}
		}, "invalid prev"},
		{"DID does not match genesis", func(t *testing.T) submission {
			op, _ := signedGenesis(t, baseOp(), rot)
			return submission{"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", op}
		}, "does not match genesis"},
		{"genesis for an existing DID", func(t *testing.T) submission {
			return submission{a.did, a.ops[0]}
		}, "already registered"},
		{"update for an unknown DID", func(t *testing.T) submission {
			op, err := NewUpdate(a.last(), a.lastCID, nil, rot)
			require.NoError(t, err)
			return submission{"did:plc:bbbbbbbbbbbbbbbbbbbbbbbb", op}
		}, "not registered"},
		{"malformed rotation did:key", func(t *testing.T) submission {
			op := baseOp()
			op.RotationKeys = []string{"did:key:zNotAKey"}
			op, did := signedGenesis(t, op, rot)
			return submission{did, op}
		}, "invalid rotation key"},
		{"malformed verification method did:key", func(t *testing.T) submission {
			op := baseOp()
			op.VerificationMethods["atproto"] = "did:web:example.com"
			op, did := signedGenesis(t, op, rot)
			return submission{did, op}
		}, "invalid verification method"},
		{"unsupported key type", func(t *testing.T) submission {
			op := baseOp()
			// multicodec ed25519-pub (0xed01) is not an atproto key type
			op.RotationKeys = []string{"did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"}
			op, did := signedGenesis(t, op, rot)
			return submission{did, op}
		}, "invalid rotation key"},
		{"op after tombstone", func(t *testing.T) submission {
			op, err := NewUpdate(tomb.last(), tsCID.String(), nil, rot)
			require.NoError(t, err)
			return submission{tomb.did, op}
		}, "tombstoned"},
		{"too many rotation keys", func(t *testing.T) submission {
			op := baseOp()
			for range MaxRotationKeys {
				op.RotationKeys = append(op.RotationKeys, pub(t, newK256(t)).DIDKey())
			}
			op, did := signedGenesis(t, op, rot)
			return submission{did, op}
		}, "too many rotation keys"},
		{"too many alsoKnownAs", func(t *testing.T) submission {
			op := baseOp()
			for i := range MaxAlsoKnownAs {
				op.AlsoKnownAs = append(op.AlsoKnownAs, "at://h"+strings.Repeat("x", i)+".test")
			}
			op, did := signedGenesis(t, op, rot)
			return submission{did, op}
		}, "too many alsoKnownAs"},
		{"oversized", func(t *testing.T) submission {
			op := baseOp()
			op.AlsoKnownAs = nil
			for i := range MaxServices {
				op.Services[strings.Repeat("s", i+1)] = Service{Type: "T", Endpoint: "https://" + strings.Repeat("e", 480)}
				op.AlsoKnownAs = append(op.AlsoKnownAs, "at://"+strings.Repeat("a", 400+i))
			}
			op, did := signedGenesis(t, op, rot)
			return submission{did, op}
		}, "too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.build(t)
			requireRejected(t, e.client.Submit(ctx, s.did, s.op), http.StatusBadRequest, tc.msg)
		})
	}

	// The account is unchanged by all of the above.
	audit, err := e.client.AuditLog(ctx, a.did)
	require.NoError(t, err)
	assert.Len(t, audit, 2)
}

func TestRejectsMalformedJSON(t *testing.T) {
	e := newTestEnv(t)
	rot := newK256(t)
	good, did := signedGenesis(t, &Op{Type: OpTypeOperation, RotationKeys: []string{pub(t, rot).DIDKey()},
		VerificationMethods: map[string]string{}, AlsoKnownAs: []string{}, Services: map[string]Service{}}, rot)
	goodJSON, err := json.Marshal(good)
	require.NoError(t, err)
	edit := func(f func(m map[string]any)) string {
		var m map[string]any
		require.NoError(t, json.Unmarshal(goodJSON, &m))
		f(m)
		b, err := json.Marshal(m)
		require.NoError(t, err)
		return string(b)
	}
	cases := []struct {
		name, did, body, msg string
	}{
		{"not an object", did.String(), `[1,2]`, "not a JSON object"},
		{"not JSON", did.String(), `{`, "not a JSON object"},
		{"legacy create type", did.String(), edit(func(m map[string]any) { m["type"] = "create" }), "unsupported operation type"},
		{"missing field", did.String(), edit(func(m map[string]any) { delete(m, "services") }), `missing field "services"`},
		{"unexpected field", did.String(), edit(func(m map[string]any) { m["extra"] = 1 }), `unexpected field "extra"`},
		{"wrong type", did.String(), edit(func(m map[string]any) { m["rotationKeys"] = "did:key:z" }), `field "rotationKeys" has the wrong type`},
		{"null list", did.String(), edit(func(m map[string]any) { m["alsoKnownAs"] = nil }), "must not be null"},
		{"service without endpoint", did.String(), edit(func(m map[string]any) {
			m["services"] = map[string]any{"atproto_pds": map[string]any{"type": "X"}}
		}), "missing field"},
		{"unsigned", did.String(), edit(func(m map[string]any) { m["sig"] = "" }), "not signed"},
		{"padded signature", did.String(), edit(func(m map[string]any) { m["sig"] = m["sig"].(string) + "==" }), "signature"},
		{"tombstone as genesis", did.String(), `{"type":"plc_tombstone","prev":null,"sig":"AAAA"}`, "tombstone must have a prev"},
		{"invalid DID", "did:plc:short", string(goodJSON), "invalid DID"},
		{"non-plc DID", "did:web:example.com", string(goodJSON), "invalid DID"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			requireRejected(t, postRaw(t, e, tc.did, tc.body), http.StatusBadRequest, tc.msg)
		})
	}
	t.Run("body over the request limit", func(t *testing.T) {
		requireRejected(t, postRaw(t, e, did.String(), strings.Repeat(" ", maxRequestBytes+1)), http.StatusBadRequest, "too large")
	})
	t.Run("the untouched op is accepted", func(t *testing.T) {
		require.NoError(t, postRaw(t, e, did.String(), string(goodJSON)))
	})
}

func TestLookupErrors(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	rot := newK256(t)
	unknown := syntax.DID("did:plc:cccccccccccccccccccccccc")

	_, err := e.client.Resolve(ctx, unknown)
	requireRejected(t, err, http.StatusNotFound, "DID not registered: "+unknown.String())
	assert.ErrorIs(t, err, identity.ErrDIDNotFound)
	_, err = e.client.AuditLog(ctx, unknown)
	requireRejected(t, err, http.StatusNotFound, "DID not registered")

	a := e.register(t, "gone.test", rot)
	ts, err := NewTombstone(a.lastCID, rot)
	require.NoError(t, err)
	require.NoError(t, e.client.Submit(ctx, a.did, ts))

	_, err = e.client.Resolve(ctx, a.did)
	requireRejected(t, err, http.StatusGone, "DID not available")
	assert.ErrorIs(t, err, ErrDIDTombstoned)
	_, err = e.client.Data(ctx, a.did)
	requireRejected(t, err, http.StatusGone, "DID not available")
	last, err := e.client.LastOp(ctx, a.did)
	require.NoError(t, err)
	assert.True(t, last.IsTombstone())
	audit, err := e.client.AuditLog(ctx, a.did)
	require.NoError(t, err)
	assert.Len(t, audit, 2)

	resp, err := http.Get(e.srv.URL + "/not-a-did")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

// Concurrent updates racing on the same prev: exactly one wins.
func TestConcurrentUpdates(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	a := e.register(t, "race.test", newK256(t))
	const n = 8
	ops := make([]*Op, n)
	for i := range ops {
		op, err := NewUpdate(a.last(), a.lastCID, WithHandle("race"+strings.Repeat("x", i+1)+".test"), a.rot)
		require.NoError(t, err)
		ops[i] = op
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for _, op := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := e.client.Submit(ctx, a.did, op)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
				return
			}
			var se *StatusError
			if assert.True(t, errors.As(err, &se), "%v", err) {
				assert.Contains(t, se.Message, "invalid prev")
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, wins)
	audit, err := e.client.AuditLog(ctx, a.did)
	require.NoError(t, err)
	assert.Len(t, audit, 2)
}

package plc

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newK256(t *testing.T) atcrypto.PrivateKeyExportable {
	t.Helper()
	k, err := atcrypto.GeneratePrivateKeyK256()
	require.NoError(t, err)
	return k
}

func newP256(t *testing.T) atcrypto.PrivateKeyExportable {
	t.Helper()
	k, err := atcrypto.GeneratePrivateKeyP256()
	require.NoError(t, err)
	return k
}

func pub(t *testing.T, k atcrypto.PrivateKey) atcrypto.PublicKey {
	t.Helper()
	p, err := k.PublicKey()
	require.NoError(t, err)
	return p
}

// fixedKey is a K-256 key from constant bytes, so unsigned ops are reproducible.
func fixedKey(t *testing.T, fill byte) atcrypto.PrivateKey {
	t.Helper()
	k, err := atcrypto.ParsePrivateBytesK256(bytes.Repeat([]byte{fill}, 32))
	require.NoError(t, err)
	return k
}

type auditFixture struct {
	DID       string          `json:"did"`
	Operation json.RawMessage `json:"operation"`
	CID       string          `json:"cid"`
}

func loadAtprotoAudit(t *testing.T) []auditFixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "plc", "atproto_com_audit.json"))
	require.NoError(t, err)
	var entries []auditFixture
	require.NoError(t, json.Unmarshal(b, &entries))
	require.Len(t, entries, 2)
	return entries
}

// The real plc.directory log of atproto.com: DID derivation, CIDs and signatures
// must all agree with what the public directory computed.
func TestKnownVectorAtprotoCom(t *testing.T) {
	entries := loadAtprotoAudit(t)
	genesis, err := ParseOp(entries[0].Operation)
	require.NoError(t, err)

	did, err := DIDForGenesis(genesis)
	require.NoError(t, err)
	assert.Equal(t, syntax.DID("did:plc:ewvi7nxzyoun6zhxrhs64oiz"), did)

	for i, e := range entries {
		t.Run(e.CID, func(t *testing.T) {
			op, err := ParseOp(e.Operation)
			require.NoError(t, err)
			c, err := OpCID(op)
			require.NoError(t, err)
			assert.Equal(t, e.CID, c.String())
			key, err := VerifySig(op, genesis.RotationKeys)
			require.NoError(t, err)
			assert.Contains(t, genesis.RotationKeys, key)
			if i > 0 {
				require.NotNil(t, op.Prev)
				assert.Equal(t, entries[i-1].CID, *op.Prev)
				_, err := DIDForGenesis(op)
				assert.Error(t, err, "non-genesis op has no DID")
			}
			// Our JSON re-encoding parses back to the same op.
			again, err := json.Marshal(op)
			require.NoError(t, err)
			op2, err := ParseOp(again)
			require.NoError(t, err)
			c2, err := OpCID(op2)
			require.NoError(t, err)
			assert.Equal(t, c, c2)
		})
	}
}

// The CBOR we hash and sign must decode with indigo's DAG-CBOR decoder to the
// expected data, re-encode to the same bytes, and carry prev as a string.
func TestEncodingMatchesIndigo(t *testing.T) {
	rot := fixedKey(t, 1)
	sign := fixedKey(t, 2)
	genesis, _, err := NewGenesis("alice.test", "https://pds.example.com", pub(t, sign), []atcrypto.PublicKey{pub(t, rot)}, rot)
	require.NoError(t, err)
	update, err := NewUpdate(genesis, "", WithHandle("bob.test"), rot)
	require.NoError(t, err)
	bare := &Op{Type: OpTypeOperation, RotationKeys: []string{pub(t, rot).DIDKey()}}
	require.NoError(t, SignOp(bare, rot))
	tomb, err := NewTombstone(*update.Prev, rot)
	require.NoError(t, err)

	cases := []struct {
		name string
		op   *Op
		want map[string]any
	}{
		{"genesis", genesis, map[string]any{
			"type":                "plc_operation",
			"rotationKeys":        []any{pub(t, rot).DIDKey()},
			"verificationMethods": map[string]any{"atproto": pub(t, sign).DIDKey()},
			"alsoKnownAs":         []any{"at://alice.test"},
			"services": map[string]any{"atproto_pds": map[string]any{
				"type": "AtprotoPersonalDataServer", "endpoint": "https://pds.example.com"}},
			"prev": nil,
		}},
		{"update", update, map[string]any{
			"type":                "plc_operation",
			"rotationKeys":        []any{pub(t, rot).DIDKey()},
			"verificationMethods": map[string]any{"atproto": pub(t, sign).DIDKey()},
			"alsoKnownAs":         []any{"at://bob.test"},
			"services": map[string]any{"atproto_pds": map[string]any{
				"type": "AtprotoPersonalDataServer", "endpoint": "https://pds.example.com"}},
			"prev": *update.Prev,
		}},
		{"empty maps stay maps", bare, map[string]any{
			"type":                "plc_operation",
			"rotationKeys":        []any{pub(t, rot).DIDKey()},
			"verificationMethods": map[string]any{},
			"alsoKnownAs":         []any{},
			"services":            map[string]any{},
			"prev":                nil,
		}},
		{"tombstone", tomb, map[string]any{"type": "plc_tombstone", "prev": *update.Prev}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			unsigned, err := tc.op.UnsignedCBOR()
			require.NoError(t, err)
			got, err := atdata.UnmarshalCBOR(unsigned)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			again, err := atdata.MarshalCBOR(got)
			require.NoError(t, err)
			assert.Equal(t, unsigned, again, "canonical re-encoding differs")

			signed, err := tc.op.SignedCBOR()
			require.NoError(t, err)
			gotSigned, err := atdata.UnmarshalCBOR(signed)
			require.NoError(t, err)
			assert.Equal(t, tc.op.Sig, gotSigned["sig"])
			delete(gotSigned, "sig")
			assert.Equal(t, tc.want, gotSigned)

			// Unsigned bytes only depend on content: re-derive from JSON.
			b, err := json.Marshal(tc.op)
			require.NoError(t, err)
			parsed, err := ParseOp(b)
			require.NoError(t, err)
			u2, err := parsed.UnsignedCBOR()
			require.NoError(t, err)
			assert.Equal(t, unsigned, u2)
		})
	}
}

func TestDIDDerivationDeterministic(t *testing.T) {
	rot1, rot2, sign := fixedKey(t, 3), fixedKey(t, 4), fixedKey(t, 5)
	op, did, err := NewGenesis("carol.test", "https://pds.example.com", pub(t, sign),
		[]atcrypto.PublicKey{pub(t, rot1), pub(t, rot2)}, rot2)
	require.NoError(t, err)
	require.Regexp(t, `^did:plc:[a-z2-7]{24}$`, did.String())

	t.Run("re-derivation", func(t *testing.T) {
		for range 3 {
			again, err := DIDForGenesis(op)
			require.NoError(t, err)
			assert.Equal(t, did, again)
		}
	})
	t.Run("json key order does not matter", func(t *testing.T) {
		b, err := json.Marshal(op)
		require.NoError(t, err)
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(b, &m))
		// Hand-assemble the object with keys in reverse order.
		keys := sortedKeys(m)
		var sb strings.Builder
		sb.WriteString("{\n")
		for i := len(keys) - 1; i >= 0; i-- {
			kb, _ := json.Marshal(keys[i])
			sb.Write(kb)
			sb.WriteString(" : ")
			sb.Write(m[keys[i]])
			if i > 0 {
				sb.WriteString(",\n")
			}
		}
		sb.WriteString("\n}")
		parsed, err := ParseOp([]byte(sb.String()))
		require.NoError(t, err)
		again, err := DIDForGenesis(parsed)
		require.NoError(t, err)
		assert.Equal(t, did, again)
	})
	t.Run("unsigned bytes are stable, DID follows the signature", func(t *testing.T) {
		op2, did2, err := NewGenesis("carol.test", "https://pds.example.com", pub(t, sign),
			[]atcrypto.PublicKey{pub(t, rot1), pub(t, rot2)}, rot2)
		require.NoError(t, err)
		u1, err := op.UnsignedCBOR()
		require.NoError(t, err)
		u2, err := op2.UnsignedCBOR()
		require.NoError(t, err)
		assert.Equal(t, u1, u2)
		if op.Sig == op2.Sig {
			assert.Equal(t, did, did2)
		} else {
			assert.NotEqual(t, did, did2, "different signed bytes must give different DIDs")
		}
	})
	t.Run("changing any field changes the DID", func(t *testing.T) {
		mut := cloneOp(op)
		mut.AlsoKnownAs = []string{"at://dave.test"}
		other, err := DIDForGenesis(mut)
		require.NoError(t, err)
		assert.NotEqual(t, did, other)
	})
}

func TestSignatureFormat(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  atcrypto.PrivateKey
	}{{"k256", newK256(t)}, {"p256", newP256(t)}} {
		t.Run(tc.name, func(t *testing.T) {
			op, _, err := NewGenesis("", "", pub(t, tc.key), []atcrypto.PublicKey{pub(t, tc.key)}, tc.key)
			require.NoError(t, err)
			assert.NotContains(t, op.Sig, "=")
			raw, err := base64.RawURLEncoding.DecodeString(op.Sig)
			require.NoError(t, err)
			assert.Len(t, raw, 64)
			_, err = VerifySig(op, op.RotationKeys)
			require.NoError(t, err)
			_, err = VerifySig(op, []string{pub(t, newK256(t)).DIDKey()})
			assert.ErrorIs(t, err, atcrypto.ErrInvalidSignature)
		})
	}
}

func TestConstructorErrors(t *testing.T) {
	rot, other := newK256(t), newK256(t)
	sixKeys := make([]atcrypto.PublicKey, 6)
	for i := range sixKeys {
		sixKeys[i] = pub(t, newK256(t))
	}
	cases := []struct {
		name string
		run  func() error
	}{
		{"priv not a rotation key", func() error {
			_, _, err := NewGenesis("a.test", "", pub(t, rot), []atcrypto.PublicKey{pub(t, rot)}, other)
			return err
		}},
		{"too many rotation keys", func() error {
			_, _, err := NewGenesis("a.test", "", pub(t, rot), sixKeys, rot)
			return err
		}},
		{"bad handle", func() error {
			_, _, err := NewGenesis("not a handle", "", pub(t, rot), []atcrypto.PublicKey{pub(t, rot)}, rot)
			return err
		}},
		{"bad endpoint", func() error {
			_, _, err := NewGenesis("a.test", "ftp://x", pub(t, rot), []atcrypto.PublicKey{pub(t, rot)}, rot)
			return err
		}},
		{"update signed by non-rotation key", func() error {
			g, _, err := NewGenesis("a.test", "", pub(t, rot), []atcrypto.PublicKey{pub(t, rot)}, rot)
			require.NoError(t, err)
			_, err = NewUpdate(g, "", WithHandle("b.test"), other)
			return err
		}},
		{"update with bad prev CID", func() error {
			g, _, err := NewGenesis("a.test", "", pub(t, rot), []atcrypto.PublicKey{pub(t, rot)}, rot)
			require.NoError(t, err)
			_, err = NewUpdate(g, "not-a-cid", nil, rot)
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Error(t, tc.run())
		})
	}
}

func TestDocFromOpParsesWithIndigo(t *testing.T) {
	for _, tc := range []struct {
		name string
		sign atcrypto.PrivateKey
	}{{"k256 signing key", newK256(t)}, {"p256 signing key", newP256(t)}} {
		t.Run(tc.name, func(t *testing.T) {
			rot := newP256(t)
			op, did, err := NewGenesis("Alice.Example.com", "https://pds.example.com", pub(t, tc.sign), []atcrypto.PublicKey{pub(t, rot)}, rot)
			require.NoError(t, err)
			doc, err := DocFromOp(did, op)
			require.NoError(t, err)
			b, err := json.Marshal(doc)
			require.NoError(t, err)
			var idoc identity.DIDDocument
			require.NoError(t, json.Unmarshal(b, &idoc))
			ident := identity.ParseIdentity(&idoc)
			assert.Equal(t, did, ident.DID)
			key, err := ident.PublicKey()
			require.NoError(t, err)
			assert.True(t, key.Equal(pub(t, tc.sign)))
			assert.Equal(t, "https://pds.example.com", ident.PDSEndpoint())
			h, err := ident.DeclaredHandle()
			require.NoError(t, err)
			assert.Equal(t, syntax.Handle("alice.example.com"), h)
			assert.Equal(t, DIDContexts(), doc.Context)
		})
	}
	t.Run("tombstone has no document", func(t *testing.T) {
		_, err := DocFromOp("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", &Op{Type: OpTypeTombstone})
		assert.Error(t, err)
	})
}

func TestOpJSONShape(t *testing.T) {
	prev := "bafyreibfvkh3n6odvdpwj54j4xxdsgnn4zo5utbyf7z7nfbyikhtygzjcq"
	cases := []struct {
		name string
		v    any
		want string
	}{
		{"tombstone value", Op{Type: OpTypeTombstone, Prev: &prev, Sig: "s"},
			`{"type":"plc_tombstone","prev":"` + prev + `","sig":"s"}`},
		{"operation pointer with nil collections", &Op{Type: OpTypeOperation, Sig: "s"},
			`{"type":"plc_operation","rotationKeys":[],"verificationMethods":{},"alsoKnownAs":[],"services":{},"prev":null,"sig":"s"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.v)
			require.NoError(t, err)
			assert.JSONEq(t, tc.want, string(b))
		})
	}
}

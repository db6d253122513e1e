package plc

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// Operation types understood by this package.
const (
	OpTypeOperation = "plc_operation"
	OpTypeTombstone = "plc_tombstone"
)

// Well-known names inside an operation.
const (
	// VerificationMethodAtproto is the verificationMethods entry holding the repo signing key.
	VerificationMethodAtproto = "atproto"
	// ServiceAtprotoPDS is the services entry naming the account's PDS.
	ServiceAtprotoPDS = "atproto_pds"
	// ServiceTypePDS is the type of the atproto_pds service.
	ServiceTypePDS = "AtprotoPersonalDataServer"
)

// Service is one entry of an operation's services map.
type Service struct {
	Type     string `json:"type"`
	Endpoint string `json:"endpoint"`
}

// Op is a did:plc operation: a "plc_operation" (genesis or update) or a
// "plc_tombstone" (which only carries Type, Prev and Sig).
//
// JSON encoding always writes every field the op type defines (empty lists and
// maps included), because the fields are part of the signed and hashed bytes.
type Op struct {
	Type                string             `json:"type"`
	RotationKeys        []string           `json:"rotationKeys"`
	VerificationMethods map[string]string  `json:"verificationMethods"`
	AlsoKnownAs         []string           `json:"alsoKnownAs"`
	Services            map[string]Service `json:"services"`
	// Prev is the CID string of the previous op, nil for a genesis op.
	Prev *string `json:"prev"`
	// Sig is the base64url (no padding) raw signature over the unsigned op's DAG-CBOR.
	Sig string `json:"sig"`
}

// IsTombstone reports whether op is a plc_tombstone.
func (op *Op) IsTombstone() bool { return op.Type == OpTypeTombstone }

// IsGenesis reports whether op has no prev.
func (op *Op) IsGenesis() bool { return op.Prev == nil }

// dataModel returns op as generic atproto data (the shape hashed and signed).
func (op *Op) dataModel(withSig bool) map[string]any {
	var prev any
	if op.Prev != nil {
		prev = *op.Prev
	}
	m := map[string]any{
		"type": op.Type,
		"prev": prev,
	}
	if op.Type != OpTypeTombstone {
		rot := make([]any, len(op.RotationKeys))
		for i, k := range op.RotationKeys {
			rot[i] = k
		}
		vms := make(map[string]any, len(op.VerificationMethods))
		for k, v := range op.VerificationMethods {
			vms[k] = v
		}
		aka := make([]any, len(op.AlsoKnownAs))
		for i, a := range op.AlsoKnownAs {
			aka[i] = a
		}
		svcs := make(map[string]any, len(op.Services))
		for k, s := range op.Services {
			svcs[k] = map[string]any{"type": s.Type, "endpoint": s.Endpoint}
		}
		m["rotationKeys"] = rot
		m["verificationMethods"] = vms
		m["alsoKnownAs"] = aka
		m["services"] = svcs
	}
	if withSig {
		m["sig"] = op.Sig
	}
	return m
}

// MarshalJSON writes exactly the fields of the op's type (tombstones: type, prev, sig).
func (op Op) MarshalJSON() ([]byte, error) {
	return json.Marshal(op.dataModel(true))
}

// UnsignedCBOR is the canonical DAG-CBOR of op without its sig: the bytes that are signed.
func (op *Op) UnsignedCBOR() ([]byte, error) {
	b, err := atdata.MarshalCBOR(op.dataModel(false))
	if err != nil {
		return nil, fmt.Errorf("encode unsigned op: %w", err)
	}
	return b, nil
}

// SignedCBOR is the canonical DAG-CBOR of the signed op: the bytes that are hashed
// into its CID (and, for a genesis op, into the DID).
func (op *Op) SignedCBOR() ([]byte, error) {
	if op.Sig == "" {
		return nil, errors.New("encode signed op: op is not signed")
	}
	b, err := atdata.MarshalCBOR(op.dataModel(true))
	if err != nil {
		return nil, fmt.Errorf("encode signed op: %w", err)
	}
	return b, nil
}

// SignOp signs op with priv, setting op.Sig to the base64url (unpadded) raw
// low-S signature of SHA-256 over the unsigned op's DAG-CBOR.
func SignOp(op *Op, priv atcrypto.PrivateKey) error {
	unsigned, err := op.UnsignedCBOR()
	if err != nil {
		return err
	}
	sig, err := priv.HashAndSign(unsigned)
	if err != nil {
		return fmt.Errorf("sign op: %w", err)
	}
	op.Sig = base64.RawURLEncoding.EncodeToString(sig)
	return nil
}

// VerifySig checks op.Sig against each did:key in rotationKeys and returns the
// key that verified it. Signatures must be low-S, as the real directory demands.
func VerifySig(op *Op, rotationKeys []string) (string, error) {
	sig, err := base64.RawURLEncoding.Strict().DecodeString(op.Sig)
	if err != nil {
		return "", fmt.Errorf("signature is not unpadded base64url: %w", err)
	}
	unsigned, err := op.UnsignedCBOR()
	if err != nil {
		return "", err
	}
	for _, k := range rotationKeys {
		pub, err := atcrypto.ParsePublicDIDKey(k)
		if err != nil {
			continue
		}
		if pub.HashAndVerify(unsigned, sig) == nil {
			return k, nil
		}
	}
	return "", atcrypto.ErrInvalidSignature
}

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// DIDForGenesis derives the did:plc of a signed genesis op: "did:plc:" followed by
// the first 24 characters of the unpadded lower-case base32 of SHA-256 over the
// signed op's DAG-CBOR.
func DIDForGenesis(op *Op) (syntax.DID, error) {
	if !op.IsGenesis() {
		return "", errors.New("derive DID: op has a prev, not a genesis op")
	}
	b, err := op.SignedCBOR()
	if err != nil {
		return "", fmt.Errorf("derive DID: %w", err)
	}
	sum := sha256.Sum256(b)
	return syntax.DID("did:plc:" + b32.EncodeToString(sum[:])[:24]), nil
}

// OpCID is the CIDv1 (dag-cbor, sha2-256) of the signed op; the next op's prev
// is its string form.
func OpCID(op *Op) (cid.Cid, error) {
	b, err := op.SignedCBOR()
	if err != nil {
		return cid.Undef, fmt.Errorf("op CID: %w", err)
	}
	c, err := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: multihash.SHA2_256, MhLength: -1}.Sum(b)
	if err != nil {
		return cid.Undef, fmt.Errorf("op CID: %w", err)
	}
	return c, nil
}

// NewGenesis builds and signs a genesis plc_operation declaring handle (as
// "at://handle"; omitted when empty), the PDS endpoint, the atproto signing key
// and the rotation keys (highest priority first). rotationPriv must be the private
// half of one of rotationKeys. It returns the op and the DID it creates.
func NewGenesis(handle string, pdsEndpoint string, signingKey atcrypto.PublicKey, rotationKeys []atcrypto.PublicKey, rotationPriv atcrypto.PrivateKey) (*Op, syntax.DID, error) {
	if signingKey == nil || rotationPriv == nil {
		return nil, "", errors.New("new genesis: signing key and rotation private key are required")
	}
	if len(rotationKeys) == 0 || len(rotationKeys) > MaxRotationKeys {
		return nil, "", fmt.Errorf("new genesis: need 1 to %d rotation keys, got %d", MaxRotationKeys, len(rotationKeys))
	}
	op := &Op{
		Type:                OpTypeOperation,
		RotationKeys:        make([]string, 0, len(rotationKeys)),
		VerificationMethods: map[string]string{VerificationMethodAtproto: signingKey.DIDKey()},
		AlsoKnownAs:         []string{},
		Services:            map[string]Service{},
	}
	for _, k := range rotationKeys {
		op.RotationKeys = append(op.RotationKeys, k.DIDKey())
	}
	if handle != "" {
		h, err := syntax.ParseHandle(handle)
		if err != nil {
			return nil, "", fmt.Errorf("new genesis: handle: %w", err)
		}
		WithHandle(h.Normalize().String())(op)
	}
	if pdsEndpoint != "" {
		if err := checkEndpoint(pdsEndpoint); err != nil {
			return nil, "", fmt.Errorf("new genesis: %w", err)
		}
		WithPDSEndpoint(pdsEndpoint)(op)
	}
	if err := ValidateOp(op); err != nil {
		return nil, "", fmt.Errorf("new genesis: %w", err)
	}
	if err := signWithRotationKey(op, op.RotationKeys, rotationPriv); err != nil {
		return nil, "", fmt.Errorf("new genesis: %w", err)
	}
	did, err := DIDForGenesis(op)
	if err != nil {
		return nil, "", fmt.Errorf("new genesis: %w", err)
	}
	return op, did, nil
}

// NewUpdate builds and signs a plc_operation following prev: a copy of prev with
// prev set to prevCID (computed from prev when empty), changed by mutate (see
// WithHandle, WithPDSEndpoint, WithSigningKey). The result must pass ValidateOp, and
// it is signed with rotationPriv, which must be a rotation key of prev.
func NewUpdate(prev *Op, prevCID string, mutate func(*Op), rotationPriv atcrypto.PrivateKey) (*Op, error) {
	if prev == nil || prev.IsTombstone() {
		return nil, errors.New("new update: prev must be a plc_operation")
	}
	if prevCID == "" {
		c, err := OpCID(prev)
		if err != nil {
			return nil, fmt.Errorf("new update: %w", err)
		}
		prevCID = c.String()
	} else if _, err := cid.Decode(prevCID); err != nil {
		return nil, fmt.Errorf("new update: prev CID %q: %w", prevCID, err)
	}
	op := cloneOp(prev)
	op.Type = OpTypeOperation
	op.Prev = &prevCID
	op.Sig = ""
	if mutate != nil {
		mutate(op)
	}
	if err := ValidateOp(op); err != nil {
		return nil, fmt.Errorf("new update: %w", err)
	}
	if err := signWithRotationKey(op, prev.RotationKeys, rotationPriv); err != nil {
		return nil, fmt.Errorf("new update: %w", err)
	}
	return op, nil
}

// WithHandle returns a NewUpdate mutation that makes "at://"+handle the only
// alsoKnownAs entry (an empty handle clears alsoKnownAs). The caller validates the
// handle (syntax.ParseHandle).
func WithHandle(handle string) func(*Op) {
	return func(op *Op) {
		if handle == "" {
			op.AlsoKnownAs = []string{}
			return
		}
		op.AlsoKnownAs = []string{"at://" + handle}
	}
}

// WithPDSEndpoint returns a NewUpdate mutation that sets the atproto_pds service
// (an empty endpoint removes it).
func WithPDSEndpoint(endpoint string) func(*Op) {
	return func(op *Op) {
		if op.Services == nil {
			op.Services = map[string]Service{}
		}
		if endpoint == "" {
			delete(op.Services, ServiceAtprotoPDS)
			return
		}
		op.Services[ServiceAtprotoPDS] = Service{Type: ServiceTypePDS, Endpoint: endpoint}
	}
}

func checkEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("PDS endpoint %q is not an http(s) URL", endpoint)
	}
	return nil
}

// signWithRotationKey signs op after checking that priv's public key is one of allowed.
func signWithRotationKey(op *Op, allowed []string, priv atcrypto.PrivateKey) error {
	if priv == nil {
		return errors.New("rotation private key is required")
	}
	pub, err := priv.PublicKey()
	if err != nil {
		return fmt.Errorf("rotation key: %w", err)
	}
	if !slices.Contains(allowed, pub.DIDKey()) {
		return fmt.Errorf("rotation key %s is not among the op's authorised rotation keys", pub.DIDKey())
	}
	return SignOp(op, priv)
}

func cloneOp(op *Op) *Op {
	c := &Op{
		Type:         op.Type,
		RotationKeys: slices.Clone(op.RotationKeys),
		AlsoKnownAs:  slices.Clone(op.AlsoKnownAs),
		Sig:          op.Sig,
	}
	if c.RotationKeys == nil {
		c.RotationKeys = []string{}
	}
	if c.AlsoKnownAs == nil {
		c.AlsoKnownAs = []string{}
	}
	c.VerificationMethods = make(map[string]string, len(op.VerificationMethods))
	for k, v := range op.VerificationMethods {
		c.VerificationMethods[k] = v
	}
	c.Services = make(map[string]Service, len(op.Services))
	for k, v := range op.Services {
		c.Services[k] = v
	}
	if op.Prev != nil {
		p := *op.Prev
		c.Prev = &p
	}
	return c
}

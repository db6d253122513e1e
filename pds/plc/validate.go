package plc

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/ipfs/go-cid"
)

// Limits enforced on operations, matching the public PLC directory.
const (
	MaxRotationKeys        = 5
	MaxAlsoKnownAs         = 10
	MaxVerificationMethods = 10
	MaxServices            = 10
	// MaxOpBytes bounds the DAG-CBOR size of a signed operation.
	MaxOpBytes = 7500
	// maxStringLen bounds any single string inside an op (keys, URIs, endpoints).
	maxStringLen = 512
)

// RejectedError reports why an operation is invalid; the directory answers it
// with HTTP 400 and {"message": Reason}.
type RejectedError struct {
	Reason string
}

func (e *RejectedError) Error() string { return e.Reason }

func reject(format string, args ...any) error {
	return &RejectedError{Reason: fmt.Sprintf(format, args...)}
}

var (
	opFields        = []string{"type", "rotationKeys", "verificationMethods", "alsoKnownAs", "services", "prev", "sig"}
	tombstoneFields = []string{"type", "prev", "sig"}
)

// ParseOp decodes a signed operation from JSON strictly: every field of its type
// must be present with the right JSON type, and no other field is allowed (the
// op is re-encoded to DAG-CBOR for hashing and verification, so an ignored field
// would change what was signed). It also runs ValidateOp. Errors are *RejectedError.
func ParseOp(data []byte) (*Op, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil || raw == nil {
		return nil, reject("operation is not a JSON object")
	}
	var typ string
	if err := decodeField(raw, "type", &typ); err != nil {
		return nil, err
	}
	var allowed []string
	switch typ {
	case OpTypeOperation:
		allowed = opFields
	case OpTypeTombstone:
		allowed = tombstoneFields
	default:
		return nil, reject("unsupported operation type %q", typ)
	}
	if err := exactFields(raw, allowed, "operation"); err != nil {
		return nil, err
	}
	op := &Op{Type: typ}
	if err := decodeField(raw, "sig", &op.Sig); err != nil {
		return nil, err
	}
	if !isNull(raw["prev"]) {
		var prev string
		if err := decodeField(raw, "prev", &prev); err != nil {
			return nil, err
		}
		op.Prev = &prev
	}
	if typ == OpTypeOperation {
		if err := decodeField(raw, "rotationKeys", &op.RotationKeys); err != nil {
			return nil, err
		}
		if err := decodeField(raw, "alsoKnownAs", &op.AlsoKnownAs); err != nil {
			return nil, err
		}
		if err := decodeField(raw, "verificationMethods", &op.VerificationMethods); err != nil {
			return nil, err
		}
		var svcs map[string]json.RawMessage
		if err := decodeField(raw, "services", &svcs); err != nil {
			return nil, err
		}
		op.Services = make(map[string]Service, len(svcs))
		for name, body := range svcs {
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
				return nil, reject("service %q is not an object", name)
			}
			if err := exactFields(fields, []string{"type", "endpoint"}, "service "+name); err != nil {
				return nil, err
			}
			var s Service
			if err := decodeField(fields, "type", &s.Type); err != nil {
				return nil, err
			}
			if err := decodeField(fields, "endpoint", &s.Endpoint); err != nil {
				return nil, err
			}
			op.Services[name] = s
		}
	}
	if op.Sig == "" {
		return nil, reject("operation is not signed")
	}
	if err := ValidateOp(op); err != nil {
		return nil, err
	}
	if sig, err := base64.RawURLEncoding.Strict().DecodeString(op.Sig); err != nil || len(sig) != 64 {
		return nil, reject("invalid signature encoding: want 64 bytes of unpadded base64url")
	}
	return op, nil
}

func isNull(b json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(b), []byte("null"))
}

// decodeField decodes the required, non-null field name of raw into dst.
func decodeField(raw map[string]json.RawMessage, name string, dst any) error {
	b, ok := raw[name]
	if !ok {
		return reject("missing field %q", name)
	}
	if isNull(b) {
		return reject("field %q must not be null", name)
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return reject("field %q has the wrong type", name)
	}
	return nil
}

func exactFields(raw map[string]json.RawMessage, allowed []string, what string) error {
	var extra []string
	for k := range raw {
		found := false
		for _, a := range allowed {
			if k == a {
				found = true
				break
			}
		}
		if !found {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return reject("unexpected field %q in %s", extra[0], what)
	}
	for _, a := range allowed {
		if _, ok := raw[a]; !ok {
			return reject("missing field %q in %s", a, what)
		}
	}
	return nil
}

// ValidateOp checks an operation's contents without looking at other ops or the
// signature: known type, prev a CID string when present (required for tombstones),
// 1..MaxRotationKeys distinct rotation keys, every rotation key and verification
// method a parseable did:key (K-256 or P-256), and the list/map/string limits.
// Errors are *RejectedError.
func ValidateOp(op *Op) error {
	if op.Prev != nil {
		if _, err := cid.Decode(*op.Prev); err != nil {
			return reject("prev is not a valid CID: %q", *op.Prev)
		}
	}
	switch op.Type {
	case OpTypeTombstone:
		if op.Prev == nil {
			return reject("tombstone must have a prev")
		}
		if len(op.RotationKeys) > 0 || len(op.VerificationMethods) > 0 || len(op.AlsoKnownAs) > 0 || len(op.Services) > 0 {
			return reject("tombstone must only carry type, prev and sig")
		}
		return nil
	case OpTypeOperation:
	default:
		return reject("unsupported operation type %q", op.Type)
	}
	if len(op.RotationKeys) == 0 {
		return reject("operation must have at least one rotation key")
	}
	if len(op.RotationKeys) > MaxRotationKeys {
		return reject("too many rotation keys: %d (max %d)", len(op.RotationKeys), MaxRotationKeys)
	}
	seen := make(map[string]bool, len(op.RotationKeys))
	for _, k := range op.RotationKeys {
		if err := checkDIDKey(k); err != nil {
			return reject("invalid rotation key %q: %v", k, err)
		}
		if seen[k] {
			return reject("duplicate rotation key %q", k)
		}
		seen[k] = true
	}
	if len(op.VerificationMethods) > MaxVerificationMethods {
		return reject("too many verification methods: %d (max %d)", len(op.VerificationMethods), MaxVerificationMethods)
	}
	for name, k := range op.VerificationMethods {
		if name == "" || len(name) > maxStringLen {
			return reject("invalid verification method name %q", name)
		}
		if err := checkDIDKey(k); err != nil {
			return reject("invalid verification method %q key %q: %v", name, k, err)
		}
	}
	if len(op.AlsoKnownAs) > MaxAlsoKnownAs {
		return reject("too many alsoKnownAs entries: %d (max %d)", len(op.AlsoKnownAs), MaxAlsoKnownAs)
	}
	for _, a := range op.AlsoKnownAs {
		if a == "" || len(a) > maxStringLen {
			return reject("invalid alsoKnownAs entry %q", a)
		}
	}
	if len(op.Services) > MaxServices {
		return reject("too many services: %d (max %d)", len(op.Services), MaxServices)
	}
	for name, s := range op.Services {
		if name == "" || len(name) > maxStringLen {
			return reject("invalid service name %q", name)
		}
		if s.Type == "" || s.Endpoint == "" || len(s.Type) > maxStringLen || len(s.Endpoint) > maxStringLen {
			return reject("service %q needs a type and an endpoint", name)
		}
	}
	return nil
}

func checkDIDKey(k string) error {
	if len(k) > maxStringLen {
		return fmt.Errorf("too long")
	}
	_, err := atcrypto.ParsePublicDIDKey(k)
	return err
}

// checkSize rejects an op whose signed DAG-CBOR exceeds MaxOpBytes.
func checkSize(op *Op) error {
	b, err := op.SignedCBOR()
	if err != nil {
		return reject("cannot encode operation: %v", err)
	}
	if len(b) > MaxOpBytes {
		return reject("operation too large: %d bytes (max %d)", len(b), MaxOpBytes)
	}
	return nil
}

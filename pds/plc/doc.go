// Package plc creates did:plc identities and runs an embedded PLC directory
// that verifies operations the way plc.directory does.
//
// # Operations
//
// A did:plc is a chain of signed operations. A "plc_operation" carries the full
// state of the DID:
//
//	{
//	  "type": "plc_operation",
//	  "rotationKeys": ["did:key:…", …],              // 1..5 keys allowed to sign the NEXT op
//	  "verificationMethods": {"atproto": "did:key:…"}, // repo signing key
//	  "alsoKnownAs": ["at://alice.example.com"],       // handle(s), at most 10
//	  "services": {"atproto_pds": {"type": "AtprotoPersonalDataServer", "endpoint": "https://…"}},
//	  "prev": null | "bafyrei…",                       // CID string of the previous op
//	  "sig": "…"                                       // base64url, no padding
//	}
//
// A "plc_tombstone" ({"type", "prev", "sig"}) deactivates the DID for good.
//
// The signed bytes are the canonical DAG-CBOR (via indigo's atdata) of the op
// without "sig"; sig is the raw 64-byte low-S ECDSA signature (K-256 or P-256)
// over SHA-256 of those bytes. prev is encoded as a text string (not a CID link)
// or null. The CID of an op is CIDv1 dag-cbor sha2-256 of the DAG-CBOR of the
// signed op, and the DID of a genesis op (prev null) is "did:plc:" plus the first
// 24 characters of the lower-case, unpadded base32 SHA-256 of that same encoding.
//
// NewGenesis, NewUpdate and NewTombstone build and sign ops; DIDForGenesis, OpCID
// and VerifySig check them; DocFromOp renders the W3C DID document (Multikey
// verification methods "did#name", services "#name") that indigo's
// identity.ParseIdentity understands.
//
// # What the directory verifies
//
// Server (OpenServer, Handler) stores ops in SQLite and, for POST /{did}:
//
//   - the DID is a syntactically valid did:plc;
//   - the JSON has exactly the fields of its type, each with the right JSON type
//     (unknown fields are refused because they would not be covered by the
//     re-encoded signature), the type is plc_operation or plc_tombstone, and the
//     sig is 64 bytes of unpadded base64url;
//   - rotation keys (1..5, distinct) and verification methods (≤10) are did:keys
//     that parse as K-256 or P-256; at most 10 alsoKnownAs and 10 services;
//   - the signed op's DAG-CBOR is at most 7500 bytes;
//   - a first op must have prev null, be a plc_operation, derive exactly the DID
//     it is posted to, and be signed by one of its own rotation keys;
//   - a later op must have prev equal to the CID of the DID's current last op
//     (stale prevs are refused; forks/nullification are not supported), and be
//     signed by a rotation key of that previous op;
//   - nothing is accepted after a tombstone.
//
// Rejections are HTTP 400 {"message": reason}. GET /{did} answers 404 {"message":
// "DID not registered: …"} for unknown DIDs and 410 for tombstoned ones. The
// checks against the current log and the insert run in one write transaction on
// the single writer connection, so concurrent submissions are serialised.
//
// Client speaks the same HTTP API to any PLC directory (registering and updating
// accounts). Resolving identities, this directory's included, is internal/resolve's job.
package plc

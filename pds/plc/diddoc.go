package plc

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// DIDContexts is the JSON-LD @context of a did:plc document.
func DIDContexts() []string {
	return []string{
		"https://www.w3.org/ns/did/v1",
		"https://w3id.org/security/multikey/v1",
		"https://w3id.org/security/suites/secp256k1-2019/v1",
	}
}

// Document is a did:plc DID document as the directory serves it. It is a superset
// of indigo's identity.DIDDocument (which it unmarshals into directly).
type Document struct {
	Context            []string                         `json:"@context"`
	ID                 syntax.DID                       `json:"id"`
	AlsoKnownAs        []string                         `json:"alsoKnownAs"`
	VerificationMethod []identity.DocVerificationMethod `json:"verificationMethod"`
	Service            []identity.DocService            `json:"service"`
}

// Indigo converts the document to indigo's identity.DIDDocument.
func (d *Document) Indigo() *identity.DIDDocument {
	return &identity.DIDDocument{
		DID:                d.ID,
		AlsoKnownAs:        d.AlsoKnownAs,
		VerificationMethod: d.VerificationMethod,
		Service:            d.Service,
	}
}

// DocFromOp renders the DID document for did whose latest op is op: each
// verification method becomes a Multikey "did#name" whose publicKeyMultibase is
// the did:key without its "did:key:" prefix, each service becomes "#name".
// Entries are sorted by name. A tombstone has no document.
func DocFromOp(did syntax.DID, op *Op) (*Document, error) {
	if op == nil || op.IsTombstone() {
		return nil, errors.New("DID document: DID is tombstoned")
	}
	doc := &Document{
		Context:            DIDContexts(),
		ID:                 did,
		AlsoKnownAs:        append([]string{}, op.AlsoKnownAs...),
		VerificationMethod: []identity.DocVerificationMethod{},
		Service:            []identity.DocService{},
	}
	for _, name := range sortedKeys(op.VerificationMethods) {
		key := op.VerificationMethods[name]
		mb, ok := strings.CutPrefix(key, "did:key:")
		if !ok {
			return nil, fmt.Errorf("DID document: verification method %q is not a did:key: %q", name, key)
		}
		doc.VerificationMethod = append(doc.VerificationMethod, identity.DocVerificationMethod{
			ID:                 did.String() + "#" + name,
			Type:               "Multikey",
			Controller:         did.String(),
			PublicKeyMultibase: mb,
		})
	}
	for _, name := range sortedKeys(op.Services) {
		s := op.Services[name]
		doc.Service = append(doc.Service, identity.DocService{
			ID:              "#" + name,
			Type:            s.Type,
			ServiceEndpoint: s.Endpoint,
		})
	}
	return doc, nil
}

// Data is the current state of a DID as served at GET /{did}/data.
type Data struct {
	DID                 syntax.DID         `json:"did"`
	VerificationMethods map[string]string  `json:"verificationMethods"`
	RotationKeys        []string           `json:"rotationKeys"`
	AlsoKnownAs         []string           `json:"alsoKnownAs"`
	Services            map[string]Service `json:"services"`
}

func dataFromOp(did syntax.DID, op *Op) *Data {
	c := cloneOp(op)
	return &Data{
		DID:                 did,
		VerificationMethods: c.VerificationMethods,
		RotationKeys:        c.RotationKeys,
		AlsoKnownAs:         c.AlsoKnownAs,
		Services:            c.Services,
	}
}

// AuditEntry is one element of GET /{did}/log/audit.
type AuditEntry struct {
	DID       syntax.DID `json:"did"`
	Operation *Op        `json:"operation"`
	CID       string     `json:"cid"`
	Nullified bool       `json:"nullified"`
	CreatedAt string     `json:"createdAt"`
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

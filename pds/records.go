package pds

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/lexicon"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/store"
	"github.com/hearth-social/hearth/repo"
	"github.com/ipfs/go-cid"
)

// Validation statuses reported by write methods.
const (
	validationValid   = "valid"
	validationUnknown = "unknown"
)

// preparedRecord is a record parsed, validated and encoded for a commit.
type preparedRecord struct {
	CBOR   []byte
	Status string
	Blobs  []atdata.Blob
}

// prepareRecord turns a JSON record into DAG-CBOR after checking $type and, as the
// validate flag asks, the lexicon (the record and its key type): nil validates when the
// lexicon is known, true requires a known lexicon, false skips validation.
func (s *Server) prepareRecord(collection syntax.NSID, rkey syntax.RecordKey, raw json.RawMessage, validate *bool) (*preparedRecord, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, xrpc.InvalidRequest("record must be a JSON object")
	}
	if d := jsonDepth(trimmed); d > maxRecordDepth {
		return nil, xrpc.InvalidRequest("record is nested %d levels deep; the limit is %d", d, maxRecordDepth)
	}
	data, err := atdata.UnmarshalJSON(trimmed)
	if err != nil {
		return nil, xrpc.InvalidRequest("invalid record: %v", err)
	}
	typ, _ := data["$type"].(string)
	if typ == "" {
		data["$type"] = collection.String()
	} else if typ != collection.String() {
		return nil, xrpc.InvalidRequest("record $type %q does not match collection %s", typ, collection)
	}
	status := validationUnknown
	if validate == nil || *validate {
		cat, err := s.lex.Load()
		if err != nil {
			return nil, err
		}
		schema, rerr := cat.Resolve(collection.String())
		switch {
		case rerr == nil:
			if err := lexicon.ValidateRecord(cat, data, collection.String(), 0); err != nil {
				return nil, xrpc.InvalidRequest("invalid %s record: %v", collection, err)
			}
			if err := checkRecordKey(schema, rkey); err != nil {
				return nil, xrpc.InvalidRequest("invalid record key for %s: %v", collection, err)
			}
			status = validationValid
		case validate != nil:
			return nil, xrpc.InvalidRequest("lexicon not found for collection %s; cannot validate", collection)
		}
	}
	b, err := atdata.MarshalCBOR(data)
	if err != nil {
		return nil, xrpc.InvalidRequest("record cannot be encoded: %v", err)
	}
	if len(b) > s.cfg.MaxRecordBytes {
		return nil, xrpc.Errorf(http.StatusBadRequest, "RecordTooBig", "record is %d bytes encoded; the limit is %d", len(b), s.cfg.MaxRecordBytes)
	}
	return &preparedRecord{CBOR: b, Status: status, Blobs: atdata.ExtractBlobs(data)}, nil
}

// maxRecordDepth caps how deeply objects and arrays nest in a record (the data model
// guidance suggests 32): decoders and validators recurse per level.
const maxRecordDepth = 32

// jsonDepth is the deepest nesting of objects and arrays in a JSON text, scanned without
// decoding it (written by hand: encoding/json has no depth option). Brackets inside
// strings are skipped.
func jsonDepth(b []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			deepest = max(deepest, depth)
		case '}', ']':
			depth--
		}
	}
	return deepest
}

// resolveRepo resolves an at-identifier to a hosted account.
func (s *Server) resolveRepo(ctx context.Context, raw string) (*store.Account, error) {
	id, err := syntax.ParseAtIdentifier(raw)
	if err != nil {
		return nil, xrpc.InvalidRequest("invalid repo %q: must be a DID or handle", raw)
	}
	var acct *store.Account
	if did, err := id.AsDID(); err == nil {
		acct, err = s.accounts.get(ctx, s.store, did.String())
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	} else {
		h, _ := id.AsHandle()
		acct, err = s.store.AccountByHandle(ctx, h.Normalize().String())
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	if acct == nil || acct.Status == store.StatusDeleted {
		return nil, xrpc.Errorf(http.StatusBadRequest, "RepoNotFound", "could not find repo: %s", raw)
	}
	return acct, nil
}

// readableRepo resolves a repo for public reads: taken-down and deactivated accounts are
// not served.
func (s *Server) readableRepo(ctx context.Context, raw string) (*store.Account, error) {
	acct, err := s.resolveRepo(ctx, raw)
	if err != nil {
		return nil, err
	}
	return acct, repoStatusError(acct)
}

func repoStatusError(acct *store.Account) error {
	switch acct.Status {
	case store.StatusTakendown:
		return xrpc.Errorf(http.StatusBadRequest, "RepoTakendown", "repo has been taken down: %s", acct.DID)
	case store.StatusDeactivated:
		return xrpc.Errorf(http.StatusBadRequest, "RepoDeactivated", "repo has been deactivated: %s", acct.DID)
	}
	return nil
}

// writableRepo resolves the repo of a write and checks the caller may write it.
func (s *Server) writableRepo(ctx context.Context, raw string) (syntax.DID, error) {
	c := callerFrom(ctx)
	acct, err := s.resolveRepo(ctx, raw)
	if err != nil {
		return "", err
	}
	if c.DID != acct.DID {
		return "", xrpc.Errorf(http.StatusForbidden, "Forbidden", "you may only write to your own repo")
	}
	if !acct.Active() {
		return "", xrpc.Errorf(http.StatusBadRequest, "AccountDeactivated", "account is %s", acct.Status)
	}
	return syntax.DID(acct.DID), nil
}

func parseCollection(raw string) (syntax.NSID, error) {
	n, err := syntax.ParseNSID(raw)
	if err != nil {
		return "", xrpc.InvalidRequest("invalid collection %q: %v", raw, err)
	}
	return n, nil
}

func parseRKey(raw string) (syntax.RecordKey, error) {
	k, err := syntax.ParseRecordKey(raw)
	if err != nil {
		return "", xrpc.InvalidRequest("invalid record key %q: %v", raw, err)
	}
	return k, nil
}

func parseCIDParam(name, raw string) (*cid.Cid, error) {
	if raw == "" {
		return nil, nil
	}
	c, err := cid.Decode(raw)
	if err != nil {
		return nil, xrpc.InvalidRequest("invalid %s: %v", name, err)
	}
	return &c, nil
}

// swapRecordField distinguishes an absent swapRecord from an explicit null ("the record
// must not exist yet") and from a CID.
type swapRecordField struct {
	set  bool
	null bool
	cid  cid.Cid
}

func (f *swapRecordField) UnmarshalJSON(b []byte) error {
	f.set = true
	if string(bytes.TrimSpace(b)) == "null" {
		f.null = true
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("swapRecord must be a CID string or null")
	}
	c, err := cid.Decode(s)
	if err != nil {
		return fmt.Errorf("swapRecord is not a valid CID: %w", err)
	}
	f.cid = c
	return nil
}

func (f *swapRecordField) apply(w *repo.Write) {
	switch {
	case !f.set:
	case f.null:
		w.SwapMissing = true
	default:
		c := f.cid
		w.SwapRecord = &c
	}
}

// commitError maps commit pipeline errors to XRPC errors.
func commitError(err error) error {
	switch {
	case errors.Is(err, repo.ErrSwapCommit), errors.Is(err, repo.ErrSwapRecord), errors.Is(err, store.ErrHeadMoved):
		return xrpc.Errorf(http.StatusBadRequest, "InvalidSwap", "%v", err)
	case errors.Is(err, errBlobNotUploaded):
		return xrpc.Errorf(http.StatusBadRequest, "InvalidRequest", "%v", err)
	case errors.Is(err, repo.ErrRecordExists), errors.Is(err, repo.ErrRecordNotFound),
		errors.Is(err, repo.ErrDuplicatePath), errors.Is(err, repo.ErrTooManyWrites), errors.Is(err, repo.ErrCommitTooBig):
		return xrpc.InvalidRequest("%v", err)
	}
	return err
}

// recordJSON renders stored DAG-CBOR as the JSON a client expects.
func recordJSON(b []byte) (json.RawMessage, error) {
	m, err := atdata.UnmarshalCBOR(b)
	if err != nil {
		return nil, fmt.Errorf("decoding stored record: %w", err)
	}
	return json.Marshal(m)
}

func atURI(did, collection, rkey string) string {
	var b strings.Builder
	b.Grow(5 + len(did) + len(collection) + len(rkey) + 2)
	b.WriteString("at://")
	b.WriteString(did)
	b.WriteByte('/')
	b.WriteString(collection)
	b.WriteByte('/')
	b.WriteString(rkey)
	return b.String()
}

// blobRefs maps each written path to the blob CIDs its record references.
func blobRefs(writes []repo.Write, recs ...*preparedRecord) map[string][]cid.Cid {
	var out map[string][]cid.Cid
	for i, r := range recs {
		if r == nil || len(r.Blobs) == 0 {
			continue
		}
		if out == nil {
			out = map[string][]cid.Cid{}
		}
		path := writes[i].Path()
		for _, b := range r.Blobs {
			out[path] = append(out[path], cid.Cid(b.Ref))
		}
	}
	return out
}

// checkRecordKey enforces the lexicon's record key type ("tid", "nsid", "literal:X",
// "any"): indigo validates record data, not keys.
func checkRecordKey(schema *lexicon.Schema, rkey syntax.RecordKey) error {
	var key string
	switch def := schema.Def.(type) {
	case lexicon.SchemaRecord:
		key = def.Key
	case *lexicon.SchemaRecord:
		key = def.Key
	default:
		return fmt.Errorf("%s is not a record type", schema.ID)
	}
	switch {
	case key == "" || key == "any":
		return nil
	case key == "tid":
		if _, err := syntax.ParseTID(rkey.String()); err != nil {
			return fmt.Errorf("%q must be a TID", rkey)
		}
	case key == "nsid":
		if _, err := syntax.ParseNSID(rkey.String()); err != nil {
			return fmt.Errorf("%q must be an NSID", rkey)
		}
	case strings.HasPrefix(key, "literal:"):
		if want := strings.TrimPrefix(key, "literal:"); rkey.String() != want {
			return fmt.Errorf("%q must be %q", rkey, want)
		}
	}
	return nil
}

package pds

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/store"
	"github.com/ipfs/go-cid"
)

// Takedowns of accounts, records and blobs (com.atproto.admin.updateSubjectStatus and
// getSubjectStatus). An account takedown is the account's status (account_handlers.go);
// record and blob takedowns are rows of their own, mirrored in memory (takedownSet) so
// the read paths can skip what is taken down without a query. Every change, of any
// subject, is written to the moderation log with who made it, when and why.

// takedownSet holds the record and blob takedowns in force: loaded at start, changed
// only after the store committed the change (one process writes them). With no takedowns
// at all, the usual case, each read path's check is one atomic load.
type takedownSet struct {
	n       atomic.Int64
	mu      sync.RWMutex
	records map[string]map[string]string // did -> collection/rkey -> ref
	blobs   map[string]map[string]string // did -> blob CID -> ref
}

func newTakedownSet(tds []store.Takedown) *takedownSet {
	t := &takedownSet{records: map[string]map[string]string{}, blobs: map[string]map[string]string{}}
	for _, td := range tds {
		t.set(td.DID, td.Kind, td.Subject, td.Ref, true)
	}
	return t
}

func (t *takedownSet) kind(kind string) map[string]map[string]string {
	if kind == store.TakedownBlob {
		return t.blobs
	}
	return t.records
}

// set applies (or lifts) a takedown in memory.
func (t *takedownSet) set(did, kind, subject, ref string, applied bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.kind(kind)
	subs := m[did]
	_, had := subs[subject]
	switch {
	case applied:
		if subs == nil {
			subs = map[string]string{}
			m[did] = subs
		}
		subs[subject] = ref
		if !had {
			t.n.Add(1)
		}
	case had:
		delete(subs, subject)
		if len(subs) == 0 {
			delete(m, did)
		}
		t.n.Add(-1)
	}
}

func (t *takedownSet) lookup(did, kind, subject string) (string, bool) {
	if t.n.Load() == 0 {
		return "", false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	ref, ok := t.kind(kind)[did][subject]
	return ref, ok
}

// record reports whether did's record at collection/rkey is taken down.
func (t *takedownSet) record(did, collection, rkey string) bool {
	if t.n.Load() == 0 {
		return false
	}
	_, ok := t.lookup(did, store.TakedownRecord, collection+"/"+rkey)
	return ok
}

// blob reports whether did's blob c is taken down.
func (t *takedownSet) blob(did string, c cid.Cid) bool {
	if t.n.Load() == 0 {
		return false
	}
	_, ok := t.lookup(did, store.TakedownBlob, c.String())
	return ok
}

// recordsOf lists did's taken-down record paths (nil when none).
func (t *takedownSet) recordsOf(did string) []string {
	if t.n.Load() == 0 {
		return nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []string
	for p := range t.records[did] {
		out = append(out, p)
	}
	return out
}

// dropAccount forgets every takedown of a deleted account (its rows went with its data).
func (t *takedownSet) dropAccount(did string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range []map[string]map[string]string{t.records, t.blobs} {
		t.n.Add(-int64(len(m[did])))
		delete(m, did)
	}
}

// hiddenRecordCIDs returns the CIDs of did's taken-down records as of lookup (which reads
// a record's CID at a path), leaving out a CID that a record not taken down also has (a
// block shared by identical records is that record's too). Nil when there is nothing to
// hide: getRepo and getBlocks leave these blocks out.
func (s *Server) hiddenRecordCIDs(ctx context.Context, did string, lookup func(collection, rkey string) (cid.Cid, error)) (map[cid.Cid]bool, error) {
	paths := s.takedowns.recordsOf(did)
	if len(paths) == 0 {
		return nil, nil
	}
	out := map[cid.Cid]bool{}
	for _, p := range paths {
		coll, rkey, _ := cutPath(p)
		c, err := lookup(coll, rkey)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		out[c] = true
	}
	for c := range out {
		holders, err := s.store.RecordPathsByCID(ctx, did, c.Bytes())
		if err != nil {
			return nil, err
		}
		for _, p := range holders {
			coll, rkey, _ := cutPath(p)
			if !s.takedowns.record(did, coll, rkey) {
				delete(out, c)
				break
			}
		}
	}
	return out, nil
}

func cutPath(p string) (collection, rkey string, ok bool) {
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			return p[:i], p[i+1:], true
		}
	}
	return p, "", false
}

// subjectRef is the subject union of updateSubjectStatus/getSubjectStatus:
// com.atproto.admin.defs#repoRef {did}, com.atproto.repo.strongRef {uri, cid} or
// com.atproto.admin.defs#repoBlobRef {did, cid, recordUri?}.
type subjectRef struct {
	Type      string `json:"$type"`
	DID       string `json:"did,omitempty"`
	URI       string `json:"uri,omitempty"`
	CID       string `json:"cid,omitempty"`
	RecordURI string `json:"recordUri,omitempty"`
}

const (
	typeRepoRef     = "com.atproto.admin.defs#repoRef"
	typeStrongRef   = "com.atproto.repo.strongRef"
	typeRepoBlobRef = "com.atproto.admin.defs#repoBlobRef"
)

type statusAttr struct {
	Applied bool   `json:"applied"`
	Ref     string `json:"ref,omitempty"`
}

// adminActor names who made an admin change, for the moderation log: the admin (Basic
// auth has one user) and the client address.
func (s *Server) adminActor(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if s.cfg.RateLimits.TrustForwardedFor {
		if a, ok := forwardedFor(r.Header); ok {
			host = a.String()
		}
	}
	return "admin@" + host
}

// handleAdminUpdateSubjectStatus applies or lifts a takedown of an account, a record or
// a blob. comment, a Hearth addition to the input (as sendEmail has), is the reason kept
// in the moderation log.
func (s *Server) handleAdminUpdateSubjectStatus(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Subject     *subjectRef     `json:"subject"`
		Takedown    *statusAttr     `json:"takedown"`
		Deactivated json.RawMessage `json:"deactivated"`
		Comment     string          `json:"comment"`
	}
	if err := xrpc.DecodeJSON(w, r, 16<<10, &in); err != nil {
		return err
	}
	if in.Subject == nil {
		return xrpc.InvalidRequest("subject is required")
	}
	if len(in.Deactivated) > 0 && string(in.Deactivated) != "null" {
		return xrpc.InvalidRequest("deactivated is not changed through the admin API here: the account's owner deactivates and activates it")
	}
	if len(in.Comment) > 2000 {
		return xrpc.InvalidRequest("comment is longer than 2000 characters")
	}
	if in.Takedown != nil && len(in.Takedown.Ref) > 1000 {
		return xrpc.InvalidRequest("takedown.ref is longer than 1000 characters")
	}
	if err := s.updateSubjectStatus(r.Context(), *in.Subject, in.Takedown, s.adminActor(r), in.Comment); err != nil {
		return err
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]any{"subject": in.Subject, "takedown": in.Takedown})
	return nil
}

// updateSubjectStatus applies (or, with takedown nil, only checks) a status change of
// sub on behalf of actor, logging it with reason.
func (s *Server) updateSubjectStatus(ctx context.Context, sub subjectRef, takedown *statusAttr, actor, reason string) error {
	entry := store.ModerationEntry{Actor: actor, Reason: reason}
	if takedown != nil {
		entry.Applied, entry.Ref = takedown.Applied, takedown.Ref
		if entry.Applied && entry.Ref == "" {
			entry.Ref = time.Now().UTC().Format(syntax.AtprotoDatetimeLayout) // as the reference does
		}
	}
	switch sub.Type {
	case typeRepoRef:
		acct, err := s.adminAccount(ctx, sub.DID)
		if err != nil || takedown == nil {
			return err
		}
		entry.Kind, entry.DID, entry.Subject = "account", acct.DID, acct.DID
		want := store.StatusActive
		if takedown.Applied {
			want = store.StatusTakendown
		}
		logIt := func(tx *store.Tx) error { return tx.AppendModerationLog(entry) }
		if acct.Status == want {
			return s.store.Write(ctx, logIt)
		}
		return s.setAccountStatus(ctx, acct.DID, want, logIt)
	case typeStrongRef:
		uri, err := syntax.ParseATURI(sub.URI)
		if err != nil || uri.Collection() == "" || uri.RecordKey() == "" {
			return xrpc.InvalidRequest("subject.uri must be the AT-URI of a record: %q", sub.URI)
		}
		if _, err := cid.Decode(sub.CID); err != nil {
			return xrpc.InvalidRequest("subject.cid is not a CID: %q", sub.CID)
		}
		acct, err := s.adminAccount(ctx, uri.Authority().String())
		if err != nil || takedown == nil {
			return err
		}
		coll, rkey := uri.Collection().String(), uri.RecordKey().String()
		if takedown.Applied {
			if _, _, err := s.store.Record(ctx, acct.DID, coll, rkey); errors.Is(err, store.ErrNotFound) {
				return xrpc.Errorf(http.StatusBadRequest, "RecordNotFound", "could not locate record: %s", sub.URI)
			} else if err != nil {
				return err
			}
		}
		entry.Kind, entry.DID, entry.Subject, entry.CID = "record", acct.DID, atURI(acct.DID, coll, rkey), sub.CID
		return s.setTakedown(ctx, entry, store.TakedownRecord, coll+"/"+rkey)
	case typeRepoBlobRef:
		c, err := cid.Decode(sub.CID)
		if err != nil {
			return xrpc.InvalidRequest("subject.cid is not a CID: %q", sub.CID)
		}
		acct, err := s.adminAccount(ctx, sub.DID)
		if err != nil || takedown == nil {
			return err
		}
		if takedown.Applied {
			if ok, err := s.store.HasBlob(ctx, acct.DID, c); err != nil {
				return err
			} else if !ok {
				return xrpc.Errorf(http.StatusBadRequest, "BlobNotFound", "blob not found: %s", c)
			}
		}
		entry.Kind, entry.DID, entry.Subject, entry.CID = "blob", acct.DID, c.String(), c.String()
		return s.setTakedown(ctx, entry, store.TakedownBlob, c.String())
	default:
		return xrpc.InvalidRequest("invalid subject $type %q: want %s, %s or %s", sub.Type, typeRepoRef, typeStrongRef, typeRepoBlobRef)
	}
}

// setTakedown stores a record or blob takedown (or its lifting) with its log entry in
// one transaction, then mirrors it in memory.
func (s *Server) setTakedown(ctx context.Context, entry store.ModerationEntry, kind, subject string) error {
	err := s.store.Write(ctx, func(tx *store.Tx) error {
		var err error
		if entry.Applied {
			err = tx.PutTakedown(store.Takedown{DID: entry.DID, Kind: kind, Subject: subject, Ref: entry.Ref})
		} else {
			err = tx.DeleteTakedown(entry.DID, kind, subject)
		}
		if err != nil {
			return err
		}
		return tx.AppendModerationLog(entry)
	})
	if err != nil {
		return err
	}
	s.takedowns.set(entry.DID, kind, subject, entry.Ref, entry.Applied)
	s.log.Info("takedown changed", "kind", kind, "did", entry.DID, "subject", subject, "applied", entry.Applied, "actor", entry.Actor)
	return nil
}

func subjectNotFound() error {
	return xrpc.Errorf(http.StatusBadRequest, "NotFound", "Subject not found")
}

// handleAdminGetSubjectStatus answers the status of an account (did), a record (uri)
// or a blob (did and blob), NotFound for a subject that does not exist, as the
// reference does.
func (s *Server) handleAdminGetSubjectStatus(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	did, uri, blob := q.Get("did"), q.Get("uri"), q.Get("blob")
	notFound := func(err error) error {
		var xe *xrpc.Error
		if errors.As(err, &xe) && xe.Name == "AccountNotFound" {
			return subjectNotFound()
		}
		return err
	}
	switch {
	case blob != "":
		if did == "" {
			return xrpc.InvalidRequest("Must provide a did to request blob state")
		}
		c, err := cid.Decode(blob)
		if err != nil {
			return xrpc.InvalidRequest("blob is not a CID: %q", blob)
		}
		acct, err := s.adminAccount(ctx, did)
		if err != nil {
			return notFound(err)
		}
		if ok, err := s.store.HasBlob(ctx, acct.DID, c); err != nil {
			return err
		} else if !ok {
			return subjectNotFound()
		}
		ref, applied := s.takedowns.lookup(acct.DID, store.TakedownBlob, c.String())
		xrpc.WriteJSON(w, http.StatusOK, map[string]any{
			"subject":  subjectRef{Type: typeRepoBlobRef, DID: acct.DID, CID: c.String()},
			"takedown": statusAttr{Applied: applied, Ref: ref},
		})
	case uri != "":
		u, err := syntax.ParseATURI(uri)
		if err != nil || u.Collection() == "" || u.RecordKey() == "" {
			return xrpc.InvalidRequest("uri must be the AT-URI of a record: %q", uri)
		}
		acct, err := s.adminAccount(ctx, u.Authority().String())
		if err != nil {
			return notFound(err)
		}
		coll, rkey := u.Collection().String(), u.RecordKey().String()
		c, _, err := s.store.Record(ctx, acct.DID, coll, rkey)
		if errors.Is(err, store.ErrNotFound) {
			return subjectNotFound()
		} else if err != nil {
			return err
		}
		ref, applied := s.takedowns.lookup(acct.DID, store.TakedownRecord, coll+"/"+rkey)
		xrpc.WriteJSON(w, http.StatusOK, map[string]any{
			"subject":  subjectRef{Type: typeStrongRef, URI: atURI(acct.DID, coll, rkey), CID: c.String()},
			"takedown": statusAttr{Applied: applied, Ref: ref},
		})
	case did != "":
		acct, err := s.adminAccount(ctx, did)
		if err != nil {
			return notFound(err)
		}
		xrpc.WriteJSON(w, http.StatusOK, map[string]any{
			"subject":     subjectRef{Type: typeRepoRef, DID: acct.DID},
			"takedown":    statusAttr{Applied: acct.Status == store.StatusTakendown},
			"deactivated": statusAttr{Applied: acct.Status == store.StatusDeactivated},
		})
	default:
		return xrpc.InvalidRequest("No provided subject: give did, uri, or did and blob")
	}
	return nil
}

// moderationLogNSID lists the moderation log (Hearth's own method, lexicon in
// lexicons/social/hearth/admin).
const moderationLogNSID = "social.hearth.admin.getModerationLog"

// handleAdminGetModerationLog pages through the moderation log, newest first.
func (s *Server) handleAdminGetModerationLog(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := parseLimit(q.Get("limit"), 50, 500)
	if err != nil {
		return err
	}
	did := q.Get("did")
	if did != "" {
		if _, err := syntax.ParseDID(did); err != nil {
			return xrpc.InvalidRequest("invalid did %q", did)
		}
	}
	var before int64
	if c := q.Get("cursor"); c != "" {
		if before, err = strconv.ParseInt(c, 10, 64); err != nil || before <= 0 {
			return xrpc.InvalidRequest("invalid cursor")
		}
	}
	entries, err := s.store.ModerationLog(r.Context(), did, before, limit)
	if err != nil {
		return err
	}
	type entry struct {
		ID        int64      `json:"id"`
		CreatedAt string     `json:"createdAt"`
		Actor     string     `json:"actor"`
		Subject   subjectRef `json:"subject"`
		Takedown  statusAttr `json:"takedown"`
		Reason    string     `json:"reason,omitempty"`
	}
	out := struct {
		Entries []entry `json:"entries"`
		Cursor  string  `json:"cursor,omitempty"`
	}{Entries: make([]entry, 0, len(entries))}
	for _, e := range entries {
		sub := subjectRef{Type: typeRepoRef, DID: e.DID}
		switch e.Kind {
		case "record":
			sub = subjectRef{Type: typeStrongRef, URI: e.Subject, CID: e.CID}
		case "blob":
			sub = subjectRef{Type: typeRepoBlobRef, DID: e.DID, CID: e.CID}
		}
		out.Entries = append(out.Entries, entry{ID: e.ID, CreatedAt: e.At.UTC().Format(syntax.AtprotoDatetimeLayout), Actor: e.Actor,
			Subject: sub, Takedown: statusAttr{Applied: e.Applied, Ref: e.Ref}, Reason: e.Reason})
	}
	if len(entries) == limit {
		out.Cursor = strconv.FormatInt(entries[len(entries)-1].ID, 10)
	}
	xrpc.WriteJSON(w, http.StatusOK, out)
	return nil
}

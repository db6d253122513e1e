package pds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/aipref"
	"github.com/hearth-social/hearth/pds/store"
	"github.com/hearth-social/hearth/pds/web"
	"github.com/hearth-social/hearth/repo"
)

// AI usage preferences: an account declares how its public data may be used by AI in
// ordinary repo records (so they travel with the repo: firehose, CAR export,
// migration), and every public read of the account's data says so in a Content-Usage
// header (internal/aipref reads the records and writes the vocabulary). Nothing
// declared, no header: undefined stays undefined.

const (
	// aiDeclarationsMax bounds the declaration records read per account.
	aiDeclarationsMax = 100
	aiUsageCacheMax   = 10_000
)

// aiUsage is an account's declared preferences as headers: for the whole repo and for
// each collection with an override.
type aiUsage struct {
	global      string
	collections map[string]string
}

// forCollection is the header for reads of one collection ("" for whole-repo reads).
func (u *aiUsage) forCollection(collection string) string {
	if h, ok := u.collections[collection]; ok && collection != "" {
		return h
	}
	return u.global
}

// usageView is how describeRepo shows the declarations: the Content-Usage value for the
// whole repo and for each collection with its own.
type usageView struct {
	Default     string            `json:"default,omitempty"`
	Collections map[string]string `json:"collections,omitempty"`
}

// view is nil when nothing is declared.
func (u *aiUsage) view() *usageView {
	v := &usageView{Default: u.global}
	for coll, h := range u.collections {
		if h != "" {
			if v.Collections == nil {
				v.Collections = map[string]string{}
			}
			v.Collections[coll] = h
		}
	}
	if v.Default == "" && v.Collections == nil {
		return nil
	}
	return v
}

// aiUsageCache keeps each account's parsed declarations until a write to the
// declaration collections (or an import or deletion) forgets them.
type aiUsageCache struct {
	mu  sync.Mutex
	m   map[string]*aiUsage
	gen uint64 // bumped by every forget, so a computation racing a write is not kept
}

func newAIUsageCache() *aiUsageCache { return &aiUsageCache{m: map[string]*aiUsage{}} }

func (c *aiUsageCache) forget(did string) {
	c.mu.Lock()
	delete(c.m, did)
	c.gen++
	c.mu.Unlock()
}

// commit is repos.commit, forgetting the account's cached declarations when a write
// touches them (also when the commit fails: a forget costs one reload).
func (s *Server) commit(ctx context.Context, did syntax.DID, req commitRequest) (*commitResult, error) {
	began := time.Now()
	res, err := s.repos.commit(ctx, did, req)
	s.metrics.observeCommit(err, time.Since(began))
	for _, w := range req.Writes {
		if aipref.IsDeclaration(w.Collection.String()) {
			s.aiUsage.forget(did.String())
			break
		}
	}
	return res, err
}

// forgetRepo drops everything cached of did's repo (after takedown, deletion, import).
func (s *Server) forgetRepo(did string) {
	s.repos.forget(did)
	s.aiUsage.forget(did)
}

// setContentUsage sets the Content-Usage header of a public read of did's data (of one
// collection, or "" for the whole repo or its blobs). A failure to read the
// declarations is logged and leaves the header out rather than failing the read.
func (s *Server) setContentUsage(ctx context.Context, w http.ResponseWriter, did, collection string) {
	u, err := s.aiUsageOf(ctx, did)
	if err != nil {
		s.log.Warn("reading AI usage declarations", "did", did, "err", err)
		return
	}
	if h := u.forCollection(collection); h != "" {
		w.Header().Set("Content-Usage", h)
	}
}

func (s *Server) aiUsageOf(ctx context.Context, did string) (*aiUsage, error) {
	c := s.aiUsage
	c.mu.Lock()
	u, ok := c.m[did]
	gen := c.gen
	c.mu.Unlock()
	if ok {
		return u, nil
	}
	u, err := s.loadAIUsage(ctx, did)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.gen == gen {
		if len(c.m) >= aiUsageCacheMax {
			for k := range c.m { // drop an arbitrary entry; the map stays bounded
				delete(c.m, k)
				break
			}
		}
		c.m[did] = u
	}
	c.mu.Unlock()
	return u, nil
}

func (s *Server) loadAIUsage(ctx context.Context, did string) (*aiUsage, error) {
	var decls []aipref.Declaration
	if _, val, err := s.store.Record(ctx, did, aipref.NSIDUserIntents, "self"); err == nil {
		if rec, err := atdata.UnmarshalCBOR(val); err == nil {
			if d, ok := aipref.Parse(aipref.NSIDUserIntents, "self", rec); ok {
				decls = append(decls, d)
			}
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	recs, err := s.store.ListRecords(ctx, did, aipref.NSIDPreference, "", aiDeclarationsMax, false)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		// An unreadable declaration declares nothing (lexicon validation refuses them on
		// write; an imported repo may still hold one).
		if rec, err := atdata.UnmarshalCBOR(r.Value); err == nil {
			if d, ok := aipref.Parse(aipref.NSIDPreference, r.RKey, rec); ok {
				decls = append(decls, d)
			}
		}
	}
	u := &aiUsage{global: aipref.Effective(decls, "").ContentUsage()}
	for _, coll := range aipref.Overridden(decls) {
		if u.collections == nil {
			u.collections = map[string]string{}
		}
		u.collections[coll] = aipref.Effective(decls, coll).ContentUsage()
	}
	return u, nil
}

// AIPreferences reads the account default declaration (community.lexicon.preference.ai
// self) for the account page.
func (b webBackend) AIPreferences(ctx context.Context, did string) (web.AIPreferences, error) {
	_, val, err := b.s.store.Record(ctx, did, aipref.NSIDPreference, "self")
	if errors.Is(err, store.ErrNotFound) {
		return web.AIPreferences{}, nil
	}
	if err != nil {
		return web.AIPreferences{}, err
	}
	rec, err := atdata.UnmarshalCBOR(val)
	if err != nil {
		return web.AIPreferences{}, nil
	}
	d, _ := aipref.Parse(aipref.NSIDPreference, "self", rec)
	word := func(v *bool) string {
		switch {
		case v == nil:
			return ""
		case *v:
			return "allow"
		}
		return "deny"
	}
	return web.AIPreferences{Training: word(d.Prefs.Training), Inference: word(d.Prefs.Inference),
		SyntheticContent: word(d.Prefs.Synthetic), Embedding: word(d.Prefs.Embedding)}, nil
}

// SetAIPreferences writes the account default declaration through the normal commit
// path (validated against the lexicon, rate-limited and quota-checked like putRecord;
// on the firehose like any record). Nothing stated removes the record.
func (b webBackend) SetAIPreferences(ctx context.Context, did string, p web.AIPreferences) error {
	s := b.s
	coll, rkey := syntax.NSID(aipref.NSIDPreference), syntax.RecordKey("self")
	now := syntax.DatetimeNow().String()
	prefs := map[string]any{}
	for field, v := range map[string]string{"training": p.Training, "inference": p.Inference, "syntheticContent": p.SyntheticContent, "embedding": p.Embedding} {
		switch v {
		case "allow", "deny":
			prefs[field] = map[string]any{"allow": v == "allow", "updatedAt": now}
		case "":
		default:
			return fmt.Errorf("%s: want allow, deny or nothing", field)
		}
	}
	var wr repo.Write
	var rec *preparedRecord
	if len(prefs) == 0 {
		if _, _, err := s.store.Record(ctx, did, coll.String(), rkey.String()); errors.Is(err, store.ErrNotFound) {
			return nil
		}
		wr = repo.Write{Action: repo.ActionDelete, Collection: coll, RKey: rkey}
	} else {
		raw, err := json.Marshal(map[string]any{"$type": coll.String(), "updatedAt": now,
			"scope": map[string]any{"$type": coll.String() + "#globalScope"}, "preferences": prefs})
		if err != nil {
			return err
		}
		if rec, err = s.prepareRecord(coll, rkey, raw, nil); err != nil {
			return err
		}
		wr = repo.Write{Action: repo.ActionPut, Collection: coll, RKey: rkey, Record: rec.CBOR}
	}
	writes := []repo.Write{wr}
	if err := s.chargeWrites(ctx, did, writePoints(writes)); err != nil {
		return err
	}
	if err := s.checkRepoQuota(ctx, did, writes); err != nil {
		return err
	}
	_, err := s.commit(ctx, syntax.DID(did), commitRequest{Writes: writes, Blobs: blobRefs(writes, rec)})
	return err
}

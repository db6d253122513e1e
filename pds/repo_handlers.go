package pds

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/store"
	"github.com/hearth-social/hearth/repo"
	"github.com/ipfs/go-cid"
)

type commitMeta struct {
	CID string `json:"cid"`
	Rev string `json:"rev"`
}

func metaOf(res *commitResult) *commitMeta {
	return &commitMeta{CID: res.Commit.String(), Rev: res.Rev}
}

type createRecordInput struct {
	Repo       string          `json:"repo"`
	Collection string          `json:"collection"`
	RKey       *string         `json:"rkey"`
	Validate   *bool           `json:"validate"`
	Record     json.RawMessage `json:"record"`
	SwapCommit string          `json:"swapCommit"`
}

func (s *Server) handleCreateRecord(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in createRecordInput
	if err := xrpc.DecodeJSON(w, r, s.cfg.MaxBodyBytes, &in); err != nil {
		return err
	}
	did, err := s.writableRepo(ctx, in.Repo)
	if err != nil {
		return err
	}
	coll, err := parseCollection(in.Collection)
	if err != nil {
		return err
	}
	if err := requireRepoScope(ctx, coll, "create"); err != nil {
		return err
	}
	var rkey syntax.RecordKey
	if in.RKey != nil {
		if rkey, err = parseRKey(*in.RKey); err != nil {
			return err
		}
	} else {
		rkey = syntax.RecordKey(s.nextTID().String())
	}
	swap, err := parseCIDParam("swapCommit", in.SwapCommit)
	if err != nil {
		return err
	}
	rec, err := s.prepareRecord(coll, rkey, in.Record, in.Validate)
	if err != nil {
		return err
	}
	return s.commitRecord(w, r, did, repo.Write{Action: repo.ActionCreate, Collection: coll, RKey: rkey, Record: rec.CBOR}, rec, swap)
}

// commitRecord commits one created or put record and answers {uri, cid, commit,
// validationStatus}.
func (s *Server) commitRecord(w http.ResponseWriter, r *http.Request, did syntax.DID, wr repo.Write, rec *preparedRecord, swap *cid.Cid) error {
	writes := []repo.Write{wr}
	if err := s.chargeWrites(r.Context(), did.String(), writePoints(writes)); err != nil {
		return err
	}
	if err := s.checkRepoQuota(r.Context(), did.String(), writes); err != nil {
		return err
	}
	res, err := s.commit(r.Context(), did, commitRequest{Writes: writes, SwapCommit: swap, Blobs: blobRefs(writes, rec)})
	if err != nil {
		return commitError(err)
	}
	s.chargePutCreated(r.Context(), did.String(), wr, res)
	xrpc.WriteJSON(w, http.StatusOK, map[string]any{
		"uri":              atURI(did.String(), wr.Collection.String(), wr.RKey.String()),
		"cid":              res.CIDs[wr.Path()].String(),
		"commit":           metaOf(res),
		"validationStatus": rec.Status,
	})
	return nil
}

type putRecordInput struct {
	Repo       string          `json:"repo"`
	Collection string          `json:"collection"`
	RKey       string          `json:"rkey"`
	Validate   *bool           `json:"validate"`
	Record     json.RawMessage `json:"record"`
	SwapRecord swapRecordField `json:"swapRecord"`
	SwapCommit string          `json:"swapCommit"`
}

func (s *Server) handlePutRecord(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in putRecordInput
	if err := xrpc.DecodeJSON(w, r, s.cfg.MaxBodyBytes, &in); err != nil {
		return err
	}
	did, coll, rkey, swap, err := s.recordTarget(ctx, in.Repo, in.Collection, in.RKey, in.SwapCommit)
	if err != nil {
		return err
	}
	if err := requireRepoScope(ctx, coll, "create"); err != nil {
		return err
	}
	if err := requireRepoScope(ctx, coll, "update"); err != nil {
		return err
	}
	rec, err := s.prepareRecord(coll, rkey, in.Record, in.Validate)
	if err != nil {
		return err
	}
	wr := repo.Write{Action: repo.ActionPut, Collection: coll, RKey: rkey, Record: rec.CBOR}
	in.SwapRecord.apply(&wr)
	return s.commitRecord(w, r, did, wr, rec, swap)
}

// recordTarget parses and checks what putRecord and deleteRecord name: a repo the
// caller may write, the collection, the record key and an optional swapCommit.
func (s *Server) recordTarget(ctx context.Context, repoID, collection, rkey, swapCommit string) (syntax.DID, syntax.NSID, syntax.RecordKey, *cid.Cid, error) {
	did, err := s.writableRepo(ctx, repoID)
	if err != nil {
		return "", "", "", nil, err
	}
	coll, err := parseCollection(collection)
	if err != nil {
		return "", "", "", nil, err
	}
	rk, err := parseRKey(rkey)
	if err != nil {
		return "", "", "", nil, err
	}
	swap, err := parseCIDParam("swapCommit", swapCommit)
	return did, coll, rk, swap, err
}

type deleteRecordInput struct {
	Repo       string `json:"repo"`
	Collection string `json:"collection"`
	RKey       string `json:"rkey"`
	SwapRecord string `json:"swapRecord"`
	SwapCommit string `json:"swapCommit"`
}

func (s *Server) handleDeleteRecord(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in deleteRecordInput
	if err := xrpc.DecodeJSON(w, r, 64<<10, &in); err != nil {
		return err
	}
	did, coll, rkey, swap, err := s.recordTarget(ctx, in.Repo, in.Collection, in.RKey, in.SwapCommit)
	if err != nil {
		return err
	}
	if err := requireRepoScope(ctx, coll, "delete"); err != nil {
		return err
	}
	swapRec, err := parseCIDParam("swapRecord", in.SwapRecord)
	if err != nil {
		return err
	}
	wr := repo.Write{Action: repo.ActionDelete, Collection: coll, RKey: rkey, SwapRecord: swapRec}
	if err := s.chargeWrites(ctx, did.String(), pointsDelete); err != nil {
		return err
	}
	res, err := s.commit(ctx, did, commitRequest{Writes: []repo.Write{wr}, SwapCommit: swap})
	if errors.Is(err, repo.ErrRecordNotFound) && swapRec == nil {
		// Deleting a record that is not there is a no-op, as in the reference PDS.
		xrpc.WriteJSON(w, http.StatusOK, map[string]any{})
		return nil
	}
	if err != nil {
		return commitError(err)
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]any{"commit": metaOf(res)})
	return nil
}

type applyWritesInput struct {
	Repo       string `json:"repo"`
	Validate   *bool  `json:"validate"`
	SwapCommit string `json:"swapCommit"`
	Writes     []struct {
		Type       string          `json:"$type"`
		Collection string          `json:"collection"`
		RKey       *string         `json:"rkey"`
		Value      json.RawMessage `json:"value"`
	} `json:"writes"`
}

func (s *Server) handleApplyWrites(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in applyWritesInput
	if err := xrpc.DecodeJSON(w, r, 4*s.cfg.MaxBodyBytes, &in); err != nil {
		return err
	}
	did, err := s.writableRepo(ctx, in.Repo)
	if err != nil {
		return err
	}
	if len(in.Writes) > repo.MaxWrites {
		return xrpc.InvalidRequest("too many writes: %d (max %d)", len(in.Writes), repo.MaxWrites)
	}
	swap, err := parseCIDParam("swapCommit", in.SwapCommit)
	if err != nil {
		return err
	}
	writes := make([]repo.Write, len(in.Writes))
	recs := make([]*preparedRecord, len(in.Writes))
	for i, x := range in.Writes {
		coll, err := parseCollection(x.Collection)
		if err != nil {
			return err
		}
		wr := repo.Write{Collection: coll}
		switch x.Type {
		case "com.atproto.repo.applyWrites#create":
			wr.Action = repo.ActionCreate
		case "com.atproto.repo.applyWrites#update":
			wr.Action = repo.ActionUpdate
		case "com.atproto.repo.applyWrites#delete":
			wr.Action = repo.ActionDelete
		default:
			return xrpc.InvalidRequest("writes[%d]: unknown $type %q", i, x.Type)
		}
		if err := requireRepoScope(ctx, coll, string(wr.Action)); err != nil {
			return err
		}
		switch {
		case x.RKey != nil:
			if wr.RKey, err = parseRKey(*x.RKey); err != nil {
				return err
			}
		case wr.Action == repo.ActionCreate:
			wr.RKey = syntax.RecordKey(s.nextTID().String())
		default:
			return xrpc.InvalidRequest("writes[%d]: rkey is required for %s", i, wr.Action)
		}
		if wr.Action != repo.ActionDelete {
			if recs[i], err = s.prepareRecord(coll, wr.RKey, x.Value, in.Validate); err != nil {
				return err
			}
			wr.Record = recs[i].CBOR
		}
		writes[i] = wr
	}
	if err := s.chargeWrites(ctx, did.String(), writePoints(writes)); err != nil {
		return err
	}
	if err := s.checkRepoQuota(ctx, did.String(), writes); err != nil {
		return err
	}
	res, err := s.commit(ctx, did, commitRequest{Writes: writes, SwapCommit: swap, Blobs: blobRefs(writes, recs...)})
	if err != nil {
		return commitError(err)
	}
	results := make([]map[string]any, len(writes))
	for i, wr := range writes {
		if wr.Action == repo.ActionDelete {
			results[i] = map[string]any{"$type": "com.atproto.repo.applyWrites#deleteResult"}
			continue
		}
		results[i] = map[string]any{
			"$type":            "com.atproto.repo.applyWrites#" + string(wr.Action) + "Result",
			"uri":              atURI(did.String(), wr.Collection.String(), wr.RKey.String()),
			"cid":              res.CIDs[wr.Path()].String(),
			"validationStatus": recs[i].Status,
		}
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]any{"commit": metaOf(res), "results": results})
	return nil
}

func (s *Server) handleGetRecord(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	acct, err := s.readableRepo(ctx, q.Get("repo"))
	if isRepoNotFound(err) {
		if ok, ferr := s.forwardForeignRepo(w, r, "com.atproto.repo.getRecord"); ok {
			return ferr
		}
	}
	if err != nil {
		return err
	}
	coll, err := parseCollection(q.Get("collection"))
	if err != nil {
		return err
	}
	rkey, err := parseRKey(q.Get("rkey"))
	if err != nil {
		return err
	}
	want, err := parseCIDParam("cid", q.Get("cid"))
	if err != nil {
		return err
	}
	uri := atURI(acct.DID, coll.String(), rkey.String())
	c, val, err := s.store.Record(ctx, acct.DID, coll.String(), rkey.String())
	if errors.Is(err, store.ErrNotFound) || (err == nil && want != nil && !want.Equals(c)) || s.takedowns.record(acct.DID, coll.String(), rkey.String()) {
		return xrpc.Errorf(http.StatusBadRequest, "RecordNotFound", "could not locate record: %s", uri)
	} else if err != nil {
		return err
	}
	js, err := s.recordJSON.get(c, val)
	if err != nil {
		return err
	}
	s.setContentUsage(ctx, w, acct.DID, coll.String())
	xrpc.WriteJSON(w, http.StatusOK, struct {
		URI   string          `json:"uri"`
		CID   string          `json:"cid"`
		Value json.RawMessage `json:"value"`
	}{uri, c.String(), js})
	return nil
}

func parseLimit(raw string, def, max int) (int, error) {
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > max {
		return 0, xrpc.InvalidRequest("limit must be an integer from 1 to %d", max)
	}
	return n, nil
}

func (s *Server) handleListRecords(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	acct, err := s.readableRepo(ctx, q.Get("repo"))
	if isRepoNotFound(err) {
		if ok, ferr := s.forwardForeignRepo(w, r, "com.atproto.repo.listRecords"); ok {
			return ferr
		}
	}
	if err != nil {
		return err
	}
	coll, err := parseCollection(q.Get("collection"))
	if err != nil {
		return err
	}
	limit, err := parseLimit(q.Get("limit"), 50, 100)
	if err != nil {
		return err
	}
	reverse := false
	switch q.Get("reverse") {
	case "", "false":
	case "true":
		reverse = true
	default:
		return xrpc.InvalidRequest("reverse must be true or false")
	}
	cursor := q.Get("cursor")
	if cursor != "" {
		if _, err := syntax.ParseRecordKey(cursor); err != nil {
			return xrpc.InvalidRequest("invalid cursor")
		}
	}
	recs, err := s.store.ListRecords(ctx, acct.DID, coll.String(), cursor, limit, reverse)
	if err != nil {
		return err
	}
	items := make([]listRecordsItem, 0, len(recs))
	for _, rec := range recs {
		if s.takedowns.record(acct.DID, coll.String(), rec.RKey) { // the cursor still moves past it
			continue
		}
		js, err := s.recordJSON.get(rec.CID, rec.Value)
		if err != nil {
			return err
		}
		items = append(items, listRecordsItem{atURI(acct.DID, coll.String(), rec.RKey), rec.CID.String(), js})
	}
	var next string
	if len(recs) == limit {
		next = recs[len(recs)-1].RKey
	}
	s.setContentUsage(ctx, w, acct.DID, coll.String())
	writeListRecords(w, items, next)
	return nil
}

func (s *Server) handleDescribeRepo(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	acct, err := s.readableRepo(ctx, r.URL.Query().Get("repo"))
	if err != nil {
		return err
	}
	colls, err := s.store.Collections(ctx, acct.DID)
	if err != nil {
		return err
	}
	shown := s.shownHandle(ctx, acct.DID, acct.Handle)
	out := map[string]any{"handle": shown, "did": acct.DID, "collections": colls, "handleIsCorrect": false}
	if u, err := s.aiUsageOf(ctx, acct.DID); err != nil {
		s.log.Warn("reading AI usage declarations", "did", acct.DID, "err", err)
	} else if v := u.view(); v != nil {
		out["contentUsage"] = v
		if v.Default != "" {
			w.Header().Set("Content-Usage", v.Default)
		}
	}
	if doc, err := s.plc.Resolve(ctx, syntax.DID(acct.DID)); err == nil {
		out["didDoc"] = doc
		for _, aka := range doc.AlsoKnownAs {
			if aka == "at://"+acct.Handle && shown == acct.Handle {
				out["handleIsCorrect"] = true
			}
		}
	} else {
		s.log.Warn("resolving DID document for describeRepo", "did", acct.DID, "err", err)
	}
	xrpc.WriteJSON(w, http.StatusOK, out)
	return nil
}

// nextTID returns a fresh record key TID, unique within this process.
func (s *Server) nextTID() syntax.TID { return s.tids.Next() }

package pds

import (
	"errors"
	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"net/http"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/store"
	"github.com/hearth-social/hearth/repo"
	"github.com/ipfs/go-cid"
)

// syncRepo resolves the `did` parameter of a sync method to a hosted, readable repo.
func (s *Server) syncRepo(r *http.Request) (*store.Account, error) {
	raw := r.URL.Query().Get("did")
	did, err := syntax.ParseDID(raw)
	if err != nil {
		return nil, xrpc.InvalidRequest("invalid did %q", raw)
	}
	acct, err := s.store.AccountByDID(r.Context(), did.String())
	if errors.Is(err, store.ErrNotFound) || (err == nil && acct.Status == store.StatusDeleted) {
		return nil, xrpc.Errorf(http.StatusBadRequest, "RepoNotFound", "could not find repo for DID: %s", did)
	} else if err != nil {
		return nil, err
	}
	return acct, repoStatusError(acct)
}

const carContentType = "application/vnd.ipld.car"

func (s *Server) handleSyncGetRepo(w http.ResponseWriter, r *http.Request) error {
	acct, err := s.syncRepo(r)
	if err != nil {
		return err
	}
	since := r.URL.Query().Get("since")
	if since != "" {
		if _, err := syntax.ParseTID(since); err != nil {
			return xrpc.InvalidRequest("since must be a TID rev")
		}
	}
	v, _, err := s.repos.view(r.Context(), acct.DID, "")
	if errors.Is(err, store.ErrNotFound) {
		return xrpc.Errorf(http.StatusBadRequest, "RepoNotFound", "could not find repo for DID: %s", acct.DID)
	} else if err != nil {
		return err
	}
	defer v.Close()
	// Taken-down records' blocks are left out; the tree still names their CIDs.
	hidden, err := s.hiddenRecordCIDs(r.Context(), acct.DID, func(coll, rkey string) (cid.Cid, error) {
		c, _, err := v.Record(coll, rkey)
		return c, err
	})
	if err != nil {
		return err
	}
	s.setContentUsage(r.Context(), w, acct.DID, "")
	w.Header().Set("Content-Type", carContentType)
	cw, err := repo.NewCARWriter(w, v.Head.Commit)
	if err == nil {
		err = cw.Write(v.Head.Commit, v.CommitData)
	}
	// With since, the MST nodes are all sent (the store does not date them): a superset
	// of the changed ones, which any consumer merging blocks handles.
	for _, b := range v.Nodes {
		if err != nil {
			break
		}
		err = cw.Write(b.CID, b.Data)
	}
	if err == nil {
		err = v.EachRecord(since, func(c cid.Cid, data []byte) error {
			if hidden[c] {
				return nil
			}
			return cw.Write(c, data)
		})
	}
	if err == nil {
		err = cw.Flush()
	}
	if err != nil {
		// Headers are sent; all that is left is to cut the stream and log.
		s.log.Warn("getRepo stream failed", "did", acct.DID, "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

func (s *Server) handleSyncGetLatestCommit(w http.ResponseWriter, r *http.Request) error {
	acct, err := s.syncRepo(r)
	if err != nil {
		return err
	}
	h, err := s.store.Head(r.Context(), acct.DID)
	if errors.Is(err, store.ErrNotFound) {
		return xrpc.Errorf(http.StatusBadRequest, "RepoNotFound", "could not find repo for DID: %s", acct.DID)
	} else if err != nil {
		return err
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]string{"cid": h.Commit.String(), "rev": h.Rev})
	return nil
}

func (s *Server) handleSyncGetRecord(w http.ResponseWriter, r *http.Request) error {
	acct, err := s.syncRepo(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	coll, err := parseCollection(q.Get("collection"))
	if err != nil {
		return err
	}
	rkey, err := parseRKey(q.Get("rkey"))
	if err != nil {
		return err
	}
	path := coll.String() + "/" + rkey.String()
	if s.takedowns.record(acct.DID, coll.String(), rkey.String()) {
		return xrpc.Errorf(http.StatusBadRequest, "RecordNotFound", "could not locate record: at://%s/%s", acct.DID, path)
	}
	v, found, err := s.repos.view(r.Context(), acct.DID, path)
	if err != nil {
		return err
	}
	defer v.Close()
	if !found {
		return xrpc.Errorf(http.StatusBadRequest, "RecordNotFound", "could not locate record: at://%s/%s", acct.DID, path)
	}
	rc, val, err := v.Record(coll.String(), rkey.String())
	if err != nil {
		return err
	}
	blocks := append([]repo.Block{{CID: v.Head.Commit, Data: v.CommitData}}, v.Nodes...)
	blocks = append(blocks, repo.Block{CID: rc, Data: val})
	car, err := repo.CAR(v.Head.Commit, blocks)
	if err != nil {
		return err
	}
	s.setContentUsage(r.Context(), w, acct.DID, coll.String())
	w.Header().Set("Content-Type", carContentType)
	w.Write(car)
	return nil
}

func (s *Server) handleSyncGetBlocks(w http.ResponseWriter, r *http.Request) error {
	acct, err := s.syncRepo(r)
	if err != nil {
		return err
	}
	raw := r.URL.Query()["cids"]
	if len(raw) == 0 {
		return xrpc.InvalidRequest("cids is required")
	}
	if len(raw) > 1000 {
		return xrpc.InvalidRequest("at most 1000 cids")
	}
	cids := make([]cid.Cid, len(raw))
	for i, x := range raw {
		if cids[i], err = cid.Decode(x); err != nil {
			return xrpc.InvalidRequest("invalid cid %q", x)
		}
	}
	ctx := r.Context()
	hidden, err := s.hiddenRecordCIDs(ctx, acct.DID, func(coll, rkey string) (cid.Cid, error) {
		c, _, err := s.store.Record(ctx, acct.DID, coll, rkey)
		return c, err
	})
	if err != nil {
		return err
	}
	var blocks []repo.Block
	var missing []string
	for i, c := range cids {
		if hidden[c] { // a taken-down record's block
			missing = append(missing, raw[i])
			continue
		}
		data, err := s.store.RecordBlock(ctx, acct.DID, c)
		if errors.Is(err, store.ErrNotFound) {
			// Not a record: the head commit or an MST node of the current tree.
			var ok bool
			if sn, serr := s.store.Snapshot(ctx, acct.DID); serr == nil {
				if sn.Head.Commit.Equals(c) {
					data, ok = sn.CommitData, true
				}
				sn.Close()
			}
			if !ok {
				data, ok, err = s.repos.node(ctx, acct.DID, c)
				if err != nil {
					return err
				}
			}
			if !ok {
				missing = append(missing, raw[i])
				continue
			}
		} else if err != nil {
			return err
		}
		blocks = append(blocks, repo.Block{CID: c, Data: data})
	}
	if len(missing) > 0 {
		return xrpc.Errorf(http.StatusBadRequest, "BlockNotFound", "could not find blocks: %s", strings.Join(missing, ", "))
	}
	car, err := repo.CAR(cid.Undef, blocks)
	if err != nil {
		return err
	}
	s.setContentUsage(ctx, w, acct.DID, "")
	w.Header().Set("Content-Type", carContentType)
	w.Write(car)
	return nil
}

func (s *Server) handleSyncListRepos(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := parseLimit(q.Get("limit"), 500, 1000)
	if err != nil {
		return err
	}
	cursor := q.Get("cursor")
	if cursor != "" {
		if _, err := syntax.ParseDID(cursor); err != nil {
			return xrpc.InvalidRequest("invalid cursor")
		}
	}
	repos, err := s.store.ListRepos(r.Context(), cursor, limit)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(repos))
	for _, x := range repos {
		c, err := cid.Cast(x.Head)
		if err != nil {
			return err
		}
		item := map[string]any{"did": x.DID, "head": c.String(), "rev": x.Rev, "active": x.Status == store.StatusActive}
		if x.Status != store.StatusActive {
			item["status"] = x.Status
		}
		out = append(out, item)
	}
	res := map[string]any{"repos": out}
	if len(repos) == limit {
		res["cursor"] = repos[len(repos)-1].DID
	}
	xrpc.WriteJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) handleSyncGetRepoStatus(w http.ResponseWriter, r *http.Request) error {
	raw := r.URL.Query().Get("did")
	did, err := syntax.ParseDID(raw)
	if err != nil {
		return xrpc.InvalidRequest("invalid did %q", raw)
	}
	acct, err := s.store.AccountByDID(r.Context(), did.String())
	if errors.Is(err, store.ErrNotFound) {
		return xrpc.Errorf(http.StatusBadRequest, "RepoNotFound", "could not find repo for DID: %s", did)
	} else if err != nil {
		return err
	}
	out := comatproto.SyncGetRepoStatus_Output{Did: acct.DID, Active: acct.Active()}
	if !acct.Active() {
		st := acct.Status
		out.Status = &st
	} else if h, err := s.store.Head(r.Context(), acct.DID); err == nil {
		out.Rev = &h.Rev
	}
	xrpc.WriteJSON(w, http.StatusOK, out)
	return nil
}

package pds

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/blobs"
	"github.com/hearth-social/hearth/pds/store"
	"github.com/ipfs/go-cid"
)

func (s *Server) handleUploadBlob(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c := callerFrom(ctx)
	if c.DID == "" {
		return xrpc.InvalidRequest("uploadBlob needs a user session")
	}
	if r.ContentLength > s.cfg.MaxBlobBytes {
		return xrpc.Errorf(http.StatusRequestEntityTooLarge, "BlobTooLarge", "blob is larger than the %d byte limit", s.cfg.MaxBlobBytes)
	}
	if err := s.checkBlobQuota(ctx, c.DID, r.ContentLength); err != nil {
		return err
	}
	// The row is written under the blob's lock (Put's commit), so garbage collection of
	// the same bytes cannot delete the file between its rename and its row.
	var stored store.BlobMeta
	_, err := s.blobs.Put(ctx, c.DID, r.Body, s.cfg.MaxBlobBytes, func(up blobs.Upload) error {
		mime := blobMIME(up.Sniffed, r.Header.Get("Content-Type"))
		if s.takedowns.blob(c.DID, up.CID) {
			return xrpc.InvalidRequest("Blob has been takendown, cannot re-upload")
		}
		return s.store.Write(ctx, func(tx *store.Tx) error {
			meta := store.BlobMeta{CID: up.CID, MIME: mime, Size: up.Size}
			if err := s.checkBlobQuotaTx(tx, c.DID, meta); err != nil {
				return err
			}
			var err error
			stored, err = tx.PutBlob(c.DID, meta)
			return err
		})
	})
	if errors.Is(err, blobs.ErrTooLarge) {
		return xrpc.Errorf(http.StatusRequestEntityTooLarge, "BlobTooLarge", "blob is larger than the %d byte limit", s.cfg.MaxBlobBytes)
	} else if err != nil {
		return err
	}
	// Answer with what is stored: the same bytes uploaded again keep their first MIME
	// type, and records are checked against the stored one.
	xrpc.WriteJSON(w, http.StatusOK, map[string]any{"blob": map[string]any{
		"$type":    "blob",
		"ref":      map[string]string{"$link": stored.CID.String()},
		"mimeType": stored.MIME,
		"size":     stored.Size,
	}})
	return nil
}

// blobMIME prefers the sniffed type; a generic sniff falls back to what the client said.
func blobMIME(sniffed, declared string) string {
	sniffed, _, _ = strings.Cut(sniffed, ";")
	declared, _, _ = strings.Cut(declared, ";")
	declared = strings.TrimSpace(strings.ToLower(declared))
	generic := sniffed == "" || sniffed == "application/octet-stream" || sniffed == "text/plain"
	if generic && declared != "" && declared != "*/*" && strings.Contains(declared, "/") {
		return declared
	}
	if sniffed == "" {
		return "application/octet-stream"
	}
	return sniffed
}

func (s *Server) handleGetBlob(w http.ResponseWriter, r *http.Request) error {
	acct, err := s.syncRepo(r)
	if err != nil {
		return err
	}
	raw := r.URL.Query().Get("cid")
	c, err := cid.Decode(raw)
	if err != nil {
		return xrpc.InvalidRequest("invalid cid %q", raw)
	}
	meta, err := s.store.ReferencedBlob(r.Context(), acct.DID, c)
	if errors.Is(err, store.ErrNotFound) || (err == nil && s.takedowns.blob(acct.DID, c)) {
		return xrpc.Errorf(http.StatusBadRequest, "BlobNotFound", "blob not found: %s", c)
	} else if err != nil {
		return err
	}
	rc, err := s.blobs.Open(r.Context(), acct.DID, c)
	if errors.Is(err, blobs.ErrNotFound) {
		return xrpc.Errorf(http.StatusBadRequest, "BlobNotFound", "blob not found: %s", c)
	} else if err != nil {
		return err
	}
	defer rc.Close()
	s.setContentUsage(r.Context(), w, acct.DID, "")
	h := w.Header()
	h.Set("Content-Type", meta.MIME)
	h.Set("Content-Length", strconv.FormatInt(meta.Size, 10))
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	h.Set("ETag", `"`+c.String()+`"`)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		io.Copy(w, rc)
	}
	return nil
}

func (s *Server) handleListBlobs(w http.ResponseWriter, r *http.Request) error {
	acct, err := s.syncRepo(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit, err := parseLimit(q.Get("limit"), 500, 1000)
	if err != nil {
		return err
	}
	since := q.Get("since")
	if since != "" {
		if _, err := syntax.ParseTID(since); err != nil {
			return xrpc.InvalidRequest("since must be a TID rev")
		}
	}
	var after []byte
	if cur := q.Get("cursor"); cur != "" {
		c, err := cid.Decode(cur)
		if err != nil {
			return xrpc.InvalidRequest("invalid cursor")
		}
		after = c.Bytes()
	}
	cids, err := s.store.ListBlobs(r.Context(), acct.DID, since, after, limit)
	if err != nil {
		return err
	}
	out := map[string]any{"cids": cidStrings(cids)}
	if len(cids) == limit {
		out["cursor"] = cids[len(cids)-1].String()
	}
	xrpc.WriteJSON(w, http.StatusOK, out)
	return nil
}

func cidStrings(cids []cid.Cid) []string {
	out := make([]string, len(cids))
	for i, c := range cids {
		out[i] = c.String()
	}
	return out
}

func (s *Server) handleListMissingBlobs(w http.ResponseWriter, r *http.Request) error {
	c := callerFrom(r.Context())
	if c.DID == "" {
		return xrpc.InvalidRequest("listMissingBlobs needs a user session")
	}
	q := r.URL.Query()
	limit, err := parseLimit(q.Get("limit"), 500, 1000)
	if err != nil {
		return err
	}
	var after []byte
	if cur := q.Get("cursor"); cur != "" {
		cc, err := cid.Decode(cur)
		if err != nil {
			return xrpc.InvalidRequest("invalid cursor")
		}
		after = cc.Bytes()
	}
	missing, err := s.store.MissingBlobs(r.Context(), c.DID, after, limit)
	if err != nil {
		return err
	}
	items := make([]map[string]string, len(missing))
	for i, m := range missing {
		items[i] = map[string]string{"cid": m.CID.String(), "recordUri": "at://" + c.DID + "/" + m.Path}
	}
	out := map[string]any{"blobs": items}
	if len(missing) == limit {
		out["cursor"] = missing[len(missing)-1].CID.String()
	}
	xrpc.WriteJSON(w, http.StatusOK, out)
	return nil
}

// collectBlobGarbage deletes blobs no record references once their grace period is
// over (uploads never used, and blobs whose last record was deleted).
func (s *Server) collectBlobGarbage(ctx context.Context) (int, error) {
	return s.collectBlobGarbageBefore(ctx, time.Now().Add(-s.cfg.BlobGrace), nil)
}

// blobStillStored is the blob store's keep check: bytes whose row exists again (the
// same bytes uploaded after garbage collection took the row) must stay.
func (s *Server) blobStillStored(ctx context.Context, did string, c cid.Cid) (bool, error) {
	return s.store.HasBlob(ctx, did, c)
}

// collectBlobGarbageBefore takes the rows of garbage blobs uploaded before cutoff, then
// removes their bytes unless a re-upload recorded them again meanwhile: the bytes are
// content-addressed, so a re-upload writes the very file being collected. That check
// runs under the blob's lock, which an upload holds from writing the file to writing
// its row. taken, when set, runs after each batch of rows is taken (tests).
func (s *Server) collectBlobGarbageBefore(ctx context.Context, cutoff time.Time, taken func([]store.GarbageBlob)) (int, error) {
	const batch = 500
	total := 0
	for {
		var garbage []store.GarbageBlob
		err := s.store.Write(ctx, func(tx *store.Tx) error {
			var err error
			garbage, err = tx.TakeGarbageBlobs(cutoff, batch)
			return err
		})
		if err != nil {
			return total, err
		}
		if taken != nil {
			taken(garbage)
		}
		for _, g := range garbage {
			removed, err := s.blobs.DeleteUnless(ctx, g.DID, g.CID, func() (bool, error) {
				return s.blobStillStored(ctx, g.DID, g.CID)
			})
			if err != nil {
				// The row is gone; the start-up sweep removes the file later.
				s.log.Warn("deleting blob bytes", "did", g.DID, "cid", g.CID, "err", err)
			} else if removed {
				total++
			}
		}
		if len(garbage) < batch {
			return total, nil
		}
	}
}

// sweepBlobFiles removes blob files that have no row and are older than the grace
// period: the bytes of uploads that a crash (or a failed row write) cut off between
// writing the file and recording it, and of collections whose file removal failed.
func (s *Server) sweepBlobFiles(ctx context.Context) (int, error) {
	return s.blobs.Sweep(ctx, time.Now().Add(-s.cfg.BlobGrace), func(did string, c cid.Cid) (bool, error) {
		return s.blobStillStored(ctx, did, c)
	})
}

// blobSweepInterval is how often blob files are reconciled with their rows after the
// start-up pass. The walk touches every file, so it runs far less often than garbage
// collection, which only ever needs the rows.
const blobSweepInterval = 24 * time.Hour

// runBlobGC reconciles blob files with their rows at start-up and daily, and collects
// blob garbage periodically, until ctx is done.
func (s *Server) runBlobGC(ctx context.Context) {
	sweep := func() {
		if n, err := s.sweepBlobFiles(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("sweeping blob files", "err", err)
		} else if n > 0 {
			s.log.Info("deleted blob files without a record", "count", n)
		}
	}
	sweep()
	every := min(max(s.cfg.BlobGrace/4, time.Second), 10*time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	daily := time.NewTicker(blobSweepInterval)
	defer daily.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-daily.C:
			sweep()
		case <-t.C:
			if n, err := s.collectBlobGarbage(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("blob garbage collection", "err", err)
			} else if n > 0 {
				s.log.Info("deleted unreferenced blobs", "count", n)
			}
		}
	}
}

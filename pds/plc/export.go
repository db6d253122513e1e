package plc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Export returns up to count operations accepted after the createdAt time after
// ("" from the start), oldest first, across all DIDs: the directory's /export, which
// mirrors and tools (goat plc dump) page through by the last createdAt they saw.
func (d *Server) Export(ctx context.Context, after string, count int) ([]AuditEntry, error) {
	rows, err := d.db.Read.QueryContext(ctx, `SELECT did, op, cid, nullified, created_at FROM plc_ops WHERE created_at > ? ORDER BY created_at, seq LIMIT ?`, after, count)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var did, opJSON string
		var e AuditEntry
		if err := rows.Scan(&did, &opJSON, &e.CID, &e.Nullified, &e.CreatedAt); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		e.DID = syntax.DID(did)
		e.Operation = new(Op)
		if err := json.Unmarshal([]byte(opJSON), e.Operation); err != nil {
			return nil, fmt.Errorf("export: stored op %s: %w", e.CID, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// handleExport serves GET /export?count=N&after=TIME as JSON lines (count 10 by
// default, at most 1000), like the reference directory.
func (d *Server) handleExport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	count := 10
	if raw := q.Get("count"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			writeMessage(w, http.StatusBadRequest, "count must be a positive integer")
			return
		}
		count = min(n, 1000)
	}
	after := q.Get("after")
	if after != "" {
		t, err := time.Parse(time.RFC3339Nano, after)
		if err != nil {
			writeMessage(w, http.StatusBadRequest, "after must be an RFC 3339 timestamp")
			return
		}
		after = t.UTC().Format(createdAtFormat)
	}
	entries, err := d.Export(r.Context(), after, count)
	if err != nil {
		d.log.Error("export", "err", err)
		writeMessage(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/jsonlines")
	enc := json.NewEncoder(w)
	for _, e := range entries {
		if err := enc.Encode(e); err != nil {
			return
		}
	}
}

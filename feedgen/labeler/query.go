package labeler

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/xrpc"
)

// XRPC paths the Handler serves.
const (
	PathQueryLabels     = "/xrpc/com.atproto.label.queryLabels"
	PathSubscribeLabels = "/xrpc/com.atproto.label.subscribeLabels"
)

// queryLabels limits.
const (
	defaultQueryLimit = 50
	maxQueryLimit     = 250
	maxURIPatterns    = 50
	maxSources        = 20
)

// Handler serves com.atproto.label.queryLabels and com.atproto.label.subscribeLabels
// under their /xrpc/ paths, and answers any other path with MethodNotImplemented.
func (l *Labeler) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(PathQueryLabels, l.handleQueryLabels)
	mux.Handle(PathSubscribeLabels, l.srv)
	mux.HandleFunc("/", xrpc.NotImplemented)
	return mux
}

// prefixEnd is the smallest string greater than every string starting with p, or ""
// when there is none (p is all 0xff bytes).
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

// patternSQL turns uriPatterns into an OR of SQL conditions on uri. A pattern ending in
// '*' matches every URI starting with what precedes the '*'; any other is exact.
func patternSQL(patterns []string) (string, []any, error) {
	var conds []string
	var args []any
	for _, p := range patterns {
		if p == "" {
			return "", nil, xrpc.InvalidRequest("empty uriPatterns entry")
		}
		prefix, wildcard := strings.CutSuffix(p, "*")
		if strings.Contains(prefix, "*") {
			return "", nil, xrpc.InvalidRequest("uriPatterns %q: '*' is only allowed at the end", p)
		}
		switch {
		case !wildcard:
			conds = append(conds, "uri = ?")
			args = append(args, p)
		case prefix == "":
			conds = append(conds, "1")
		default:
			if end := prefixEnd(prefix); end != "" {
				conds = append(conds, "(uri >= ? AND uri < ?)")
				args = append(args, prefix, end)
			} else {
				conds = append(conds, "uri >= ?")
				args = append(args, prefix)
			}
		}
	}
	return "(" + strings.Join(conds, " OR ") + ")", args, nil
}

// handleQueryLabels serves GET /xrpc/com.atproto.label.queryLabels: the labels in force
// (no negations, no expired labels) on subjects matching uriPatterns, in sequence
// order; the cursor is the last returned seq.
func (l *Labeler) handleQueryLabels(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		xrpc.WriteError(w, r, l.log, xrpc.Errorf(http.StatusMethodNotAllowed, "InvalidRequest", "queryLabels is a GET query"))
		return
	}
	q := r.URL.Query()
	patterns := q["uriPatterns"]
	if len(patterns) == 0 {
		xrpc.WriteError(w, r, l.log, xrpc.InvalidRequest("uriPatterns is required"))
		return
	}
	if len(patterns) > maxURIPatterns {
		xrpc.WriteError(w, r, l.log, xrpc.InvalidRequest("at most %d uriPatterns", maxURIPatterns))
		return
	}
	limit := defaultQueryLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxQueryLimit {
			xrpc.WriteError(w, r, l.log, xrpc.InvalidRequest("limit must be an integer from 1 to %d", maxQueryLimit))
			return
		}
		limit = n
	}
	var after int64
	if v := q.Get("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			xrpc.WriteError(w, r, l.log, xrpc.InvalidRequest("invalid cursor"))
			return
		}
		after = n
	}
	sources := q["sources"]
	if len(sources) > maxSources {
		xrpc.WriteError(w, r, l.log, xrpc.InvalidRequest("at most %d sources", maxSources))
		return
	}
	for _, s := range sources {
		if _, err := syntax.ParseDID(s); err != nil {
			xrpc.WriteError(w, r, l.log, xrpc.InvalidRequest("sources: %q is not a DID", s))
			return
		}
	}
	cond, args, err := patternSQL(patterns)
	if err != nil {
		xrpc.WriteError(w, r, l.log, err)
		return
	}
	query := `SELECT ` + labelCols + ` FROM current_labels WHERE seq > ? AND ` + cond +
		` AND (exp IS NULL OR exp > ?)`
	args = append([]any{after}, args...)
	args = append(args, time.Now().UTC().Format(ctsFormat))
	if len(sources) > 0 {
		query += ` AND src IN (?` + strings.Repeat(", ?", len(sources)-1) + `)`
		for _, s := range sources {
			args = append(args, s)
		}
	}
	query += ` ORDER BY seq LIMIT ?`
	args = append(args, limit)

	rows, err := l.db.Read.QueryContext(r.Context(), query, args...)
	if err != nil {
		xrpc.WriteError(w, r, l.log, err)
		return
	}
	ls, err := scanLabels(rows)
	if err != nil {
		xrpc.WriteError(w, r, l.log, err)
		return
	}
	out := comatproto.LabelQueryLabels_Output{Labels: make([]*comatproto.LabelDefs_Label, 0, len(ls))}
	for i := range ls {
		lex := ls[i].ToLexicon()
		out.Labels = append(out.Labels, &lex)
	}
	if len(ls) == limit {
		c := strconv.FormatInt(ls[len(ls)-1].Seq, 10)
		out.Cursor = &c
	}
	xrpc.WriteJSON(w, http.StatusOK, out)
}

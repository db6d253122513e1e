package plc

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Handler serves the directory's HTTP API, a subset of plc.directory's:
//
//	POST /{did}           submit an operation (400 {"message"} when rejected)
//	GET  /{did}           DID document (404 unknown, 410 tombstoned)
//	GET  /{did}/data      current state
//	GET  /{did}/log       operations, oldest first
//	GET  /{did}/log/audit audit log entries
//	GET  /{did}/log/last  latest operation
//	GET  /_health         {"version": ...}
func (d *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"version": "hearth"})
	})
	mux.HandleFunc("POST /{did}", d.handleSubmit)
	mux.HandleFunc("GET /export", d.handleExport)
	mux.HandleFunc("GET /{did}", d.withDID(func(w http.ResponseWriter, r *http.Request, did syntax.DID) {
		doc, err := d.Document(r.Context(), did)
		if err != nil {
			d.writeLookupError(w, r, did, err)
			return
		}
		w.Header().Set("Content-Type", "application/did+ld+json")
		writeJSONBody(w, http.StatusOK, doc)
	}))
	mux.HandleFunc("GET /{did}/data", d.lookup(func(ctx context.Context, did syntax.DID) (any, error) { return d.Data(ctx, did) }))
	mux.HandleFunc("GET /{did}/log", d.lookup(func(ctx context.Context, did syntax.DID) (any, error) { return d.Ops(ctx, did) }))
	mux.HandleFunc("GET /{did}/log/audit", d.lookup(func(ctx context.Context, did syntax.DID) (any, error) { return d.AuditLog(ctx, did) }))
	mux.HandleFunc("GET /{did}/log/last", d.lookup(func(ctx context.Context, did syntax.DID) (any, error) {
		op, _, err := d.LastOp(ctx, did)
		return op, err
	}))
	return mux
}

// lookup serves a read of one DID's state as JSON, with the directory's error answers.
func (d *Server) lookup(read func(context.Context, syntax.DID) (any, error)) http.HandlerFunc {
	return d.withDID(func(w http.ResponseWriter, r *http.Request, did syntax.DID) {
		v, err := read(r.Context(), did)
		if err != nil {
			d.writeLookupError(w, r, did, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

func (d *Server) withDID(h func(http.ResponseWriter, *http.Request, syntax.DID)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		did, err := ParsePLCDID(r.PathValue("did"))
		if err != nil {
			writeMessage(w, http.StatusBadRequest, err.Error())
			return
		}
		h(w, r, did)
	}
}

func (d *Server) handleSubmit(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeMessage(w, http.StatusBadRequest, "operation too large")
			return
		}
		writeMessage(w, http.StatusBadRequest, "could not read request body")
		return
	}
	if _, err := d.SubmitJSON(r.Context(), r.PathValue("did"), body); err != nil {
		var rej *RejectedError
		if errors.As(err, &rej) {
			writeMessage(w, http.StatusBadRequest, rej.Reason)
			return
		}
		d.log.ErrorContext(r.Context(), "plc submit failed", "did", r.PathValue("did"), "err", err)
		writeMessage(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (d *Server) writeLookupError(w http.ResponseWriter, r *http.Request, did syntax.DID, err error) {
	switch {
	case errors.Is(err, ErrDIDNotRegistered):
		writeMessage(w, http.StatusNotFound, "DID not registered: "+did.String())
	case errors.Is(err, ErrDIDTombstoned):
		writeMessage(w, http.StatusGone, "DID not available: "+did.String())
	default:
		d.log.ErrorContext(r.Context(), "plc lookup failed", "did", did, "err", err)
		writeMessage(w, http.StatusInternalServerError, "internal error")
	}
}

func writeMessage(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	writeJSONBody(w, status, v)
}

func writeJSONBody(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"message":"internal error"}`, http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

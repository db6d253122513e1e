// Package xrpc holds the HTTP plumbing shared by the PDS and the feed generator:
// the XRPC error type, the one function that turns errors into responses, and JSON helpers.
package xrpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
)

// Error is an XRPC error: an HTTP status plus the atproto error body {"error", "message"}.
type Error struct {
	Status  int
	Name    string
	Message string
	// Err is an optional cause, logged for 5xx errors but never shown to the client.
	Err error
	// RetryAfter is the Retry-After value (seconds) of a 429; "1" when empty.
	RetryAfter string
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Name, e.Message, e.Err)
	}
	return e.Name + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an Error with a formatted message.
func Errorf(status int, name, format string, args ...any) *Error {
	return &Error{Status: status, Name: name, Message: fmt.Sprintf(format, args...)}
}

// InvalidRequest is the common 400 error.
func InvalidRequest(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, "InvalidRequest", format, args...)
}

// Internal wraps an unexpected error as a 500; the cause is logged, not sent.
func Internal(err error) *Error {
	return &Error{Status: http.StatusInternalServerError, Name: "InternalServerError", Message: "internal server error", Err: err}
}

// Body is the JSON body of an XRPC error.
type Body struct {
	Error   string `json:"error"`
	Message string `json:"message,omitempty"`
}

// WriteError is the one place an error becomes an HTTP response. Errors that are not
// *Error are internal: logged with their cause and answered with a generic 500.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var xe *Error
	if !errors.As(err, &xe) {
		xe = Internal(err)
	}
	if xe.Status >= 500 && log != nil {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if xe.Status == http.StatusTooManyRequests {
		ra := xe.RetryAfter
		if ra == "" {
			ra = "1"
		}
		w.Header().Set("Retry-After", ra)
	}
	WriteJSON(w, xe.Status, Body{Error: xe.Name, Message: xe.Message})
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(Body{Error: "InternalServerError", Message: "encoding response"})
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// DecodeJSON reads a JSON request body of at most limit bytes into v.
func DecodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return Errorf(http.StatusRequestEntityTooLarge, "PayloadTooLarge", "request body is larger than %d bytes", limit)
		}
		return InvalidRequest("invalid JSON body: %v", err)
	}
	return nil
}

// NotImplemented answers a method this service does not serve (MethodNotImplemented).
func NotImplemented(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusNotImplemented, Body{Error: "MethodNotImplemented", Message: "this service does not serve " + r.URL.Path})
}

package plc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// DefaultTimeout bounds every Client call when the caller's context has no
// earlier deadline, and is the timeout of the default HTTP client.
const DefaultTimeout = 10 * time.Second

// maxResponseBytes bounds a directory response body.
const maxResponseBytes = 4 << 20

// Client talks to a PLC directory (plc.directory or an embedded Server).
type Client struct {
	// BaseURL is the directory's URL, e.g. "https://plc.directory" (no trailing slash needed).
	BaseURL string
	// HTTP is the client to use; nil means one with a DefaultTimeout timeout.
	HTTP *http.Client
}

// StatusError is a non-2xx directory response.
type StatusError struct {
	StatusCode int
	// Message is the directory's {"message"} (or the raw body when there is none).
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("plc directory: HTTP %d: %s", e.StatusCode, e.Message)
}

// Is makes 404 match identity.ErrDIDNotFound and ErrDIDNotRegistered, and 410 ErrDIDTombstoned.
func (e *StatusError) Is(target error) bool {
	switch e.StatusCode {
	case http.StatusNotFound:
		return target == identity.ErrDIDNotFound || target == ErrDIDNotRegistered
	case http.StatusGone:
		return target == ErrDIDTombstoned
	}
	return false
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: DefaultTimeout}
}

// do sends a request to {BaseURL}/{path} and decodes a 2xx JSON response into out (when non-nil).
func (c *Client) do(ctx context.Context, method, path string, body any, out any) error {
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	u := strings.TrimRight(c.BaseURL, "/") + "/" + path
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, u, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		se := &StatusError{StatusCode: resp.StatusCode, Message: strings.TrimSpace(string(data))}
		var m struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &m) == nil && m.Message != "" {
			se.Message = m.Message
		}
		return fmt.Errorf("%s %s: %w", method, u, se)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, u, err)
	}
	return nil
}

// Submit posts a signed operation for did.
func (c *Client) Submit(ctx context.Context, did syntax.DID, op *Op) error {
	if op == nil {
		return errors.New("submit: nil op")
	}
	return c.do(ctx, http.MethodPost, did.String(), op, nil)
}

// Resolve fetches the DID document.
func (c *Client) Resolve(ctx context.Context, did syntax.DID) (*identity.DIDDocument, error) {
	var doc identity.DIDDocument
	if err := c.do(ctx, http.MethodGet, did.String(), nil, &doc); err != nil {
		return nil, fmt.Errorf("resolve %s: %w", did, err)
	}
	if doc.DID != did {
		return nil, fmt.Errorf("resolve %s: directory returned document for %q", did, doc.DID)
	}
	return &doc, nil
}

// Data fetches the DID's current state as an (unsigned, prev-less) plc_operation.
func (c *Client) Data(ctx context.Context, did syntax.DID) (*Op, error) {
	var d Data
	if err := c.do(ctx, http.MethodGet, did.String()+"/data", nil, &d); err != nil {
		return nil, fmt.Errorf("data %s: %w", did, err)
	}
	op := cloneOp(&Op{
		Type:                OpTypeOperation,
		RotationKeys:        d.RotationKeys,
		VerificationMethods: d.VerificationMethods,
		AlsoKnownAs:         d.AlsoKnownAs,
		Services:            d.Services,
	})
	return op, nil
}

// Log fetches the DID's operations, oldest first.
func (c *Client) Log(ctx context.Context, did syntax.DID) ([]*Op, error) {
	var ops []*Op
	if err := c.do(ctx, http.MethodGet, did.String()+"/log", nil, &ops); err != nil {
		return nil, fmt.Errorf("log %s: %w", did, err)
	}
	return ops, nil
}

// AuditLog fetches the DID's audit log, oldest first.
func (c *Client) AuditLog(ctx context.Context, did syntax.DID) ([]AuditEntry, error) {
	var entries []AuditEntry
	if err := c.do(ctx, http.MethodGet, did.String()+"/log/audit", nil, &entries); err != nil {
		return nil, fmt.Errorf("audit log %s: %w", did, err)
	}
	return entries, nil
}

// LastOp fetches the DID's latest operation (possibly a tombstone).
func (c *Client) LastOp(ctx context.Context, did syntax.DID) (*Op, error) {
	var op Op
	if err := c.do(ctx, http.MethodGet, did.String()+"/log/last", nil, &op); err != nil {
		return nil, fmt.Errorf("last op %s: %w", did, err)
	}
	return &op, nil
}

// Health checks GET /_health.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "_health", nil, nil)
}

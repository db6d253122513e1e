package xrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
)

// Client is Hearth's one outbound XRPC client: the commands talking to a PDS or a
// feed generator, the feed generator's backfill and blob fetches, the crawler
// announcements. Every answer body is read through a cap, and every error answer
// becomes a *ResponseError carrying the server's {error, message}.
type Client struct {
	// Base is the service URL, e.g. https://pds.example.com.
	Base string
	// HTTP is the client used (default: 30 s timeout).
	HTTP *http.Client
	// AdminPassword, when set, authenticates calls with HTTP Basic admin:PASSWORD
	// (used when no bearer token is given).
	AdminPassword string
	// MaxBodyBytes caps an answer body (default DefaultMaxBodyBytes); QueryBytes takes
	// its own cap.
	MaxBodyBytes int64
	// UserAgent is sent when set.
	UserAgent string
}

const (
	// DefaultMaxBodyBytes is Client.MaxBodyBytes when unset.
	DefaultMaxBodyBytes = 4 << 20
	// DefaultClientTimeout is the timeout of the default HTTP client.
	DefaultClientTimeout = 30 * time.Second
	// maxErrorBodyBytes bounds the body read from an error answer.
	maxErrorBodyBytes = 8 << 10
)

// ErrResponseTooLarge is returned when an answer is over the cap.
var ErrResponseTooLarge = errors.New("xrpc: response over the size cap")

// ResponseError is an XRPC error answer from another service: its HTTP status and
// the {error, message} body (indigo's atclient.APIError is the model). When the body
// is not an XRPC error, Message holds its start.
type ResponseError struct {
	Status  int
	Name    string
	Message string
	// RetryAfter is the answer's Retry-After header (a 429's or 503's), if any.
	RetryAfter string
}

func (e *ResponseError) Error() string {
	switch {
	case e.Name != "" && e.Message != "":
		return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Name, e.Message)
	case e.Name != "":
		return fmt.Sprintf("HTTP %d %s", e.Status, e.Name)
	case e.Message != "":
		return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("HTTP %d", e.Status)
}

// Option configures NewClient.
type Option func(*Client)

// WithHTTPClient makes the client use hc. For a service named by an untrusted document
// (a PDS endpoint from a DID document), hc is a netguard client, so the call cannot be
// pointed at loopback or private addresses.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.HTTP = hc } }

// WithMaxBodyBytes sets Client.MaxBodyBytes.
func WithMaxBodyBytes(n int64) Option { return func(c *Client) { c.MaxBodyBytes = n } }

// NewClient returns a client for base, checking it is an http(s) URL.
func NewClient(base string, opts ...Option) (*Client, error) {
	base = strings.TrimRight(base, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL", base)
	}
	c := &Client{Base: base}
	for _, o := range opts {
		o(c)
	}
	if c.HTTP == nil {
		c.HTTP = &http.Client{Timeout: DefaultClientTimeout}
	}
	return c, nil
}

// Procedure POSTs in as JSON to nsid and decodes the JSON answer into out (if non-nil).
// A nil in sends no body: procedures without input (activateAccount,
// requestPlcOperationSignature) refuse one on the reference PDS.
func (c *Client) Procedure(ctx context.Context, nsid, token string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url(nsid, nil), body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	raw, err := c.do(req, token, c.maxBody())
	if err != nil {
		return err
	}
	return decode(req, raw, out)
}

// ProcedureBytes POSTs a raw body (a CAR for importRepo, a blob for uploadBlob) with
// its content type and decodes the JSON answer into out (if non-nil).
func (c *Client) ProcedureBytes(ctx context.Context, nsid, token, contentType string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url(nsid, nil), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	raw, err := c.do(req, token, c.maxBody())
	if err != nil {
		return err
	}
	return decode(req, raw, out)
}

// Query GETs nsid with params and decodes the JSON answer into out; with out a
// *json.RawMessage the body is kept as is.
func (c *Client) Query(ctx context.Context, nsid, token string, params url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(nsid, params), nil)
	if err != nil {
		return err
	}
	raw, err := c.do(req, token, c.maxBody())
	if err != nil {
		return err
	}
	return decode(req, raw, out)
}

// QueryBytes GETs nsid with params and returns the answer body, of at most max bytes
// (ErrResponseTooLarge beyond): for binary answers such as getRepo or getBlob.
func (c *Client) QueryBytes(ctx context.Context, nsid, token string, params url.Values, max int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(nsid, params), nil)
	if err != nil {
		return nil, err
	}
	return c.do(req, token, max)
}

func (c *Client) url(nsid string, params url.Values) string {
	u := strings.TrimRight(c.Base, "/") + "/xrpc/" + nsid
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	return u
}

func (c *Client) maxBody() int64 {
	if c.MaxBodyBytes > 0 {
		return c.MaxBodyBytes
	}
	return DefaultMaxBodyBytes
}

func decode(req *http.Request, raw []byte, out any) error {
	if out == nil {
		return nil
	}
	if rm, ok := out.(*json.RawMessage); ok {
		*rm = append((*rm)[:0], raw...)
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decoding %s answer: %w", req.URL.Path, err)
	}
	return nil
}

func (c *Client) do(req *http.Request, token string, max int64) ([]byte, error) {
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	} else if c.AdminPassword != "" {
		req.SetBasicAuth("admin", c.AdminPassword)
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: DefaultClientTimeout}
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		raw, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBodyBytes))
		return nil, ErrorFromResponse(res, raw)
	}
	return readBody(res, max)
}

// readBody reads a response body of at most max bytes, failing with
// ErrResponseTooLarge (before reading, when Content-Length already says so).
func readBody(res *http.Response, max int64) ([]byte, error) {
	if res.ContentLength > max {
		return nil, fmt.Errorf("%w: %d bytes (cap %d)", ErrResponseTooLarge, res.ContentLength, max)
	}
	raw, err := io.ReadAll(io.LimitReader(res.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading answer: %w", err)
	}
	if int64(len(raw)) > max {
		return nil, fmt.Errorf("%w: over %d bytes", ErrResponseTooLarge, max)
	}
	return raw, nil
}

// ErrorFromResponse turns a non-2xx answer and its (already capped) body into a
// *ResponseError: the server's {error, message} when it sent one, else the start of
// the body.
func ErrorFromResponse(res *http.Response, body []byte) *ResponseError {
	e := &ResponseError{Status: res.StatusCode, RetryAfter: res.Header.Get("Retry-After")}
	var b Body
	if json.Unmarshal(body, &b) == nil && b.Error != "" {
		e.Name, e.Message = b.Error, b.Message
		return e
	}
	e.Message = strings.TrimSpace(string(body))
	if len(e.Message) > 200 {
		e.Message = e.Message[:200]
	}
	return e
}

// Session is a logged-in account.
type Session struct {
	DID       string `json:"did"`
	Handle    string `json:"handle"`
	AccessJwt string `json:"accessJwt"`
}

// Login creates a session with com.atproto.server.createSession.
func (c *Client) Login(ctx context.Context, identifier, password string) (*Session, error) {
	var s Session
	if err := c.Procedure(ctx, "com.atproto.server.createSession", "", comatproto.ServerCreateSession_Input{Identifier: identifier, Password: password}, &s); err != nil {
		return nil, fmt.Errorf("logging in to %s: %w", c.Base, err)
	}
	if !strings.HasPrefix(s.DID, "did:") || s.AccessJwt == "" {
		return nil, errors.New("logging in: the PDS returned no DID or access token")
	}
	return &s, nil
}

// PutRecord creates or replaces a record in the session's repository and returns its
// URI and CID.
func (c *Client) PutRecord(ctx context.Context, s *Session, collection, rkey string, record any) (string, string, error) {
	var out struct {
		URI string `json:"uri"`
		CID string `json:"cid"`
	}
	err := c.Procedure(ctx, "com.atproto.repo.putRecord", s.AccessJwt, map[string]any{
		"repo": s.DID, "collection": collection, "rkey": rkey, "record": record,
	}, &out)
	if err != nil {
		return "", "", fmt.Errorf("writing %s/%s: %w", collection, rkey, err)
	}
	return out.URI, out.CID, nil
}

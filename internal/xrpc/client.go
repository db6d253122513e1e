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
)

// Client is the small XRPC client Hearth's commands use to talk to a PDS or a feed
// generator (log in, write a record, call a query).
type Client struct {
	// Base is the service URL, e.g. https://pds.example.com.
	Base string
	// HTTP is the client used (default: 30 s timeout).
	HTTP *http.Client
	// AdminPassword, when set, authenticates calls with HTTP Basic admin:PASSWORD
	// (used when no bearer token is given).
	AdminPassword string
}

// ResponseError is an XRPC error answer.
type ResponseError struct {
	Status  int
	Name    string
	Message string
}

func (e *ResponseError) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("%s: %s (HTTP %d)", e.Name, e.Message, e.Status)
}

// NewClient returns a client for base, checking it is an http(s) URL.
func NewClient(base string) (*Client, error) {
	base = strings.TrimRight(base, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL", base)
	}
	return &Client{Base: base, HTTP: &http.Client{Timeout: 30 * time.Second}}, nil
}

// Procedure POSTs in as JSON to nsid and decodes the JSON answer into out (if non-nil).
func (c *Client) Procedure(ctx context.Context, nsid, token string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+"/xrpc/"+nsid, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return c.do(req, token, out)
}

// Query GETs nsid with params and decodes the JSON answer into out; with out a
// *json.RawMessage the body is kept as is.
func (c *Client) Query(ctx context.Context, nsid, token string, params url.Values, out any) error {
	u := c.Base + "/xrpc/" + nsid
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	return c.do(req, token, out)
}

func (c *Client) do(req *http.Request, token string, out any) error {
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	} else if c.AdminPassword != "" {
		req.SetBasicAuth("admin", c.AdminPassword)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		var b Body
		json.Unmarshal(raw, &b)
		return &ResponseError{Status: res.StatusCode, Name: b.Error, Message: b.Message}
	}
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

// Session is a logged-in account.
type Session struct {
	DID       string `json:"did"`
	Handle    string `json:"handle"`
	AccessJwt string `json:"accessJwt"`
}

// Login creates a session with com.atproto.server.createSession.
func (c *Client) Login(ctx context.Context, identifier, password string) (*Session, error) {
	var s Session
	if err := c.Procedure(ctx, "com.atproto.server.createSession", "", map[string]string{"identifier": identifier, "password": password}, &s); err != nil {
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

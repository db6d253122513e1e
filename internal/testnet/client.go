package testnet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Client makes XRPC calls as an app would. Token "admin" sends HTTP Basic admin auth;
// any other non-empty token is sent as a Bearer token.
type Client struct {
	Base          string
	AdminPassword string
	HTTP          *http.Client
}

// NewClient returns a client for the server at base.
func NewClient(base, adminPassword string) *Client {
	return &Client{Base: strings.TrimRight(base, "/"), AdminPassword: adminPassword, HTTP: &http.Client{Timeout: 20 * time.Second}}
}

// Response is a decoded XRPC response (JSON is nil unless the body is JSON).
type Response struct {
	Status int
	Body   []byte
	JSON   map[string]any
	Header http.Header
}

// Str is a string field of the JSON body ("" if absent).
func (r *Response) Str(key string) string {
	v, _ := r.JSON[key].(string)
	return v
}

// Call makes one request; body is JSON-encoded unless it is []byte. Transport and
// decoding failures are returned, not reported.
func (c *Client) Call(method, nsid string, params url.Values, body any, token string) (*Response, error) {
	u := c.Base + "/xrpc/" + nsid
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	var rd io.Reader
	if body != nil {
		if b, ok := body.([]byte); ok {
			rd = bytes.NewReader(b)
		} else {
			js, err := json.Marshal(body)
			if err != nil {
				return nil, err
			}
			rd = bytes.NewReader(js)
		}
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case token == "admin":
		req.SetBasicAuth("admin", c.AdminPassword)
	case token != "":
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	out := &Response{Status: res.StatusCode, Body: b, Header: res.Header}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &out.JSON); err != nil {
			return nil, fmt.Errorf("%s: JSON body does not decode: %w (%s)", nsid, err, b)
		}
	}
	return out, nil
}

// Do is Call that fails the test on a transport error.
func (c *Client) Do(t testing.TB, method, nsid string, params url.Values, body any, token string) *Response {
	t.Helper()
	r, err := c.Call(method, nsid, params, body, token)
	if err != nil {
		t.Fatalf("%s %s: %v", method, nsid, err)
	}
	return r
}

// Get and Post are Do for the two XRPC methods.
func (c *Client) Get(t testing.TB, nsid string, params url.Values, token string) *Response {
	t.Helper()
	return c.Do(t, http.MethodGet, nsid, params, nil, token)
}

func (c *Client) Post(t testing.TB, nsid string, body any, token string) *Response {
	t.Helper()
	return c.Do(t, http.MethodPost, nsid, nil, body, token)
}

// RequireOK fails unless r is a 200.
func RequireOK(t testing.TB, r *Response) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("status %d, want 200; body: %s", r.Status, r.Body)
	}
}

// RequireXRPCError checks the status and the {"error", "message"} body.
func RequireXRPCError(t testing.TB, r *Response, status int, name string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body: %s", r.Status, status, r.Body)
	}
	if r.JSON == nil {
		t.Fatalf("error body must be JSON: %s", r.Body)
	}
	if r.JSON["error"] != name {
		t.Fatalf("error %v, want %s; body: %s", r.JSON["error"], name, r.Body)
	}
	if _, ok := r.JSON["message"].(string); !ok {
		t.Fatalf("error body needs a message: %s", r.Body)
	}
}

// Account is a created account with its session.
type Account struct {
	DID, Handle, Password, Access, Refresh string
}

// CreateAccount signs up NAME.test (password pw-NAME, email NAME@example.com).
func (c *Client) CreateAccount(t testing.TB, name string) *Account {
	t.Helper()
	a := &Account{Handle: name + ".test", Password: "pw-" + name}
	r := c.Post(t, "com.atproto.server.createAccount", map[string]any{"handle": a.Handle, "password": a.Password, "email": name + "@example.com"}, "")
	RequireOK(t, r)
	a.DID, a.Access, a.Refresh = r.Str("did"), r.Str("accessJwt"), r.Str("refreshJwt")
	return a
}

// Post is an app.bsky.feed.post record with text, created now.
func Post(text string) map[string]any {
	return map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": time.Now().UTC().Format(time.RFC3339Nano)}
}

// CreateRecord writes record to a's repo and returns its URI and CID.
func (c *Client) CreateRecord(t testing.TB, a *Account, collection string, record map[string]any) (uri, cid string) {
	t.Helper()
	r := c.Post(t, "com.atproto.repo.createRecord", map[string]any{"repo": a.DID, "collection": collection, "record": record}, a.Access)
	RequireOK(t, r)
	return r.Str("uri"), r.Str("cid")
}

package pds_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	indigoid "github.com/bluesky-social/indigo/atproto/identity"
	"github.com/hearth-social/hearth/pds"
	"github.com/hearth-social/hearth/pds/identity"
	"github.com/stretchr/testify/require"
)

const adminPassword = "test-admin-password"

// env is a running PDS with its own embedded PLC directory, both on 127.0.0.1.
type env struct {
	t      *testing.T
	srv    *pds.Server
	http   *httptest.Server
	plc    *httptest.Server
	dir    *identity.Directory
	cfg    pds.Config
	client *http.Client
}

func newEnv(t *testing.T, mutate ...func(*pds.Config)) *env {
	t.Helper()
	ctx := context.Background()
	tmp := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir, err := identity.OpenDirectory(ctx, filepath.Join(tmp, "plc.sqlite"), log)
	require.NoError(t, err)
	plc := httptest.NewServer(dir.Handler())

	ts := httptest.NewUnstartedServer(nil)
	cfg := pds.DefaultConfig()
	cfg.DataDir = filepath.Join(tmp, "data")
	cfg.PLCURL = plc.URL
	cfg.PublicURL = "http://" + ts.Listener.Addr().String()
	cfg.AdminPassword = adminPassword
	cfg.PasswordCost = 1 << 10
	// Tests make many requests from loopback; the rate-limit tests clear this.
	cfg.RateLimits.Bypass = []string{"127.0.0.1", "::1"}
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := pds.New(ctx, cfg, log)
	require.NoError(t, err)
	ts.Config.Handler = srv.Handler()
	ts.Start()
	e := &env{t: t, srv: srv, http: ts, plc: plc, dir: dir, cfg: cfg, client: &http.Client{Timeout: 20 * time.Second}}
	t.Cleanup(e.close)
	return e
}

func (e *env) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.srv.Shutdown(ctx)
	e.http.Close()
	e.srv.Close()
	e.plc.Close()
	e.dir.Close()
}

// resp is a decoded XRPC response.
type resp struct {
	Status int
	Body   []byte
	JSON   map[string]any
	Header http.Header
}

func (r *resp) str(key string) string {
	v, _ := r.JSON[key].(string)
	return v
}

func (e *env) do(method, nsid string, params url.Values, body any, token string) *resp {
	e.t.Helper()
	u := e.http.URL + "/xrpc/" + nsid
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case []byte:
			rd = bytes.NewReader(b)
		default:
			js, err := json.Marshal(body)
			require.NoError(e.t, err)
			rd = bytes.NewReader(js)
		}
	}
	req, err := http.NewRequest(method, u, rd)
	require.NoError(e.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case token == "admin":
		req.SetBasicAuth("admin", adminPassword)
	case token != "":
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := e.client.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	out := &resp{Status: res.StatusCode, Body: b, Header: res.Header}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		require.NoError(e.t, json.Unmarshal(b, &out.JSON), "body %s", b)
	}
	return out
}

func (e *env) get(nsid string, params url.Values, token string) *resp {
	return e.do(http.MethodGet, nsid, params, nil, token)
}

func (e *env) post(nsid string, body any, token string) *resp {
	return e.do(http.MethodPost, nsid, nil, body, token)
}

// requireOK fails unless the response is 200.
func requireOK(t *testing.T, r *resp) {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, "body: %s", r.Body)
}

// requireXRPCError checks status and the XRPC error body shape.
func requireXRPCError(t *testing.T, r *resp, status int, name string) {
	t.Helper()
	require.Equal(t, status, r.Status, "body: %s", r.Body)
	require.NotNil(t, r.JSON, "error body must be JSON: %s", r.Body)
	require.Equal(t, name, r.JSON["error"], "body: %s", r.Body)
	_, hasMsg := r.JSON["message"].(string)
	require.True(t, hasMsg, "error body needs a message: %s", r.Body)
}

// account is a created account with its session.
type account struct {
	DID, Handle, Password, Access, Refresh string
}

func (e *env) createAccount(name string) *account {
	e.t.Helper()
	a := &account{Handle: name + ".test", Password: "pw-" + name}
	r := e.post("com.atproto.server.createAccount", map[string]any{"handle": a.Handle, "password": a.Password, "email": name + "@example.com"}, "")
	requireOK(e.t, r)
	a.DID, a.Access, a.Refresh = r.str("did"), r.str("accessJwt"), r.str("refreshJwt")
	return a
}

func post(text string) map[string]any {
	return map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": time.Now().UTC().Format(time.RFC3339Nano)}
}

func identityOf(doc *indigoid.DIDDocument) *indigoid.Identity {
	ident := indigoid.ParseIdentity(doc)
	return &ident
}

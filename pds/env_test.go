package pds_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	indigoid "github.com/bluesky-social/indigo/atproto/identity"
	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/hearth-social/hearth/pds"
	"github.com/hearth-social/hearth/pds/plc"
)

// env is a running PDS with its own embedded PLC directory, both on 127.0.0.1
// (testnet's network, with the short names these tests use).
type env struct {
	t      *testing.T
	net    *testnet.Net
	srv    *pds.Server
	http   *httptest.Server
	plc    *httptest.Server
	dir    *plc.Server
	cfg    pds.Config
	client *http.Client
}

func newEnv(t *testing.T, mutate ...func(*pds.Config)) *env {
	t.Helper()
	n := testnet.Start(t, mutate...)
	return &env{t: t, net: n, srv: n.PDS, http: n.PDSServer, plc: n.PLCServer, dir: n.PLC, cfg: n.Config, client: n.Client.HTTP}
}

// resp is a decoded XRPC response.
type resp = testnet.Response

func (e *env) do(method, nsid string, params url.Values, body any, token string) *resp {
	e.t.Helper()
	return e.net.Client.Do(e.t, method, nsid, params, body, token)
}

func (e *env) get(nsid string, params url.Values, token string) *resp {
	return e.do(http.MethodGet, nsid, params, nil, token)
}

func (e *env) post(nsid string, body any, token string) *resp {
	return e.do(http.MethodPost, nsid, nil, body, token)
}

// requireOK fails unless the response is 200.
func requireOK(t *testing.T, r *resp) { t.Helper(); testnet.RequireOK(t, r) }

// requireXRPCError checks status and the XRPC error body shape.
func requireXRPCError(t *testing.T, r *resp, status int, name string) {
	t.Helper()
	testnet.RequireXRPCError(t, r, status, name)
}

// account is a created account with its session.
type account = testnet.Account

func (e *env) createAccount(name string) *account {
	e.t.Helper()
	return e.net.Client.CreateAccount(e.t, name)
}

func post(text string) map[string]any { return testnet.Post(text) }

func identityOf(doc *indigoid.DIDDocument) *indigoid.Identity {
	ident := indigoid.ParseIdentity(doc)
	return &ident
}

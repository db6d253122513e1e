package pds_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/hearth-social/hearth/pds"
)

// oauthToken signs acct in to a loopback client asking for scope and returns the
// client and its access token.
func oauthToken(t *testing.T, n *testnet.Net, acct *testnet.Account, scope string) (*oauthClient, string) {
	t.Helper()
	c := newOAuthClient(t, n, scope)
	v, ch := pkce()
	tok := c.exchange(c.authorize(acct.Handle, acct.Password, ch), v)
	if tok.status != http.StatusOK || tok.str("scope") != scope {
		t.Fatalf("token for %q: %d %s", scope, tok.status, tok.raw)
	}
	return c, tok.str("access_token")
}

// scopeCall is one XRPC call made with a token and what must come back.
type scopeCall struct {
	name    string
	method  string
	nsid    string // with its query string for GETs
	body    func(acct *testnet.Account) any
	status  int
	errName string
}

// TestOAuthScopeMap: how each method maps to the permission spec's resources, call by
// call. putRecord needs repo create and update (it may create); applyWrites checks each
// write's own action; refreshIdentity is an AppView method in the reference PDS, so it
// needs rpc:...?aud=<the AppView> or transition:generic; the admin's
// updateAccountHandle never takes an OAuth token (401, whatever the scope);
// transition:chat.bsky covers chat.bsky.* and only that, transition:generic everything
// but chat, and a granular rpc:chat.bsky.* permission works without either (it, not an
// app password's privilege, governs an OAuth token's chat calls).
func TestOAuthScopeMap(t *testing.T) {
	const appView = "did:web:appview.test"
	n := testnet.Start(t, func(c *pds.Config) {
		c.AppViewURL, c.AppViewDID = "http://127.0.0.1:9", appView // never reached by these calls
	})
	acct := n.Client.CreateAccount(t, "carol")
	post := func(rkey string) func(*testnet.Account) any {
		return func(a *testnet.Account) any {
			return map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "rkey": rkey, "record": testnet.Post("scope map")}
		}
	}
	create := func(a *testnet.Account) any {
		return map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "record": testnet.Post("scope map")}
	}
	write := func(typ, rkey string) func(*testnet.Account) any {
		return func(a *testnet.Account) any {
			w := map[string]any{"$type": "com.atproto.repo.applyWrites#" + typ, "collection": "app.bsky.feed.post", "rkey": rkey}
			if typ != "delete" {
				w["value"] = testnet.Post("scope map")
			}
			return map[string]any{"repo": a.DID, "writes": []any{w}}
		}
	}
	del := func(rkey string) func(*testnet.Account) any {
		return func(a *testnet.Account) any {
			return map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "rkey": rkey}
		}
	}
	refresh := func(a *testnet.Account) any { return map[string]any{"identifier": a.DID} }
	adminHandle := func(a *testnet.Account) any { return map[string]any{"did": a.DID, "handle": "carol-admin.test"} }
	serviceAuth := func(aud, lxm string) string {
		return "com.atproto.server.getServiceAuth?" + url.Values{"aud": {aud}, "lxm": {lxm}}.Encode()
	}
	const (
		chatAud    = "did:web:api.bsky.chat"
		getConvo   = "chat.bsky.convo.getConvo"
		sendMsg    = "chat.bsky.convo.sendMessage"
		getTL      = "app.bsky.feed.getTimeline"
		missing    = "ScopeMissingError"
		authNeeded = "AuthenticationRequired"
	)
	for _, tc := range []struct {
		scope string
		calls []scopeCall
	}{
		{"atproto repo:app.bsky.feed.post?action=create", []scopeCall{
			{"createRecord", "POST", "com.atproto.repo.createRecord", create, 200, ""},
			{"putRecord without update", "POST", "com.atproto.repo.putRecord", post("3jzfcijpj2z2b"), 403, missing},
			{"applyWrites create", "POST", "com.atproto.repo.applyWrites", write("create", "3jzfcijpj2z2a"), 200, ""},
			{"applyWrites update", "POST", "com.atproto.repo.applyWrites", write("update", "3jzfcijpj2z2a"), 403, missing},
		}},
		{"atproto repo:app.bsky.feed.post?action=update", []scopeCall{
			{"putRecord without create", "POST", "com.atproto.repo.putRecord", post("3jzfcijpj2z2b"), 403, missing},
			{"applyWrites update", "POST", "com.atproto.repo.applyWrites", write("update", "3jzfcijpj2z2a"), 200, ""},
			{"createRecord", "POST", "com.atproto.repo.createRecord", create, 403, missing},
		}},
		{"atproto repo:app.bsky.feed.post?action=create&action=update", []scopeCall{
			{"putRecord creating", "POST", "com.atproto.repo.putRecord", post("3jzfcijpj2z2c"), 200, ""},
			{"putRecord updating", "POST", "com.atproto.repo.putRecord", post("3jzfcijpj2z2c"), 200, ""},
			{"deleteRecord", "POST", "com.atproto.repo.deleteRecord", del("3jzfcijpj2z2c"), 403, missing},
			{"applyWrites delete", "POST", "com.atproto.repo.applyWrites", write("delete", "3jzfcijpj2z2c"), 403, missing},
		}},
		{"atproto", []scopeCall{
			{"refreshIdentity", "POST", "com.atproto.identity.refreshIdentity", refresh, 403, missing},
			{"updateAccountHandle", "POST", "com.atproto.admin.updateAccountHandle", adminHandle, 401, authNeeded},
			{"service auth for chat", "GET", serviceAuth(chatAud, getConvo), nil, 403, missing},
		}},
		{"atproto rpc:com.atproto.identity.refreshIdentity?aud=" + appView + "%23bsky_appview", []scopeCall{
			{"refreshIdentity", "POST", "com.atproto.identity.refreshIdentity", refresh, 200, ""},
		}},
		{"atproto rpc:com.atproto.identity.refreshIdentity?aud=did:web:other.test%23bsky_appview", []scopeCall{
			{"refreshIdentity for another aud", "POST", "com.atproto.identity.refreshIdentity", refresh, 403, missing},
		}},
		{"atproto identity:*", []scopeCall{
			{"updateAccountHandle", "POST", "com.atproto.admin.updateAccountHandle", adminHandle, 401, authNeeded},
		}},
		{"atproto transition:generic", []scopeCall{
			{"refreshIdentity", "POST", "com.atproto.identity.refreshIdentity", refresh, 200, ""},
			{"updateAccountHandle", "POST", "com.atproto.admin.updateAccountHandle", adminHandle, 401, authNeeded},
			{"service auth for chat", "GET", serviceAuth(chatAud, getConvo), nil, 403, missing},
			{"service auth for the AppView", "GET", serviceAuth("did:web:api.bsky.app", getTL), nil, 200, ""},
		}},
		{"atproto transition:chat.bsky", []scopeCall{
			{"service auth for getConvo", "GET", serviceAuth(chatAud, getConvo), nil, 200, ""},
			{"service auth for sendMessage", "GET", serviceAuth(chatAud+"#bsky_chat", sendMsg), nil, 200, ""},
			{"service auth for the AppView", "GET", serviceAuth("did:web:api.bsky.app", getTL), nil, 403, missing},
			{"createRecord", "POST", "com.atproto.repo.createRecord", create, 403, missing},
		}},
		{"atproto rpc:chat.bsky.convo.getConvo?aud=did:web:api.bsky.chat%23bsky_chat", []scopeCall{
			{"service auth for getConvo", "GET", serviceAuth(chatAud, getConvo), nil, 200, ""},
			{"service auth for sendMessage", "GET", serviceAuth(chatAud, sendMsg), nil, 403, missing},
			{"service auth for getConvo elsewhere", "GET", serviceAuth("did:web:chat.other.test", getConvo), nil, 403, missing},
		}},
	} {
		t.Run(tc.scope, func(t *testing.T) {
			c, at := oauthToken(t, n, acct, tc.scope)
			for _, call := range tc.calls {
				var body any
				if call.body != nil {
					body = call.body(acct)
				}
				r := c.xrpc(call.method, call.nsid, body, at, nil)
				if r.status != call.status || (call.errName != "" && r.str("error") != call.errName) {
					t.Errorf("%s: %d %s, want %d %s", call.name, r.status, r.raw, call.status, call.errName)
				}
			}
		})
	}
}

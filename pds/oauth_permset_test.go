package pds_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/hearth-social/hearth/pds"
)

// publishLexicon writes a lexicon schema record into acct's repository (rkey = its id).
func publishLexicon(t *testing.T, n *testnet.Net, acct *testnet.Account, id string, defs map[string]any) {
	t.Helper()
	testnet.RequireOK(t, n.Client.Post(t, "com.atproto.repo.putRecord", map[string]any{
		"repo": acct.DID, "collection": "com.atproto.lexicon.schema", "rkey": id,
		"record": map[string]any{"$type": "com.atproto.lexicon.schema", "lexicon": 1, "id": id, "defs": defs},
	}, acct.Access))
}

// exampleSet is com.example.authBasic: what is under com.example is granted; a
// collection of another namespace and a blob: permission (not allowed in sets) are not.
var exampleSet = map[string]any{"main": map[string]any{
	"type": "permission-set", "title": "Example basics", "detail": "Post example things and read them back.",
	"permissions": []any{
		map[string]any{"type": "permission", "resource": "repo", "collection": []any{"com.example.thing"}, "action": []any{"create"}},
		map[string]any{"type": "permission", "resource": "repo", "collection": []any{"com.example.sub.item"}},
		map[string]any{"type": "permission", "resource": "repo", "collection": []any{"com.other.thing"}},
		map[string]any{"type": "permission", "resource": "rpc", "lxm": []any{"com.example.getThing"}, "inheritAud": true},
		map[string]any{"type": "permission", "resource": "rpc", "lxm": []any{"com.example.listThings"}, "aud": "*"},
		map[string]any{"type": "permission", "resource": "blob", "accept": []any{"*/*"}},
	},
}}

// TestOAuthPermissionSet: include: scopes resolve through lexicon resolution (a real DNS
// server on 127.0.0.1 answering _lexicon.example.com with the DID of an account hosted
// here, whose repository publishes the set), the consent page lists the set's
// permissions in words, the token carries them expanded, and they are what is
// enforced. A set that does not resolve, is not a permission set, or sits behind an
// address the SSRF guard refuses is invalid_scope at PAR; a resolved set is cached.
func TestOAuthPermissionSet(t *testing.T) {
	world := startHandleWorld(t)
	n := testnet.Start(t, func(c *pds.Config) {
		c.HandleDNS = world.dns
		c.ProxyAllowPrivate = true // the lexicon's PDS is this one, on 127.0.0.1
	})
	pub := n.Client.CreateAccount(t, "lexpub")
	user := n.Client.CreateAccount(t, "dora")
	publishLexicon(t, n, pub, "com.example.authBasic", exampleSet)
	publishLexicon(t, n, pub, "com.example.thing", map[string]any{"main": map[string]any{
		"type": "record", "key": "tid", "record": map[string]any{"type": "object", "properties": map[string]any{}}}})
	world.setLexicon("example.com", pub.DID)

	const svc = "did:web:svc.test%23svc_thing"
	scope := "atproto include:com.example.authBasic?aud=" + svc
	c := newOAuthClient(t, n, scope)
	v, ch := pkce()
	par := c.send("/oauth/par", c.parForm(ch), nil)
	if par.status != http.StatusCreated {
		t.Fatalf("PAR with include: %d %s", par.status, par.raw)
	}
	q := url.Values{"client_id": {c.clientID}, "request_uri": {par.str("request_uri")}}
	fields := c.csrf(t, "/oauth/authorize?"+q.Encode(), q)
	fields.Set("identifier", user.Handle)
	fields.Set("password", user.Password)
	consent := c.page(http.MethodPost, "/oauth/authorize/sign-in", fields)
	if consent.status != http.StatusOK {
		t.Fatalf("consent page: %d %s", consent.status, consent.raw)
	}
	for _, want := range []string{
		"Example basics (com.example.authBasic): Post example things and read them back.",
		"<li>Records (create) of com.example.thing</li>",
		"<li>Records (create, update and delete) of com.example.sub.item</li>",
		"<li>Call com.example.getThing on did:web:svc.test#svc_thing as you</li>",
		"<li>Call com.example.listThings on any service as you</li>",
	} {
		if !strings.Contains(consent.raw, want) {
			t.Errorf("consent page lacks %q:\n%s", want, consent.raw)
		}
	}
	for _, not := range []string{"com.other.thing", "Upload files"} {
		if strings.Contains(consent.raw, not) {
			t.Errorf("consent page shows %q, which the set may not grant", not)
		}
	}
	allow := url.Values{"csrf": {fields.Get("csrf")}, "request_uri": {q.Get("request_uri")}, "client_id": {c.clientID}, "decision": {"allow"}}
	pg := c.page(http.MethodPost, "/oauth/authorize/consent", allow)
	loc, _ := url.Parse(pg.header.Get("Location"))
	if pg.status != http.StatusSeeOther || loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("consent: %d %s", pg.status, pg.raw)
	}
	tok := c.exchange(loc.Query().Get("code"), v)
	wantScope := "atproto repo:com.example.thing?action=create repo:com.example.sub.item " +
		"rpc:com.example.getThing?aud=did%3Aweb%3Asvc.test%23svc_thing rpc:com.example.listThings?aud=%2A"
	if tok.status != http.StatusOK || tok.str("scope") != wantScope {
		t.Fatalf("token scope %q (%d %s), want %q", tok.str("scope"), tok.status, tok.raw, wantScope)
	}
	at := tok.str("access_token")

	rec := func(coll string) map[string]any {
		return map[string]any{"repo": user.DID, "collection": coll, "record": map[string]any{"$type": coll, "n": 1}}
	}
	serviceAuth := func(aud, lxm string) string {
		return "com.atproto.server.getServiceAuth?" + url.Values{"aud": {aud}, "lxm": {lxm}}.Encode()
	}
	for _, call := range []scopeCall{
		{"create com.example.thing", "POST", "com.atproto.repo.createRecord", func(*testnet.Account) any { return rec("com.example.thing") }, 200, ""},
		{"create com.example.sub.item", "POST", "com.atproto.repo.createRecord", func(*testnet.Account) any { return rec("com.example.sub.item") }, 200, ""},
		{"create com.other.thing", "POST", "com.atproto.repo.createRecord", func(*testnet.Account) any { return rec("com.other.thing") }, 403, "ScopeMissingError"},
		{"create a post", "POST", "com.atproto.repo.createRecord", func(*testnet.Account) any { return rec("app.bsky.feed.post") }, 403, "ScopeMissingError"},
		{"delete com.example.thing", "POST", "com.atproto.repo.deleteRecord", func(a *testnet.Account) any {
			return map[string]any{"repo": a.DID, "collection": "com.example.thing", "rkey": "3jzfcijpj2z2a"}
		}, 403, "ScopeMissingError"},
		{"service auth, inherited aud", "GET", serviceAuth("did:web:svc.test#svc_thing", "com.example.getThing"), nil, 200, ""},
		{"service auth, another aud", "GET", serviceAuth("did:web:other.test#svc_thing", "com.example.getThing"), nil, 403, "ScopeMissingError"},
		{"service auth, aud *", "GET", serviceAuth("did:web:any.test#x", "com.example.listThings"), nil, 200, ""},
		{"upload a blob", "POST", "com.atproto.repo.uploadBlob", nil, 403, "ScopeMissingError"},
	} {
		var body any
		if call.body != nil {
			body = call.body(user)
		}
		r := c.xrpc(call.method, call.nsid, body, at, nil)
		if r.status != call.status || (call.errName != "" && r.str("error") != call.errName) {
			t.Errorf("%s: %d %s, want %d %s", call.name, r.status, r.raw, call.status, call.errName)
		}
	}

	// The account page names what was granted, expanded.
	acctPage := c.page(http.MethodGet, "/account", nil)
	if !strings.Contains(acctPage.raw, "Records (create) of com.example.thing") {
		t.Errorf("account page does not list the granted permissions:\n%s", acctPage.raw)
	}

	// Refused at PAR: no _lexicon record, a lexicon that is not a permission set, and a
	// record the publisher does not have.
	for _, tc := range []struct{ include, want string }{
		{"include:org.nowhere.authAll", "could not be resolved"},
		{"include:com.example.thing", "is not a permission set"},
		{"include:com.example.authMissing", "could not be resolved"},
	} {
		bad := newOAuthClient(t, n, "atproto "+tc.include)
		_, ch := pkce()
		r := bad.send("/oauth/par", bad.parForm(ch), nil)
		if r.status != http.StatusBadRequest || r.str("error") != "invalid_scope" || !strings.Contains(r.str("error_description"), tc.want) {
			t.Errorf("PAR with %s: %d %s, want invalid_scope (%s)", tc.include, r.status, r.raw, tc.want)
		}
	}

	// Cached: with the DNS record gone, the set still resolves (within the hour).
	world.setLexicon("example.com", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
	again := newOAuthClient(t, n, scope)
	_, ch = pkce()
	if r := again.send("/oauth/par", again.parForm(ch), nil); r.status != http.StatusCreated {
		t.Fatalf("PAR for a cached set: %d %s", r.status, r.raw)
	}

	// Another PDS on the same DNS without private addresses allowed: the publisher's
	// PDS is on 127.0.0.1, so the guard refuses to fetch the set.
	world.setLexicon("example.com", pub.DID)
	guarded := testnet.Start(t, func(c *pds.Config) {
		c.HandleDNS = world.dns
		c.PLCURL = n.Config.PLCURL
	})
	gc := newOAuthClient(t, guarded, scope)
	_, ch = pkce()
	if r := gc.send("/oauth/par", gc.parForm(ch), nil); r.status != http.StatusBadRequest || r.str("error") != "invalid_scope" {
		t.Fatalf("PAR resolving through a private address: %d %s", r.status, r.raw)
	}
}

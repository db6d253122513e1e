package pds_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"

	indigoid "github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/pds"
	"github.com/hearth-social/hearth/pds/plc"
	"github.com/stretchr/testify/require"
)

func TestDescribeServer(t *testing.T) {
	e := newEnv(t)
	r := e.get("com.atproto.server.describeServer", nil, "")
	requireOK(t, r)
	require.Equal(t, "did:web:localhost", r.Str("did"))
	require.Equal(t, []any{".test"}, r.JSON["availableUserDomains"])
	require.Equal(t, false, r.JSON["inviteCodeRequired"])
}

func TestCreateAccountAndIdentity(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	alice := e.createAccount("alice")
	require.Regexp(t, `^did:plc:[a-z2-7]{24}$`, alice.DID)

	// The DID document at the PLC directory names the handle, the signing key and this PDS.
	doc, err := (&plc.Client{BaseURL: e.plc.URL}).Resolve(ctx, syntax.DID(alice.DID))
	require.NoError(t, err)
	ident := identityOf(doc)
	h, err := ident.DeclaredHandle()
	require.NoError(t, err)
	require.Equal(t, "alice.test", h.String())
	require.Equal(t, e.cfg.PublicURL, ident.PDSEndpoint())
	_, err = ident.PublicKey()
	require.NoError(t, err)

	r := e.get("com.atproto.identity.resolveHandle", url.Values{"handle": {"ALICE.test"}}, "")
	requireOK(t, r)
	require.Equal(t, alice.DID, r.Str("did"))
	requireXRPCError(t, e.get("com.atproto.identity.resolveHandle", url.Values{"handle": {"nobody.test"}}, ""), 400, "HandleNotFound")
	requireXRPCError(t, e.get("com.atproto.identity.resolveHandle", url.Values{"handle": {"not a handle"}}, ""), 400, "InvalidRequest")

	// /.well-known/atproto-did answers by Host header.
	req, _ := http.NewRequest("GET", e.http.URL+"/.well-known/atproto-did", nil)
	req.Host = "alice.test"
	res, err := e.client.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	require.Equal(t, alice.DID, string(body))
	req.Host = "nobody.test"
	res, err = e.client.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 404, res.StatusCode)

	cases := []struct {
		name    string
		body    map[string]any
		status  int
		errName string
	}{
		{"duplicate handle", map[string]any{"handle": "alice.test", "password": "x"}, 400, "HandleNotAvailable"},
		{"duplicate handle other case", map[string]any{"handle": "Alice.test", "password": "x"}, 400, "HandleNotAvailable"},
		{"duplicate email", map[string]any{"handle": "alice2.test", "password": "x", "email": "ALICE@example.com"}, 400, "InvalidRequest"},
		{"bad handle syntax", map[string]any{"handle": "-bad-.test", "password": "x"}, 400, "InvalidHandle"},
		{"unsupported domain", map[string]any{"handle": "carol.example.com", "password": "x"}, 400, "UnsupportedDomain"},
		{"nested label", map[string]any{"handle": "a.b.test", "password": "x"}, 400, "InvalidHandle"},
		{"missing password", map[string]any{"handle": "carol.test"}, 400, "InvalidRequest"},
		{"bad email", map[string]any{"handle": "carol.test", "password": "x", "email": "nope"}, 400, "InvalidRequest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			requireXRPCError(t, e.post("com.atproto.server.createAccount", tc.body, ""), tc.status, tc.errName)
		})
	}
	r = e.post("com.atproto.server.createAccount", []byte(`{"handle": `), "")
	requireXRPCError(t, r, 400, "InvalidRequest")
}

func TestSessions(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")

	for _, ident := range []string{"alice.test", alice.DID, "alice@example.com"} {
		t.Run("login by "+ident, func(t *testing.T) {
			r := e.post("com.atproto.server.createSession", map[string]any{"identifier": ident, "password": alice.Password}, "")
			requireOK(t, r)
			require.Equal(t, alice.DID, r.Str("did"))
			require.Equal(t, "alice.test", r.Str("handle"))
		})
	}
	requireXRPCError(t, e.post("com.atproto.server.createSession", map[string]any{"identifier": "alice.test", "password": "wrong"}, ""), 401, "AuthenticationRequired")
	requireXRPCError(t, e.post("com.atproto.server.createSession", map[string]any{"identifier": "ghost.test", "password": "x"}, ""), 401, "AuthenticationRequired")

	// getSession with the access token; refresh rotates; the old refresh token gives the
	// same replacement within the grace period (see TestRefreshGracePeriod) and stops
	// working once that session ends.
	r := e.get("com.atproto.server.getSession", nil, alice.Access)
	requireOK(t, r)
	require.Equal(t, alice.DID, r.Str("did"))
	r = e.post("com.atproto.server.refreshSession", nil, alice.Refresh)
	requireOK(t, r)
	newRefresh := r.Str("refreshJwt")
	require.NotEqual(t, alice.Refresh, newRefresh)
	requireOK(t, e.get("com.atproto.server.getSession", nil, r.Str("accessJwt")))

	// Token type confusion and garbage.
	requireXRPCError(t, e.get("com.atproto.server.getSession", nil, newRefresh), 401, "InvalidToken")
	requireXRPCError(t, e.post("com.atproto.server.refreshSession", nil, alice.Access), 401, "InvalidToken")
	requireXRPCError(t, e.get("com.atproto.server.getSession", nil, "garbage.token.here"), 401, "InvalidToken")
	requireXRPCError(t, e.get("com.atproto.server.getSession", nil, ""), 401, "AuthenticationRequired")

	// deleteSession revokes the refresh token.
	requireOK(t, e.post("com.atproto.server.deleteSession", nil, newRefresh))
	requireXRPCError(t, e.post("com.atproto.server.refreshSession", nil, newRefresh), 401, "ExpiredToken")
	requireXRPCError(t, e.post("com.atproto.server.refreshSession", nil, alice.Refresh), 401, "ExpiredToken")
}

func TestAppPasswords(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	r := e.post("com.atproto.server.createAppPassword", map[string]any{"name": "phone"}, alice.Access)
	requireOK(t, r)
	appPw := r.Str("password")
	require.Regexp(t, `^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$`, appPw)
	requireXRPCError(t, e.post("com.atproto.server.createAppPassword", map[string]any{"name": "phone"}, alice.Access), 400, "DuplicateName")

	login := e.post("com.atproto.server.createSession", map[string]any{"identifier": "alice.test", "password": appPw}, "")
	requireOK(t, login)
	appAccess := login.Str("accessJwt")
	// An app-password session can post but not manage app passwords.
	requireOK(t, e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "record": post("from my phone")}, appAccess))
	requireXRPCError(t, e.post("com.atproto.server.createAppPassword", map[string]any{"name": "x"}, appAccess), 403, "Forbidden")

	r = e.get("com.atproto.server.listAppPasswords", nil, alice.Access)
	requireOK(t, r)
	pws := r.JSON["passwords"].([]any)
	require.Len(t, pws, 1)
	require.Equal(t, "phone", pws[0].(map[string]any)["name"])

	requireOK(t, e.post("com.atproto.server.revokeAppPassword", map[string]any{"name": "phone"}, alice.Access))
	requireXRPCError(t, e.post("com.atproto.server.createSession", map[string]any{"identifier": "alice.test", "password": appPw}, ""), 401, "AuthenticationRequired")
	requireXRPCError(t, e.post("com.atproto.server.refreshSession", nil, login.Str("refreshJwt")), 401, "ExpiredToken")
}

func TestInviteCodes(t *testing.T) {
	e := newEnv(t, func(c *pds.Config) { c.InviteRequired = true })
	r := e.get("com.atproto.server.describeServer", nil, "")
	require.Equal(t, true, r.JSON["inviteCodeRequired"])
	requireXRPCError(t, e.post("com.atproto.server.createAccount", map[string]any{"handle": "alice.test", "password": "x"}, ""), 400, "InvalidInviteCode")
	requireXRPCError(t, e.post("com.atproto.server.createInviteCode", map[string]any{"useCount": 1}, ""), 401, "AuthenticationRequired")

	r = e.post("com.atproto.server.createInviteCode", map[string]any{"useCount": 1}, "admin")
	requireOK(t, r)
	code := r.Str("code")
	requireOK(t, e.post("com.atproto.server.createAccount", map[string]any{"handle": "alice.test", "password": "x", "inviteCode": code}, ""))
	// Used up.
	requireXRPCError(t, e.post("com.atproto.server.createAccount", map[string]any{"handle": "bob.test", "password": "x", "inviteCode": code}, ""), 400, "InvalidInviteCode")
	requireXRPCError(t, e.post("com.atproto.server.createAccount", map[string]any{"handle": "bob.test", "password": "x", "inviteCode": "nope"}, ""), 400, "InvalidInviteCode")

	login := e.post("com.atproto.server.createSession", map[string]any{"identifier": "alice.test", "password": "x"}, "")
	requireOK(t, login)
	alice := login.Str("did")
	r = e.post("com.atproto.server.createInviteCodes", map[string]any{"codeCount": 2, "useCount": 3, "forAccounts": []string{alice}}, "admin")
	requireOK(t, r)
	r = e.get("com.atproto.server.getAccountInviteCodes", nil, login.Str("accessJwt"))
	requireOK(t, r)
	codes := r.JSON["codes"].([]any)
	require.Len(t, codes, 2)
	require.Equal(t, float64(3), codes[0].(map[string]any)["available"])
}

func TestUnknownAndWrongMethod(t *testing.T) {
	e := newEnv(t)
	requireXRPCError(t, e.get("com.example.nothing", nil, ""), 501, "MethodNotImplemented")
	requireXRPCError(t, e.post("com.atproto.server.describeServer", map[string]any{}, ""), 400, "InvalidRequest")
	requireXRPCError(t, e.get("com.atproto.repo.createRecord", nil, ""), 400, "InvalidRequest")
}

func TestUpdateHandle(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	e.createAccount("bobby")
	requireXRPCError(t, e.post("com.atproto.identity.updateHandle", map[string]any{"handle": "bobby.test"}, alice.Access), 400, "HandleNotAvailable")
	requireOK(t, e.post("com.atproto.identity.updateHandle", map[string]any{"handle": "alice2.test"}, alice.Access))
	r := e.get("com.atproto.identity.resolveHandle", url.Values{"handle": {"alice2.test"}}, "")
	requireOK(t, r)
	require.Equal(t, alice.DID, r.Str("did"))
	doc, err := (&plc.Client{BaseURL: e.plc.URL}).Resolve(context.Background(), syntax.DID(alice.DID))
	require.NoError(t, err)
	require.Equal(t, []string{"at://alice2.test"}, doc.AlsoKnownAs)
}

// Two accounts racing for one handle: one wins, and the loser's DID document never
// claims it (the PLC operation used to go out before the handle was checked in the DB).
func TestUpdateHandleRace(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	bob := e.createAccount("bobby")
	pc := &plc.Client{BaseURL: e.plc.URL}
	for round := 0; round < 5; round++ {
		handle := fmt.Sprintf("prize%d.test", round)
		var wg sync.WaitGroup
		start := make(chan struct{})
		results := make([]*resp, 2)
		for i, a := range []*account{alice, bob} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i] = e.post("com.atproto.identity.updateHandle", map[string]any{"handle": handle}, a.Access)
			}()
		}
		close(start)
		wg.Wait()
		winners := 0
		for i, a := range []*account{alice, bob} {
			doc, err := pc.Resolve(context.Background(), syntax.DID(a.DID))
			require.NoError(t, err)
			claims := slices.Contains(doc.AlsoKnownAs, "at://"+handle)
			if results[i].Status == 200 {
				winners++
				require.True(t, claims, "winner's document must name %s", handle)
			} else {
				require.False(t, claims, "round %d: loser %s's DID document claims %s (%s)", round, a.DID, handle, results[i].Body)
			}
		}
		require.Equal(t, 1, winners, "round %d", round)
	}
}

// resolveHandle answers for handles hosted elsewhere too, through the resolver
// (bidirectionally verified), and HandleNotFound when they do not resolve.
func TestResolveRemoteHandle(t *testing.T) {
	dir := indigoid.NewMockDirectory()
	dir.Insert(indigoid.Identity{DID: "did:plc:remoteremoteremoteremote", Handle: "alice.example.com"})
	e := newEnv(t, func(c *pds.Config) { c.Directory = dir })
	r := e.get("com.atproto.identity.resolveHandle", url.Values{"handle": {"Alice.Example.com"}}, "")
	requireOK(t, r)
	require.Equal(t, "did:plc:remoteremoteremoteremote", r.Str("did"))
	requireXRPCError(t, e.get("com.atproto.identity.resolveHandle", url.Values{"handle": {"nobody.example.com"}}, ""), 400, "HandleNotFound")
	e.createAccount("local")
	r = e.get("com.atproto.identity.resolveHandle", url.Values{"handle": {"local.test"}}, "")
	requireOK(t, r)
}

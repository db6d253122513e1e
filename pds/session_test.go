package pds_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// A failed login costs one scrypt whether the identifier exists or not and however many
// app passwords the account holds; app passwords are capped at 25.
func TestLoginCostAndAppPasswordCap(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	var pws []string
	for i := 0; i < 25; i++ {
		r := e.post("com.atproto.server.createAppPassword", map[string]any{"name": fmt.Sprintf("app%d", i)}, alice.Access)
		requireOK(t, r)
		pws = append(pws, r.Str("password"))
	}
	requireXRPCError(t, e.post("com.atproto.server.createAppPassword", map[string]any{"name": "one-too-many"}, alice.Access), 400, "TooManyAppPasswords")

	login := func(ident, pw string) *resp {
		return e.post("com.atproto.server.createSession", map[string]any{"identifier": ident, "password": pw}, "")
	}
	cost := func(ident, pw string) int64 {
		t.Helper()
		before := e.srv.PasswordVerifications()
		requireXRPCError(t, login(ident, pw), 401, "AuthenticationRequired")
		return e.srv.PasswordVerifications() - before
	}
	for _, tc := range []struct{ name, ident, pw string }{
		{"wrong password", "alice.test", "not-it"},
		{"wrong app-password-shaped password", "alice.test", "aaaa-bbbb-cccc-dddd"},
		{"unknown handle", "nobody.test", "aaaa-bbbb-cccc-dddd"},
		{"unknown email", "nobody@example.com", "not-it"},
		{"unknown did", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "not-it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, int64(1), cost(tc.ident, tc.pw), "scrypt runs per failed login")
		})
	}
	// Every app password still works, found without trying the others.
	for _, i := range []int{0, 24} {
		before := e.srv.PasswordVerifications()
		requireOK(t, login("alice.test", pws[i]))
		require.Equal(t, int64(0), e.srv.PasswordVerifications()-before)
	}
	// "@handle" is a handle, not an email address.
	requireOK(t, login("@alice.test", alice.Password))
	requireOK(t, login("@ALICE.test", alice.Password))
}

// A privileged app password stays privileged across refreshes.
func TestPrivilegedAppPasswordSurvivesRefresh(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	r := e.post("com.atproto.server.createAppPassword", map[string]any{"name": "priv", "privileged": true}, alice.Access)
	requireOK(t, r)
	login := e.post("com.atproto.server.createSession", map[string]any{"identifier": "alice.test", "password": r.Str("password")}, "")
	requireOK(t, login)
	ref := e.post("com.atproto.server.refreshSession", nil, login.Str("refreshJwt"))
	requireOK(t, ref)
	for _, tok := range []string{login.Str("accessJwt"), ref.Str("accessJwt")} {
		_, claims := jwtClaims(t, tok)
		require.Equal(t, "com.atproto.appPassPrivileged", claims["scope"])
	}
}

// Two concurrent refreshes of one token keep the session: the second gets the same
// replacement within the grace period, and ending that session ends both.
func TestRefreshGracePeriod(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	first := e.post("com.atproto.server.refreshSession", nil, alice.Refresh)
	requireOK(t, first)
	second := e.post("com.atproto.server.refreshSession", nil, alice.Refresh)
	requireOK(t, second)
	_, c1 := jwtClaims(t, first.Str("refreshJwt"))
	_, c2 := jwtClaims(t, second.Str("refreshJwt"))
	require.Equal(t, c1["jti"], c2["jti"])
	requireOK(t, e.get("com.atproto.server.getSession", nil, second.Str("accessJwt")))
	// The replacement rotates normally.
	third := e.post("com.atproto.server.refreshSession", nil, second.Str("refreshJwt"))
	requireOK(t, third)
	requireOK(t, e.post("com.atproto.server.deleteSession", nil, third.Str("refreshJwt")))
	for _, tok := range []string{alice.Refresh, first.Str("refreshJwt"), third.Str("refreshJwt")} {
		requireXRPCError(t, e.post("com.atproto.server.refreshSession", nil, tok), 401, "ExpiredToken")
	}
}

// A takedown ends every session and app password: lifting it does not bring them back.
func TestTakedownRevokesSessions(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	r := e.post("com.atproto.server.createAppPassword", map[string]any{"name": "phone"}, alice.Access)
	requireOK(t, r)
	appPw := r.Str("password")
	takedown := func(applied bool) {
		requireOK(t, e.post("com.atproto.admin.updateSubjectStatus", map[string]any{
			"subject": map[string]any{"$type": "com.atproto.admin.defs#repoRef", "did": alice.DID}, "takedown": map[string]any{"applied": applied},
		}, "admin"))
	}
	takedown(true)
	takedown(false)
	requireXRPCError(t, e.post("com.atproto.server.refreshSession", nil, alice.Refresh), 401, "ExpiredToken")
	requireXRPCError(t, e.post("com.atproto.server.createSession", map[string]any{"identifier": "alice.test", "password": appPw}, ""), 401, "AuthenticationRequired")
	login := e.post("com.atproto.server.createSession", map[string]any{"identifier": "alice.test", "password": alice.Password}, "")
	requireOK(t, login)
	r = e.get("com.atproto.server.listAppPasswords", nil, login.Str("accessJwt"))
	requireOK(t, r)
	require.Empty(t, r.JSON["passwords"])
}

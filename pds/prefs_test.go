package pds_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func (e *env) prefs(token string) []any {
	e.t.Helper()
	r := e.get("app.bsky.actor.getPreferences", nil, token)
	requireOK(e.t, r)
	p, ok := r.JSON["preferences"].([]any)
	require.True(e.t, ok, "preferences must be an array: %s", r.Body)
	return p
}

// appPasswordSession creates an app password for a and logs in with it.
func (e *env) appPasswordSession(a *account, name string, privileged bool) string {
	e.t.Helper()
	r := e.post("com.atproto.server.createAppPassword", map[string]any{"name": name, "privileged": privileged}, a.Access)
	requireOK(e.t, r)
	login := e.post("com.atproto.server.createSession", map[string]any{"identifier": a.Handle, "password": r.Str("password")}, "")
	requireOK(e.t, login)
	return login.Str("accessJwt")
}

func jsonRoundTrip(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func TestPreferencesRoundTrip(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	bob := e.createAccount("bob")

	require.Empty(t, e.prefs(alice.Access))
	requireXRPCError(t, e.get("app.bsky.actor.getPreferences", nil, ""), 401, "AuthenticationRequired")

	prefs := []any{
		map[string]any{"$type": "app.bsky.actor.defs#adultContentPref", "enabled": false},
		map[string]any{"$type": "app.bsky.actor.defs#savedFeedsPrefV2", "items": []any{
			map[string]any{"id": "3kabc", "type": "timeline", "value": "following", "pinned": true},
		}},
		// Unknown app.bsky types are kept as they are (clients add new ones).
		map[string]any{"$type": "app.bsky.actor.defs#someFuturePref", "nested": map[string]any{"a": []any{1, 2.5, "x", nil}}},
		map[string]any{"$type": "app.bsky.actor.defs#personalDetailsPref", "birthDate": "1990-01-01T00:00:00.000Z"},
	}
	requireOK(t, e.post("app.bsky.actor.putPreferences", map[string]any{"preferences": prefs}, alice.Access))
	require.Equal(t, jsonRoundTrip(t, prefs), jsonRoundTrip(t, e.prefs(alice.Access)))
	require.Empty(t, e.prefs(bob.Access), "preferences are per account")

	// putPreferences replaces the whole set.
	short := prefs[:1]
	requireOK(t, e.post("app.bsky.actor.putPreferences", map[string]any{"preferences": short}, alice.Access))
	require.Equal(t, jsonRoundTrip(t, short), jsonRoundTrip(t, e.prefs(alice.Access)))
	requireOK(t, e.post("app.bsky.actor.putPreferences", map[string]any{"preferences": []any{}}, alice.Access))
	require.Empty(t, e.prefs(alice.Access))
}

func TestPreferencesRejected(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	good := []any{map[string]any{"$type": "app.bsky.actor.defs#adultContentPref", "enabled": true}}
	requireOK(t, e.post("app.bsky.actor.putPreferences", map[string]any{"preferences": good}, alice.Access))

	for name, body := range map[string]any{
		"other namespace":   map[string]any{"preferences": []any{map[string]any{"$type": "com.example.pref", "x": 1}}},
		"namespace prefix":  map[string]any{"preferences": []any{map[string]any{"$type": "app.bskyx.pref"}}},
		"mixed":             map[string]any{"preferences": []any{good[0], map[string]any{"$type": "chat.bsky.actor.declaration"}}},
		"missing $type":     map[string]any{"preferences": []any{map[string]any{"enabled": true}}},
		"non-string $type":  map[string]any{"preferences": []any{map[string]any{"$type": 5}}},
		"not an object":     map[string]any{"preferences": []any{"app.bsky.actor.defs#adultContentPref"}},
		"null item":         map[string]any{"preferences": []any{nil}},
		"missing field":     map[string]any{},
		"not an array":      map[string]any{"preferences": "nope"},
		"invalid JSON body": []byte(`{"preferences": [`),
	} {
		t.Run(name, func(t *testing.T) {
			requireXRPCError(t, e.post("app.bsky.actor.putPreferences", body, alice.Access), 400, "InvalidRequest")
		})
	}
	// Size cap.
	big := []any{map[string]any{"$type": "app.bsky.actor.defs#hugePref", "blob": strings.Repeat("x", 300<<10)}}
	requireXRPCError(t, e.post("app.bsky.actor.putPreferences", map[string]any{"preferences": big}, alice.Access), http.StatusRequestEntityTooLarge, "PayloadTooLarge")
	requireXRPCError(t, e.post("app.bsky.actor.putPreferences", map[string]any{"preferences": good}, ""), 401, "AuthenticationRequired")

	// Nothing rejected was stored.
	require.Equal(t, jsonRoundTrip(t, good), jsonRoundTrip(t, e.prefs(alice.Access)))
}

func TestPreferencesAppPassword(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	personal := map[string]any{"$type": "app.bsky.actor.defs#personalDetailsPref", "birthDate": "1990-01-01T00:00:00.000Z"}
	adult := map[string]any{"$type": "app.bsky.actor.defs#adultContentPref", "enabled": false}
	requireOK(t, e.post("app.bsky.actor.putPreferences", map[string]any{"preferences": []any{personal, adult}}, alice.Access))

	app := e.appPasswordSession(alice, "phone", false)
	// An app password neither sees nor sets personal details, and keeps them when it
	// replaces the rest.
	require.Equal(t, jsonRoundTrip(t, []any{adult}), jsonRoundTrip(t, e.prefs(app)))
	requireXRPCError(t, e.post("app.bsky.actor.putPreferences", map[string]any{"preferences": []any{personal}}, app), 400, "InvalidRequest")
	muted := map[string]any{"$type": "app.bsky.actor.defs#mutedWordsPref", "items": []any{}}
	requireOK(t, e.post("app.bsky.actor.putPreferences", map[string]any{"preferences": []any{muted}}, app))
	require.Equal(t, jsonRoundTrip(t, []any{muted}), jsonRoundTrip(t, e.prefs(app)))
	require.Equal(t, jsonRoundTrip(t, []any{personal, muted}), jsonRoundTrip(t, e.prefs(alice.Access)))
}

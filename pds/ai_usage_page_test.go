package pds_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/stretchr/testify/require"
)

// The account page sets the AI usage declaration: a record committed to the account's
// repo (read back by getRecord, sent as Content-Usage), shown as chosen; all "not
// stated" removes it; a made-up value is refused with the page's error.
func TestAccountPageAIPreferences(t *testing.T) {
	n := testnet.Start(t)
	e := &env{t: t, net: n, srv: n.PDS, http: n.PDSServer, plc: n.PLCServer, dir: n.PLC, cfg: n.Config, client: n.Client.HTTP}
	alice := e.createAccount("alice")
	rkey := e.createPost(alice, post("mine"))
	c := newOAuthClient(t, n, "atproto")
	signedIn := signInPages[1].try(c, "/account/sign-in", c.csrf(t, "/account", url.Values{}), alice.Handle, alice.Password)
	require.True(t, signInPages[1].ok(signedIn, alice.Handle), signedIn.raw)
	require.Contains(t, signedIn.raw, "AI use of your posts")

	save := func(fields url.Values) *oauthResp {
		return c.page(http.MethodPost, "/account/ai-preferences", c.csrf(t, "/account", fields))
	}
	usage := func() string {
		r := e.get("com.atproto.repo.getRecord", url.Values{"repo": {alice.DID}, "collection": {"app.bsky.feed.post"}, "rkey": {rkey}}, "")
		requireOK(t, r)
		return r.Header.Get("Content-Usage")
	}
	r := save(url.Values{"training": {"deny"}, "synthetic": {"deny"}, "inference": {"allow"}, "embedding": {""}})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Contains(t, r.raw, "Your AI preferences were saved")
	require.Equal(t, "train-ai=n, train-genai=n", usage())
	rec := e.get("com.atproto.repo.getRecord", url.Values{"repo": {alice.DID}, "collection": {"community.lexicon.preference.ai"}, "rkey": {"self"}}, "")
	requireOK(t, rec)
	prefs := rec.JSON["value"].(map[string]any)["preferences"].(map[string]any)
	require.Equal(t, false, prefs["training"].(map[string]any)["allow"])
	require.Equal(t, true, prefs["inference"].(map[string]any)["allow"])
	require.NotContains(t, prefs, "embedding")
	// The page shows what was chosen.
	require.True(t, strings.Contains(r.raw, `<option value="deny" selected>Do not allow</option>`), r.raw)
	require.True(t, strings.Contains(r.raw, `<option value="allow" selected>Allow</option>`), r.raw)

	r = save(url.Values{"training": {"sometimes"}})
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Contains(t, r.raw, "Choose allow, do not allow or not stated")
	require.Equal(t, "train-ai=n, train-genai=n", usage(), "a refused form changes nothing")

	r = save(url.Values{"training": {""}, "synthetic": {""}, "inference": {""}, "embedding": {""}})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, "", usage())
	requireXRPCError(t, e.get("com.atproto.repo.getRecord", url.Values{"repo": {alice.DID}, "collection": {"community.lexicon.preference.ai"}, "rkey": {"self"}}, ""), 400, "RecordNotFound")
}

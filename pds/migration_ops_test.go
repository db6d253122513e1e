package pds_test

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/pds/mail"
	"github.com/hearth-social/hearth/pds/plc"
	"github.com/stretchr/testify/require"
)

// mailedToken is the newest token the PDS mailed to did for purpose.
func (e *env) mailedToken(did, purpose string) string {
	e.t.Helper()
	return e.net.MailedToken(e.t, did, purpose, 0)
}

// Leaving: the PDS signs, with its rotation key and the mailed token, the operation
// that points the DID at another PDS; the new PDS submits it.
func TestSignPlcOperation(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	pc := &plc.Client{BaseURL: e.plc.URL}
	did := syntax.DID(alice.DID)

	requireXRPCError(t, e.post("com.atproto.identity.signPlcOperation", map[string]any{}, alice.Access), 400, "InvalidRequest")
	requireXRPCError(t, e.post("com.atproto.identity.signPlcOperation", map[string]any{"token": "AAAAA-BBBBB"}, alice.Access), 400, "InvalidToken")
	requireOK(t, e.post("com.atproto.identity.requestPlcOperationSignature", nil, alice.Access))
	tok := e.mailedToken(alice.DID, mail.PurposePLCOperation)
	// An app password cannot move the account.
	appTok := e.appPasswordSession(alice, "app", true)
	requireXRPCError(t, e.post("com.atproto.identity.signPlcOperation", map[string]any{"token": tok}, appTok), 403, "Forbidden")

	newKey, err := atcrypto.GeneratePrivateKeyK256()
	require.NoError(t, err)
	newPub, _ := newKey.PublicKey()
	body := map[string]any{
		"token":               tok,
		"rotationKeys":        []string{newPub.DIDKey()},
		"verificationMethods": map[string]string{"atproto": newPub.DIDKey()},
		"services":            map[string]any{"atproto_pds": map[string]string{"type": "AtprotoPersonalDataServer", "endpoint": "https://new-pds.example"}},
	}
	r := e.post("com.atproto.identity.signPlcOperation", body, alice.Access)
	requireOK(t, r)
	var op plc.Op
	jsonInto(t, r.JSON["operation"], &op)
	require.Equal(t, []string{newPub.DIDKey()}, op.RotationKeys)
	require.Equal(t, []string{"at://alice.test"}, op.AlsoKnownAs, "fields not given are kept")
	// Single use.
	requireXRPCError(t, e.post("com.atproto.identity.signPlcOperation", body, alice.Access), 400, "InvalidToken")
	// The directory accepts it: the DID now points at the new PDS, under the new keys.
	require.NoError(t, pc.Submit(context.Background(), did, &op))
	doc, err := pc.Resolve(context.Background(), did)
	require.NoError(t, err)
	ident := identityOf(doc)
	require.Equal(t, "https://new-pds.example", ident.PDSEndpoint())
	// The account lives elsewhere now: this PDS notices and stops presenting it as
	// active, though the user never deactivated it here.
	requireOK(t, e.get("com.atproto.sync.getRepoStatus", url.Values{"did": {alice.DID}}, ""))
	n, err := e.srv.CheckMovedAway(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	st := e.get("com.atproto.sync.getRepoStatus", url.Values{"did": {alice.DID}}, "")
	requireOK(t, st)
	require.Equal(t, "deactivated", st.Str("status"))
	n, err = e.srv.CheckMovedAway(context.Background())
	require.NoError(t, err)
	require.Zero(t, n, "checked once")
}

// Arriving: getRecommendedDidCredentials says what the document must hold, and
// submitPlcOperation refuses operations that would not keep this PDS in charge.
func TestRecommendedCredentialsAndSubmit(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	r := e.get("com.atproto.identity.getRecommendedDidCredentials", nil, alice.Access)
	requireOK(t, r)
	pc := &plc.Client{BaseURL: e.plc.URL}
	cur, err := pc.Data(context.Background(), syntax.DID(alice.DID))
	require.NoError(t, err)
	require.Equal(t, jsonRoundTrip(t, cur.RotationKeys), r.JSON["rotationKeys"])
	require.Equal(t, jsonRoundTrip(t, cur.VerificationMethods), r.JSON["verificationMethods"])
	require.Equal(t, []any{"at://alice.test"}, r.JSON["alsoKnownAs"])
	require.Equal(t, e.cfg.PublicURL, r.JSON["services"].(map[string]any)["atproto_pds"].(map[string]any)["endpoint"])

	sign := func(fields map[string]any) map[string]any {
		t.Helper()
		requireOK(t, e.post("com.atproto.identity.requestPlcOperationSignature", nil, alice.Access))
		fields["token"] = e.mailedToken(alice.DID, mail.PurposePLCOperation)
		r := e.post("com.atproto.identity.signPlcOperation", fields, alice.Access)
		requireOK(t, r)
		return r.JSON["operation"].(map[string]any)
	}
	// An operation that drops this PDS's endpoint is refused and not submitted.
	away := sign(map[string]any{"services": map[string]any{"atproto_pds": map[string]string{"type": "AtprotoPersonalDataServer", "endpoint": "https://elsewhere.example"}}})
	requireXRPCError(t, e.post("com.atproto.identity.submitPlcOperation", map[string]any{"operation": away}, alice.Access), 400, "InvalidRequest")
	doc, err := pc.Resolve(context.Background(), syntax.DID(alice.DID))
	require.NoError(t, err)
	require.Equal(t, e.cfg.PublicURL, identityOf(doc).PDSEndpoint())
	// One that keeps everything (a second handle alias) goes through.
	keep := sign(map[string]any{"alsoKnownAs": []string{"at://alice.test", "at://alice.example.com"}})
	requireOK(t, e.post("com.atproto.identity.submitPlcOperation", map[string]any{"operation": keep}, alice.Access))
	doc, err = pc.Resolve(context.Background(), syntax.DID(alice.DID))
	require.NoError(t, err)
	require.Equal(t, []string{"at://alice.test", "at://alice.example.com"}, doc.AlsoKnownAs)
	requireXRPCError(t, e.post("com.atproto.identity.submitPlcOperation", map[string]any{"operation": map[string]any{"type": "nonsense"}}, alice.Access), 400, "InvalidRequest")
}

// Deleting an account needs its password and the mailed token; then it is gone.
func TestDeleteAccountWithToken(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	e.createPost(alice, post("soon gone"))
	del := func(password, token string) *resp {
		return e.post("com.atproto.server.deleteAccount", map[string]any{"did": alice.DID, "password": password, "token": token}, "")
	}
	requireXRPCError(t, del(alice.Password, "AAAAA-BBBBB"), 400, "InvalidToken")
	requireOK(t, e.post("com.atproto.server.requestAccountDelete", nil, alice.Access))
	tok := e.mailedToken(alice.DID, mail.PurposeDeleteAccount)
	requireXRPCError(t, del("wrong", tok), 401, "AuthenticationRequired")
	requireXRPCError(t, e.post("com.atproto.server.deleteAccount", map[string]any{"did": alice.DID}, ""), 400, "InvalidRequest")
	// Nothing changed so far.
	requireOK(t, e.get("com.atproto.sync.getLatestCommit", url.Values{"did": {alice.DID}}, ""))
	requireOK(t, del(alice.Password, tok))
	requireXRPCError(t, e.get("com.atproto.sync.getLatestCommit", url.Values{"did": {alice.DID}}, ""), 400, "RepoNotFound")
	requireXRPCError(t, e.post("com.atproto.server.createSession", map[string]any{"identifier": alice.DID, "password": alice.Password}, ""), 401, "AuthenticationRequired")
	requireXRPCError(t, e.get("com.atproto.identity.resolveHandle", url.Values{"handle": {"alice.test"}}, ""), 400, "HandleNotFound")
	requireXRPCError(t, e.get("com.atproto.server.getSession", nil, alice.Access), 401, "InvalidToken")
}

func jsonInto(t *testing.T, v any, out any) {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, out))
}

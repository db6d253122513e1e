package pds_test

import (
	"net/url"
	"testing"

	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/hearth-social/hearth/pds"
	"github.com/hearth-social/hearth/pds/mail"
	"github.com/stretchr/testify/require"
)

// An account moves from one Hearth to another on the same PLC directory: created on
// the new PDS with its DID and a service-auth token from the old one (deactivated, no
// events), the DID document moved by the old PDS's signed operation, then activated.
func TestAccountArrives(t *testing.T) {
	old := newEnv(t)
	alice := old.createAccount("alice")
	bob := old.createAccount("bobby")
	newNet := testnet.Start(t, func(c *pds.Config) {
		c.PLCURL = old.plc.URL // one directory for both
		c.Hostname = "pds-two.test"
	})
	dst := &env{t: t, net: newNet, srv: newNet.PDS, http: newNet.PDSServer, plc: old.plc, dir: old.dir, cfg: newNet.Config, client: newNet.Client.HTTP}
	newDID := dst.cfg.ServerDID()
	zero := int64(0)
	fh := subscribe(t, dst.http.URL, &zero)

	serviceAuth := func(a *account, aud string) string {
		r := old.get("com.atproto.server.getServiceAuth", url.Values{"aud": {aud}, "lxm": {"com.atproto.server.createAccount"}}, a.Access)
		requireOK(t, r)
		return r.Str("token")
	}
	create := func(did, token string) *resp {
		return dst.post("com.atproto.server.createAccount", map[string]any{"did": did, "handle": "alice.test", "password": "new-pw", "email": "alice@example.com"}, token)
	}
	// Refused, each with a clear error: no token, a token for another PDS, a token of
	// another account, an unknown DID.
	requireXRPCError(t, create(alice.DID, ""), 401, "AuthenticationRequired")
	requireXRPCError(t, create(alice.DID, serviceAuth(alice, "did:web:elsewhere.example")), 401, "InvalidToken")
	requireXRPCError(t, create(alice.DID, serviceAuth(bob, newDID)), 401, "InvalidToken")
	requireXRPCError(t, create("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", serviceAuth(alice, newDID)), 400, "InvalidRequest")

	r := create(alice.DID, serviceAuth(alice, newDID))
	requireOK(t, r)
	require.Equal(t, alice.DID, r.Str("did"))
	access := r.Str("accessJwt")
	st := dst.get("com.atproto.server.checkAccountStatus", nil, access)
	requireOK(t, st)
	require.Equal(t, false, st.JSON["activated"])
	require.Equal(t, false, st.JSON["validDid"], "the DID document still names the old PDS")
	require.EqualValues(t, 0, st.JSON["indexedRecords"])
	require.NotEmpty(t, st.Str("repoCommit"))
	// The same DID cannot arrive twice.
	requireXRPCError(t, create(alice.DID, serviceAuth(alice, newDID)), 400, "InvalidRequest")
	// Not active before the DID document points here.
	requireXRPCError(t, dst.post("com.atproto.server.activateAccount", nil, access), 400, "InvalidRequest")

	// The old PDS signs the move; the new one submits it.
	creds := dst.get("com.atproto.identity.getRecommendedDidCredentials", nil, access)
	requireOK(t, creds)
	requireOK(t, old.post("com.atproto.identity.requestPlcOperationSignature", nil, alice.Access))
	signed := old.post("com.atproto.identity.signPlcOperation", map[string]any{
		"token":               old.mailedToken(alice.DID, mail.PurposePLCOperation),
		"rotationKeys":        creds.JSON["rotationKeys"],
		"verificationMethods": creds.JSON["verificationMethods"],
		"services":            creds.JSON["services"],
		"alsoKnownAs":         creds.JSON["alsoKnownAs"],
	}, alice.Access)
	requireOK(t, signed)
	requireOK(t, dst.post("com.atproto.identity.submitPlcOperation", map[string]any{"operation": signed.JSON["operation"]}, access))
	requireOK(t, dst.post("com.atproto.server.activateAccount", nil, access))
	requireOK(t, old.post("com.atproto.server.deactivateAccount", map[string]any{}, alice.Access))

	st = dst.get("com.atproto.server.checkAccountStatus", nil, access)
	requireOK(t, st)
	require.Equal(t, true, st.JSON["activated"])
	require.Equal(t, true, st.JSON["validDid"])
	// Nothing about alice on the new firehose before activation; then, in order,
	// #identity, #account active, #sync.
	evs := fh.waitFor(t, "alice's #sync", func(evs []*firehose.Event) bool {
		for _, ev := range evs {
			if ev.Sync != nil && ev.Sync.Did == alice.DID {
				return true
			}
		}
		return false
	})
	var kinds []string
	for _, ev := range evs {
		if ev.DID() == alice.DID {
			kinds = append(kinds, ev.Type)
		}
	}
	require.Equal(t, []string{firehose.TypeIdentity, firehose.TypeAccount, firehose.TypeSync}, kinds)
	// The new PDS writes for alice now.
	requireOK(t, dst.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "record": post("hello from my new home")}, access))
}

package pds_test

import (
	"bytes"
	"context"
	"net/url"
	"testing"

	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/hearth-social/hearth/pds"
	"github.com/hearth-social/hearth/pds/mail"
	"github.com/hearth-social/hearth/pds/plc"
	"github.com/stretchr/testify/require"
)

// An account moves from one Hearth to another on the same PLC directory: created on
// the new PDS with its DID and a service-auth token from the old one (deactivated, no
// events), the DID document moved by the old PDS's signed operation, then activated.
func TestAccountArrives(t *testing.T) {
	old := newEnv(t)
	alice := old.createAccount("alice")
	postRkey := old.createPost(alice, post("written on the old PDS"))
	requireOK(t, old.post("com.atproto.repo.putRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.actor.profile", "rkey": "self",
		"record": map[string]any{"$type": "app.bsky.actor.profile", "displayName": "Alice"}}, alice.Access))
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
	// The repo comes over as a CAR exported from the old PDS. Bad CARs change nothing.
	exportCAR := func(a *account) []byte {
		r := old.raw("GET", "com.atproto.sync.getRepo", "did="+a.DID, nil, "", nil)
		require.Equal(t, 200, r.Status)
		return r.Body
	}
	importCAR := func(car []byte) *resp {
		return dst.raw("POST", "com.atproto.repo.importRepo", "", car, access, map[string]string{"Content-Type": "application/vnd.ipld.car"})
	}
	car := exportCAR(alice)
	requireXRPCError(t, importCAR(exportCAR(bob)), 400, "InvalidRequest")
	tampered := bytes.Clone(car)
	tampered[len(tampered)-10] ^= 0xff
	requireXRPCError(t, importCAR(tampered), 400, "InvalidRequest")
	requireXRPCError(t, importCAR(car[:len(car)/2]), 400, "InvalidRequest")
	requireXRPCError(t, importCAR([]byte("not a car")), 400, "InvalidRequest")
	st = dst.get("com.atproto.server.checkAccountStatus", nil, access)
	require.EqualValues(t, 0, st.JSON["indexedRecords"], "nothing written by a refused import")
	// An active account cannot import over its live repo.
	requireXRPCError(t, old.raw("POST", "com.atproto.repo.importRepo", "", car, alice.Access, map[string]string{"Content-Type": "application/vnd.ipld.car"}), 400, "InvalidRequest")
	requireOK(t, importCAR(car))
	requireOK(t, importCAR(car)) // a retry replaces the first import
	st = dst.get("com.atproto.server.checkAccountStatus", nil, access)
	require.EqualValues(t, 2, st.JSON["indexedRecords"], "alice's post and profile")
	// The new head is signed by the new PDS's key for alice, at a fresh rev.
	oldHead := old.get("com.atproto.sync.getLatestCommit", url.Values{"did": {alice.DID}}, "")
	require.NotEqual(t, oldHead.Str("cid"), st.Str("repoCommit"))
	require.Greater(t, st.Str("repoRev"), oldHead.Str("rev"))

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
	// Alice's old post is served by the new PDS, and its getRepo verifies.
	requireOK(t, dst.get("com.atproto.repo.getRecord", url.Values{"repo": {alice.DID}, "collection": {"app.bsky.feed.post"}, "rkey": {postRkey}}, ""))
	exported := dst.raw("GET", "com.atproto.sync.getRepo", "did="+alice.DID, nil, "", nil)
	require.Equal(t, 200, exported.Status)
	commit, rp, err := indigorepo.LoadRepoFromCAR(context.Background(), bytes.NewReader(exported.Body))
	require.NoError(t, err)
	doc, err := (&plc.Client{BaseURL: old.plc.URL}).Resolve(context.Background(), syntax.DID(alice.DID))
	require.NoError(t, err)
	pub, err := identityOf(doc).PublicKey()
	require.NoError(t, err)
	require.NoError(t, commit.VerifySignature(pub), "the new head verifies against the moved DID document")
	_, _, err = rp.GetRecordBytes(context.Background(), "app.bsky.feed.post", syntax.RecordKey(postRkey))
	require.NoError(t, err)
	// The new PDS writes for alice now.
	requireOK(t, dst.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "record": post("hello from my new home")}, access))
}

// importRepo refuses a CAR over --max-import-size, however it is sent.
func TestImportRepoSizeCap(t *testing.T) {
	e := newEnv(t, func(c *pds.Config) { c.MaxImportBytes = 1000 })
	alice := e.createAccount("alice")
	requireOK(t, e.post("com.atproto.server.deactivateAccount", map[string]any{}, alice.Access))
	big := bytes.Repeat([]byte{1}, 5000)
	r := e.raw("POST", "com.atproto.repo.importRepo", "", big, alice.Access, map[string]string{"Content-Type": "application/vnd.ipld.car"})
	requireXRPCError(t, r, 413, "PayloadTooLarge")
}

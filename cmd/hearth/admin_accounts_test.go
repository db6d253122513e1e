package main

import (
	"bytes"
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/hearth-social/hearth/pds"
	"github.com/hearth-social/hearth/pds/mail"
	"github.com/stretchr/testify/require"
)

// adminRunner runs `hearth admin SUB... [flags] ARGS` against n; flags go before the
// arguments (urfave/cli stops parsing flags at the first argument).
func adminRunner(t *testing.T, n *testnet.Net) func(sub []string, args ...string) (string, error) {
	return func(sub []string, args ...string) (string, error) {
		t.Helper()
		var out, errOut bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		full := append(append([]string{"hearth", "admin"}, sub...), "--pds", n.URL(), "--admin-password", testnet.AdminPassword)
		err := newApp(&out, &errOut).RunContext(ctx, append(full, args...))
		return strings.TrimSpace(out.String()), err
	}
}

func cmd(words ...string) []string { return words }

// TestAdminAccountCommands drives `hearth admin accounts list/search/info`, `email`,
// `send-email` and `reset-password` against a running PDS.
func TestAdminAccountCommands(t *testing.T) {
	n := testnet.Start(t)
	run := adminRunner(t, n)
	alice, bob := n.Client.CreateAccount(t, "alice"), n.Client.CreateAccount(t, "bob")

	out, err := run(cmd("accounts", "list"))
	require.NoError(t, err)
	require.Contains(t, out, alice.DID)
	require.Contains(t, out, "bob@example.com")
	require.Regexp(t, regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(alice.DID)+`\s+alice\.test\s+alice@example\.com\s+active$`), out)
	out, err = run(cmd("accounts", "list"), "--limit", "1")
	require.NoError(t, err)
	require.Len(t, strings.Split(out, "\n"), 2, "a header and one account")
	out, err = run(cmd("accounts", "search"), "bo")
	require.NoError(t, err)
	require.Contains(t, out, bob.DID)
	require.NotContains(t, out, alice.DID)
	_, err = run(cmd("accounts", "search"))
	require.Error(t, err)

	out, err = run(cmd("accounts", "info"), "@alice.test")
	require.NoError(t, err)
	require.Contains(t, out, `"did": "`+alice.DID+`"`)
	require.Contains(t, out, `"repoBytes"`)
	_, err = run(cmd("accounts", "info"), "nobody.test")
	require.ErrorContains(t, err, "resolving nobody.test")
	_, err = run(cmd("accounts", "info"), "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
	require.ErrorContains(t, err, "NotFound")

	out, err = run(cmd("email"), "alice.test", "Alice-New@example.com")
	require.NoError(t, err)
	require.Equal(t, alice.DID+"'s email is now alice-new@example.com", out)
	_, err = run(cmd("email"), alice.DID, "bob@example.com")
	require.ErrorContains(t, err, "already in use")
	_, err = run(cmd("email"), alice.DID)
	require.Error(t, err)

	out, err = run(cmd("send-email"), "--subject", "Hello from the admin", alice.DID, "Please", "read", "this.")
	require.NoError(t, err)
	require.Equal(t, "mailed "+alice.DID, out)
	msgs, err := mail.ReadOutbox(pds.OutboxPath(n.Config.DataDir))
	require.NoError(t, err)
	last := msgs[len(msgs)-1]
	require.Equal(t, "alice-new@example.com", last.To)
	require.Equal(t, "Hello from the admin", last.Subject)
	require.Contains(t, last.Body, "Please read this.")

	out, err = run(cmd("reset-password"), bob.DID)
	require.NoError(t, err)
	m := regexp.MustCompile(`^new password for ` + regexp.QuoteMeta(bob.DID) + `: (\S+)$`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	login := func(pw string) *testnet.Response {
		return n.Client.Post(t, "com.atproto.server.createSession", map[string]any{"identifier": "bob.test", "password": pw}, "")
	}
	testnet.RequireXRPCError(t, login(bob.Password), 401, "AuthenticationRequired")
	testnet.RequireOK(t, login(m[1]))
	testnet.RequireXRPCError(t, n.Client.Post(t, "com.atproto.server.refreshSession", nil, bob.Refresh), 401, "ExpiredToken")
	out, err = run(cmd("reset-password"), "--password", "chosen-pw", "bob.test")
	require.NoError(t, err)
	require.Equal(t, "password of "+bob.DID+" changed", out)
	testnet.RequireOK(t, login("chosen-pw"))

	// A wrong admin password is refused.
	var o, e bytes.Buffer
	err = newApp(&o, &e).RunContext(context.Background(), []string{"hearth", "admin", "accounts", "list", "--pds", n.URL(), "--admin-password", "wrong"})
	require.ErrorContains(t, err, "AuthenticationRequired")
}

// TestAdminInviteCommands drives `hearth admin invites list/disable/enable/disable-codes`.
func TestAdminInviteCommands(t *testing.T) {
	n := testnet.Start(t, func(c *pds.Config) { c.InviteRequired = true })
	run := adminRunner(t, n)
	code, err := run(cmd("invite"), "--uses", "2")
	require.NoError(t, err)
	r := n.Client.Post(t, "com.atproto.server.createAccount", map[string]any{"handle": "alice.test", "password": "pw", "inviteCode": code}, "")
	testnet.RequireOK(t, r)
	alice := r.Str("did")
	other, err := run(cmd("invite"), "--uses", "1")
	require.NoError(t, err)

	out, err := run(cmd("invites", "list"))
	require.NoError(t, err)
	require.Regexp(t, regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(code)+`\s+1\s+2\s+false\s+admin\s`), out)
	require.Contains(t, out, other)
	out, err = run(cmd("invites", "list"), "--sort", "usage", "--limit", "1")
	require.NoError(t, err)
	lines := strings.Split(out, "\n")
	require.Len(t, lines, 2)
	require.True(t, strings.HasPrefix(lines[1], code), "the used code first")
	_, err = run(cmd("invites", "list"), "--sort", "alphabetical")
	require.ErrorContains(t, err, "unknown sort")

	out, err = run(cmd("invites", "disable"), "--note", "too many invites", "alice.test")
	require.NoError(t, err)
	require.Equal(t, "invites disabled for "+alice, out)
	_, err = run(cmd("invite"), "--uses", "1") // the admin's own codes are still made
	require.NoError(t, err)
	testnet.RequireXRPCError(t, n.Client.Post(t, "com.atproto.server.createInviteCode", map[string]any{"useCount": 1, "forAccount": alice}, "admin"), 400, "InvalidRequest")
	out, err = run(cmd("invites", "enable"), alice)
	require.NoError(t, err)
	require.Equal(t, "invites enabled for "+alice, out)
	testnet.RequireOK(t, n.Client.Post(t, "com.atproto.server.createInviteCode", map[string]any{"useCount": 1, "forAccount": alice}, "admin"))

	out, err = run(cmd("invites", "disable-codes"), other)
	require.NoError(t, err)
	require.Contains(t, out, "disabled 1 code(s)")
	testnet.RequireXRPCError(t, n.Client.Post(t, "com.atproto.server.createAccount", map[string]any{"handle": "bob.test", "password": "pw", "inviteCode": other}, ""), 400, "InvalidInviteCode")
	_, err = run(cmd("invites", "disable-codes"))
	require.ErrorContains(t, err, "name the codes")
}

// TestAdminTakedownCommands drives `hearth admin takedown/restore/status/log` for a
// record and a blob (accounts are covered by TestAdminCommands).
func TestAdminTakedownCommands(t *testing.T) {
	n := testnet.Start(t)
	run := adminRunner(t, n)
	alice := n.Client.CreateAccount(t, "alice")
	uri, _ := n.Client.CreateRecord(t, alice, "app.bsky.feed.post", testnet.Post("reported"))
	rkey := uri[strings.LastIndex(uri, "/")+1:]
	getRecord := func() *testnet.Response {
		return n.Client.Get(t, "com.atproto.repo.getRecord", url.Values{"repo": {alice.DID}, "collection": {"app.bsky.feed.post"}, "rkey": {rkey}}, "")
	}

	byHandle := "at://alice.test/app.bsky.feed.post/" + rkey
	out, err := run(cmd("takedown"), "--reason", "harassment report 12", byHandle)
	require.NoError(t, err)
	require.Equal(t, "took down "+uri, out)
	testnet.RequireXRPCError(t, getRecord(), 400, "RecordNotFound")
	out, err = run(cmd("status"), uri)
	require.NoError(t, err)
	require.Contains(t, out, `"applied":true`)
	out, err = run(cmd("restore"), uri)
	require.NoError(t, err)
	require.Equal(t, "restored "+uri, out)
	testnet.RequireOK(t, getRecord())
	_, err = run(cmd("takedown"), "at://"+alice.DID+"/app.bsky.feed.post/3kaaaaaaaaaaa")
	require.ErrorContains(t, err, "NotFound")
	_, err = run(cmd("takedown"), "at://"+alice.DID)
	require.ErrorContains(t, err, "not the at:// URI of a record")

	// A blob.
	up := n.Client.Do(t, "POST", "com.atproto.repo.uploadBlob", nil, []byte("GIF89a some image bytes"), alice.Access)
	testnet.RequireOK(t, up)
	blob := up.JSON["blob"].(map[string]any)
	c := blob["ref"].(map[string]any)["$link"].(string)
	p := testnet.Post("with a picture")
	p["embed"] = map[string]any{"$type": "app.bsky.embed.images", "images": []any{map[string]any{"alt": "", "image": blob}}}
	n.Client.CreateRecord(t, alice, "app.bsky.feed.post", p)
	getBlob := func() *testnet.Response {
		return n.Client.Get(t, "com.atproto.sync.getBlob", url.Values{"did": {alice.DID}, "cid": {c}}, "")
	}
	require.Equal(t, 200, getBlob().Status)
	out, err = run(cmd("takedown"), "--blob", c, "--reason", "copyright", "alice.test")
	require.NoError(t, err)
	require.Equal(t, "took down blob "+c+" of "+alice.DID, out)
	testnet.RequireXRPCError(t, getBlob(), 400, "BlobNotFound")
	out, err = run(cmd("status"), "--blob", c, alice.DID)
	require.NoError(t, err)
	require.Contains(t, out, `"applied":true`)
	_, err = run(cmd("restore"), "--blob", c, alice.DID)
	require.NoError(t, err)
	require.Equal(t, 200, getBlob().Status)
	_, err = run(cmd("takedown"), "--blob", c, uri)
	require.ErrorContains(t, err, "--blob goes with an account")

	out, err = run(cmd("log"), "--account", "alice.test")
	require.NoError(t, err)
	lines := strings.Split(out, "\n")
	require.Len(t, lines, 5, "a header and four changes:\n%s", out)
	require.Regexp(t, `admin@127\.0\.0\.1\s+restore\s+blob `+c, lines[1])
	require.Regexp(t, `takedown\s+blob `+c+` of `+alice.DID+`\s+copyright$`, lines[2])
	require.Regexp(t, `takedown\s+`+regexp.QuoteMeta(uri)+`\s+harassment report 12$`, lines[4])
	_, err = run(cmd("log"), "--limit", "0")
	require.Error(t, err)
}

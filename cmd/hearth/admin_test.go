package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAdminCommands drives `hearth admin` against a real `hearth serve`: an invite code
// that creates an account, takedown and restore, status, and a confirmed delete.
func TestAdminCommands(t *testing.T) {
	bin := buildHearth(t)
	var ports [2]int
	p := startHearth(t, bin, t.TempDir(), &ports)
	client := &http.Client{Timeout: 10 * time.Second}
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// urfave/cli stops parsing flags at the first argument: flags go first.
		full := []string{"hearth", "admin", args[0], "--pds", p.base, "--admin-password", "x"}
		full = append(full, args[1:]...)
		err := newApp(&out, &errOut).RunContext(ctx, full)
		return strings.TrimSpace(out.String()), err
	}

	code, err := run("invite", "--uses", "1")
	require.NoError(t, err)
	require.NotEmpty(t, code)
	acct, err := call(client, p.base, "com.atproto.server.createAccount", map[string]any{"handle": "admtest.test", "password": "pw", "inviteCode": code}, "")
	require.NoError(t, err)
	did, token := acct["did"].(string), acct["accessJwt"].(string)
	_, err = createPost(client, p.base, did, token, "hello")
	require.NoError(t, err)

	out, err := run("takedown", did)
	require.NoError(t, err)
	require.Contains(t, out, "took down")
	_, err = createPost(client, p.base, did, token, "after takedown")
	require.Error(t, err)
	out, err = run("status", did)
	require.NoError(t, err)
	require.Contains(t, out, `"applied":true`)
	_, err = run("restore", did)
	require.NoError(t, err)
	_, err = createPost(client, p.base, did, token, "restored")
	require.NoError(t, err)

	_, err = run("delete", did)
	require.ErrorContains(t, err, "--yes")
	_, err = run("delete", "--yes", did)
	require.NoError(t, err)
	_, err = call(client, p.base, "com.atproto.server.createSession", map[string]any{"identifier": did, "password": "pw"}, "")
	require.Error(t, err)

	_, err = run("takedown", "not-a-did")
	require.Error(t, err)
	var o, e bytes.Buffer
	err = newApp(&o, &e).RunContext(context.Background(), []string{"hearth", "admin", "invite", "--pds", p.base, "--admin-password", "wrong"})
	require.ErrorContains(t, err, "AuthenticationRequired")
}

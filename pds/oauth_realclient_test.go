package pds_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/hearth-social/hearth/internal/testnet"
)

// TestOAuthRealClient runs the official @atproto/oauth-client-node against Hearth, with
// the sign-in and consent pages driven by headless Chromium (testdata/oauth-client):
// authorize, sign in, consent, callback, getSession, createRecord, getRecord with the
// DPoP-bound token, refresh, revoke; then checks here that the revoked token is refused.
// It also screenshots the sign-in, consent and account pages (see HEARTH_OAUTH_SCREENS).
func TestOAuthRealClient(t *testing.T) {
	br := testnet.RequireBrowser(t)
	// HEARTH_OAUTH_SCREENS=1 writes the screenshots to testdata/oauth-screens (as committed).
	screens := testnet.ScreensDir(t, "HEARTH_OAUTH_SCREENS", "oauth-screens")

	n := testnet.Start(t)
	acct := n.Client.CreateAccount(t, "carol")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, br.Node, "flow.mjs")
	cmd.Dir = br.ScriptDir
	cmd.Env = append(os.Environ(), "PDS_URL="+n.URL(), "PLC_URL="+n.PLCServer.URL, "HANDLE="+acct.Handle,
		"PASSWORD="+acct.Password, "CHROMIUM="+br.Chromium, "SCREENS="+screens)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the OAuth client failed: %v\n%s", err, stderr.String())
	}
	t.Logf("client log:\n%s", stderr.String())
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var out struct {
		AccessToken string          `json:"accessToken"`
		DPoPJWK     json.RawMessage `json:"dpopJwk"`
		DID         string          `json:"did"`
		URI         string          `json:"uri"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &out); err != nil {
		t.Fatalf("client output: %v\n%s", err, stdout.String())
	}
	if out.DID != acct.DID || !strings.HasPrefix(out.URI, "at://"+acct.DID+"/app.bsky.feed.post/") {
		t.Fatalf("client signed in as %s and wrote %s", out.DID, out.URI)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(out.DPoPJWK); err != nil {
		t.Fatalf("DPoP key: %v", err)
	}
	key, ok := jwk.Key.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatalf("DPoP key is %T", jwk.Key)
	}
	// The revoked session's access token, with a valid proof from its own key, is refused.
	c := newOAuthClient(t, n, "atproto")
	c.key = key
	r := c.xrpc(http.MethodGet, "com.atproto.server.getSession", nil, out.AccessToken, nil)
	if r.status != http.StatusUnauthorized || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("revoked token: %d %v %s", r.status, r.header, r.raw)
	}
	// The record the client wrote is there.
	testnet.RequireOK(t, n.Client.Get(t, "com.atproto.repo.getRecord", map[string][]string{
		"repo": {acct.DID}, "collection": {"app.bsky.feed.post"}, "rkey": {out.URI[strings.LastIndex(out.URI, "/")+1:]}}, ""))
}

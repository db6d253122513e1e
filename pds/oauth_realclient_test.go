package pds_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	if testing.Short() {
		t.Skip("-short: skipping the Node OAuth client")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed (.ci/run installs it): skipping the real OAuth client test")
	}
	chromium := os.Getenv("CHROMIUM")
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if chromium != "" {
			break
		}
		chromium, _ = exec.LookPath(name)
	}
	if chromium == "" {
		t.Skip("no chromium found (apt-get install chromium, or set CHROMIUM): skipping the real OAuth client test")
	}
	dir, _ := filepath.Abs(filepath.Join("..", "testdata", "oauth-client"))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@atproto", "oauth-client-node")); err != nil {
		t.Skipf("npm dependencies missing: run `npm ci` in %s (.ci/run does)", dir)
	}
	// Screenshots go to a temporary folder; HEARTH_OAUTH_SCREENS=1 writes them to
	// testdata/oauth-screens (as committed) instead.
	screens := t.TempDir()
	if os.Getenv("HEARTH_OAUTH_SCREENS") != "" {
		screens, _ = filepath.Abs(filepath.Join("..", "testdata", "oauth-screens"))
		if err := os.MkdirAll(screens, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	n := testnet.Start(t)
	acct := n.Client.CreateAccount(t, "carol")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "flow.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PDS_URL="+n.URL(), "PLC_URL="+n.PLCServer.URL, "HANDLE="+acct.Handle,
		"PASSWORD="+acct.Password, "CHROMIUM="+chromium, "SCREENS="+screens)
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

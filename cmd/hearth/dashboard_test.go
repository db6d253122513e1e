package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/stretchr/testify/require"
)

// TestDashboardBrowser runs `hearth serve` with the operator dashboard and drives it in
// headless Chromium (testdata/oauth-client/dashboard.mjs): sign in, search an account,
// open it, take it down and restore it (each checked through the admin XRPC), and
// screenshot every page. HEARTH_DASHBOARD_SCREENS=1 writes the screenshots to
// testdata/dashboard-screens (as committed) instead of a temporary folder.
func TestDashboardBrowser(t *testing.T) {
	br := testnet.RequireBrowser(t)
	screens := testnet.ScreensDir(t, "HEARTH_DASHBOARD_SCREENS", "dashboard-screens")

	port, plcPort, feedPort, dashPort, metricsPort := freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	dash := fmt.Sprintf("http://127.0.0.1:%d", dashPort)
	const password = "dashboard-test-password"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	done := runApp(ctx, &out, "serve", "--data-dir", t.TempDir(),
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--plc-listen", fmt.Sprintf("127.0.0.1:%d", plcPort),
		"--feed-listen", fmt.Sprintf("127.0.0.1:%d", feedPort), "--dashboard-listen", fmt.Sprintf("127.0.0.1:%d", dashPort),
		"--metrics-listen", fmt.Sprintf("127.0.0.1:%d", metricsPort), "--dashboard-sample-every", "250ms", "--admin-password", password, "--server-name", "Kitchen Table")
	defer stopApp(t, cancel, done)
	waitHTTP(t, dash+"/sign-in", done, &out)
	waitHTTP(t, base+"/xrpc/_health", done, &out)

	client := &http.Client{Timeout: 5 * time.Second}
	did, token := newAccount(t, client, base, "frankie")
	newAccount(t, client, base, "grace")
	// Some traffic for the health charts (sampled every 250 ms) and posts for the feed
	// explorer: one human, one the author self-labels as AI-generated.
	feedURI := "at://did:web:localhost%3A" + fmt.Sprint(feedPort) + "/app.bsky.feed.generator/recent"
	for i := range 8 {
		postURI(t, client, base, did, token, fmt.Sprintf("warming up the charts, post %d", i))
		time.Sleep(150 * time.Millisecond)
	}
	aiPost, err := call(client, base, "com.atproto.repo.createRecord", map[string]any{"repo": did, "collection": "app.bsky.feed.post",
		"record": map[string]any{"$type": "app.bsky.feed.post", "text": "a picture I made with an image model", "createdAt": time.Now().UTC().Format(time.RFC3339Nano),
			"labels": map[string]any{"$type": "com.atproto.label.defs#selfLabels", "values": []any{map[string]any{"val": "ai-generated"}}}}}, token)
	require.NoError(t, err)
	post := postURI(t, client, base, did, token, "hello from the dashboard test")
	waitForPost(t, fmt.Sprintf("http://127.0.0.1:%d", feedPort), feedURI, aiPost["uri"].(string))
	waitForPost(t, fmt.Sprintf("http://127.0.0.1:%d", feedPort), feedURI, post)

	run, stop := context.WithTimeout(ctx, 3*time.Minute)
	defer stop()
	cmd := exec.CommandContext(run, br.Node, "dashboard.mjs")
	cmd.Dir = br.ScriptDir
	cmd.Env = append(os.Environ(), "DASH_URL="+dash, "PDS_URL="+base, "ADMIN_PASSWORD="+password, "HANDLE=frankie.test",
		"DID="+did, "CHROMIUM="+br.Chromium, "SCREENS="+screens)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the dashboard browser run failed: %v\n%s\nserve:\n%s", err, stderr.String(), out.String())
	}
	t.Logf("browser log:\n%s", stderr.String())
	require.Contains(t, stdout.String(), `{"ok":true}`)
	for _, name := range []string{"signin", "accounts", "account", "account-takendown", "moderation", "invites", "health", "firehose", "feed"} {
		fi, err := os.Stat(filepath.Join(screens, name+".png"))
		require.NoError(t, err, name)
		require.Greater(t, fi.Size(), int64(1000), name)
	}
	// After the restore the repo is served again, and the log holds both changes.
	r := testnet.NewClient(base, password).Get(t, "com.atproto.repo.listRecords", url.Values{"repo": {did}, "collection": {"app.bsky.feed.post"}}, "")
	require.Equal(t, http.StatusOK, r.Status, "the restored repo is not served: %s", r.Body)
	r = testnet.NewClient(base, password).Get(t, "social.hearth.admin.getModerationLog", url.Values{"did": {did}}, "admin")
	require.Contains(t, string(r.Body), "spam run (browser test)")
	require.Contains(t, string(r.Body), "appeal accepted")
}

// TestServeRefusesRemoteDashboard: a non-loopback --dashboard-listen stops serve (before
// anything starts) unless --dashboard-allow-remote says so.
func TestServeRefusesRemoteDashboard(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:2585", ":2585", "[::]:0", "192.0.2.1:2585"} {
		var out lockedBuffer
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := newApp(&out, &out).RunContext(ctx, []string{"hearth", "serve", "--data-dir", filepath.Join(t.TempDir(), "d"),
			"--listen", "127.0.0.1:0", "--plc-listen", "127.0.0.1:0", "--no-feedgen", "--dashboard-listen", addr})
		cancel()
		require.ErrorContains(t, err, "--dashboard-listen (HEARTH_DASHBOARD_LISTEN)", addr)
		require.ErrorContains(t, err, "not a loopback address", addr)
		require.False(t, strings.Contains(out.String(), "PDS:"), "serve started with %s", addr)
	}
}

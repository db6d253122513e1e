package testnet

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Browser is what the tests that drive Hearth's pages need: Node, headless Chromium and
// the scripts in testdata/oauth-client with their npm packages (@atproto/oauth-client-node,
// puppeteer-core), which .ci/run installs.
type Browser struct {
	Node, Chromium string
	// ScriptDir is testdata/oauth-client (absolute).
	ScriptDir string
}

// RequireBrowser returns the browser tools, or skips the test (with -short, or saying
// what to install) when one is missing. CHROMIUM overrides the browser's path.
func RequireBrowser(t testing.TB) Browser {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping the browser test")
	}
	var b Browser
	var err error
	if b.Node, err = exec.LookPath("node"); err != nil {
		t.Skip("node is not installed (.ci/run installs it)")
	}
	b.Chromium = os.Getenv("CHROMIUM")
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if b.Chromium != "" {
			break
		}
		b.Chromium, _ = exec.LookPath(name)
	}
	if b.Chromium == "" {
		t.Skip("no chromium found (apt-get install chromium, or set CHROMIUM)")
	}
	b.ScriptDir = filepath.Join(repoRoot(), "testdata", "oauth-client")
	for _, pkg := range []string{"puppeteer-core", filepath.Join("@atproto", "oauth-client-node")} {
		if _, err := os.Stat(filepath.Join(b.ScriptDir, "node_modules", pkg)); err != nil {
			t.Skipf("npm dependencies missing: run `npm ci` in %s (.ci/run does)", b.ScriptDir)
		}
	}
	return b
}

// ScreensDir is where a browser test saves its screenshots: a temporary folder, or with
// the environment variable env set, testdata/<committed> (the screenshots kept in git).
func ScreensDir(t testing.TB, env, committed string) string {
	t.Helper()
	if os.Getenv(env) == "" {
		return t.TempDir()
	}
	dir := filepath.Join(repoRoot(), "testdata", committed)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// repoRoot is the module's root folder, found from this file's path.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

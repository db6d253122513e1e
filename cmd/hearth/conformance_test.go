package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestConformance runs the shared black-box client (../shared/conformance, official
// @atproto packages) against a freshly built `hearth serve`: every check must pass.
// .ci/run installs Node; the client's npm dependencies are installed here if missing.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the conformance client")
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "..", "shared", "conformance"))
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(dir, "harness.mjs")); err != nil {
		t.Skipf("conformance client not found at %s (it lives in the workplace's shared folder)", dir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is required for the conformance client: run .ci/run, which installs it")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		npm, err := exec.LookPath("npm")
		require.NoError(t, err, "npm is required to install the conformance client's packages")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "npm ci: %s", out)
	}

	bin := buildHearth(t)
	var ports [2]int
	p := startHearth(t, bin, t.TempDir(), &ports)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "harness.mjs", "conform", "--pds", p.base, "--plc", p.plc, "--admin-password", "x", "--jwt-secret", testJWTSecret)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	text := string(out)
	summary := regexp.MustCompile(`(?m)^(\d+) passed, (\d+) failed, (\d+) skipped$`).FindStringSubmatch(text)
	if summary == nil {
		t.Fatalf("no summary line from the conformance client (err %v):\n%s", err, text)
	}
	t.Logf("conformance: %s", summary[0])
	var fails []string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "FAIL ") {
			fails = append(fails, line)
		}
	}
	require.Equal(t, "0", summary[2], "failed checks:\n%s", strings.Join(fails, "\n"))
	require.Equal(t, "0", summary[3], "skipped checks:\n%s", text)
	require.NoError(t, err)
}

package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
)

// TestServeRejectsBadFlags checks that a bad flag value is a clear error naming the
// flag (and its environment variable), never a panic, and that nothing starts.
func TestServeRejectsBadFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"listen", []string{"--listen", "nonsense"}, "--listen (HEARTH_LISTEN)"},
		{"plc-listen", []string{"--plc-listen", "nope"}, "--plc-listen (HEARTH_PLC_LISTEN)"},
		{"handle domain", []string{"--handle-domains", "not a domain"}, "handle domain"},
		{"hostname", []string{"--hostname", "bad host!"}, "hostname"},
		{"public url", []string{"--public-url", "ftp://x"}, "public URL"},
		{"plc url", []string{"--plc-url", "not a url"}, "PLC URL"},
		{"short jwt secret", []string{"--jwt-secret", "short"}, "--jwt-secret (HEARTH_JWT_SECRET)"},
		{"debug listen not loopback", []string{"--debug-listen", "0.0.0.0:6060"}, "--debug-listen (HEARTH_DEBUG_LISTEN)"},
		{"ai usage default", []string{"--ai-usage-default", "train-ai=maybe"}, "AI usage default"},
		{"server logo over http", []string{"--server-logo-url", "http://cdn.example.com/logo.png"}, "server logo URL"},
		{"server logo javascript", []string{"--server-logo-url", "javascript:alert(1)"}, "server logo URL"},
		{"server logo other host by path", []string{"--server-logo-url", "//evil.example/logo.png"}, "server logo URL"},
		{"server name too long", []string{"--server-name", strings.Repeat("n", 65)}, "server name"},
		{"negative repo quota", []string{"--quota-repo-bytes", "-1"}, "--quota-repo-bytes (HEARTH_QUOTA_REPO_BYTES)"},
		{"negative blob quota", []string{"--quota-blob-bytes", "-5"}, "--quota-blob-bytes (HEARTH_QUOTA_BLOB_BYTES)"},
		{"acme email without tls-acme", []string{"--acme-email", "ops@example.com"}, "--acme-email needs --tls-acme"},
		{"tls-acme for localhost", []string{"--tls-acme"}, "--tls-acme needs --hostname"},
		{"tls listen", []string{"--tls-acme", "--hostname", "pds.example.com", "--tls-listen", "nope"}, "--tls-listen (HEARTH_TLS_LISTEN)"},
		{"acme directory CA without PEM", []string{"--tls-acme", "--hostname", "pds.example.com", "--acme-directory-ca", "flags_test.go"}, "--acme-directory-ca (HEARTH_ACME_DIRECTORY_CA)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			args := append([]string{"hearth", "serve", "--data-dir", filepath.Join(t.TempDir(), "d"),
				"--listen", "127.0.0.1:0", "--plc-listen", "127.0.0.1:0", "--no-feedgen"}, tc.args...)
			err := newApp(&out, &errOut).RunContext(ctx, args)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
	var out, errOut bytes.Buffer
	err := newApp(&out, &errOut).RunContext(context.Background(), []string{"hearth", "--log-level", "loud", "serve"})
	require.ErrorContains(t, err, "--log-level (HEARTH_LOG_LEVEL)")
}

// TestServeRejectsBadTrustList: a --c2pa-trust-list that is missing or holds no
// certificate stops serve (with the feed generator on) with an error naming the flag,
// instead of running with no signer trusted.
func TestServeRejectsBadTrustList(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.pem")
	require.NoError(t, os.WriteFile(empty, []byte("not a certificate\n"), 0o600))
	for name, path := range map[string]string{"missing": filepath.Join(t.TempDir(), "none.pem"), "no certificates": empty} {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := newApp(&out, &errOut).RunContext(ctx, []string{"hearth", "serve", "--data-dir", filepath.Join(t.TempDir(), "d"),
				"--listen", "127.0.0.1:0", "--plc-listen", "127.0.0.1:0", "--feed-listen", "127.0.0.1:0", "--c2pa-trust-list", path})
			require.ErrorContains(t, err, "--c2pa-trust-list (HEARTH_C2PA_TRUST_LIST)")
		})
	}
}

// TestFlagEnvVarsAreOwned checks that an environment variable feeds flags of one name
// only: HEARTH_PLC_URL once fed both serve --plc-url and firehose tail --plc, so
// setting it for tail silently turned off serve's embedded directory.
func TestFlagEnvVarsAreOwned(t *testing.T) {
	owner := map[string]string{}
	var walk func(path string, cmds []*cli.Command)
	check := func(path string, flags []cli.Flag) {
		for _, f := range flags {
			ev, ok := f.(interface{ GetEnvVars() []string })
			if !ok {
				continue
			}
			name := f.Names()[0]
			for _, v := range ev.GetEnvVars() {
				if prev, seen := owner[v]; seen && prev != name {
					t.Errorf("%s: $%s feeds --%s here and --%s elsewhere", path, v, name, prev)
				}
				owner[v] = name
			}
		}
	}
	walk = func(path string, cmds []*cli.Command) {
		for _, c := range cmds {
			check(path+" "+c.Name, c.Flags)
			walk(path+" "+c.Name, c.Subcommands)
		}
	}
	app := newApp(io.Discard, io.Discard)
	check("hearth", app.Flags)
	walk("hearth", app.Commands)
	if len(owner) < 20 {
		t.Fatalf("only %d environment variables found; the walk is broken", len(owner))
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestServeBranding runs `hearth serve` with the server name from --server-name and
// the logo from HEARTH_SERVER_LOGO_URL and checks the account page shows both.
func TestServeBranding(t *testing.T) {
	port, plcPort := freePort(t), freePort(t)
	t.Setenv("HEARTH_SERVER_LOGO_URL", "https://cdn.example.com/hearth-logo.png")
	args := []string{"hearth", "--log-level", "error", "serve", "--data-dir", t.TempDir(), "--no-feedgen",
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--plc-listen", fmt.Sprintf("127.0.0.1:%d", plcPort),
		"--admin-password", "x", "--server-name", "Kitchen Table"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	done := runApp(ctx, &out, args[3:]...) // runApp adds hearth --log-level error

	client := &http.Client{Timeout: 2 * time.Second}
	var page string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v\n%s", err, out.String())
		default:
		}
		res, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/account", port))
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			page = string(b)
			break
		}
	}
	require.NotEmpty(t, page, "the account page never answered\n%s", out.String())
	require.Contains(t, page, "<title>Sign in · Kitchen Table</title>")
	require.Contains(t, page, `<img class="logo" src="https://cdn.example.com/hearth-logo.png"`)
	require.False(t, strings.Contains(page, ">Hearth<"), "the default name is still shown")
	stopApp(t, cancel, done)
}

// Command hearth is Hearth's single binary: the PDS, its embedded PLC directory, the
// firehose tools and (later) the feed generator.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newApp(os.Stdout, os.Stderr).RunContext(ctx, os.Args)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hearth:", err)
		os.Exit(1)
	}
}

// newApp builds the CLI; tests run it without exiting the process.
func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:      "hearth",
		Usage:     "a self-hostable AT Protocol PDS and feed generator",
		Version:   version,
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: []string{"HEARTH_LOG_LEVEL"}},
		},
		Commands: []*cli.Command{
			serveCommand(),
			firehoseCommand(),
			feedCommand(),
			labelerCommand(),
			adminCommand(),
			accountCommand(),
			backupCommand(),
			restoreCommand(),
		},
	}
}

// newLogger builds the process logger from --log-level.
func newLogger(cctx *cli.Context) (*slog.Logger, error) {
	var lvl slog.Level
	switch strings.ToLower(cctx.String("log-level")) {
	case "debug":
		lvl = slog.LevelDebug
	case "info", "":
		lvl = slog.LevelInfo
	case "warn", "warning":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	default:
		return nil, fmt.Errorf("--log-level (HEARTH_LOG_LEVEL) %q: want debug, info, warn or error", cctx.String("log-level"))
	}
	return slog.New(slog.NewTextHandler(cctx.App.ErrWriter, &slog.HandlerOptions{Level: lvl})), nil
}

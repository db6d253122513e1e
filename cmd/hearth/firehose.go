package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	indigoid "github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/gorilla/websocket"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/internal/resolve"
	"github.com/urfave/cli/v2"
)

func firehoseCommand() *cli.Command {
	return &cli.Command{
		Name:  "firehose",
		Usage: "read a com.atproto.sync.subscribeRepos firehose (Hearth's or a relay's)",
		Subcommands: []*cli.Command{{
			Name:      "tail",
			Usage:     "print one line per firehose event, optionally verifying every commit",
			UsageText: "hearth firehose tail --url ws://127.0.0.1:2583 [--cursor N] [--json] [--verify [--plc URL] [--allow-private]] [--limit N]",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "url", Required: true, Usage: "firehose: ws(s):// or http(s):// URL or a bare host (wss), with or without the XRPC path", EnvVars: []string{"HEARTH_FIREHOSE_URL"}},
				&cli.Int64Flag{Name: "cursor", Usage: "replay events after this seq (default: live only)"},
				&cli.BoolFlag{Name: "json", Usage: "print JSON lines"},
				&cli.BoolFlag{Name: "verify", Usage: "verify each #commit (signature and sync 1.1 inversion) and #sync against the author's key"},
				&cli.StringFlag{Name: "plc", Value: "https://plc.directory", Usage: "PLC directory used to resolve did:plc signing keys for --verify", EnvVars: []string{"HEARTH_FIREHOSE_PLC_URL"}},
				&cli.BoolFlag{Name: "allow-private", Usage: "with --verify, let did:web documents be fetched from loopback and private addresses (development)"},
				&cli.IntFlag{Name: "limit", Usage: "stop after this many events (0: no limit)"},
			},
			Action: runFirehoseTail,
		}},
	}
}

func runFirehoseTail(cctx *cli.Context) error {
	ctx := cctx.Context
	stderr := cctx.App.ErrWriter
	var cursor *int64
	if cctx.IsSet("cursor") {
		c := cctx.Int64("cursor")
		if c < 0 {
			return fmt.Errorf("--cursor %d: must not be negative", c)
		}
		cursor = &c
	}
	limit := cctx.Int("limit")
	if limit < 0 {
		return fmt.Errorf("--limit %d: must not be negative", limit)
	}
	asJSON := cctx.Bool("json")
	var dir indigoid.Directory
	if cctx.Bool("verify") {
		plc := strings.TrimRight(cctx.String("plc"), "/")
		if u, err := url.Parse(plc); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--plc %q: want an http(s) URL", cctx.String("plc"))
		}
		// Hosts named by did:web come from the stream, so they go through the dial guard;
		// the PLC directory is the operator's choice.
		dir = resolve.New(resolve.Config{PLCURL: plc, AllowPrivate: cctx.Bool("allow-private"), UserAgent: "hearth-firehose"})
	}

	conn, err := firehose.Dial(ctx, cctx.String("url"), cursor)
	if err != nil {
		return err
	}
	defer conn.Close()

	out := bufio.NewWriter(cctx.App.Writer)
	defer out.Flush()
	var n, invalid int
	var lastSeq int64
	defer func() {
		if lastSeq > 0 {
			fmt.Fprintf(stderr, "hearth: %d events; last seq %d (resume with --cursor %d)\n", n, lastSeq, lastSeq)
		}
	}()
	for limit == 0 || n < limit {
		ev, err := conn.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break // interrupted: a clean stop
			}
			var ce *websocket.CloseError
			if errors.As(err, &ce) && (ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseGoingAway) {
				fmt.Fprintf(stderr, "hearth: the firehose closed the stream (%d %s)\n", ce.Code, ce.Text)
				break
			}
			return fmt.Errorf("reading the firehose: %w", err)
		}
		n++
		if ev.Seq > 0 {
			lastSeq = ev.Seq
		}
		var verr error
		if dir != nil {
			verr = verifyEvent(ctx, dir, ev)
		}
		fmt.Fprintln(out, firehose.FormatLine(ev, asJSON))
		if err := out.Flush(); err != nil {
			return err // stdout is gone (e.g. a closed pipe)
		}
		if ev.Type == firehose.TypeError {
			return fmt.Errorf("the firehose ended the stream with error %s: %s", ev.Error.Error, ev.Error.Message)
		}
		if verr != nil {
			if ctx.Err() != nil {
				break
			}
			invalid++
			fmt.Fprintf(stderr, "hearth: seq %d: %v\n", ev.Seq, verr)
		}
	}
	if invalid > 0 {
		return fmt.Errorf("%d of %d events failed verification", invalid, n)
	}
	return nil
}

// verifyEvent verifies ev; when it fails, the author's cached identity is dropped and it
// is tried once more (the account may have rotated its key).
func verifyEvent(ctx context.Context, dir indigoid.Directory, ev *firehose.Event) error {
	err := firehose.Verify(ctx, dir, ev)
	if err == nil || ev.DID() == "" {
		return err
	}
	did, perr := syntax.ParseDID(ev.DID())
	if perr != nil {
		return err
	}
	dir.Purge(ctx, did.AtIdentifier())
	return firehose.Verify(ctx, dir, ev)
}

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/urfave/cli/v2"
)

// adminCommand holds the self-hoster's account and invite tools. They call the running
// PDS's admin XRPC methods with the admin password, so they work the same on the host
// and from elsewhere.
func adminCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "pds", Value: "http://127.0.0.1:2583", Usage: "PDS URL", EnvVars: []string{"HEARTH_PDS_URL"}},
		&cli.StringFlag{Name: "admin-password", Usage: "admin password (default: read from DATA-DIR/admin-password)", EnvVars: []string{"HEARTH_ADMIN_PASSWORD"}},
		&cli.StringFlag{Name: "data-dir", Value: "./data", Usage: "data dir holding the generated admin password", EnvVars: []string{"HEARTH_DATA_DIR"}},
	}
	did := func(cctx *cli.Context) (syntax.DID, error) {
		if cctx.NArg() != 1 {
			return "", errors.New("expected one DID argument")
		}
		return syntax.ParseDID(cctx.Args().First())
	}
	return &cli.Command{
		Name:  "admin",
		Usage: "administer accounts and invite codes on a running PDS",
		Subcommands: []*cli.Command{
			adminMailCommand(),
			{
				Name:  "invite",
				Usage: "create an invite code",
				Flags: append([]cli.Flag{&cli.IntFlag{Name: "uses", Value: 1, Usage: "how many accounts the code can create"}}, flags...),
				Action: func(cctx *cli.Context) error {
					var out struct {
						Code string `json:"code"`
					}
					if err := adminCall(cctx, "com.atproto.server.createInviteCode", map[string]any{"useCount": cctx.Int("uses")}, &out); err != nil {
						return err
					}
					fmt.Fprintln(cctx.App.Writer, out.Code)
					return nil
				},
			},
			{
				Name: "handle",
				Usage: "set an account's handle; one outside the PDS's domains must resolve to the DID (DNS TXT " +
					"_atproto.HANDLE \"did=DID\", or DID at https://HANDLE/.well-known/atproto-did); the same handle again re-verifies it",
				ArgsUsage: "DID HANDLE",
				Flags:     flags,
				Action: func(cctx *cli.Context) error {
					if cctx.NArg() != 2 {
						return errors.New("expected two arguments: DID HANDLE")
					}
					d, err := syntax.ParseDID(cctx.Args().Get(0))
					if err != nil {
						return err
					}
					h, err := syntax.ParseHandle(strings.TrimPrefix(cctx.Args().Get(1), "@"))
					if err != nil {
						return err
					}
					h = h.Normalize()
					if err := adminCall(cctx, "com.atproto.admin.updateAccountHandle", map[string]any{"did": d.String(), "handle": h.String()}, nil); err != nil {
						return err
					}
					fmt.Fprintf(cctx.App.Writer, "%s is now %s\n", d, h)
					return nil
				},
			},
			takedownCommand("takedown", "take down an account (its repo stops being served; #account takendown), a record or a blob (no longer served; kept, so it can be restored)", true, flags),
			takedownCommand("restore", "lift a takedown of an account, a record or a blob", false, flags),
			adminStatusCommand(flags),
			adminLogCommand(flags),
			adminRelaysCommand(flags),
			adminAccountsCommand(flags),
			adminEmailCommand(flags),
			adminSendEmailCommand(flags),
			adminResetPasswordCommand(flags),
			adminInvitesCommand(flags),
			{
				Name:      "delete",
				Usage:     "delete an account's data (#account deleted); cannot be undone",
				ArgsUsage: "DID",
				Flags:     append([]cli.Flag{&cli.BoolFlag{Name: "yes", Usage: "confirm the deletion"}}, flags...),
				Action: func(cctx *cli.Context) error {
					d, err := did(cctx)
					if err != nil {
						return err
					}
					if !cctx.Bool("yes") {
						return errors.New("deleting an account cannot be undone: add --yes to confirm")
					}
					if err := adminCall(cctx, "com.atproto.admin.deleteAccount", map[string]any{"did": d.String()}, nil); err != nil {
						return err
					}
					fmt.Fprintf(cctx.App.Writer, "deleted %s\n", d)
					return nil
				},
			},
		},
	}
}

func adminClient(cctx *cli.Context) (*xrpc.Client, error) {
	c, err := xrpc.NewClient(cctx.String("pds"))
	if err != nil {
		return nil, fmt.Errorf("--pds (HEARTH_PDS_URL): %w", err)
	}
	pw := cctx.String("admin-password")
	if pw == "" {
		b, err := os.ReadFile(filepath.Join(cctx.String("data-dir"), "admin-password"))
		if err != nil {
			return nil, fmt.Errorf("no --admin-password (HEARTH_ADMIN_PASSWORD) and none in --data-dir: %w", err)
		}
		pw = strings.TrimSpace(string(b))
	}
	c.AdminPassword = pw
	return c, nil
}

func adminCall(cctx *cli.Context, nsid string, in, out any) error {
	c, err := adminClient(cctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cctx.Context, 30*time.Second)
	defer cancel()
	return c.Procedure(ctx, nsid, "", in, out)
}

package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/urfave/cli/v2"
)

// The `hearth admin` commands for accounts, invites, email, passwords, takedowns of
// records and blobs, and the moderation log. Each calls the running PDS's admin API
// (com.atproto.admin.*) through adminClient, as goat's `pds admin` would.

// adminQuery is adminCall for a query.
func adminQuery(cctx *cli.Context, nsid string, params url.Values, out any) error {
	c, err := adminClient(cctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cctx.Context, 30*time.Second)
	defer cancel()
	return c.Query(ctx, nsid, "", params, out)
}

// accountArg reads a DID, or a handle the PDS resolves, from the command line.
func accountArg(cctx *cli.Context, raw string) (syntax.DID, error) {
	id, err := syntax.ParseAtIdentifier(strings.TrimPrefix(raw, "@"))
	if err != nil {
		return "", fmt.Errorf("%q is neither a DID nor a handle", raw)
	}
	if did, err := id.AsDID(); err == nil {
		return did, nil
	}
	h, _ := id.AsHandle()
	var out struct {
		DID string `json:"did"`
	}
	if err := adminQuery(cctx, "com.atproto.identity.resolveHandle", url.Values{"handle": {h.Normalize().String()}}, &out); err != nil {
		return "", fmt.Errorf("resolving %s: %w", h, err)
	}
	return syntax.ParseDID(out.DID)
}

func oneAccountArg(cctx *cli.Context) (syntax.DID, error) {
	if cctx.NArg() != 1 {
		return "", errors.New("expected one argument: a DID or handle")
	}
	return accountArg(cctx, cctx.Args().First())
}

// accountRow is what the account lists show of com.atproto.admin.defs#accountView.
type accountRow struct {
	DID    string `json:"did"`
	Handle string `json:"handle"`
	Email  string `json:"email"`
	Status string `json:"status"`
}

func printAccounts(cctx *cli.Context, rows []accountRow) error {
	tw := tabwriter.NewWriter(cctx.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DID\tHANDLE\tEMAIL\tSTATUS")
	for _, a := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.DID, a.Handle, a.Email, a.Status)
	}
	return tw.Flush()
}

// searchAll pages through searchAccounts, at most max accounts (0: all).
func searchAll(cctx *cli.Context, params url.Values, max int) ([]accountRow, error) {
	var rows []accountRow
	for cursor := ""; ; {
		p := url.Values{"limit": {"100"}}
		for k, v := range params {
			p[k] = v
		}
		if cursor != "" {
			p.Set("cursor", cursor)
		}
		var out struct {
			Accounts []accountRow `json:"accounts"`
			Cursor   string       `json:"cursor"`
		}
		if err := adminQuery(cctx, "com.atproto.admin.searchAccounts", p, &out); err != nil {
			return nil, err
		}
		rows = append(rows, out.Accounts...)
		if max > 0 && len(rows) >= max {
			return rows[:max], nil
		}
		if out.Cursor == "" || len(out.Accounts) == 0 {
			return rows, nil
		}
		cursor = out.Cursor
	}
}

func adminAccountsCommand(flags []cli.Flag) *cli.Command {
	return &cli.Command{
		Name:  "accounts",
		Usage: "list, search and show the accounts of the PDS",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list every account (DID, handle, email, status)",
				Flags: append([]cli.Flag{&cli.IntFlag{Name: "limit", Usage: "show at most this many (0: all)"}}, flags...),
				Action: func(cctx *cli.Context) error {
					if cctx.Int("limit") < 0 {
						return errors.New("--limit must be 0 (all) or positive")
					}
					rows, err := searchAll(cctx, nil, cctx.Int("limit"))
					if err != nil {
						return err
					}
					return printAccounts(cctx, rows)
				},
			},
			{
				Name:      "search",
				Usage:     "list the accounts whose handle or email starts with PREFIX",
				ArgsUsage: "PREFIX",
				Flags:     flags,
				Action: func(cctx *cli.Context) error {
					if cctx.NArg() != 1 || strings.TrimSpace(cctx.Args().First()) == "" {
						return errors.New("expected one argument: the start of a handle or email address")
					}
					rows, err := searchAll(cctx, url.Values{"term": {cctx.Args().First()}}, 0)
					if err != nil {
						return err
					}
					return printAccounts(cctx, rows)
				},
			},
			{
				Name:      "info",
				Usage:     "show an account: email, status, invites, storage use and quotas (JSON)",
				ArgsUsage: "DID|HANDLE",
				Flags:     flags,
				Action: func(cctx *cli.Context) error {
					did, err := oneAccountArg(cctx)
					if err != nil {
						return err
					}
					var out json.RawMessage
					if err := adminQuery(cctx, "com.atproto.admin.getAccountInfo", url.Values{"did": {did.String()}}, &out); err != nil {
						return err
					}
					return printJSON(cctx, out)
				},
			},
		},
	}
}

func printJSON(cctx *cli.Context, raw json.RawMessage) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintln(cctx.App.Writer, string(b))
	return nil
}

func adminEmailCommand(flags []cli.Flag) *cli.Command {
	return &cli.Command{
		Name:      "email",
		Usage:     "set an account's email address (the new address starts unconfirmed)",
		ArgsUsage: "DID|HANDLE ADDRESS",
		Flags:     flags,
		Action: func(cctx *cli.Context) error {
			if cctx.NArg() != 2 {
				return errors.New("expected two arguments: DID|HANDLE ADDRESS")
			}
			did, err := accountArg(cctx, cctx.Args().Get(0))
			if err != nil {
				return err
			}
			addr := strings.TrimSpace(cctx.Args().Get(1))
			if err := adminCall(cctx, "com.atproto.admin.updateAccountEmail", map[string]any{"account": did.String(), "email": addr}, nil); err != nil {
				return err
			}
			fmt.Fprintf(cctx.App.Writer, "%s's email is now %s\n", did, strings.ToLower(addr))
			return nil
		},
	}
}

func adminSendEmailCommand(flags []cli.Flag) *cli.Command {
	return &cli.Command{
		Name:      "send-email",
		Usage:     "mail a message to an account's email address through the PDS's mailer",
		ArgsUsage: "DID|HANDLE MESSAGE",
		Flags:     append([]cli.Flag{&cli.StringFlag{Name: "subject", Usage: "the mail's subject (default: \"Message via your PDS\")"}}, flags...),
		Action: func(cctx *cli.Context) error {
			if cctx.NArg() < 2 {
				return errors.New("expected DID|HANDLE and the message")
			}
			did, err := accountArg(cctx, cctx.Args().Get(0))
			if err != nil {
				return err
			}
			var desc struct {
				DID string `json:"did"`
			}
			if err := adminQuery(cctx, "com.atproto.server.describeServer", nil, &desc); err != nil {
				return err
			}
			in := map[string]any{"recipientDid": did.String(), "senderDid": desc.DID, "content": strings.Join(cctx.Args().Slice()[1:], " ")}
			if s := cctx.String("subject"); s != "" {
				in["subject"] = s
			}
			if err := adminCall(cctx, "com.atproto.admin.sendEmail", in, nil); err != nil {
				return err
			}
			fmt.Fprintf(cctx.App.Writer, "mailed %s\n", did)
			return nil
		},
	}
}

func adminResetPasswordCommand(flags []cli.Flag) *cli.Command {
	return &cli.Command{
		Name: "reset-password",
		Usage: "set a new password for an account (generated and printed unless --password is given); " +
			"every session and app password of the account ends",
		ArgsUsage: "DID|HANDLE",
		Flags:     append([]cli.Flag{&cli.StringFlag{Name: "password", Usage: "the new password (default: a random one, printed)", EnvVars: []string{"HEARTH_NEW_PASSWORD"}}}, flags...),
		Action: func(cctx *cli.Context) error {
			did, err := oneAccountArg(cctx)
			if err != nil {
				return err
			}
			pw := cctx.String("password")
			generated := pw == ""
			if generated {
				pw = rand.Text()
			}
			if err := adminCall(cctx, "com.atproto.admin.updateAccountPassword", map[string]any{"did": did.String(), "password": pw}, nil); err != nil {
				return err
			}
			if generated {
				fmt.Fprintf(cctx.App.Writer, "new password for %s: %s\n", did, pw)
			} else {
				fmt.Fprintf(cctx.App.Writer, "password of %s changed\n", did)
			}
			return nil
		},
	}
}

// inviteCode is com.atproto.server.defs#inviteCode as the lists show it.
type inviteCode struct {
	Code       string `json:"code"`
	Available  int    `json:"available"`
	Disabled   bool   `json:"disabled"`
	ForAccount string `json:"forAccount"`
	CreatedAt  string `json:"createdAt"`
	Uses       []struct {
		UsedBy string `json:"usedBy"`
	} `json:"uses"`
}

func adminInvitesCommand(flags []cli.Flag) *cli.Command {
	note := &cli.StringFlag{Name: "note", Usage: "why (kept with the account)"}
	accountInvites := func(name, usage, nsid, done string) *cli.Command {
		return &cli.Command{
			Name:      name,
			Usage:     usage,
			ArgsUsage: "DID|HANDLE",
			Flags:     append([]cli.Flag{note}, flags...),
			Action: func(cctx *cli.Context) error {
				did, err := oneAccountArg(cctx)
				if err != nil {
					return err
				}
				in := map[string]any{"account": did.String()}
				if n := cctx.String("note"); n != "" {
					in["note"] = n
				}
				if err := adminCall(cctx, nsid, in, nil); err != nil {
					return err
				}
				fmt.Fprintf(cctx.App.Writer, "%s %s\n", done, did)
				return nil
			},
		}
	}
	return &cli.Command{
		Name:  "invites",
		Usage: "list invite codes, disable codes, and turn accounts' invites off or on (`hearth admin invite` creates a code)",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list invite codes with their uses",
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "sort", Value: "recent", Usage: "recent (newest first) or usage (most used first)"},
					&cli.IntFlag{Name: "limit", Usage: "show at most this many (0: all)"},
				}, flags...),
				Action: func(cctx *cli.Context) error {
					var codes []inviteCode
					for cursor := ""; ; {
						p := url.Values{"sort": {cctx.String("sort")}, "limit": {"500"}}
						if cursor != "" {
							p.Set("cursor", cursor)
						}
						var out struct {
							Codes  []inviteCode `json:"codes"`
							Cursor string       `json:"cursor"`
						}
						if err := adminQuery(cctx, "com.atproto.admin.getInviteCodes", p, &out); err != nil {
							return err
						}
						codes = append(codes, out.Codes...)
						if out.Cursor == "" || len(out.Codes) == 0 || (cctx.Int("limit") > 0 && len(codes) >= cctx.Int("limit")) {
							break
						}
						cursor = out.Cursor
					}
					if l := cctx.Int("limit"); l > 0 && len(codes) > l {
						codes = codes[:l]
					}
					tw := tabwriter.NewWriter(cctx.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "CODE\tUSED\tAVAILABLE\tDISABLED\tFOR\tCREATED")
					for _, c := range codes {
						fmt.Fprintf(tw, "%s\t%d\t%d\t%t\t%s\t%s\n", c.Code, len(c.Uses), c.Available, c.Disabled, c.ForAccount, c.CreatedAt)
					}
					return tw.Flush()
				},
			},
			{
				Name:      "disable-codes",
				Usage:     "disable invite codes, by code and/or every code made for --account",
				ArgsUsage: "[CODE...]",
				Flags:     append([]cli.Flag{&cli.StringSliceFlag{Name: "account", Usage: "disable every code of this account (DID or handle; repeatable)"}}, flags...),
				Action: func(cctx *cli.Context) error {
					codes := cctx.Args().Slice()
					var accounts []string
					for _, a := range cctx.StringSlice("account") {
						did, err := accountArg(cctx, a)
						if err != nil {
							return err
						}
						accounts = append(accounts, did.String())
					}
					if len(codes) == 0 && len(accounts) == 0 {
						return errors.New("name the codes to disable, or --account")
					}
					if err := adminCall(cctx, "com.atproto.admin.disableInviteCodes", map[string]any{"codes": codes, "accounts": accounts}, nil); err != nil {
						return err
					}
					fmt.Fprintf(cctx.App.Writer, "disabled %d code(s) and the codes of %d account(s)\n", len(codes), len(accounts))
					return nil
				},
			},
			accountInvites("disable", "give an account no more invite codes (its codes keep working)", "com.atproto.admin.disableAccountInvites", "invites disabled for"),
			accountInvites("enable", "let an account be given invite codes again", "com.atproto.admin.enableAccountInvites", "invites enabled for"),
		},
	}
}

// subjectArg reads what a takedown names: an account (DID or handle), a record (its
// at:// URI) or, with --blob CID, one of an account's blobs. A record's current CID, which
// a strongRef needs, comes from getSubjectStatus.
func subjectArg(cctx *cli.Context) (map[string]any, string, error) {
	if cctx.NArg() != 1 {
		return nil, "", errors.New("expected one argument: a DID or handle (with --blob CID for a blob), or a record's at:// URI")
	}
	arg := cctx.Args().First()
	if strings.HasPrefix(arg, "at://") {
		if cctx.String("blob") != "" {
			return nil, "", errors.New("--blob goes with an account, not a record URI")
		}
		u, err := syntax.ParseATURI(arg)
		if err != nil || u.Collection() == "" || u.RecordKey() == "" {
			return nil, "", fmt.Errorf("%q is not the at:// URI of a record", arg)
		}
		did, err := accountArg(cctx, u.Authority().String())
		if err != nil {
			return nil, "", err
		}
		uri := "at://" + did.String() + "/" + u.Collection().String() + "/" + u.RecordKey().String()
		var st struct {
			Subject struct {
				CID string `json:"cid"`
			} `json:"subject"`
		}
		if err := adminQuery(cctx, "com.atproto.admin.getSubjectStatus", url.Values{"uri": {uri}}, &st); err != nil {
			return nil, "", err
		}
		return map[string]any{"$type": "com.atproto.repo.strongRef", "uri": uri, "cid": st.Subject.CID}, uri, nil
	}
	did, err := accountArg(cctx, arg)
	if err != nil {
		return nil, "", err
	}
	if c := cctx.String("blob"); c != "" {
		return map[string]any{"$type": "com.atproto.admin.defs#repoBlobRef", "did": did.String(), "cid": c}, "blob " + c + " of " + did.String(), nil
	}
	return map[string]any{"$type": "com.atproto.admin.defs#repoRef", "did": did.String()}, did.String(), nil
}

// takedownCommand applies (takedown) or lifts (restore) a takedown of an account, a
// record or a blob, logged with --reason.
func takedownCommand(name, usage string, applied bool, flags []cli.Flag) *cli.Command {
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "DID|HANDLE | at://DID/COLLECTION/RKEY | --blob CID DID|HANDLE",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "blob", Usage: "the CID of one of the account's blobs"},
			&cli.StringFlag{Name: "reason", Usage: "why (kept in the moderation log: `hearth admin log`)"},
		}, flags...),
		Action: func(cctx *cli.Context) error {
			sub, what, err := subjectArg(cctx)
			if err != nil {
				return err
			}
			in := map[string]any{"subject": sub, "takedown": map[string]any{"applied": applied}}
			if r := cctx.String("reason"); r != "" {
				in["comment"] = r
			}
			if err := adminCall(cctx, "com.atproto.admin.updateSubjectStatus", in, nil); err != nil {
				return err
			}
			verb := "restored"
			if applied {
				verb = "took down"
			}
			fmt.Fprintf(cctx.App.Writer, "%s %s\n", verb, what)
			return nil
		},
	}
}

func adminStatusCommand(flags []cli.Flag) *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show the takedown status of an account, a record or a blob (JSON)",
		ArgsUsage: "DID|HANDLE | at://DID/COLLECTION/RKEY | --blob CID DID|HANDLE",
		Flags:     append([]cli.Flag{&cli.StringFlag{Name: "blob", Usage: "the CID of one of the account's blobs"}}, flags...),
		Action: func(cctx *cli.Context) error {
			sub, _, err := subjectArg(cctx)
			if err != nil {
				return err
			}
			p := url.Values{}
			switch sub["$type"] {
			case "com.atproto.repo.strongRef":
				p.Set("uri", sub["uri"].(string))
			case "com.atproto.admin.defs#repoBlobRef":
				p.Set("did", sub["did"].(string))
				p.Set("blob", sub["cid"].(string))
			default:
				p.Set("did", sub["did"].(string))
			}
			var out json.RawMessage
			if err := adminQuery(cctx, "com.atproto.admin.getSubjectStatus", p, &out); err != nil {
				return err
			}
			fmt.Fprintln(cctx.App.Writer, string(out))
			return nil
		},
	}
}

func adminLogCommand(flags []cli.Flag) *cli.Command {
	return &cli.Command{
		Name:  "log",
		Usage: "show the moderation log: takedowns and restores, newest first, with who, when and why",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "account", Usage: "only about this account (DID or handle)"},
			&cli.IntFlag{Name: "limit", Value: 50, Usage: "how many entries"},
		}, flags...),
		Action: func(cctx *cli.Context) error {
			limit := cctx.Int("limit")
			if limit < 1 || limit > 500 {
				return errors.New("--limit must be from 1 to 500")
			}
			p := url.Values{"limit": {strconv.Itoa(limit)}}
			if a := cctx.String("account"); a != "" {
				did, err := accountArg(cctx, a)
				if err != nil {
					return err
				}
				p.Set("did", did.String())
			}
			var out struct {
				Entries []struct {
					CreatedAt string `json:"createdAt"`
					Actor     string `json:"actor"`
					Subject   struct {
						DID string `json:"did"`
						URI string `json:"uri"`
						CID string `json:"cid"`
					} `json:"subject"`
					Takedown struct {
						Applied bool `json:"applied"`
					} `json:"takedown"`
					Reason string `json:"reason"`
				} `json:"entries"`
			}
			if err := adminQuery(cctx, "social.hearth.admin.getModerationLog", p, &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cctx.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "WHEN\tWHO\tACTION\tSUBJECT\tWHY")
			for _, e := range out.Entries {
				action := "restore"
				if e.Takedown.Applied {
					action = "takedown"
				}
				subject := e.Subject.DID
				switch {
				case e.Subject.URI != "":
					subject = e.Subject.URI
				case e.Subject.CID != "":
					subject = "blob " + e.Subject.CID + " of " + e.Subject.DID
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.CreatedAt, e.Actor, action, subject, e.Reason)
			}
			return tw.Flush()
		},
	}
}

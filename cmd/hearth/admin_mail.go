package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hearth-social/hearth/pds"
	"github.com/hearth-social/hearth/pds/mail"
	"github.com/urfave/cli/v2"
)

// adminMailCommand prints the mail the PDS wrote to its outbox (no SMTP server
// configured): the tokens a self-hoster's users need to move or delete their accounts.
// It reads the data dir directly, so it runs on the host.
func adminMailCommand() *cli.Command {
	return &cli.Command{
		Name:  "mail",
		Usage: "print the newest mail in the outbox (used when no --smtp-url is set)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Value: "./data", Usage: "the PDS's data dir", EnvVars: []string{"HEARTH_DATA_DIR"}},
			&cli.StringFlag{Name: "did", Usage: "only mail for this account"},
			&cli.StringFlag{Name: "purpose", Usage: "only mail for this purpose: plc_operation, delete_account, confirm_email, update_email, reset_password or sign_in"},
			&cli.IntFlag{Name: "limit", Value: 5, Usage: "how many mails to print, newest last"},
			&cli.BoolFlag{Name: "token", Usage: "print only the newest matching token, alone on the last line (for scripts and migration tools)"},
		},
		Action: runAdminMail,
	}
}

func runAdminMail(cctx *cli.Context) error {
	switch p := cctx.String("purpose"); p {
	case "", mail.PurposePLCOperation, mail.PurposeDeleteAccount, mail.PurposeConfirmEmail, mail.PurposeUpdateEmail, mail.PurposeResetPassword, mail.PurposeSignIn:
	default:
		return fmt.Errorf("--purpose %q: want plc_operation, delete_account, confirm_email, update_email, reset_password or sign_in", p)
	}
	msgs, err := mail.ReadOutbox(pds.OutboxPath(cctx.String("data-dir")))
	if err != nil {
		return err
	}
	var match []mail.Message
	for _, m := range msgs {
		if (cctx.String("did") == "" || m.DID == cctx.String("did")) && (cctx.String("purpose") == "" || m.Purpose == cctx.String("purpose")) {
			match = append(match, m)
		}
	}
	out := cctx.App.Writer
	if cctx.Bool("token") {
		for i := len(match) - 1; i >= 0; i-- {
			if match[i].Token != "" {
				fmt.Fprintln(out, match[i].Token)
				return nil
			}
		}
		return errors.New("no matching token in the outbox")
	}
	if len(match) == 0 {
		fmt.Fprintln(out, "no matching mail in the outbox")
		return nil
	}
	if n := cctx.Int("limit"); n > 0 && len(match) > n {
		match = match[len(match)-n:]
	}
	for _, m := range match {
		fmt.Fprintf(out, "--- %s to %s (%s, %s)\nSubject: %s\n\n%s\n", m.Sent.Format("2006-01-02 15:04:05Z"), m.To, m.DID, m.Purpose, m.Subject, strings.TrimRight(m.Body, "\n"))
	}
	return nil
}

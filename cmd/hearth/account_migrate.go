package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/urfave/cli/v2"
)

// accountMigrateCommand moves an account from any PDS into this one, the steps of
// atproto.com/guides/account-migration run from one place. Rerunning it after an
// interruption continues: an account already created here is logged into, the repo is
// imported again (it replaces), and only blobs still missing are copied.
func accountMigrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "move an account from another PDS into this one (repo, blobs, preferences, identity)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Required: true, Usage: "URL of the account's current PDS"},
			&cli.StringFlag{Name: "handle", Required: true, Usage: "handle (or DID) to log in with at the current PDS"},
			&cli.StringFlag{Name: "password", Required: true, Usage: "the account password at the current PDS", EnvVars: []string{"HEARTH_ACCOUNT_PASSWORD"}},
			&cli.StringFlag{Name: "pds", Value: "http://127.0.0.1:2583", Usage: "URL of this (the new) PDS", EnvVars: []string{"HEARTH_PDS_URL"}},
			&cli.StringFlag{Name: "new-handle", Required: true, Usage: "the account's handle on the new PDS (one of its handle domains)"},
			&cli.StringFlag{Name: "new-password", Usage: "password on the new PDS (default: the same)"},
			&cli.StringFlag{Name: "email", Usage: "email on the new PDS (default: the current one's)"},
			&cli.StringFlag{Name: "invite-code", Usage: "invite code, if the new PDS requires one"},
			&cli.StringFlag{Name: "plc-token", Usage: "the PLC operation token the current PDS mails (asked for on the terminal when not given)"},
		},
		Action: runAccountMigrate,
	}
}

// migration holds the two sessions of one migration.
type migration struct {
	out, log     func(format string, args ...any)
	from, to     *xrpc.Client
	did          string
	fromTok, tok string
}

func runAccountMigrate(cctx *cli.Context) error {
	ctx := cctx.Context
	m := &migration{
		out: func(f string, a ...any) { fmt.Fprintf(cctx.App.Writer, f+"\n", a...) },
		log: func(f string, a ...any) { fmt.Fprintf(cctx.App.ErrWriter, f+"\n", a...) },
	}
	var err error
	if m.from, err = xrpc.NewClient(cctx.String("from")); err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	if m.to, err = xrpc.NewClient(cctx.String("pds")); err != nil {
		return fmt.Errorf("--pds: %w", err)
	}
	newPassword := cctx.String("new-password")
	if newPassword == "" {
		newPassword = cctx.String("password")
	}

	// 1. Log in at the current PDS.
	old, err := m.from.Login(ctx, cctx.String("handle"), cctx.String("password"))
	if err != nil {
		return err
	}
	m.did, m.fromTok = old.DID, old.AccessJwt
	m.log("migrating %s from %s to %s", m.did, m.from.Base, m.to.Base)

	// 2. Create the account here with a service-auth token from the current PDS, or
	// log in if an earlier run already did.
	if err := m.createOrLogin(ctx, cctx, newPassword); err != nil {
		return err
	}

	// 3. The repo: exported there, imported here (it replaces an earlier import).
	car, err := m.from.QueryBytes(ctx, "com.atproto.sync.getRepo", "", url.Values{"did": {m.did}}, maxExportRepoBytes)
	if err != nil {
		return fmt.Errorf("exporting the repo: %w", err)
	}
	if err := m.to.ProcedureBytes(ctx, "com.atproto.repo.importRepo", m.tok, "application/vnd.ipld.car", car, nil); err != nil {
		return fmt.Errorf("importing the repo: %w", err)
	}
	m.log("repo imported (%d bytes)", len(car))

	// 4. Blobs the imported records reference and this PDS lacks.
	if err := m.copyBlobs(ctx, progressTo(cctx.App.ErrWriter)); err != nil {
		return err
	}

	// 5. Preferences.
	var prefs json.RawMessage
	if err := m.from.Query(ctx, "app.bsky.actor.getPreferences", m.fromTok, nil, &prefs); err != nil {
		return fmt.Errorf("reading preferences: %w", err)
	}
	if err := m.to.Procedure(ctx, "app.bsky.actor.putPreferences", m.tok, prefs, nil); err != nil {
		return fmt.Errorf("writing preferences: %w", err)
	}

	// 6. Identity: the current PDS signs the operation that points the DID here, with the
	// token it mails; this PDS submits it.
	var creds map[string]any
	if err := m.to.Query(ctx, "com.atproto.identity.getRecommendedDidCredentials", m.tok, nil, &creds); err != nil {
		return fmt.Errorf("reading the recommended DID credentials: %w", err)
	}
	token := strings.TrimSpace(cctx.String("plc-token"))
	if token == "" {
		if err := m.from.Procedure(ctx, "com.atproto.identity.requestPlcOperationSignature", m.fromTok, nil, nil); err != nil {
			return fmt.Errorf("asking the current PDS for a PLC token: %w", err)
		}
		fmt.Fprintf(cctx.App.ErrWriter, "The current PDS has mailed a token to the account's address. Token: ")
		line, err := bufio.NewReader(cctx.App.Reader).ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("reading the PLC token: %w", err)
		}
		token = strings.TrimSpace(line)
	}
	creds["token"] = token
	var signed struct {
		Operation json.RawMessage `json:"operation"`
	}
	if err := m.from.Procedure(ctx, "com.atproto.identity.signPlcOperation", m.fromTok, creds, &signed); err != nil {
		return fmt.Errorf("the current PDS did not sign the PLC operation: %w", err)
	}
	if err := m.to.Procedure(ctx, "com.atproto.identity.submitPlcOperation", m.tok, map[string]any{"operation": signed.Operation}, nil); err != nil {
		return fmt.Errorf("submitting the PLC operation: %w", err)
	}

	// 7. Live here, retired there.
	if err := m.to.Procedure(ctx, "com.atproto.server.activateAccount", m.tok, nil, nil); err != nil {
		return fmt.Errorf("activating the account here: %w", err)
	}
	if err := m.from.Procedure(ctx, "com.atproto.server.deactivateAccount", m.fromTok, map[string]any{}, nil); err != nil {
		m.log("warning: the account is live here but could not be deactivated at %s: %v", m.from.Base, err)
	}
	m.out("migrated %s to %s", m.did, m.to.Base)
	return nil
}

func (m *migration) createOrLogin(ctx context.Context, cctx *cli.Context, password string) error {
	var desc struct {
		DID string `json:"did"`
	}
	if err := m.to.Query(ctx, "com.atproto.server.describeServer", "", nil, &desc); err != nil {
		return fmt.Errorf("describing the new PDS: %w", err)
	}
	var st struct {
		Token string `json:"token"`
	}
	q := url.Values{"aud": {desc.DID}, "lxm": {"com.atproto.server.createAccount"}, "exp": {fmt.Sprint(time.Now().Add(time.Minute).Unix())}}
	if err := m.from.Query(ctx, "com.atproto.server.getServiceAuth", m.fromTok, q, &st); err != nil {
		return fmt.Errorf("getting a service-auth token from the current PDS: %w", err)
	}
	email := cctx.String("email")
	if email == "" {
		var sess struct {
			Email string `json:"email"`
		}
		if err := m.from.Query(ctx, "com.atproto.server.getSession", m.fromTok, nil, &sess); err == nil {
			email = sess.Email
		}
	}
	in := map[string]any{"did": m.did, "handle": cctx.String("new-handle"), "password": password}
	if email != "" {
		in["email"] = email
	}
	if c := cctx.String("invite-code"); c != "" {
		in["inviteCode"] = c
	}
	var created struct {
		AccessJwt string `json:"accessJwt"`
	}
	err := m.to.Procedure(ctx, "com.atproto.server.createAccount", st.Token, in, &created)
	var re *xrpc.ResponseError
	if errors.As(err, &re) && strings.Contains(re.Message, "already exists") {
		s, lerr := m.to.Login(ctx, m.did, password)
		if lerr != nil {
			return fmt.Errorf("the account already exists on the new PDS, and logging in there failed: %w", lerr)
		}
		m.tok = s.AccessJwt
		m.log("the account exists here already (an earlier run): continuing")
		return nil
	} else if err != nil {
		return fmt.Errorf("creating the account on the new PDS: %w", err)
	}
	m.tok = created.AccessJwt
	m.log("account created on the new PDS (deactivated until the move completes)")
	return nil
}

// progressTo returns how blob progress is shown: a bar redrawn in place on a terminal,
// a line per hundred blobs otherwise (logs, pipes).
func progressTo(w io.Writer) func(done, total int) {
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return func(done, total int) {
				const width = 30
				fill := width
				if total > 0 {
					fill = min(width, done*width/total)
				}
				fmt.Fprintf(w, "\rblobs [%s%s] %d/%d", strings.Repeat("#", fill), strings.Repeat(".", width-fill), done, total)
				if done >= total {
					fmt.Fprintln(w)
				}
			}
		}
	}
	return func(done, total int) {
		if done%100 == 0 || done == total {
			fmt.Fprintf(w, "%d/%d blobs copied\n", done, total)
		}
	}
}

// copyBlobs copies, page by page, the blobs the new PDS lists as missing, reporting
// progress against the count checkAccountStatus expects.
func (m *migration) copyBlobs(ctx context.Context, progress func(done, total int)) error {
	var st struct {
		ExpectedBlobs int `json:"expectedBlobs"`
		ImportedBlobs int `json:"importedBlobs"`
	}
	if err := m.to.Query(ctx, "com.atproto.server.checkAccountStatus", m.tok, nil, &st); err != nil {
		return fmt.Errorf("checking the account on the new PDS: %w", err)
	}
	total := st.ExpectedBlobs - st.ImportedBlobs
	if total == 0 {
		m.log("no blobs to copy")
		return nil
	}
	copied := 0
	tried := map[string]bool{}
	for {
		var page struct {
			Blobs []struct {
				CID string `json:"cid"`
			} `json:"blobs"`
		}
		if err := m.to.Query(ctx, "com.atproto.repo.listMissingBlobs", m.tok, url.Values{"limit": {"500"}}, &page); err != nil {
			return fmt.Errorf("listing missing blobs: %w", err)
		}
		if len(page.Blobs) == 0 {
			break
		}
		fresh := 0
		for _, b := range page.Blobs {
			if tried[b.CID] {
				continue
			}
			tried[b.CID] = true
			fresh++
			data, err := m.from.QueryBytes(ctx, "com.atproto.sync.getBlob", "", url.Values{"did": {m.did}, "cid": {b.CID}}, maxExportBlobBytes)
			if err != nil {
				return fmt.Errorf("blob %s: %w", b.CID, err)
			}
			if err := m.to.ProcedureBytes(ctx, "com.atproto.repo.uploadBlob", m.tok, "application/octet-stream", data, nil); err != nil {
				return fmt.Errorf("uploading blob %s: %w", b.CID, err)
			}
			copied++
			progress(copied, max(total, copied))
		}
		if fresh == 0 {
			return fmt.Errorf("%d blobs are still missing after copying them (the current PDS served other bytes?), e.g. %s", len(page.Blobs), page.Blobs[0].CID)
		}
	}
	return nil
}

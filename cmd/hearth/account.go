package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/ipfs/go-cid"
	carv1 "github.com/ipld/go-car"
	"github.com/urfave/cli/v2"
)

// accountCommand holds what a user (or the operator for them) does with one account
// through any PDS's XRPC API: today, exporting everything it holds into one archive.
func accountCommand() *cli.Command {
	return &cli.Command{
		Name:  "account",
		Usage: "an account's own data, through its PDSes' APIs: export it, or move it here",
		Subcommands: []*cli.Command{
			accountMigrateCommand(),
			accountAIPreferencesCommand(),
			{
				Name:  "export",
				Usage: "write one archive (repo.car, blobs/CID, preferences.json, manifest.json) with everything the account holds",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "pds", Value: "http://127.0.0.1:2583", Usage: "the account's PDS", EnvVars: []string{"HEARTH_PDS_URL"}},
					&cli.StringFlag{Name: "handle", Usage: "handle (or DID) to log in with; with --password the private preferences are included"},
					&cli.StringFlag{Name: "password", Usage: "the account password or an app password", EnvVars: []string{"HEARTH_ACCOUNT_PASSWORD"}},
					&cli.StringFlag{Name: "did", Usage: "export only the public data (repo and blobs) of this DID, without logging in"},
					&cli.StringFlag{Name: "out", Required: true, Usage: "archive file to write (a tar; 0600)"},
				},
				Action: runAccountExport,
			},
		},
	}
}

// exportManifest describes an account archive.
type exportManifest struct {
	DID         string    `json:"did"`
	PDS         string    `json:"pds"`
	ExportedAt  time.Time `json:"exportedAt"`
	RepoRev     string    `json:"repoRev"`
	RepoCommit  string    `json:"repoCommit"`
	Records     int       `json:"records"`
	Blobs       int       `json:"blobs"`
	Preferences bool      `json:"preferences"`
}

// Caps of one export: a repo CAR and one blob (a video is up to 300 MB).
const (
	maxExportRepoBytes = 2 << 30
	maxExportBlobBytes = 400 << 20
)

func runAccountExport(cctx *cli.Context) error {
	ctx := cctx.Context
	client, err := xrpc.NewClient(cctx.String("pds"))
	if err != nil {
		return fmt.Errorf("--pds: %w", err)
	}
	var did, token string
	switch {
	case cctx.String("handle") != "" && cctx.String("password") != "":
		lctx, cancel := context.WithTimeout(ctx, time.Minute)
		s, err := client.Login(lctx, cctx.String("handle"), cctx.String("password"))
		cancel()
		if err != nil {
			return err
		}
		did, token = s.DID, s.AccessJwt
	case cctx.String("did") != "":
		d, err := syntax.ParseDID(cctx.String("did"))
		if err != nil {
			return fmt.Errorf("--did: %w", err)
		}
		did = d.String()
	default:
		return errors.New("give --handle and --password (everything), or --did (public data only)")
	}

	car, err := client.QueryBytes(ctx, "com.atproto.sync.getRepo", "", url.Values{"did": {did}}, maxExportRepoBytes)
	if err != nil {
		return fmt.Errorf("exporting the repo: %w", err)
	}
	commit, rp, err := indigorepo.LoadRepoFromCAR(ctx, bytes.NewReader(car))
	if err != nil {
		return fmt.Errorf("the exported repo does not load: %w", err)
	}
	if commit.DID != did {
		return fmt.Errorf("the PDS exported the repo of %s, not %s", commit.DID, did)
	}
	records := 0
	if err := rp.MST.Walk(func([]byte, cid.Cid) error { records++; return nil }); err != nil {
		return fmt.Errorf("walking the exported repo: %w", err)
	}
	var blobs []string
	cursor := ""
	for {
		var page struct {
			CIDs   []string `json:"cids"`
			Cursor string   `json:"cursor"`
		}
		q := url.Values{"did": {did}, "limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		if err := client.Query(ctx, "com.atproto.sync.listBlobs", "", q, &page); err != nil {
			return fmt.Errorf("listing blobs: %w", err)
		}
		blobs = append(blobs, page.CIDs...)
		if page.Cursor == "" || len(page.CIDs) == 0 {
			break
		}
		cursor = page.Cursor
	}

	out := cctx.String("out")
	tmp, err := os.CreateTemp(filepath.Dir(out), ".export-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename this is a no-op
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	tw := tar.NewWriter(tmp)
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: time.Now()}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	fail := func(err error) error { tmp.Close(); return err }
	if err := add("repo.car", car); err != nil {
		return fail(err)
	}
	for i, b := range blobs {
		c, err := cid.Decode(b)
		if err != nil {
			return fail(fmt.Errorf("listBlobs named %q: %w", b, err))
		}
		data, err := client.QueryBytes(ctx, "com.atproto.sync.getBlob", "", url.Values{"did": {did}, "cid": {b}}, maxExportBlobBytes)
		if err != nil {
			return fail(fmt.Errorf("blob %s: %w", b, err))
		}
		if got, err := c.Prefix().Sum(data); err != nil || !got.Equals(c) {
			return fail(fmt.Errorf("blob %s: the PDS served bytes that do not hash to it", b))
		}
		if err := add("blobs/"+b, data); err != nil {
			return fail(err)
		}
		if (i+1)%100 == 0 {
			fmt.Fprintf(cctx.App.ErrWriter, "%d/%d blobs\n", i+1, len(blobs))
		}
	}
	m := exportManifest{DID: did, PDS: client.Base, ExportedAt: time.Now().UTC(), RepoRev: commit.Rev, Records: records, Blobs: len(blobs)}
	if h, err := carv1.ReadHeader(bufio.NewReader(bytes.NewReader(car))); err == nil && len(h.Roots) > 0 {
		m.RepoCommit = h.Roots[0].String() // the commit is the CAR's root
	}
	if token != "" {
		var prefs json.RawMessage
		if err := client.Query(ctx, "app.bsky.actor.getPreferences", token, nil, &prefs); err != nil {
			return fail(fmt.Errorf("reading preferences: %w", err))
		}
		if err := add("preferences.json", prefs); err != nil {
			return fail(err)
		}
		m.Preferences = true
	}
	mb, _ := json.MarshalIndent(m, "", "  ")
	if err := add("manifest.json", mb); err != nil {
		return fail(err)
	}
	if err := tw.Close(); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	fmt.Fprintf(cctx.App.Writer, "exported %s: %d records, %d blobs, preferences %v -> %s\n", did, records, len(blobs), m.Preferences, out)
	return nil
}

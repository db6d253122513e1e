package main

import (
	"fmt"
	"strings"

	"github.com/hearth-social/hearth/feedgen/labeler"
	"github.com/urfave/cli/v2"
)

func labelerCommand() *cli.Command {
	return &cli.Command{
		Name:  "labeler",
		Usage: "manage the feed generator's labeler",
		Subcommands: []*cli.Command{{
			Name:      "publish",
			Usage:     "write the app.bsky.labeler.service declaration record (rkey self) to the labeler account",
			UsageText: "hearth labeler publish --pds URL --handle H --password P [--labels ai-generated,ai-assisted]",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "pds", Required: true, Usage: "base URL of the labeler account's PDS", EnvVars: []string{"HEARTH_LABELER_PDS"}},
				&cli.StringFlag{Name: "handle", Required: true, Usage: "handle or DID of the labeler account (its DID must be the labeler's DID)", EnvVars: []string{"HEARTH_LABELER_HANDLE"}},
				&cli.StringFlag{Name: "password", Required: true, Usage: "account password (an app password is best)", EnvVars: []string{"HEARTH_LABELER_PASSWORD"}},
				&cli.StringFlag{Name: "labels", Value: strings.Join(labeler.DefaultValues, ","), Usage: "comma-separated label values to declare"},
			},
			Action: runLabelerPublish,
		}},
	}
}

func runLabelerPublish(cctx *cli.Context) error {
	var vals []string
	for _, v := range strings.Split(cctx.String("labels"), ",") {
		if v = strings.TrimSpace(v); v != "" {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return fmt.Errorf("--labels: no label values")
	}
	res, err := labeler.Publish(cctx.Context, labeler.PublishOptions{
		PDS:      cctx.String("pds"),
		Handle:   cctx.String("handle"),
		Password: cctx.String("password"),
		Values:   vals,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(cctx.App.Writer, "published %s (cid %s) declaring %s\n", res.URI, res.CID, strings.Join(vals, ", "))
	fmt.Fprintf(cctx.App.Writer, "labels must be signed with src %s, and its DID document must carry #atproto_labeler and #atproto_label\n", res.DID)
	return nil
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/urfave/cli/v2"

	"github.com/hearth-social/hearth/feedgen"
	"github.com/hearth-social/hearth/feedgen/classify"
	"github.com/hearth-social/hearth/internal/xrpc"
)

// runFeedExplain calls social.hearth.feed.explainPost and prints the verdict.
func runFeedExplain(cctx *cli.Context) error {
	// urfave/cli stops at the first argument; accept the flags after the AT-URI too.
	base, asJSON := cctx.String("feed-url"), cctx.Bool("json")
	var args []string
	rest := cctx.Args().Slice()
	for i := 0; i < len(rest); i++ {
		switch a := rest[i]; {
		case a == "--feed-url" || a == "-feed-url":
			if i+1 == len(rest) {
				return errors.New("--feed-url needs a URL")
			}
			base = rest[i+1]
			i++
		case strings.HasPrefix(a, "--feed-url="):
			base = strings.TrimPrefix(a, "--feed-url=")
		case a == "--json":
			asJSON = true
		default:
			args = append(args, a)
		}
	}
	if len(args) != 1 {
		return errors.New("usage: hearth feed explain AT-URI [--feed-url URL] [--json]")
	}
	uri, err := syntax.ParseATURI(args[0])
	if err != nil {
		return fmt.Errorf("%q is not an AT-URI: %w", args[0], err)
	}
	base = strings.TrimRight(base, "/")
	ctx, cancel := context.WithTimeout(cctx.Context, 30*time.Second)
	defer cancel()
	client, err := xrpc.NewClient(base)
	if err != nil {
		return fmt.Errorf("--feed-url (HEARTH_FEED_URL): %w", err)
	}
	var raw json.RawMessage
	if err := client.Query(ctx, feedgen.ExplainNSID, "", url.Values{"uri": {uri.String()}}, &raw); err != nil {
		return fmt.Errorf("%s at %s: %w", feedgen.ExplainNSID, base, err)
	}
	out := cctx.App.Writer
	if asJSON {
		_, err := out.Write(append(raw, '\n'))
		return err
	}
	var ex feedgen.ExplainOutput
	if err := json.Unmarshal(raw, &ex); err != nil {
		return fmt.Errorf("%s: %w", feedgen.ExplainNSID, err)
	}
	return printExplain(out, &ex)
}

func printExplain(w io.Writer, ex *feedgen.ExplainOutput) error {
	none := func(ss []string) string {
		if len(ss) == 0 {
			return "-"
		}
		return strings.Join(ss, ", ")
	}
	fmt.Fprintf(w, "post:         %s\n", ex.URI)
	fmt.Fprintf(w, "cid:          %s\n", ex.CID)
	if ex.Status == feedgen.ExplainClassified {
		fmt.Fprintf(w, "status:       classified at %s (%s)\n", ex.ClassifiedAt, ex.Version)
	} else {
		fmt.Fprintf(w, "status:       %s (served as unknown until classified)\n", ex.Status)
	}
	fmt.Fprintf(w, "verdict:      %s (confidence %s, AI score %s)\n", ex.Label, ex.Confidence, ex.AIScore)
	fmt.Fprintf(w, "labels:       %s\n", none(ex.Labels))
	fmt.Fprintf(w, "feeds:        %s\n", none(ex.Feeds))
	fmt.Fprintf(w, "feedContext:  %s\n", ex.FeedContext)
	if len(ex.Evidence) == 0 {
		_, err := fmt.Fprintln(w, "evidence:     none (missing metadata is not evidence of anything)")
		return err
	}
	fmt.Fprintln(w, "evidence:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  TIER\tCLASS\tWEIGHT\tSIGNAL\tLOCATOR\tEXCERPT")
	for _, e := range ex.Evidence {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\n", e.Tier, e.Class, e.Weight, e.Signal, e.Locator, e.Excerpt)
	}
	return tw.Flush()
}

// runFeedEval classifies a labelled corpus and prints the table; it fails when the
// corpus misses the project's targets (precision 1, no false AI on human items).
func runFeedEval(cctx *cli.Context) error {
	if cctx.NArg() != 1 {
		return errors.New("usage: hearth feed eval DIR (a folder with labels.json)")
	}
	var opt classify.MediaOptions
	var err error
	if opt.Trust, err = loadTrustList(cctx); err != nil {
		return err
	}
	c := classify.New(classify.SelfLabelScorer{}, classify.MediaScorer{Options: opt}, classify.TextScorer{})
	res, err := classify.Eval(cctx.Context, cctx.Args().First(), c)
	if err != nil {
		return err
	}
	if err := res.WriteTable(cctx.App.Writer); err != nil {
		return err
	}
	return res.Check()
}

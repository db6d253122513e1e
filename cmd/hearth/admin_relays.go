package main

import (
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/hearth-social/hearth/pds/crawler"
	"github.com/urfave/cli/v2"
)

func adminRelaysCommand(flags []cli.Flag) *cli.Command {
	return &cli.Command{
		Name:  "relays",
		Usage: "show how each relay (serve --crawler) sees this PDS: status, its seq against ours, errors; --crawl asks them to crawl again now",
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "crawl", Usage: "ask every relay to crawl this PDS now (requestCrawl), then show their status"},
		}, flags...),
		Action: runAdminRelays,
	}
}

func runAdminRelays(cctx *cli.Context) error {
	w := cctx.App.Writer
	var failed int
	if cctx.Bool("crawl") {
		var out struct {
			Hostname string                `json:"hostname"`
			Relays   []crawler.CrawlResult `json:"relays"`
		}
		if err := adminCall(cctx, "social.hearth.admin.requestCrawl", nil, &out); err != nil {
			return err
		}
		for _, r := range out.Relays {
			if r.Error != "" {
				failed++
				fmt.Fprintf(w, "requestCrawl %s to %s failed: %s\n", out.Hostname, r.URL, r.Error)
			} else {
				fmt.Fprintf(w, "requestCrawl %s to %s: accepted\n", out.Hostname, r.URL)
			}
		}
	}
	var st struct {
		Hostname string                `json:"hostname"`
		Seq      int64                 `json:"seq"`
		Relays   []crawler.RelayStatus `json:"relays"`
	}
	if err := adminQuery(cctx, "social.hearth.admin.getRelayStatus", nil, &st); err != nil {
		return err
	}
	if len(st.Relays) == 0 {
		fmt.Fprintln(w, "no relays configured (hearth serve --crawler URL)")
		return nil
	}
	fmt.Fprintf(w, "host %s, firehose seq %d\n", st.Hostname, st.Seq)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RELAY\tSTATUS\tACTIVE\tRELAY SEQ\tBEHIND\tACCOUNTS\tNOTE")
	opt := func(p *int64) string {
		if p == nil {
			return "-"
		}
		return strconv.FormatInt(*p, 10)
	}
	for _, r := range st.Relays {
		status := r.Status
		switch {
		case !r.Supported:
			status = "unsupported"
		case !r.Known && r.Error != "" && status == "":
			status = "unknown"
		case status == "":
			status = "-"
		}
		active := "no"
		if r.Active {
			active = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.URL, status, active, opt(r.RelaySeq), opt(r.Behind), opt(r.AccountCount), r.Error)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d relays refused the crawl request", failed, len(st.Relays))
	}
	return nil
}

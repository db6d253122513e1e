package dashboard

import (
	"context"
	"time"

	"github.com/hearth-social/hearth/pds/crawler"
)

// CrawlerRelays shows pds/crawler's getHostStatus answers on the dashboard and sends
// its requestCrawl.
type CrawlerRelays struct{ Relays *crawler.Relays }

func (a CrawlerRelays) RelayStatus(ctx context.Context) ([]RelayRow, error) {
	sts, err := a.Relays.Status(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	rows := make([]RelayRow, 0, len(sts))
	for _, st := range sts {
		row := RelayRow{Relay: st.URL, Status: st.Status, Err: st.Error, CheckedAt: now}
		switch {
		case st.Error != "":
			row.Status = ""
		case !st.Supported:
			row.Status, row.Err = "", "the relay does not serve com.atproto.sync.getHostStatus"
		case !st.Known:
			row.Status, row.Err = "", "the relay does not know this host (never crawled it)"
		}
		if st.RelaySeq != nil {
			row.Seq, row.HasSeq = *st.RelaySeq, true
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func (a CrawlerRelays) RequestCrawl(ctx context.Context) map[string]string {
	out := map[string]string{}
	for _, res := range a.Relays.RequestCrawl(ctx) {
		out[res.URL] = res.Error
	}
	return out
}

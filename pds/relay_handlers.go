package pds

import (
	"net/http"
	"net/url"

	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/crawler"
)

// The relays this PDS announces itself to (Config.Crawlers), for the operator: how each
// sees this PDS and, for one that fell out of sync, a crawl request now.
const (
	getRelayStatusNSID = "social.hearth.admin.getRelayStatus"
	requestCrawlNSID   = "social.hearth.admin.requestCrawl"
)

// Relays is this PDS's configured relays (Config.Crawlers): their status (Status) and
// crawl requests (RequestCrawl), as the admin API serves them. It holds no state, so
// each call builds it.
func (s *Server) Relays() *crawler.Relays {
	host := s.cfg.Hostname
	if u, err := url.Parse(s.cfg.PublicURL); err == nil && u.Host != "" {
		host = u.Host // what serve announces: the public host, with a non-default port
	}
	return &crawler.Relays{Hostname: host, Crawlers: s.cfg.Crawlers, Seq: s.FirehoseSeq}
}

// handleAdminGetRelayStatus serves social.hearth.admin.getRelayStatus.
func (s *Server) handleAdminGetRelayStatus(w http.ResponseWriter, r *http.Request) error {
	relays := s.Relays()
	st, err := relays.Status(r.Context())
	if err != nil {
		return err
	}
	if st == nil {
		st = []crawler.RelayStatus{}
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]any{"hostname": relays.Hostname, "seq": relays.Seq(), "relays": st})
	return nil
}

// handleAdminRequestCrawl serves social.hearth.admin.requestCrawl: every configured
// relay is asked to crawl this PDS now; each relay's outcome is in the answer.
func (s *Server) handleAdminRequestCrawl(w http.ResponseWriter, r *http.Request) error {
	relays := s.Relays()
	res := relays.RequestCrawl(r.Context())
	if res == nil {
		res = []crawler.CrawlResult{}
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]any{"hostname": relays.Hostname, "relays": res})
	return nil
}

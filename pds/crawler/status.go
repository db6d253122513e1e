package crawler

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/hearth-social/hearth/internal/xrpc"
)

// Relays are this PDS's configured crawlers (relays), asked how they see the PDS
// (com.atproto.sync.getHostStatus) or to crawl it again now (requestCrawl). Its
// methods make their requests in parallel, each bounded by RequestTimeout; the admin
// API and the operator dashboard call them.
type Relays struct {
	// Hostname is this PDS's public host, as announced with requestCrawl.
	Hostname string
	// Crawlers are the relays' base URLs (NormalizeURL).
	Crawlers []string
	// Seq returns this PDS's firehose seq, to compare with the relay's.
	Seq func() int64
	// HTTP is the client (default: RequestTimeout). Crawlers are the operator's
	// configuration, so as for Announce it is not the SSRF-guarded client.
	HTTP *http.Client
}

// RelayStatus is how one relay sees this PDS.
type RelayStatus struct {
	// URL is the relay's base URL.
	URL string `json:"url"`
	// Supported is false when the relay does not serve getHostStatus (it answered 404,
	// 501 or MethodNotImplemented); nothing else is then known.
	Supported bool `json:"supported"`
	// Known is whether the relay knows this host (false: it answered HostNotFound, so it
	// has never crawled this PDS: ask it to with RequestCrawl).
	Known bool `json:"known"`
	// Status is the relay's hostStatus (active, idle, offline, throttled, banned);
	// Active is Status == "active".
	Status string `json:"status,omitempty"`
	Active bool   `json:"active"`
	// RelaySeq is the seq of this PDS's firehose the relay has reached (as it reports
	// it: possibly a persisted, slightly older cursor), LocalSeq this PDS's seq when
	// asked, and Behind the difference when the relay gave a seq.
	RelaySeq *int64 `json:"relaySeq,omitempty"`
	LocalSeq int64  `json:"localSeq"`
	Behind   *int64 `json:"behind,omitempty"`
	// AccountCount is how many of this PDS's accounts the relay knows.
	AccountCount *int64 `json:"accountCount,omitempty"`
	// Error is why the relay could not be asked or answered with an error.
	Error string `json:"error,omitempty"`
}

// CrawlResult is one relay's answer to RequestCrawl.
type CrawlResult struct {
	URL   string `json:"url"`
	Error string `json:"error,omitempty"`
}

func (r *Relays) client(base string) *xrpc.Client {
	hc := r.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: RequestTimeout}
	}
	return &xrpc.Client{Base: base, HTTP: hc, UserAgent: "hearth-pds", MaxBodyBytes: maxAnswerBytes}
}

// eachRelay runs fn for every crawler in parallel and returns the results in the
// crawlers' order.
func eachRelay[T any](ctx context.Context, crawlers []string, fn func(ctx context.Context, base string) T) []T {
	out := make([]T, len(crawlers))
	var wg sync.WaitGroup
	for i, base := range crawlers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
			defer cancel()
			out[i] = fn(ctx, base)
		})
	}
	wg.Wait()
	return out
}

// Status asks every relay for this host's status. A relay's failure is in its
// RelayStatus; the error is ctx's when it ended first.
func (r *Relays) Status(ctx context.Context) ([]RelayStatus, error) {
	var local int64
	if r.Seq != nil {
		local = r.Seq()
	}
	out := eachRelay(ctx, r.Crawlers, func(ctx context.Context, base string) RelayStatus {
		return r.status(ctx, base, local)
	})
	return out, ctx.Err()
}

func (r *Relays) status(ctx context.Context, base string, local int64) RelayStatus {
	st := RelayStatus{URL: base, LocalSeq: local}
	var ans comatproto.SyncGetHostStatus_Output
	err := r.client(base).Query(ctx, "com.atproto.sync.getHostStatus", "", url.Values{"hostname": {r.Hostname}}, &ans)
	var re *xrpc.ResponseError
	switch {
	case errors.As(err, &re) && (re.Status == http.StatusNotFound && re.Name != "HostNotFound" || re.Status == http.StatusNotImplemented || re.Name == "MethodNotImplemented"):
		st.Error = "the relay does not serve com.atproto.sync.getHostStatus"
		return st
	case errors.As(err, &re) && re.Name == "HostNotFound":
		st.Supported = true
		st.Error = "the relay does not know this host (HostNotFound): ask it to crawl"
		return st
	case err != nil:
		st.Supported = true
		st.Error = err.Error()
		return st
	}
	st.Supported, st.Known = true, true
	if ans.Status != nil {
		st.Status = *ans.Status
	}
	st.Active = st.Status == "active"
	st.RelaySeq, st.AccountCount = ans.Seq, ans.AccountCount
	if ans.Seq != nil {
		behind := local - *ans.Seq
		st.Behind = &behind
	}
	return st
}

// RequestCrawl asks every relay to crawl this host now (com.atproto.sync.requestCrawl).
func (r *Relays) RequestCrawl(ctx context.Context) []CrawlResult {
	return eachRelay(ctx, r.Crawlers, func(ctx context.Context, base string) CrawlResult {
		res := CrawlResult{URL: base}
		if err := Announce(ctx, r.HTTP, base, r.Hostname); err != nil {
			res.Error = err.Error()
		}
		return res
	})
}

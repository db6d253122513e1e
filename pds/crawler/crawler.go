// Package crawler announces the PDS to relays: it sends com.atproto.sync.requestCrawl
// with the PDS's public hostname to each configured crawler at start-up and then
// periodically, so relays (re)subscribe to its firehose.
package crawler

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/hearth-social/hearth/internal/xrpc"
)

const (
	// DefaultInterval is how often a crawler is re-announced to when Run gets no interval.
	DefaultInterval = time.Hour
	// RequestTimeout bounds one requestCrawl call.
	RequestTimeout = 15 * time.Second
	// retryMin is the first wait after a failed announcement (doubling up to the interval).
	retryMin = 30 * time.Second
	// maxAnswerBytes bounds a crawler's answer (an empty object).
	maxAnswerBytes = 4 << 10
)

// Run announces hostname (the PDS's public host name, with a port only if it is not the
// scheme's default) to each crawler now and then every `every` (DefaultInterval when
// not positive) until ctx is done. A failed announcement is logged and retried sooner
// (30s, doubling, up to every); nothing is ever fatal. Run returns once ctx is done and
// every in-flight request has stopped. When the channel wake returns is closed (an
// account was activated here, e.g. at the end of a migration), every crawler is asked
// again at once; nil wake never does.
func Run(ctx context.Context, log *slog.Logger, hostname string, crawlers []string, every time.Duration, wake func() <-chan struct{}) {
	run(ctx, log, hostname, crawlers, every, retryMin, &http.Client{Timeout: RequestTimeout}, wake)
}

func run(ctx context.Context, log *slog.Logger, hostname string, crawlers []string, every, retry time.Duration, client *http.Client, wake func() <-chan struct{}) {
	if wake == nil {
		never := make(chan struct{})
		wake = func() <-chan struct{} { return never }
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if every <= 0 {
		every = DefaultInterval
	}
	retry = min(retry, every)
	var wg sync.WaitGroup
	for _, raw := range crawlers {
		base, err := NormalizeURL(raw)
		if err != nil {
			log.Warn("skipping crawler", "crawler", raw, "err", err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			announceLoop(ctx, log.With("crawler", base), client, base, hostname, every, retry, wake)
		}()
	}
	wg.Wait()
}

// announceLoop announces to one crawler until ctx is done.
func announceLoop(ctx context.Context, log *slog.Logger, client *http.Client, base, hostname string, every, retry time.Duration, wake func() <-chan struct{}) {
	backoff := retry
	first := true
	t := time.NewTimer(0)
	defer t.Stop()
	woken := wake()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-woken:
			t.Stop()
		}
		// Taken before announcing: an activation during the request wakes the next round.
		woken = wake()
		wait := every
		if err := Announce(ctx, client, base, hostname); err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("requestCrawl failed", "hostname", hostname, "err", err, "retry_in", backoff)
			wait = backoff
			backoff = min(2*backoff, every)
		} else {
			backoff = retry
			if first {
				log.Info("announced to crawler", "hostname", hostname)
			} else {
				log.Debug("announced to crawler", "hostname", hostname)
			}
			first = false
		}
		t.Reset(wait)
	}
}

// NormalizeURL checks a crawler URL and returns its base (scheme and host, no trailing
// slash). A bare host means https.
func NormalizeURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", fmt.Errorf("empty crawler URL")
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("crawler URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("crawler URL %q: want http or https", raw)
	}
	if u.Host == "" {
		return "", fmt.Errorf("crawler URL %q has no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("crawler URL %q: want scheme://host[:port][/path] only", raw)
	}
	return u.Scheme + "://" + u.Host + strings.TrimRight(u.Path, "/"), nil
}

// Announce sends one com.atproto.sync.requestCrawl {"hostname": hostname} to the crawler
// at base (see NormalizeURL), bounded by RequestTimeout and ctx. Crawlers are the
// operator's configuration, so client is not guarded.
func Announce(ctx context.Context, client *http.Client, base, hostname string) error {
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	c := &xrpc.Client{Base: base, HTTP: client, UserAgent: "hearth-pds", MaxBodyBytes: maxAnswerBytes}
	return c.Procedure(ctx, "com.atproto.sync.requestCrawl", "", comatproto.SyncRequestCrawl_Input{Hostname: hostname}, nil)
}

// Package feedgen is Hearth's feed generator service: it serves
// app.bsky.feed.getFeedSkeleton and app.bsky.feed.describeFeedGenerator from its own
// index, which feedgen/ingest fills from a firehose, and publishes its did:web document.
//
// It never imports the PDS: inside `hearth serve` it reads the local PDS's firehose over
// loopback exactly as it would read a relay's, and it resolves identities through a PLC
// directory and did:web like any other atproto service.
//
// Requests may carry the requester's service-auth JWT (minted by their PDS, aud = this
// service's DID, lxm = app.bsky.feed.getFeedSkeleton); it is verified against the
// issuer's DID document with indigo's atproto/auth. Public feeds work without one, but a
// token that is present must be valid; personalised feeds require one.
//
// Beside ingest runs the classification worker (worker.go): it classifies new and
// edited posts with feedgen/classify, fetching images from their authors' PDSes, stores
// verdicts with their evidence in the index, and drives the labeler (feedgen/labeler,
// its own SQLite file, signing as the service DID), whose queryLabels and
// subscribeLabels are served on the same listener and whose #atproto_labeler service
// and #atproto_label key are merged into /.well-known/did.json. The ranked feeds are in
// feedgen/rank; social.hearth.feed.explainPost (explain.go) returns a post's verdict
// with all its evidence.
package feedgen

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/feedgen/blobfetch"
	"github.com/hearth-social/hearth/feedgen/classify"
	"github.com/hearth-social/hearth/feedgen/index"
	"github.com/hearth-social/hearth/feedgen/ingest"
	"github.com/hearth-social/hearth/feedgen/labeler"
	"github.com/hearth-social/hearth/feedgen/rank"
	"github.com/hearth-social/hearth/internal/resolve"
	"github.com/hearth-social/hearth/internal/xrpc"
	"golang.org/x/text/language"
)

// Service is a running feed generator: index, ingest, the classification worker, the
// labeler and HTTP handlers.
type Service struct {
	cfg    Config
	log    *slog.Logger
	idx    *index.Index
	ingest *ingest.Ingester
	dir    identity.Directory
	feeds  *rank.Registry
	// byURI maps the configured publisher's feed URIs to their algorithms, so that a
	// page for one of them needs no AT-URI parse (regexps, ~25 µs).
	byURI  map[string]rank.Algorithm
	auth   *requesterAuth
	lab    *labeler.Labeler
	worker *worker
}

// New opens the index and builds the service. Run starts ingesting; Handler serves.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	dir := cfg.Directory
	if dir == nil {
		dir = resolve.New(resolve.Config{PLCURL: cfg.PLCURL, AllowPrivate: cfg.AllowPrivate, UserAgent: "hearth-feedgen"})
	}
	fm := newFeedMetrics()
	idx, err := index.Open(ctx, cfg.IndexPath, index.Options{Synchronous: cfg.Synchronous, ClassifyText: fm.classifyTextCounted})
	if err != nil {
		return nil, err
	}
	ing, err := ingest.New(cfg.Ingest, idx, dir, log.With("component", "feedgen-ingest"))
	if err != nil {
		idx.Close()
		return nil, err
	}
	lab, err := labeler.Open(ctx, labeler.Config{Path: cfg.LabelerPath, DID: cfg.ServiceDID(), Logger: log})
	if err != nil {
		idx.Close()
		return nil, err
	}
	fetch := blobfetch.New(dir, blobfetch.Config{AllowPrivate: cfg.AllowPrivate, Local: cfg.LocalPDS, MaxBytes: classify.MaxMediaBytes, Timeout: cfg.Classify.FetchTimeout})
	wlog := log.With("component", "feedgen-classify")
	fm.register(cfg.Metrics, ing)
	svc := &Service{
		cfg:    cfg,
		log:    log.With("component", "feedgen"),
		idx:    idx,
		ingest: ing,
		dir:    dir,
		feeds:  rank.DefaultWith(rank.NewRanker(cfg.Rank, nil)),
		auth:   newRequesterAuth(cfg.ServiceDID(), dir),
		lab:    lab,
		worker: newWorker(cfg.Classify, idx, fetch, lab, wlog),
	}
	svc.worker.verdicts = fm
	svc.byURI = map[string]rank.Algorithm{}
	for _, n := range svc.feeds.Names() {
		svc.byURI[cfg.FeedURI(n)], _ = svc.feeds.Get(n)
	}
	return svc, nil
}

// Config returns the validated configuration.
func (s *Service) Config() Config { return s.cfg }

// FeedURIs lists the AT-URIs of the served feeds.
func (s *Service) FeedURIs() []string {
	var out []string
	for _, n := range s.feeds.Names() {
		out = append(out, s.cfg.FeedURI(n))
	}
	return out
}

// Run ingests the firehose and classifies posts until ctx is done (or ingest fails), and
// returns when both have stopped.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	werr := make(chan error, 1)
	go func() { werr <- s.worker.Run(ctx) }()
	err := s.ingest.Run(ctx)
	cancel()
	return errors.Join(err, <-werr)
}

// Shutdown closes the labeler's subscribeLabels connections (hijacked websockets, which
// http.Server.Shutdown does not track). Call it before shutting the HTTP server down.
func (s *Service) Shutdown(ctx context.Context) error { return s.lab.Shutdown(ctx) }

// Close closes the labeler and the index. Call it after Run has returned.
func (s *Service) Close() error { return errors.Join(s.lab.Close(), s.idx.Close()) }

// Handler returns the HTTP handler: the feed methods, explainPost, the labeler's
// queryLabels and subscribeLabels, did.json and a health check.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /xrpc/app.bsky.feed.getFeedSkeleton", s.wrap(s.handleGetFeedSkeleton))
	mux.HandleFunc("GET /xrpc/app.bsky.feed.describeFeedGenerator", s.wrap(s.handleDescribe))
	mux.HandleFunc("POST /xrpc/app.bsky.feed.sendInteractions", s.wrap(s.handleSendInteractions))
	mux.HandleFunc("GET /xrpc/"+ExplainNSID, s.wrap(s.handleExplain))
	labels := s.lab.Handler()
	mux.Handle("GET "+labeler.PathQueryLabels, labels)
	mux.Handle("GET "+labeler.PathSubscribeLabels, labels)
	mux.HandleFunc("GET /.well-known/did.json", s.wrap(s.handleDIDDoc))
	mux.HandleFunc("GET /xrpc/_health", func(w http.ResponseWriter, r *http.Request) {
		xrpc.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/xrpc/{nsid}", xrpc.NotImplemented)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "This is an AT Protocol feed generator (Hearth), %s.\n", s.cfg.ServiceDID())
	})
	return xrpc.CORS("GET, OPTIONS", mux)
}

// wrap turns a handler's error into the XRPC error response, recovers panics, and logs.
func (s *Service) wrap(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("panic in feed handler", "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				xrpc.WriteError(w, r, s.log, fmt.Errorf("panic: %v", p))
			}
		}()
		err := h(w, r)
		if err != nil {
			xrpc.WriteError(w, r, s.log, err)
		}
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.Debug("feed request", "path", r.URL.Path, "err", err, "took", time.Since(began))
		}
	}
}

type skeletonItem struct {
	Post        string `json:"post"`
	Reason      any    `json:"reason,omitempty"`
	FeedContext string `json:"feedContext,omitempty"`
}

type skeletonOutput struct {
	Feed   []skeletonItem `json:"feed"`
	Cursor string         `json:"cursor,omitempty"`
	// ReqID names this answer; the app echoes it in sendInteractions.
	ReqID string `json:"reqId,omitempty"`
}

const (
	defaultLimit = 50
	maxLimit     = 100
)

func (s *Service) handleGetFeedSkeleton(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	feedParam := q.Get("feed")
	if feedParam == "" {
		return xrpc.InvalidRequest("feed is required")
	}
	limit := defaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return xrpc.InvalidRequest("limit must be an integer")
		}
		limit = min(max(n, 1), maxLimit)
	}
	algo, ok := s.byURI[feedParam]
	if !ok {
		feed, err := syntax.ParseATURI(feedParam)
		if err != nil {
			return xrpc.InvalidRequest("feed must be an AT-URI: %v", err)
		}
		if algo, ok, err = s.lookupFeed(r.Context(), feed); err != nil {
			return err
		}
	}
	if !ok {
		return xrpc.Errorf(http.StatusBadRequest, "UnknownFeed", "unknown feed %s", feedParam)
	}
	viewer, err := s.requester(r, algo)
	if err != nil {
		return err
	}
	page, err := algo.Page(r.Context(), s.idx, rank.Request{Viewer: viewer, Limit: limit, Cursor: q.Get("cursor")})
	switch {
	case errors.Is(err, rank.ErrInvalidCursor):
		return xrpc.InvalidRequest("invalid cursor")
	case errors.Is(err, rank.ErrAuthRequired):
		return xrpc.Errorf(http.StatusUnauthorized, "AuthenticationRequired", "%v", err)
	case err != nil:
		return err
	}
	out := skeletonOutput{Feed: make([]skeletonItem, 0, len(page.Items)), Cursor: page.Cursor, ReqID: newReqID()}
	if len(page.Items) == 0 {
		out.Cursor = "" // the end: an empty page never points further
	}
	// Authors the requester asked to see less of (sendInteractions) are left out of their
	// pages; the cursor still follows the feed's own order.
	var less map[string]bool
	if viewer != "" {
		if less, err = s.idx.SeeLess(r.Context(), viewer, time.Now()); err != nil {
			return err
		}
	}
	for _, it := range page.Items {
		if len(less) > 0 && less[index.AuthorOf(it.Post)] {
			continue
		}
		out.Feed = append(out.Feed, skeletonItem{Post: it.Post, Reason: it.Reason, FeedContext: it.FeedContext})
	}
	if err := s.preferLanguages(r, w, out.Feed); err != nil {
		return err
	}
	xrpc.WriteJSON(w, http.StatusOK, out)
	return nil
}

// requester returns who asks for a page of algo, as far as the answer depends on it.
//
// Only a personalised feed's pages, and the pages of a requester who asked to see less
// of some authors, depend on who asks; every other answer is the one anyone gets. So a
// token's claims (audience, method, expiry) are always checked, but its signature (an
// ECDSA verification against the issuer's DID document, several times the cost of the
// page itself) only when the answer depends on the requester, as the official
// feed-generator template does (it validates auth only for user-specific results). On a
// public feed, a token whose signature does not verify gets the page anyone gets, so a
// forged token tells nothing about the DID it names, not even whether they asked to see
// less.
func (s *Service) requester(r *http.Request, algo rank.Algorithm) (string, error) {
	tok, err := s.auth.claims(r, lxmGetFeedSkeleton)
	if err != nil {
		return "", err
	}
	if algo.NeedsViewer() {
		if tok.did == "" {
			return "", xrpc.Errorf(http.StatusUnauthorized, "AuthenticationRequired", "feed %s is personalised: send a service-auth token", algo.Name())
		}
		return s.auth.verify(r.Context(), tok, lxmGetFeedSkeleton)
	}
	if tok.did == "" || !s.idx.AskedSeeLess(tok.did) {
		return "", nil
	}
	viewer, err := s.auth.verify(r.Context(), tok, lxmGetFeedSkeleton)
	if err != nil {
		return "", nil
	}
	return viewer, nil
}

// preferLanguages puts the page's posts in the requester's Accept-Language languages
// first, most preferred language first (keeping the feed's order within each group, so
// the cursor still holds) and
// answers Content-Language with the requested languages the page has.
func (s *Service) preferLanguages(r *http.Request, w http.ResponseWriter, items []skeletonItem) error {
	tags, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	if err != nil || len(tags) == 0 || len(items) == 0 {
		return nil // no usable preference: the feed's own order
	}
	want := map[string]bool{}
	var order []string
	for _, t := range tags {
		b, _ := t.Base()
		if !want[b.String()] {
			want[b.String()] = true
			order = append(order, b.String())
		}
	}
	uris := make([]string, len(items))
	for i, it := range items {
		uris[i] = it.Post
	}
	langs, err := s.idx.PostLangs(r.Context(), uris)
	if err != nil {
		return err
	}
	// Rank each post by the most preferred language it has; others after them all.
	rankOf := map[string]int{}
	for i, l := range order {
		rankOf[l] = i
	}
	has := map[string]bool{}
	rank := func(it skeletonItem) int {
		best := len(order)
		for _, l := range langs[it.Post] {
			if t, err := language.Parse(l); err == nil {
				b, _ := t.Base()
				if i, ok := rankOf[b.String()]; ok {
					has[b.String()] = true
					best = min(best, i)
				}
			}
		}
		return best
	}
	ranks := make(map[string]int, len(items))
	for _, it := range items {
		ranks[it.Post] = rank(it)
	}
	sort.SliceStable(items, func(i, j int) bool { return ranks[items[i].Post] < ranks[items[j].Post] })
	var content []string
	for _, l := range order {
		if has[l] {
			content = append(content, l)
		}
	}
	if len(content) > 0 {
		w.Header().Set("Content-Language", strings.Join(content, ", "))
	}
	return nil
}

// lookupFeed maps at://PUBLISHER/app.bsky.feed.generator/NAME to its algorithm: for
// the configured publisher by name; for any other allowed publisher when its generator
// record, as indexed from the firehose, names this service.
func (s *Service) lookupFeed(ctx context.Context, feed syntax.ATURI) (rank.Algorithm, bool, error) {
	if feed.Collection() != "app.bsky.feed.generator" {
		return nil, false, nil
	}
	if feed.Authority().String() == s.cfg.PublisherDID {
		algo, ok := s.feeds.Get(feed.RecordKey().String())
		return algo, ok, nil
	}
	rec, ok, err := s.idx.FeedGenerator(ctx, feed.String(), s.cfg.ServiceDID())
	if err != nil || !ok || !s.publisherAllowed(rec.Publisher) {
		return nil, false, err
	}
	algo, ok := s.feeds.Get(rec.Name)
	return algo, ok, nil
}

func (s *Service) publisherAllowed(did string) bool {
	return s.cfg.FirehosePublishers || slices.Contains(s.cfg.Publishers, did)
}

type describeFeed struct {
	URI string `json:"uri"`
}

type describeOutput struct {
	DID   string         `json:"did"`
	Feeds []describeFeed `json:"feeds"`
}

func (s *Service) handleDescribe(w http.ResponseWriter, r *http.Request) error {
	out := describeOutput{DID: s.cfg.ServiceDID(), Feeds: []describeFeed{}}
	for _, u := range s.FeedURIs() {
		out.Feeds = append(out.Feeds, describeFeed{URI: u})
	}
	published, err := s.idx.FeedGenerators(r.Context(), s.cfg.ServiceDID())
	if err != nil {
		return err
	}
	for _, f := range published {
		if _, known := s.feeds.Get(f.Name); known && f.Publisher != s.cfg.PublisherDID && s.publisherAllowed(f.Publisher) {
			out.Feeds = append(out.Feeds, describeFeed{URI: f.URI})
		}
	}
	xrpc.WriteJSON(w, http.StatusOK, out)
	return nil
}

type didService struct {
	ID              string `json:"id"`
	Type            string `json:"type"`
	ServiceEndpoint string `json:"serviceEndpoint"`
}

type didDocument struct {
	Context []string     `json:"@context"`
	ID      string       `json:"id"`
	Service []didService `json:"service"`
}

// handleDIDDoc serves the did:web document: the #bsky_fg service, and the labeler's
// #atproto_labeler service and #atproto_label key.
func (s *Service) handleDIDDoc(w http.ResponseWriter, r *http.Request) error {
	raw, err := json.Marshal(didDocument{
		Context: []string{"https://www.w3.org/ns/did/v1"},
		ID:      s.cfg.ServiceDID(),
		Service: []didService{{ID: "#bsky_fg", Type: "BskyFeedGenerator", ServiceEndpoint: s.cfg.PublicURL}},
	})
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return err
	}
	xrpc.WriteJSON(w, http.StatusOK, labeler.MergeDIDDocument(doc, s.lab.DIDDocument(s.cfg.ServiceDID(), s.cfg.PublicURL)))
	return nil
}

// newReqID is a random request id for a skeleton answer.
func newReqID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// handleSendInteractions stores what the app reports of a requester's use of this
// service's feeds (the feed declares acceptsInteractions): "see less" of a post leaves
// its author out of that requester's pages for 30 days, "see more" undoes it; seen and
// click events are kept with their reqId and feedContext.
func (s *Service) handleSendInteractions(w http.ResponseWriter, r *http.Request) error {
	viewer, err := s.auth.viewer(r.Context(), r, lxmSendInteractions)
	if err != nil {
		return err
	}
	if viewer == "" {
		return xrpc.Errorf(http.StatusUnauthorized, "AuthenticationRequired", "sendInteractions needs a service-auth token")
	}
	var in struct {
		Interactions []struct {
			Item        string `json:"item"`
			Event       string `json:"event"`
			FeedContext string `json:"feedContext"`
			ReqID       string `json:"reqId"`
		} `json:"interactions"`
	}
	if err := xrpc.DecodeJSON(w, r, 256<<10, &in); err != nil {
		return err
	}
	if len(in.Interactions) > 1000 {
		return xrpc.InvalidRequest("at most 1000 interactions per call")
	}
	items := make([]index.Interaction, 0, len(in.Interactions))
	for _, it := range in.Interactions {
		if len(it.Item) > 512 || len(it.Event) > 128 || len(it.FeedContext) > 2000 || len(it.ReqID) > 100 {
			return xrpc.InvalidRequest("interaction field too long")
		}
		items = append(items, index.Interaction{Item: it.Item, Event: it.Event, FeedContext: it.FeedContext, ReqID: it.ReqID})
	}
	if err := s.idx.PutInteractions(r.Context(), viewer, items, time.Now()); err != nil {
		return err
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]any{})
	return nil
}

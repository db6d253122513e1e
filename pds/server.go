// Package pds is the Personal Data Server: accounts, sessions, signed repositories and
// the com.atproto XRPC API, wired over the store, the commit pipeline and the firehose.
package pds

import (
	"context"
	"crypto/rand"
	"fmt"
	indigoid "github.com/bluesky-social/indigo/atproto/identity"
	"github.com/hearth-social/hearth/internal/resolve"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/datadir"
	"github.com/hearth-social/hearth/lexicons"
	"github.com/hearth-social/hearth/pds/auth"
	"github.com/hearth-social/hearth/pds/blobs"
	"github.com/hearth-social/hearth/pds/oauth"
	"github.com/hearth-social/hearth/pds/plc"
	"github.com/hearth-social/hearth/pds/sequencer"
	"github.com/hearth-social/hearth/pds/store"
	"github.com/hearth-social/hearth/pds/web"
)

// Server is a running PDS (without its listener: see Handler and cmd/hearth).
type Server struct {
	cfg      Config
	log      *slog.Logger
	store    *store.Store
	repos    *repos
	plc      *plc.Client
	sessions *auth.Sessions
	hasher   *auth.Hasher
	lex      *lexicons.Catalog
	rotation atcrypto.PrivateKeyExportable
	seq      *sequencer.Sequencer
	blobs    blobs.Store
	routes   map[string]route
	proxy    *proxy
	tids     *syntax.TIDClock
	accounts *accountCache
	signups  *reservations
	mailq    mailQueue      // mail sent after the answer (email_handlers.go)
	cutoffs  sessionCutoffs // password resets that end older access tokens (email_handlers.go)
	// appPassKey keys the app-password lookup hash; dummyHash is verified for logins with
	// an unknown identifier so they cost what a known one does.
	appPassKey []byte
	dummyHash  string
	// dir resolves identities hosted elsewhere (cached); freshDir is the same resolver
	// uncached, for migration checks that must see a DID document as it is now.
	dir      indigoid.Directory
	freshDir indigoid.Directory
	// oauth is the OAuth authorization server, pages the sign-in/consent/account pages
	// (oauth_setup.go).
	oauth *oauth.Provider
	pages *web.Pages
	// handleDir verifies custom-domain handles (handle_domain.go); it is freshDir.
	handleDir *resolve.Directory
	// aiUsage caches each account's AI usage declarations (ai_usage.go).
	aiUsage *aiUsageCache
	// recordJSON caches the JSON of small record values by CID (record_json.go).
	recordJSON *recordJSONCache
	// takedowns are the record and blob takedowns in force (takedowns.go); usage the
	// accounts' estimated repo sizes for the storage quota (quota.go).
	takedowns *takedownSet
	usage     *usageCache
	// metrics are the PDS's Prometheus collectors (metrics.go).
	metrics *pdsMetrics

	// activated is closed, and replaced, each time an account activates (Activations).
	actMu     sync.Mutex
	activated chan struct{}
}

// Activations returns a channel closed the next time an account activates here, so the
// crawler announcer asks relays to crawl this PDS again right away.
func (s *Server) Activations() <-chan struct{} {
	s.actMu.Lock()
	defer s.actMu.Unlock()
	if s.activated == nil {
		s.activated = make(chan struct{})
	}
	return s.activated
}

func (s *Server) announceActivation() {
	s.actMu.Lock()
	defer s.actMu.Unlock()
	if s.activated != nil {
		close(s.activated)
	}
	s.activated = make(chan struct{})
}

// New opens the data dir and builds the server. Close releases it.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := datadir.Prepare(cfg.DataDir, log); err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, filepath.Join(cfg.DataDir, "pds.sqlite"), log.With("component", "store"), store.Options{Synchronous: cfg.Synchronous, Metrics: cfg.Metrics})
	if err != nil {
		return nil, err
	}
	lex := lexicons.NewCatalog() // one catalog for validation and blob-ref checks
	s := &Server{
		cfg:        cfg,
		log:        log,
		store:      st,
		repos:      newRepos(st, log.With("component", "repos"), lex, cachedRepos, cachedRepoKeys),
		plc:        &plc.Client{BaseURL: cfg.PLCURL, HTTP: &http.Client{Timeout: 10 * time.Second}},
		hasher:     auth.NewHasher(cfg.PasswordCost, 2),
		lex:        lex,
		tids:       syntax.NewTIDClock(0),
		accounts:   newAccountCache(10000),
		signups:    newReservations(),
		aiUsage:    newAIUsageCache(),
		recordJSON: newRecordJSONCache(),
		usage:      newUsageCache(10000),
	}
	tds, err := st.Takedowns(ctx)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("loading takedowns: %w", err)
	}
	s.takedowns = newTakedownSet(tds)
	jwtKey, err := st.Secret(ctx, "jwt-hs256", func() ([]byte, error) {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		return b, err
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("loading JWT key: %w", err)
	}
	if cfg.JWTSecret != "" {
		jwtKey = []byte(cfg.JWTSecret)
	}
	s.sessions = auth.NewSessions(jwtKey, cfg.ServerDID())
	if err := s.loadSessionCutoffs(ctx); err != nil {
		st.Close()
		return nil, err
	}
	if s.appPassKey, err = st.Secret(ctx, "app-password-lookup", func() ([]byte, error) {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		return b, err
	}); err != nil {
		st.Close()
		return nil, fmt.Errorf("loading app-password key: %w", err)
	}
	if s.dummyHash, err = s.hasher.Hash(ctx, "not a password anyone has"); err != nil {
		st.Close()
		return nil, fmt.Errorf("preparing login hash: %w", err)
	}
	rot, err := st.Secret(ctx, "plc-rotation-k256", func() ([]byte, error) {
		k, err := atcrypto.GeneratePrivateKeyK256()
		if err != nil {
			return nil, err
		}
		return k.Bytes(), nil
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("loading rotation key: %w", err)
	}
	if s.rotation, err = atcrypto.ParsePrivateBytesK256(rot); err != nil {
		st.Close()
		return nil, fmt.Errorf("parsing rotation key: %w", err)
	}
	if s.blobs, err = blobs.NewDisk(filepath.Join(cfg.DataDir, "blobs")); err != nil {
		st.Close()
		return nil, err
	}
	s.seq = sequencer.New(st, log.With("component", "sequencer"), sequencer.Config{
		Retention:    cfg.EventRetention,
		MaxLag:       cfg.FirehoseMaxLag,
		WriteTimeout: cfg.FirehoseWriteTimeout,
	})
	s.metrics = newPDSMetrics(cfg.Metrics, s)
	rcfg := resolve.Config{PLCURL: cfg.PLCURL, AllowPrivate: cfg.ProxyAllowPrivate, DNS: cfg.HandleDNS, HTTP: cfg.HandleHTTP}
	s.handleDir = resolve.NewUncached(rcfg)
	s.dir, s.freshDir = cfg.Directory, s.handleDir
	if s.dir == nil {
		s.dir = resolve.New(rcfg)
	}
	if err := s.setupOAuth(ctx); err != nil {
		st.Close()
		return nil, err
	}
	s.routes = s.buildRoutes()
	s.proxy = newProxy(cfg, s.plc)
	return s, nil
}

// Shutdown closes every firehose subscriber with a close frame, bounded by ctx.
func (s *Server) Shutdown(ctx context.Context) {
	s.seq.Shutdown(ctx)
}

// Run does the PDS's background work until ctx ends: firehose retention, blob garbage
// collection (with the tmp and orphan sweeps) and scheduled account deletions. New
// starts nothing; the caller owns this goroutine and waits for Run before Close.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { s.seq.RunRetention(ctx) })
	wg.Go(func() { s.runBlobGC(ctx) })
	wg.Go(func() { s.runAccountMaintenance(ctx) })
	wg.Go(func() { s.runMailQueue(ctx) })
	wg.Go(func() { s.runHandleChecks(ctx) })
	wg.Wait()
	return nil
}

// accountMaintenanceInterval is how often scheduled deletions and moved-away accounts
// are checked.
const accountMaintenanceInterval = 10 * time.Minute

// runAccountMaintenance deletes accounts past their deleteAfter and deactivates accounts
// whose DID moved to another PDS, now and every accountMaintenanceInterval.
func (s *Server) runAccountMaintenance(ctx context.Context) {
	t := time.NewTicker(accountMaintenanceInterval)
	defer t.Stop()
	for {
		if n, err := s.checkMovedAway(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("checking accounts that moved away", "err", err)
		} else if n > 0 {
			s.log.Info("deactivated accounts that moved to another PDS", "count", n)
		}
		if n, err := s.deleteDueAccounts(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("deleting accounts past their deleteAfter", "err", err)
		} else if n > 0 {
			s.log.Info("deleted accounts past their deleteAfter", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Close closes the store. Call after the HTTP server stopped and Run returned.
func (s *Server) Close() error {
	return s.store.Close()
}

// Store exposes the store for the CLI's admin commands.
func (s *Server) Store() *store.Store { return s.store }

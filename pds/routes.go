package pds

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/auth"
	"github.com/hearth-social/hearth/pds/oauth"
	"github.com/hearth-social/hearth/pds/store"
)

// authLevel is what a route requires of the caller.
type authLevel int

const (
	authNone     authLevel = iota
	authUser               // a valid access token
	authOptional           // an access token if present
	authAdmin              // HTTP Basic admin:PASSWORD
	authRefresh            // a valid, stored refresh token
)

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

type route struct {
	method  string
	auth    authLevel
	handler handlerFunc
	// serviceAuth, when set, is the method name an inbound service-auth JWT (ES256K,
	// from another service acting for a local account) must name as lxm to be accepted
	// instead of a session token.
	serviceAuth string
}

func withServiceAuth(rt route, lxm string) route {
	rt.serviceAuth = lxm
	return rt
}

// buildRoutes is the one routing table: NSID -> method, auth level, handler.
func (s *Server) buildRoutes() map[string]route {
	get := func(a authLevel, h handlerFunc) route { return route{method: http.MethodGet, auth: a, handler: h} }
	post := func(a authLevel, h handlerFunc) route { return route{method: http.MethodPost, auth: a, handler: h} }
	return map[string]route{
		// com.atproto.server
		"com.atproto.server.describeServer":        get(authNone, s.handleDescribeServer),
		"com.atproto.server.createAccount":         post(authNone, s.handleCreateAccount),
		"com.atproto.server.createSession":         post(authNone, s.handleCreateSession),
		"com.atproto.server.refreshSession":        post(authRefresh, s.handleRefreshSession),
		"com.atproto.server.getSession":            get(authUser, s.handleGetSession),
		"com.atproto.server.deleteSession":         post(authRefresh, s.handleDeleteSession),
		"com.atproto.server.createAppPassword":     post(authUser, s.handleCreateAppPassword),
		"com.atproto.server.listAppPasswords":      get(authUser, s.handleListAppPasswords),
		"com.atproto.server.revokeAppPassword":     post(authUser, s.handleRevokeAppPassword),
		"com.atproto.server.createInviteCode":      post(authAdmin, s.handleCreateInviteCode),
		"com.atproto.server.createInviteCodes":     post(authAdmin, s.handleCreateInviteCodes),
		"com.atproto.server.getAccountInviteCodes": get(authUser, s.handleGetAccountInviteCodes),
		"com.atproto.server.deactivateAccount":     post(authUser, s.handleDeactivateAccount),
		"com.atproto.server.activateAccount":       post(authUser, s.handleActivateAccount),
		"com.atproto.server.checkAccountStatus":    get(authUser, s.handleCheckAccountStatus),
		// com.atproto.admin
		"com.atproto.admin.updateSubjectStatus": post(authAdmin, s.handleAdminUpdateSubjectStatus),
		"com.atproto.admin.getSubjectStatus":    get(authAdmin, s.handleAdminGetSubjectStatus),
		"com.atproto.admin.deleteAccount":       post(authAdmin, s.handleAdminDeleteAccount),
		"com.atproto.server.getServiceAuth":     get(authUser, s.handleGetServiceAuth),

		// The rest of the admin API (admin_handlers.go, takedowns.go).
		"com.atproto.admin.getAccountInfo":        get(authAdmin, s.handleAdminGetAccountInfo),
		"com.atproto.admin.getAccountInfos":       get(authAdmin, s.handleAdminGetAccountInfos),
		"com.atproto.admin.searchAccounts":        get(authAdmin, s.handleAdminSearchAccounts),
		"com.atproto.admin.updateAccountEmail":    post(authAdmin, s.handleAdminUpdateAccountEmail),
		"com.atproto.admin.updateAccountPassword": post(authAdmin, s.handleAdminUpdateAccountPassword),
		"com.atproto.admin.sendEmail":             post(authAdmin, s.handleAdminSendEmail),
		"com.atproto.admin.getInviteCodes":        get(authAdmin, s.handleAdminGetInviteCodes),
		"com.atproto.admin.disableInviteCodes":    post(authAdmin, s.handleAdminDisableInviteCodes),
		"com.atproto.admin.enableAccountInvites":  post(authAdmin, s.handleAdminEnableAccountInvites),
		"com.atproto.admin.disableAccountInvites": post(authAdmin, s.handleAdminDisableAccountInvites),
		moderationLogNSID:                         get(authAdmin, s.handleAdminGetModerationLog),
		getRelayStatusNSID:                        get(authAdmin, s.handleAdminGetRelayStatus),
		requestCrawlNSID:                          post(authAdmin, s.handleAdminRequestCrawl),

		// app.bsky.actor preferences live on the PDS
		"app.bsky.actor.getPreferences": get(authUser, s.handleGetPreferences),
		"app.bsky.actor.putPreferences": post(authUser, s.handlePutPreferences),
		// com.atproto.identity
		"com.atproto.identity.resolveHandle": get(authNone, s.handleResolveHandle),
		"com.atproto.identity.updateHandle":  post(authUser, s.handleUpdateHandle),
		// Custom-domain handles (handle_domain.go).
		"com.atproto.identity.refreshIdentity":  post(authOptional, s.handleRefreshIdentity),
		"com.atproto.admin.updateAccountHandle": post(authAdmin, s.handleAdminUpdateAccountHandle),
		// Account migration and deletion (plc_handlers.go, account_delete.go).
		"com.atproto.identity.requestPlcOperationSignature": post(authUser, s.handleRequestPlcOperationSignature),
		"com.atproto.identity.signPlcOperation":             post(authUser, s.handleSignPlcOperation),
		"com.atproto.identity.getRecommendedDidCredentials": get(authUser, s.handleGetRecommendedDidCredentials),
		"com.atproto.identity.submitPlcOperation":           post(authUser, s.handleSubmitPlcOperation),
		"com.atproto.server.requestAccountDelete":           post(authUser, s.handleRequestAccountDelete),
		"com.atproto.server.deleteAccount":                  post(authNone, s.handleDeleteAccount),
		// Email and recovery (email_handlers.go).
		"com.atproto.server.requestEmailConfirmation": post(authUser, s.handleRequestEmailConfirmation),
		"com.atproto.server.confirmEmail":             post(authUser, s.handleConfirmEmail),
		"com.atproto.server.requestEmailUpdate":       post(authUser, s.handleRequestEmailUpdate),
		"com.atproto.server.updateEmail":              post(authUser, s.handleUpdateEmail),
		"com.atproto.server.requestPasswordReset":     post(authNone, s.handleRequestPasswordReset),
		"com.atproto.server.resetPassword":            post(authNone, s.handleResetPassword),
		// com.atproto.repo
		"com.atproto.repo.createRecord": post(authUser, s.handleCreateRecord),
		"com.atproto.repo.putRecord":    post(authUser, s.handlePutRecord),
		"com.atproto.repo.deleteRecord": post(authUser, s.handleDeleteRecord),
		"com.atproto.repo.applyWrites":  post(authUser, s.handleApplyWrites),
		"com.atproto.repo.getRecord":    get(authNone, s.handleGetRecord),
		"com.atproto.repo.listRecords":  get(authNone, s.handleListRecords),
		"com.atproto.repo.describeRepo": get(authNone, s.handleDescribeRepo),
		// The video service uploads with the service-auth token the app got from
		// getServiceAuth (aud this PDS, lxm uploadBlob).
		// Deactivated accounts may upload: an arriving account copies its blobs before it
		// activates (as the reference PDS allows).
		"com.atproto.repo.uploadBlob": withServiceAuth(post(authUser, s.handleUploadBlob), "com.atproto.repo.uploadBlob"),
		// Bluesky app methods served by calling another service as the reference does.
		"app.bsky.feed.getFeed":                get(authUser, s.handleGetFeed),
		"app.bsky.notification.registerPush":   post(authUser, s.handlePushRegistration("app.bsky.notification.registerPush")),
		"app.bsky.notification.unregisterPush": post(authUser, s.handlePushRegistration("app.bsky.notification.unregisterPush")),
		"com.atproto.repo.importRepo":          post(authUser, s.handleImportRepo),
		"com.atproto.repo.listMissingBlobs":    get(authUser, s.handleListMissingBlobs),
		// com.atproto.sync
		"com.atproto.sync.getRepo":         get(authNone, s.handleSyncGetRepo),
		"com.atproto.sync.getLatestCommit": get(authNone, s.handleSyncGetLatestCommit),
		"com.atproto.sync.getRecord":       get(authNone, s.handleSyncGetRecord),
		"com.atproto.sync.getBlocks":       get(authNone, s.handleSyncGetBlocks),
		"com.atproto.sync.listRepos":       get(authNone, s.handleSyncListRepos),
		"com.atproto.sync.getRepoStatus":   get(authNone, s.handleSyncGetRepoStatus),
		"com.atproto.sync.getBlob":         get(authNone, s.handleGetBlob),
		"com.atproto.sync.listBlobs":       get(authNone, s.handleListBlobs),
	}
}

// caller is the authenticated principal of a request.
type caller struct {
	DID       string
	Scope     string
	RefreshID string // for refresh-token routes
	Admin     bool
	OAuth     *oauth.Grant // set for DPoP-bound OAuth tokens (oauth_scopes.go)
}

type callerKey struct{}

func callerFrom(ctx context.Context) *caller {
	c, _ := ctx.Value(callerKey{}).(*caller)
	return c
}

// Handler returns the PDS's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/xrpc/{nsid}", s.serveXRPC)
	mux.HandleFunc("GET /xrpc/com.atproto.sync.subscribeRepos", s.seq.ServeHTTP)
	mux.HandleFunc("GET /.well-known/atproto-did", s.handleWellKnownAtprotoDID)
	mux.HandleFunc("GET /.well-known/did.json", s.handleWellKnownDIDJSON)
	mux.HandleFunc("GET /xrpc/_health", s.handleHealth)
	s.registerOAuth(mux)
	mux.HandleFunc("GET /tls-check", s.handleTLSCheck) // Caddy's on-demand TLS ask (tls_check.go)
	mux.HandleFunc("GET /robots.txt", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "User-agent: *\nAllow: /\n")
		if s.cfg.AIUsageDefault != "" {
			// The operator's default; an account's own declaration rides on its reads.
			fmt.Fprintf(w, "Content-Usage: %s\n", s.cfg.AIUsageDefault)
		}
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "This is an AT Protocol Personal Data Server (Hearth %s).\n\nMost API routes are under /xrpc/\n", s.cfg.Version)
	})
	return s.recoverer(xrpc.CORS("GET, POST, OPTIONS", s.limitXRPC(mux)))
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				xrpc.WriteError(w, r, nil, xrpc.Internal(fmt.Errorf("panic: %v", v)))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) serveXRPC(w http.ResponseWriter, r *http.Request) {
	nsid := r.PathValue("nsid")
	sw, began := &statusWriter{ResponseWriter: w}, time.Now()
	returned := false // false in the deferred call: a handler panicked
	defer func() {
		code := sw.code()
		if !returned {
			// The recoverer outside answers 500 (the panic goes on to it untouched, with
			// its stack): count the request so.
			code = http.StatusInternalServerError
		}
		s.metrics.observeRequest(s.methodLabel(nsid), code, time.Since(began))
	}()
	s.dispatchXRPC(sw, r, nsid)
	returned = true
}

// dispatchXRPC answers one XRPC call: proxied, or authenticated, checked against the
// token's scopes and the rate limits, and handled here.
func (s *Server) dispatchXRPC(w http.ResponseWriter, r *http.Request, nsid string) {
	if oauth.IsDPoP(r) {
		s.oauth.SetNonce(w) // on every answer to a DPoP-authenticated call
	}
	rt, ok := s.routes[nsid]
	if !ok {
		// Not served here: forward to the atproto-proxy service or the default AppView
		// (proxy.go), or answer MethodNotImplemented.
		if err := s.proxyXRPC(w, r, nsid); err != nil {
			s.fail(w, r, err)
		}
		return
	}
	if r.Method != rt.method && !(rt.method == http.MethodGet && r.Method == http.MethodHead) {
		s.fail(w, r, xrpc.InvalidRequest("%s expects HTTP %s", nsid, rt.method))
		return
	}
	c, err := s.authenticate(r, rt)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if c != nil {
		r = r.WithContext(context.WithValue(r.Context(), callerKey{}, c))
	}
	if err := s.checkOAuthRoute(r, nsid, c); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.checkRateLimit(r, nsid, c); err != nil {
		s.fail(w, r, err)
		return
	}
	start := time.Now()
	if err := rt.handler(w, r); err != nil {
		s.fail(w, r, err)
	}
	if d := time.Since(start); d > time.Second {
		s.log.Warn("slow request", "nsid", nsid, "duration", d)
	}
}

// fail maps an error to its XRPC response.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	setAuthHeaders(w, err)
	xrpc.WriteError(w, r, s.log, err)
}

func authError(err error) error {
	switch {
	case errors.Is(err, auth.ErrNoToken):
		return xrpc.Errorf(http.StatusUnauthorized, "AuthenticationRequired", "authentication required")
	case errors.Is(err, auth.ErrExpiredToken):
		return xrpc.Errorf(http.StatusUnauthorized, "ExpiredToken", "token has expired")
	case errors.Is(err, auth.ErrWrongType):
		return xrpc.Errorf(http.StatusUnauthorized, "InvalidToken", "wrong token type for this method")
	default:
		return xrpc.Errorf(http.StatusUnauthorized, "InvalidToken", "token could not be verified")
	}
}

// authenticate checks the caller's credentials for the route and, for every account
// credential, the account's status from the account cache: a token outlives neither a
// takedown nor a deletion (both also revoke the stored sessions); a deactivated account
// keeps its session (repo writes answer AccountDeactivated from writableRepo, and an
// arriving account uploads blobs and preferences before it activates). Admin Basic auth is accepted on admin routes
// only: it is not a user and must never write into somebody's repo.
func (s *Server) authenticate(r *http.Request, rt route) (*caller, error) {
	var c *caller
	var err error
	switch rt.auth {
	case authNone:
		return nil, nil
	case authAdmin:
		if !auth.CheckAdmin(r, s.cfg.AdminPassword) {
			return nil, xrpc.Errorf(http.StatusUnauthorized, "AuthenticationRequired", "admin authentication required")
		}
		return &caller{Admin: true}, nil
	case authOptional, authUser:
		if rt.auth == authOptional && r.Header.Get("Authorization") == "" {
			return nil, nil
		}
		if oauth.IsDPoP(r) {
			if c, err = s.authenticateDPoP(r); err != nil {
				return nil, err
			}
			break
		}
		tok, err := auth.BearerToken(r)
		if err != nil {
			return nil, authError(err)
		}
		if rt.serviceAuth != "" && isServiceAuthJWT(tok) {
			if c, err = s.checkInboundServiceAuth(r.Context(), tok, rt.serviceAuth); err != nil {
				return nil, err
			}
			break
		}
		claims, err := s.sessions.CheckAccess(tok)
		if err != nil {
			return nil, authError(err)
		}
		if s.accessRevoked(claims) { // issued before a password reset
			return nil, authError(auth.ErrExpiredToken)
		}
		c = &caller{DID: claims.Subject, Scope: claims.Scope}
	case authRefresh:
		tok, err := auth.BearerToken(r)
		if err != nil {
			return nil, authError(err)
		}
		claims, err := s.sessions.CheckRefresh(tok)
		if err != nil {
			return nil, authError(err)
		}
		c = &caller{DID: claims.Subject, Scope: claims.Scope, RefreshID: claims.ID}
	default:
		return nil, fmt.Errorf("unknown auth level %d", rt.auth)
	}
	if err := s.checkCallerAccount(r.Context(), c.DID); err != nil {
		return nil, err
	}
	return c, nil
}

// checkCallerAccount refuses credentials of deleted and taken-down accounts (the
// reference PDS's checkTakedown).
func (s *Server) checkCallerAccount(ctx context.Context, did string) error {
	acct, err := s.accounts.get(ctx, s.store, did)
	if errors.Is(err, store.ErrNotFound) || (err == nil && acct.Status == store.StatusDeleted) {
		return xrpc.Errorf(http.StatusUnauthorized, "InvalidToken", "account not found")
	} else if err != nil {
		return err
	}
	if acct.Status == store.StatusTakendown {
		return xrpc.Errorf(http.StatusUnauthorized, "AccountTakedown", "account has been taken down")
	}
	return nil
}

package pds

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"

	"github.com/hearth-social/hearth/internal/ratelimit"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/repo"
)

// Rate limits: every XRPC request counts against its client IP's global budget
// (limitXRPC, around the mux); some methods also count against a budget of their own,
// keyed by IP, account or login identifier (checkRateLimit, from serveXRPC once the
// caller is known); repo writes are charged in points by their handlers once the ops
// are known (chargeWrites). Each response reports the tightest limit it went through in
// RateLimit-* headers; a refusal is 429 RateLimitExceeded with Retry-After. Password
// sign-ins through the pages (pds/web) count per client IP and, with createSession, per
// identifier (checkSignIn); they are refused with a page of their own.
//
// The counters live with the handler chain Handler builds (in memory, bounded, lost on
// restart) and reach the handlers through the request context.

// bypassHeader carries the bypass secret (the reference PDS's header name).
const bypassHeader = "X-Ratelimit-Bypass"

// Write points, as the reference PDS charges them.
const (
	pointsCreate = 3
	pointsUpdate = 2
	pointsDelete = 1
)

// maxIdentifierBody is how much of a createSession body is read to find the identifier
// (the handler's own limit).
const maxIdentifierBody = 64 << 10

// keyBy is what a method's limit counts against.
type keyBy int

const (
	keyIP         keyBy = iota
	keyAccount          // the caller's DID; the client IP when there is no caller
	keyIdentifier       // createSession's identifier, lower-cased
	keyEmail            // requestPasswordReset's email, lower-cased, and the client IP
)

// routeLimit is one method's own limit.
type routeLimit struct {
	limits ratelimit.Set
	key    keyBy
	// charged methods are charged by their handler (chargeWrites) with the points their
	// ops cost, not one point per request here.
	charged bool
}

// rateLimiter is the PDS's policy over internal/ratelimit.
type rateLimiter struct {
	log      *slog.Logger
	global   ratelimit.Set
	writes   ratelimit.Set
	logins   ratelimit.Set // createSession's, per identifier, shared with the pages
	signIn   ratelimit.Set // the pages' sign-ins per client IP
	routes   map[string]routeLimit
	bypass   []netip.Prefix
	secret   [sha256.Size]byte
	trustXFF bool
	// hasSecret: a bypass secret is configured.
	hasSecret bool
}

// newRateLimiter builds the limiters of cfg (checked by Config.Validate), nil when
// rate limits are disabled.
func newRateLimiter(cfg RateLimits, log *slog.Logger) *rateLimiter {
	if cfg.Disabled {
		return nil
	}
	opts := ratelimit.Options{MaxKeys: cfg.MaxKeys}
	set := func(ls []ratelimit.Limit) ratelimit.Set { return ratelimit.NewSet(ls, opts) }
	rl := &rateLimiter{log: log, global: set(cfg.Global), writes: set(cfg.RepoWrites), logins: set(cfg.CreateSession),
		signIn: set(cfg.PageSignIn), trustXFF: cfg.TrustForwardedFor}
	emails := set(cfg.EmailRequests)
	// The per-method table: a limit for another method is one line here.
	rl.routes = map[string]routeLimit{
		"com.atproto.server.createAccount": {limits: set(cfg.CreateAccount), key: keyIP},
		"com.atproto.server.createSession": {limits: rl.logins, key: keyIdentifier},
		"com.atproto.repo.uploadBlob":      {limits: set(cfg.UploadBlob), key: keyAccount},
		"com.atproto.repo.createRecord":    {limits: rl.writes, key: keyAccount, charged: true},
		"com.atproto.repo.putRecord":       {limits: rl.writes, key: keyAccount, charged: true},
		"com.atproto.repo.deleteRecord":    {limits: rl.writes, key: keyAccount, charged: true},
		"com.atproto.repo.applyWrites":     {limits: rl.writes, key: keyAccount, charged: true},
		// Methods that send an email or check an emailed token share one budget; they
		// take effect as soon as such a method is routed.
		"com.atproto.server.requestEmailConfirmation":       {limits: emails, key: keyAccount},
		"com.atproto.server.confirmEmail":                   {limits: emails, key: keyAccount},
		"com.atproto.server.requestEmailUpdate":             {limits: emails, key: keyAccount},
		"com.atproto.server.updateEmail":                    {limits: emails, key: keyAccount},
		"com.atproto.server.requestPasswordReset":           {limits: emails, key: keyEmail},
		"com.atproto.server.resetPassword":                  {limits: emails, key: keyIP},
		"com.atproto.server.requestAccountDelete":           {limits: emails, key: keyAccount},
		"com.atproto.server.deleteAccount":                  {limits: emails, key: keyIP},
		"com.atproto.identity.requestPlcOperationSignature": {limits: emails, key: keyAccount},
	}
	for nsid, l := range rl.routes {
		if len(l.limits) == 0 {
			delete(rl.routes, nsid) // that kind of limit is off
		}
	}
	for _, raw := range cfg.Bypass {
		if p, err := parseBypass(raw); err == nil { // checked by Validate
			rl.bypass = append(rl.bypass, p)
		}
	}
	if cfg.BypassSecret != "" {
		rl.secret, rl.hasSecret = sha256.Sum256([]byte(cfg.BypassSecret)), true
	}
	return rl
}

// limitState is one request's view of the limits it went through, shared by the
// middleware, checkRateLimit and the handlers through the context.
type limitState struct {
	rl     *rateLimiter
	bypass bool
	client string // the client's key: its IP (an IPv6 client's /64)
	h      http.Header
	// shown is the limit the RateLimit-* headers report: the tightest so far.
	shown ratelimit.Result
}

type limitStateKey struct{}

func limitStateFrom(ctx context.Context) *limitState {
	st, _ := ctx.Value(limitStateKey{}).(*limitState)
	return st
}

// report shows res in the headers if it is the tightest limit so far.
func (st *limitState) report(res ratelimit.Result) {
	if ratelimit.Tighter(res, st.shown) {
		st.shown = res
		ratelimit.SetHeaders(st.h, res)
	}
}

// apply reports res and turns a refusal into the XRPC error.
func (st *limitState) apply(res ratelimit.Result) error {
	st.report(res)
	if res.Allowed || !res.Limited() {
		return nil
	}
	return rateLimitError(res)
}

func rateLimitError(res ratelimit.Result) *xrpc.Error {
	e := xrpc.Errorf(http.StatusTooManyRequests, "RateLimitExceeded", "rate limit exceeded (%s); try again in %s seconds",
		res.Limit.String(), ratelimit.RetryAfter(res))
	e.RetryAfter = ratelimit.RetryAfter(res)
	return e
}

// limitXRPC applies the global per-IP limit to every XRPC request (methods served
// here, proxied ones and the firehose alike) and, for the methods with limits of their
// own, hands the request's limit state to checkRateLimit and the handlers. Form posts
// outside XRPC (the pages) get a limit state for checkSignIn and no global limit.
func (s *Server) limitXRPC(next http.Handler) http.Handler {
	rl := newRateLimiter(s.cfg.RateLimits, s.log.With("component", "ratelimit"))
	if rl == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nsid, ok := strings.CutPrefix(r.URL.Path, "/xrpc/")
		if !ok {
			if r.Method == http.MethodPost {
				addr, client := rl.client(r)
				st := &limitState{rl: rl, bypass: rl.bypassed(r, addr), client: client, h: w.Header()}
				r = r.WithContext(context.WithValue(r.Context(), limitStateKey{}, st))
			}
			next.ServeHTTP(w, r)
			return
		}
		_, ownLimit := rl.routes[nsid]
		addr, client := rl.client(r)
		if rl.bypassed(r, addr) {
			if ownLimit {
				r = r.WithContext(context.WithValue(r.Context(), limitStateKey{}, &limitState{rl: rl, bypass: true}))
			}
			next.ServeHTTP(w, r)
			return
		}
		res := rl.global.Allow(client, 1)
		if !res.Allowed && res.Limited() {
			rl.log.Debug("rate limited", "nsid", nsid, "limit", "global", "policy", res.Limit.String(), "client", client)
			ratelimit.SetHeaders(w.Header(), res)
			xrpc.WriteError(w, r, nil, rateLimitError(res))
			return
		}
		if !ownLimit {
			ratelimit.SetHeaders(w.Header(), res)
			next.ServeHTTP(w, r)
			return
		}
		st := &limitState{rl: rl, client: client, h: w.Header()}
		st.report(res)
		r = r.WithContext(context.WithValue(r.Context(), limitStateKey{}, st))
		next.ServeHTTP(w, r)
	})
}

// checkRateLimit applies nsid's own limit (if it has one) once the caller is known.
func (s *Server) checkRateLimit(r *http.Request, nsid string, c *caller) error {
	st := limitStateFrom(r.Context())
	if st == nil || st.bypass {
		return nil
	}
	rt, ok := st.rl.routes[nsid]
	if !ok || rt.charged {
		return nil
	}
	key := st.client
	switch rt.key {
	case keyAccount:
		if c != nil && c.DID != "" {
			key = c.DID
		}
	case keyIdentifier:
		id := peekField(r, "identifier")
		if id == "" {
			return nil // the handler refuses the request
		}
		key = "id:" + id // apart from IP and DID keys in a shared budget
	case keyEmail:
		// Per address (no flood of mail to one inbox from many clients) and per client
		// (no sweep of addresses from one).
		if err := st.apply(rt.limits.Allow(key, 1)); err != nil {
			return err
		}
		if key = peekField(r, "email"); key == "" {
			return nil
		}
		key = "email:" + key
	}
	res := rt.limits.Allow(key, 1)
	if !res.Allowed {
		st.rl.log.Debug("rate limited", "nsid", nsid, "policy", res.Limit.String())
	}
	return st.apply(res)
}

// checkSignIn counts a password sign-in through the pages against the client IP's
// page sign-in budget and the identifier's login budget (createSession's), with the
// bypass rules of every limit. ident is as typed; it is keyed as createSession keys it.
func (s *Server) checkSignIn(ctx context.Context, ident string) error {
	st := limitStateFrom(ctx)
	if st == nil || st.bypass {
		return nil
	}
	if err := st.apply(st.rl.signIn.Allow(st.client, 1)); err != nil {
		st.rl.log.Debug("rate limited", "limit", "page sign-in", "client", st.client)
		return err
	}
	key := strings.ToLower(strings.TrimSpace(ident))
	if key == "" {
		return nil
	}
	if err := st.apply(st.rl.logins.Allow("id:"+key, 1)); err != nil {
		st.rl.log.Debug("rate limited", "limit", "sign-in identifier")
		return err
	}
	return nil
}

// peekField reads a string field of a JSON body (createSession's identifier,
// requestPasswordReset's email) and puts the body back for the handler. "" when there is
// none to read (the handler answers that).
func peekField(r *http.Request, field string) string {
	if r.Body == nil {
		return ""
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxIdentifierBody+1))
	r.Body = readCloser{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
	var in map[string]json.RawMessage
	var v string
	if json.Unmarshal(body, &in) != nil || json.Unmarshal(in[field], &v) != nil {
		return ""
	}
	return strings.ToLower(strings.TrimSpace(v))
}

type readCloser struct {
	io.Reader
	io.Closer
}

// writePoints is what writes cost: create 3, update (or put) 2, delete 1.
func writePoints(writes []repo.Write) int {
	n := 0
	for _, w := range writes {
		switch w.Action {
		case repo.ActionCreate:
			n += pointsCreate
		case repo.ActionDelete:
			n += pointsDelete
		default:
			n += pointsUpdate
		}
	}
	return n
}

// chargeWrites charges an account's repo-write budget before its writes are committed.
func (s *Server) chargeWrites(ctx context.Context, did string, points int) error {
	st := limitStateFrom(ctx)
	if st == nil || st.bypass {
		return nil
	}
	res := st.rl.writes.Allow(did, points)
	if !res.Allowed {
		st.rl.log.Debug("rate limited", "limit", "repo writes", "policy", res.Limit.String(), "points", points)
	}
	return st.apply(res)
}

// chargePutCreated charges the rest of a create when a putRecord, charged as an update
// before the commit, turned out to create the record. It never refuses: the write is
// done; the account's next writes pay for it.
func (s *Server) chargePutCreated(ctx context.Context, did string, wr repo.Write, res *commitResult) {
	st := limitStateFrom(ctx)
	if st == nil || st.bypass || wr.Action != repo.ActionPut {
		return
	}
	for _, op := range res.Ops {
		if op.Action == repo.ActionCreate {
			st.report(st.rl.writes.Add(did, pointsCreate-pointsUpdate))
			return
		}
	}
}

// client is the request's client address and the key its counts go under. An IPv6
// client is counted by its /64, the block one host or household typically holds.
func (rl *rateLimiter) client(r *http.Request) (netip.Addr, string) {
	var addr netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		addr = ap.Addr().Unmap()
	}
	if rl.trustXFF {
		if a, ok := forwardedFor(r.Header); ok {
			addr = a
		}
	}
	switch {
	case !addr.IsValid():
		return addr, r.RemoteAddr
	case addr.Is4():
		return addr, addr.String()
	default:
		p, _ := addr.Prefix(64)
		return addr, p.String()
	}
}

// forwardedFor is the last address in X-Forwarded-For: the one the reverse proxy in
// front of Hearth saw (entries before it come from the client and can be forged).
func forwardedFor(h http.Header) (netip.Addr, bool) {
	vals := h.Values("X-Forwarded-For")
	if len(vals) == 0 {
		return netip.Addr{}, false
	}
	last := vals[len(vals)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	last = strings.TrimSpace(last)
	if a, err := netip.ParseAddr(last); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(last); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// bypassed reports a trusted client: its address is in the bypass list, or it sent the
// bypass secret (compared in constant time; never logged).
func (rl *rateLimiter) bypassed(r *http.Request, addr netip.Addr) bool {
	if addr.IsValid() {
		for _, p := range rl.bypass {
			if p.Contains(addr) {
				return true
			}
		}
	}
	if rl.hasSecret {
		if v := r.Header.Get(bypassHeader); v != "" {
			sum := sha256.Sum256([]byte(v))
			return subtle.ConstantTimeCompare(sum[:], rl.secret[:]) == 1
		}
	}
	return false
}

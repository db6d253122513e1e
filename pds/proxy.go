package pds

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	indigoid "github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/netguard"
	"github.com/hearth-social/hearth/internal/resolve"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/plc"
)

// Proxying: an XRPC method this PDS does not serve is forwarded to the service named by
// the request's atproto-proxy header ("did#service_id", resolved through the DID
// document) or, without that header, to the configured default AppView. The caller's
// access token stays here; the upstream gets a fresh service-auth JWT for the caller.

const (
	proxyDialTimeout   = 5 * time.Second
	proxyHeaderTimeout = 30 * time.Second
	// proxyTotalTimeout bounds one forwarded call, streaming the answer back included.
	proxyTotalTimeout = 2 * time.Minute
	didDocTimeout     = 5 * time.Second
	didDocCacheTTL    = 5 * time.Minute
	didDocCacheMax    = 10_000
)

// Headers passed to the upstream, and back to the client.
var (
	proxyRequestHeaders  = []string{"Accept", "Accept-Language", "Atproto-Accept-Labelers", "X-Bsky-Topics"}
	proxyResponseHeaders = []string{"Content-Type", "Content-Encoding", "Content-Language", "Atproto-Content-Labelers",
		"Atproto-Repo-Rev", "Retry-After", "Ratelimit-Limit", "Ratelimit-Remaining", "Ratelimit-Reset", "Ratelimit-Policy"}
)

// proxy holds the outbound HTTP clients and the resolver of service DIDs.
type proxy struct {
	// dir resolves service DIDs (did:plc through the configured directory, did:web
	// through the dial guard), caching them for a few minutes.
	dir indigoid.Directory
	// trusted reaches the operator's default AppView (which may well be on a private network).
	trusted *http.Client
	// guarded reaches hosts taken from DID documents and did:web names: public
	// addresses only, unless Config.ProxyAllowPrivate.
	guarded *http.Client
}

// newProxy resolves did:plc through the same directory (and HTTP client) as dir.
func newProxy(cfg Config, dir *plc.Client) *proxy {
	opts := netguard.Options{DialTimeout: proxyDialTimeout, ResponseHeaderTimeout: proxyHeaderTimeout, MaxIdleConnsPerHost: 16}
	trusted := opts
	trusted.AllowPrivate = true
	guarded := opts
	guarded.AllowPrivate = cfg.ProxyAllowPrivate
	return &proxy{
		dir: resolve.New(resolve.Config{
			PLCURL: dir.BaseURL, PLCHTTP: dir.HTTP, AllowPrivate: cfg.ProxyAllowPrivate, Timeout: didDocTimeout,
			CacheSize: didDocCacheMax, CacheTTL: didDocCacheTTL, UserAgent: "hearth-pds",
		}),
		trusted: netguard.NewClient(trusted),
		guarded: netguard.NewClient(guarded),
	}
}

// proxyXRPC forwards a call for a method that is not in the routing table, or answers
// MethodNotImplemented when there is nowhere to forward it.
func (s *Server) proxyXRPC(w http.ResponseWriter, r *http.Request, rawNSID string) error {
	notImplemented := xrpc.Errorf(http.StatusNotImplemented, "MethodNotImplemented", "method %s is not served by this PDS and no AppView is configured", rawNSID)
	nsid, err := syntax.ParseNSID(rawNSID)
	if err != nil {
		return notImplemented
	}
	header := strings.TrimSpace(r.Header.Get("atproto-proxy"))
	if header == "" && s.cfg.AppViewURL == "" {
		return notImplemented
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		return xrpc.InvalidRequest("XRPC requests must be GET or POST")
	}
	if protectedMethods[nsid.String()] {
		return xrpc.Errorf(http.StatusBadRequest, "InvalidToken", "%s cannot be proxied: call it on the account's own PDS", nsid)
	}
	var svcDID syntax.DID
	var svcID string
	if header != "" {
		if svcDID, svcID, err = parseProxyHeader(header); err != nil {
			return err
		}
	}

	// Forwarded requests need a user session; only the default AppView may be asked
	// anonymously (public views).
	var c *caller
	if header != "" || r.Header.Get("Authorization") != "" {
		if c, err = s.authenticate(r, route{auth: authUser}); err != nil {
			return err
		}
		if privilegedMethods[nsid.String()] && c.OAuth == nil && !privileged(c.Scope) { // OAuth: checkOAuthProxy
			return xrpc.Errorf(http.StatusBadRequest, "InvalidToken", "%s needs a full session or a privileged app password", nsid)
		}
	}

	var up upstream
	if av := s.appView(); av != nil {
		up = *av
	}
	if header != "" {
		if up.endpoint, err = s.proxy.resolveService(r.Context(), svcDID, svcID); err != nil {
			return err
		}
		up.aud, up.client = svcDID.String(), s.proxy.guarded
	}
	if err := s.checkOAuthProxy(c, svcDID, svcID, nsid); err != nil {
		return err
	}
	if c != nil && rawPatchers[nsid.String()] != nil {
		return s.forwardReadAfterWrite(w, r, nsid, up, c)
	}
	// aud is the bare service DID, not "did#service_id": the reference PDS still sends
	// the bare DID ("phase 1" of the aud change) and services accept that form.
	return s.forward(w, r, nsid, up, c, up.aud, nsid, nil)
}

// upstream is where a forwarded call goes: the service's DID, its endpoint and the
// client that reaches it (guarded unless it is the operator's own AppView).
type upstream struct {
	aud, endpoint string
	client        *http.Client
}

// appView is the operator's default AppView, or nil when none is configured.
func (s *Server) appView() *upstream {
	if s.cfg.AppViewURL == "" {
		return nil
	}
	return &upstream{aud: s.cfg.AppViewDID, endpoint: s.cfg.AppViewURL, client: s.proxy.trusted}
}

// forward sends the request on to up and streams the answer back unchanged (status,
// body and the headers apps rely on). For a caller, it attaches a service-auth token
// {iss: caller, aud: tokenAud, lxm}; tokenAud differs from up.aud when the upstream
// passes the token on (getFeed: the AppView hands it to the feed generator). body, when
// non-nil, replaces the request's own body (a handler that already read it).
func (s *Server) forward(w http.ResponseWriter, r *http.Request, nsid syntax.NSID, up upstream, c *caller, tokenAud string, lxm syntax.NSID, body []byte) error {
	ctx, cancel := context.WithTimeout(r.Context(), proxyTotalTimeout)
	defer cancel()
	res, err := s.send(ctx, r, nsid, up, c, tokenAud, lxm, body, false)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	s.relay(w, r, nsid, res)
	return nil
}

// send makes the upstream call of forward. identity asks the upstream for an
// unencoded body (one this PDS is going to read) whatever the client accepts.
func (s *Server) send(ctx context.Context, r *http.Request, nsid syntax.NSID, up upstream, c *caller, tokenAud string, lxm syntax.NSID, body []byte, identity bool) (*http.Response, error) {
	var rd io.Reader
	switch {
	case body != nil:
		rd = bytes.NewReader(body)
	case r.Method == http.MethodPost:
		if r.ContentLength > s.cfg.MaxBodyBytes {
			return nil, xrpc.Errorf(http.StatusRequestEntityTooLarge, "PayloadTooLarge", "request body is larger than %d bytes", s.cfg.MaxBodyBytes)
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBodyBytes+1))
		if err != nil {
			return nil, xrpc.InvalidRequest("reading request body: %v", err)
		}
		if int64(len(b)) > s.cfg.MaxBodyBytes {
			return nil, xrpc.Errorf(http.StatusRequestEntityTooLarge, "PayloadTooLarge", "request body is larger than %d bytes", s.cfg.MaxBodyBytes)
		}
		rd = bytes.NewReader(b)
	}

	u := up.endpoint + "/xrpc/" + nsid.String()
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, u, rd)
	if err != nil {
		return nil, xrpc.Errorf(http.StatusBadGateway, "UpstreamFailure", "invalid service endpoint %q", up.endpoint)
	}
	for _, h := range proxyRequestHeaders {
		if v := r.Header.Values(h); len(v) > 0 {
			out.Header[h] = v
		}
	}
	if rd != nil {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			out.Header.Set("Content-Type", ct)
		}
		if ce := r.Header.Get("Content-Encoding"); ce != "" && body == nil {
			out.Header.Set("Content-Encoding", ce)
		}
	}
	// Setting Accept-Encoding ourselves keeps the body as the upstream encoded it (no
	// transparent gunzip), so Content-Encoding can be passed back as is.
	if ae := r.Header.Get("Accept-Encoding"); ae != "" && !identity {
		out.Header.Set("Accept-Encoding", ae)
	} else {
		out.Header.Set("Accept-Encoding", "identity")
	}
	if c != nil {
		tok, err := s.serviceAuthToken(ctx, c.DID, tokenAud, &lxm, defaultServiceAuthTTL)
		if err != nil {
			return nil, err
		}
		out.Header.Set("Authorization", "Bearer "+tok)
	}

	res, err := up.client.Do(out)
	if err != nil {
		msg := "upstream service unreachable"
		switch {
		case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
			msg = "upstream service timed out"
		case errors.Is(err, netguard.ErrRefused):
			msg = "upstream service is not at a public address"
		}
		return nil, &xrpc.Error{Status: http.StatusBadGateway, Name: "UpstreamFailure", Message: msg, Err: err}
	}
	return res, nil
}

// relay streams an upstream answer back to the client: status, body and the headers
// apps rely on.
func (s *Server) relay(w http.ResponseWriter, r *http.Request, nsid syntax.NSID, res *http.Response) {
	h := w.Header()
	for _, name := range proxyResponseHeaders {
		if v := res.Header.Values(name); len(v) > 0 {
			h[name] = v
		}
	}
	if res.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(res.ContentLength, 10))
	}
	w.WriteHeader(res.StatusCode)
	if r.Method != http.MethodHead {
		if _, err := io.Copy(w, res.Body); err != nil {
			s.log.Debug("proxy: copying upstream answer", "nsid", nsid, "err", err)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// parseProxyHeader splits an atproto-proxy header "did#service_id".
func parseProxyHeader(h string) (syntax.DID, string, error) {
	i := strings.IndexByte(h, '#')
	switch {
	case i < 0 || i == len(h)-1:
		return "", "", xrpc.InvalidRequest("atproto-proxy header %q has no service id (want did#service_id)", h)
	case i == 0:
		return "", "", xrpc.InvalidRequest("atproto-proxy header %q has no DID (want did#service_id)", h)
	case strings.Count(h, "#") > 1 || strings.ContainsAny(h, " \t"):
		return "", "", xrpc.InvalidRequest("atproto-proxy header %q is malformed (want did#service_id)", h)
	}
	did, err := syntax.ParseDID(h[:i])
	if err != nil {
		return "", "", xrpc.InvalidRequest("atproto-proxy header %q: invalid DID", h)
	}
	return did, h[i:], nil
}

// resolveService finds the endpoint of service svcID ("#name") in did's DID document.
func (p *proxy) resolveService(ctx context.Context, did syntax.DID, svcID string) (string, error) {
	if m := did.Method(); m != "plc" && m != "web" {
		return "", xrpc.InvalidRequest("cannot resolve %s: unsupported DID method", did)
	}
	ident, err := p.dir.LookupDID(ctx, did)
	switch {
	case errors.Is(err, indigoid.ErrDIDNotFound):
		return "", xrpc.InvalidRequest("could not resolve proxy DID %s: not found", did)
	case errors.Is(err, resolve.ErrMalformed):
		return "", xrpc.InvalidRequest("cannot resolve %s: %v", did, err)
	case err != nil:
		msg := fmt.Sprintf("could not resolve proxy DID %s", did)
		if errors.Is(err, netguard.ErrRefused) {
			msg += ": its host is not at a public address"
		}
		return "", &xrpc.Error{Status: http.StatusBadGateway, Name: "UpstreamFailure", Message: msg, Err: err}
	}
	svc, ok := ident.Services[strings.TrimPrefix(svcID, "#")]
	if !ok {
		return "", xrpc.InvalidRequest("the DID document of %s has no service %s", did, svcID)
	}
	u, err := url.Parse(svc.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", xrpc.InvalidRequest("service %s%s has an invalid endpoint %q", did, svcID, svc.URL)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

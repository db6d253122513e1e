package pds

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	indigoid "github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/identity"
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
	maxDIDDocBytes    = 256 << 10
	didDocCacheTTL    = 5 * time.Minute
	didDocCacheMax    = 10_000
)

// Headers passed to the upstream, and back to the client.
var (
	proxyRequestHeaders  = []string{"Accept", "Accept-Language", "Atproto-Accept-Labelers", "X-Bsky-Topics"}
	proxyResponseHeaders = []string{"Content-Type", "Content-Encoding", "Content-Language", "Atproto-Content-Labelers",
		"Atproto-Repo-Rev", "Retry-After", "Ratelimit-Limit", "Ratelimit-Remaining", "Ratelimit-Reset", "Ratelimit-Policy"}
)

var errPrivateAddress = errors.New("refusing to connect to a non-public address")

// proxy holds the outbound HTTP clients and a small cache of resolved DID documents.
type proxy struct {
	plc *identity.Client
	// trusted reaches the operator's default AppView (which may well be on a private network).
	trusted *http.Client
	// guarded reaches hosts taken from DID documents and did:web names: public
	// addresses only, unless Config.ProxyAllowPrivate.
	guarded *http.Client

	mu   sync.Mutex
	docs map[syntax.DID]cachedDoc
}

type cachedDoc struct {
	doc     *indigoid.DIDDocument
	expires time.Time
}

func newProxy(cfg Config, plc *identity.Client) *proxy {
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &proxy{
		plc:     plc,
		trusted: &http.Client{Transport: proxyTransport(true), CheckRedirect: noRedirect},
		guarded: &http.Client{Transport: proxyTransport(cfg.ProxyAllowPrivate), CheckRedirect: noRedirect},
		docs:    map[syntax.DID]cachedDoc{},
	}
}

func proxyTransport(allowPrivate bool) *http.Transport {
	d := &net.Dialer{Timeout: proxyDialTimeout, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = refusePrivate
	}
	return &http.Transport{
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   proxyDialTimeout,
		ResponseHeaderTimeout: proxyHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
}

// refusePrivate is a net.Dialer Control that only lets connections to public addresses
// through (checked after DNS resolution, so a name cannot point at a private address).
func refusePrivate(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return err
	}
	if !publicAddr(ip) {
		return fmt.Errorf("%w: %s", errPrivateAddress, ip)
	}
	return nil
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !cgnat.Contains(ip)
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
		if privilegedMethods[nsid.String()] && !privileged(c.Scope) {
			return xrpc.Errorf(http.StatusBadRequest, "InvalidToken", "%s needs a full session or a privileged app password", nsid)
		}
	}

	aud, endpoint, client := s.cfg.AppViewDID, s.cfg.AppViewURL, s.proxy.trusted
	if header != "" {
		if endpoint, err = s.proxy.resolveService(r.Context(), svcDID, svcID); err != nil {
			return err
		}
		aud, client = svcDID.String(), s.proxy.guarded
	}

	var body io.Reader
	if r.Method == http.MethodPost {
		if r.ContentLength > s.cfg.MaxBodyBytes {
			return xrpc.Errorf(http.StatusRequestEntityTooLarge, "PayloadTooLarge", "request body is larger than %d bytes", s.cfg.MaxBodyBytes)
		}
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return xrpc.Errorf(http.StatusRequestEntityTooLarge, "PayloadTooLarge", "request body is larger than %d bytes", s.cfg.MaxBodyBytes)
			}
			return xrpc.InvalidRequest("reading request body: %v", err)
		}
		body = bytes.NewReader(b)
	}

	ctx, cancel := context.WithTimeout(r.Context(), proxyTotalTimeout)
	defer cancel()
	u := endpoint + "/xrpc/" + nsid.String()
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, u, body)
	if err != nil {
		return xrpc.Errorf(http.StatusBadGateway, "UpstreamFailure", "invalid service endpoint %q", endpoint)
	}
	for _, h := range proxyRequestHeaders {
		if v := r.Header.Values(h); len(v) > 0 {
			out.Header[h] = v
		}
	}
	if body != nil {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			out.Header.Set("Content-Type", ct)
		}
		if ce := r.Header.Get("Content-Encoding"); ce != "" {
			out.Header.Set("Content-Encoding", ce)
		}
	}
	// Setting Accept-Encoding ourselves keeps the body as the upstream encoded it (no
	// transparent gunzip), so Content-Encoding can be passed back as is.
	if ae := r.Header.Get("Accept-Encoding"); ae != "" {
		out.Header.Set("Accept-Encoding", ae)
	} else {
		out.Header.Set("Accept-Encoding", "identity")
	}
	if c != nil {
		// aud is the bare service DID, not "did#service_id": the reference PDS still sends
		// the bare DID ("phase 1" of the aud change) and services accept that form.
		tok, err := s.serviceAuthToken(ctx, c.DID, aud, &nsid, defaultServiceAuthTTL)
		if err != nil {
			return err
		}
		out.Header.Set("Authorization", "Bearer "+tok)
	}

	res, err := client.Do(out)
	if err != nil {
		msg := "upstream service unreachable"
		switch {
		case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
			msg = "upstream service timed out"
		case errors.Is(err, errPrivateAddress):
			msg = "upstream service is not at a public address"
		}
		return &xrpc.Error{Status: http.StatusBadGateway, Name: "UpstreamFailure", Message: msg, Err: err}
	}
	defer res.Body.Close()
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
	return nil
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
	doc, err := p.didDoc(ctx, did)
	if err != nil {
		return "", err
	}
	for _, svc := range doc.Service {
		if svc.ID != svcID && svc.ID != did.String()+svcID {
			continue
		}
		u, err := url.Parse(svc.ServiceEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return "", xrpc.InvalidRequest("service %s%s has an invalid endpoint %q", did, svcID, svc.ServiceEndpoint)
		}
		return strings.TrimRight(u.String(), "/"), nil
	}
	return "", xrpc.InvalidRequest("the DID document of %s has no service %s", did, svcID)
}

// didDoc resolves did (did:plc through the configured directory, did:web over HTTPS),
// caching documents for a few minutes.
func (p *proxy) didDoc(ctx context.Context, did syntax.DID) (*indigoid.DIDDocument, error) {
	now := time.Now()
	p.mu.Lock()
	if c, ok := p.docs[did]; ok && now.Before(c.expires) {
		p.mu.Unlock()
		return c.doc, nil
	}
	p.mu.Unlock()

	var doc *indigoid.DIDDocument
	var err error
	switch did.Method() {
	case "plc":
		doc, err = p.plc.Resolve(ctx, did)
	case "web":
		doc, err = p.resolveDIDWeb(ctx, did)
	default:
		return nil, xrpc.InvalidRequest("cannot resolve %s: unsupported DID method", did)
	}
	switch {
	case errors.Is(err, indigoid.ErrDIDNotFound):
		return nil, xrpc.InvalidRequest("could not resolve proxy DID %s: not found", did)
	case err != nil:
		var xe *xrpc.Error
		if errors.As(err, &xe) {
			return nil, err
		}
		msg := fmt.Sprintf("could not resolve proxy DID %s", did)
		if errors.Is(err, errPrivateAddress) {
			msg += ": its host is not at a public address"
		}
		return nil, &xrpc.Error{Status: http.StatusBadGateway, Name: "UpstreamFailure", Message: msg, Err: err}
	}
	p.mu.Lock()
	if len(p.docs) >= didDocCacheMax {
		clear(p.docs)
	}
	p.docs[did] = cachedDoc{doc: doc, expires: now.Add(didDocCacheTTL)}
	p.mu.Unlock()
	return doc, nil
}

// resolveDIDWeb fetches https://HOST/.well-known/did.json for did:web:HOST (a port is
// written %3A). Plain http is used for localhost and 127.0.0.1, for development.
func (p *proxy) resolveDIDWeb(ctx context.Context, did syntax.DID) (*indigoid.DIDDocument, error) {
	id := did.Identifier()
	if strings.Contains(id, ":") {
		return nil, xrpc.InvalidRequest("did:web with a path is not supported: %s", did)
	}
	host, err := url.PathUnescape(id)
	if err != nil {
		return nil, xrpc.InvalidRequest("invalid did:web %s", did)
	}
	hu, err := url.Parse("//" + host)
	if err != nil || hu.Host != host || hu.User != nil || hu.Path != "" || hu.Hostname() == "" {
		return nil, xrpc.InvalidRequest("invalid did:web host in %s", did)
	}
	scheme := "https"
	if hn := hu.Hostname(); hn == "localhost" || hn == "127.0.0.1" || hn == "::1" {
		scheme = "http"
	}
	ctx, cancel := context.WithTimeout(ctx, didDocTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+host+"/.well-known/did.json", nil)
	if err != nil {
		return nil, xrpc.InvalidRequest("invalid did:web host in %s", did)
	}
	req.Header.Set("Accept", "application/did+ld+json, application/json")
	res, err := p.guarded.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusNotFound || res.StatusCode == http.StatusGone {
		return nil, fmt.Errorf("%w: %s answered %d", indigoid.ErrDIDNotFound, host, res.StatusCode)
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching did.json from %s: HTTP %d", host, res.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, maxDIDDocBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading did.json from %s: %w", host, err)
	}
	if len(b) > maxDIDDocBytes {
		return nil, fmt.Errorf("did.json from %s is larger than %d bytes", host, maxDIDDocBytes)
	}
	var doc indigoid.DIDDocument
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("decoding did.json from %s: %w", host, err)
	}
	if doc.DID != did {
		return nil, fmt.Errorf("did.json from %s is for %q, not %s", host, doc.DID, did)
	}
	return &doc, nil
}

// Package resolve is Hearth's one DID and handle resolver: an indigo
// identity.Directory (indigo's BaseDirectory behind its CacheDirectory) configured so
// that everything fetched from a host named by an identity (did:web documents, handle
// well-known files) goes through the netguard dial guard, while the operator-chosen PLC
// directory (which may be on loopback, e.g. the embedded one) is reached directly.
//
// Indigo resolves did:web over https for ordinary host names only. Development
// identities such as did:web:localhost%3A2584 or did:web:127.0.0.1%3A8080 are fetched
// here, over plain http when private addresses are allowed (and refused by the guard
// otherwise).
package resolve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/netguard"
)

// Defaults of Config.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultCacheSize   = 100_000
	DefaultCacheTTL    = time.Hour
	DefaultErrTTL      = 2 * time.Second
	DefaultMaxDocBytes = 1 << 20
)

// Config configures New.
type Config struct {
	// PLCURL is the PLC directory (default identity.DefaultPLCURL). It is trusted: it
	// is reached without the dial guard.
	PLCURL string
	// AllowPrivate lets did:web documents and handle well-known files be fetched from
	// loopback and private addresses, over plain http for localhost and loopback
	// literals (development only).
	AllowPrivate bool
	// VerifyHandles checks the handle a DID document declares against DNS / well-known
	// (identity.Handle is handle.invalid otherwise). Services that only need keys and
	// endpoints leave it off.
	VerifyHandles bool
	// Timeout bounds one lookup (default DefaultTimeout).
	Timeout time.Duration
	// CacheSize is the number of identities kept (default DefaultCacheSize); CacheTTL
	// how long a resolved identity is trusted (default DefaultCacheTTL); ErrTTL how long
	// a failure is remembered, so a broken DID cannot make every event re-resolve
	// (default DefaultErrTTL).
	CacheSize int
	CacheTTL  time.Duration
	ErrTTL    time.Duration
	// MaxDocBytes caps a DID document or well-known answer (default DefaultMaxDocBytes).
	MaxDocBytes int64
	// UserAgent is sent with every request (default "hearth").
	UserAgent string

	// HTTP, when set, is used for hosts named by identities instead of a netguard
	// client (tests). PLCHTTP likewise replaces the client for the PLC directory.
	HTTP    *http.Client
	PLCHTTP *http.Client
	// DNS, when set, replaces the system resolver for handle TXT lookups (tests).
	DNS *net.Resolver
}

// New returns a caching Directory.
func New(cfg Config) identity.Directory {
	d := NewUncached(cfg)
	cfg = d.cfg
	return identity.NewCacheDirectory(d, cfg.CacheSize, cfg.CacheTTL, cfg.ErrTTL, cfg.CacheTTL)
}

// Directory is the uncached resolver New wraps.
type Directory struct {
	cfg  Config
	base *identity.BaseDirectory
	// web fetches development did:web documents (guarded like the base's did:web).
	web *http.Client
}

var _ identity.Directory = (*Directory)(nil)

// NewUncached returns the resolver without a cache (New is what callers want).
func NewUncached(cfg Config) *Directory {
	if cfg.PLCURL == "" {
		cfg.PLCURL = identity.DefaultPLCURL
	}
	cfg.PLCURL = strings.TrimRight(cfg.PLCURL, "/")
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.ErrTTL <= 0 {
		cfg.ErrTTL = DefaultErrTTL
	}
	if cfg.MaxDocBytes <= 0 {
		cfg.MaxDocBytes = DefaultMaxDocBytes
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "hearth"
	}
	web := cfg.HTTP
	if web == nil {
		web = netguard.NewClient(netguard.Options{AllowPrivate: cfg.AllowPrivate, DialTimeout: cfg.Timeout, ResponseHeaderTimeout: cfg.Timeout})
	}
	plc := cfg.PLCHTTP
	if plc == nil {
		plc = &http.Client{}
	}
	rt := &router{plcOrigin: origin(cfg.PLCURL), plc: transportOf(plc), web: transportOf(web), max: cfg.MaxDocBytes}
	base := &identity.BaseDirectory{
		PLCURL: cfg.PLCURL,
		// Indigo uses one client for PLC, did:web and handles; the router sends each
		// request to the right transport. Redirects are not followed: a did:web host
		// must serve its own document.
		HTTPClient: http.Client{
			Transport:     rt,
			Timeout:       cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		SkipHandleVerification: !cfg.VerifyHandles,
		TryAuthoritativeDNS:    false,
		UserAgent:              cfg.UserAgent,
	}
	if cfg.DNS != nil {
		base.Resolver = net.Resolver{PreferGo: cfg.DNS.PreferGo, StrictErrors: cfg.DNS.StrictErrors, Dial: cfg.DNS.Dial}
	}
	devWeb := &http.Client{
		Transport:     &router{web: transportOf(web), max: cfg.MaxDocBytes},
		Timeout:       cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Directory{cfg: cfg, base: base, web: devWeb}
}

// LookupDID resolves did. Errors match identity.ErrDIDNotFound or
// identity.ErrDIDResolutionFailed (or the context's error).
func (d *Directory) LookupDID(ctx context.Context, did syntax.DID) (*identity.Identity, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	host, name, dev, err := devWebHost(did)
	if err != nil {
		return nil, err
	}
	if !dev {
		ident, err := d.base.LookupDID(ctx, did)
		return ident, classify(did, err)
	}
	doc, err := d.fetchDevDoc(ctx, did, host, name)
	if err != nil {
		return nil, err
	}
	ident := identity.ParseIdentity(doc)
	if d.cfg.VerifyHandles {
		if h, err := ident.DeclaredHandle(); err == nil {
			if got, err := d.base.ResolveHandle(ctx, h); err == nil && got == did {
				ident.Handle = h
			}
		}
	}
	return &ident, nil
}

// LookupHandle resolves handle to a DID, then checks that the DID's document declares it.
func (d *Directory) LookupHandle(ctx context.Context, handle syntax.Handle) (*identity.Identity, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	handle = handle.Normalize()
	did, err := d.base.ResolveHandle(ctx, handle)
	if err != nil {
		return nil, err
	}
	ident, err := d.LookupDID(ctx, did)
	if err != nil {
		return nil, err
	}
	declared, err := ident.DeclaredHandle()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", identity.ErrHandleMismatch, handle, err)
	}
	if declared != handle {
		return nil, fmt.Errorf("%w: %s != %s", identity.ErrHandleMismatch, declared, handle)
	}
	ident.Handle = declared
	return ident, nil
}

// ResolveHandle is the forward half of handle verification, uncached: the DID that DNS
// TXT _atproto.HANDLE names, or else https://HANDLE/.well-known/atproto-did (the DID
// document is not checked). Errors match identity.ErrHandleNotFound when the answer was
// that there is no such record, identity.ErrHandleResolutionFailed otherwise.
func (d *Directory) ResolveHandle(ctx context.Context, handle syntax.Handle) (syntax.DID, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	return d.base.ResolveHandle(ctx, handle.Normalize())
}

// Lookup dispatches to LookupHandle or LookupDID.
func (d *Directory) Lookup(ctx context.Context, atid syntax.AtIdentifier) (*identity.Identity, error) {
	if h, err := atid.AsHandle(); err == nil {
		return d.LookupHandle(ctx, h)
	}
	did, err := atid.AsDID()
	if err != nil {
		return nil, fmt.Errorf("at-identifier %q is neither a handle nor a DID", atid.String())
	}
	return d.LookupDID(ctx, did)
}

// Purge does nothing: the cache is New's CacheDirectory.
func (d *Directory) Purge(context.Context, syntax.AtIdentifier) error { return nil }

// classify makes every resolution failure match identity.ErrDIDResolutionFailed unless
// it already matches a more precise sentinel (indigo returns some bare errors, e.g. for
// a document whose id is another DID or an unsupported method).
func classify(did syntax.DID, err error) error {
	switch {
	case err == nil, errors.Is(err, identity.ErrDIDNotFound), errors.Is(err, identity.ErrDIDResolutionFailed),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return fmt.Errorf("%w: %s: %w", identity.ErrDIDResolutionFailed, did, err)
}

// devWebHost reports whether did is a did:web indigo does not resolve (one with a port,
// or a localhost or IP literal host), returning its host[:port] and host name.
func devWebHost(did syntax.DID) (host, name string, dev bool, err error) {
	if did.Method() != "web" {
		return "", "", false, nil
	}
	id := did.Identifier()
	if strings.Contains(id, ":") {
		return "", "", false, fmt.Errorf("%w: %w: did:web with a path is not supported: %s", identity.ErrDIDResolutionFailed, ErrMalformed, did)
	}
	host, err = url.PathUnescape(id)
	if err != nil {
		return "", "", false, fmt.Errorf("%w: %w: invalid did:web %s", identity.ErrDIDResolutionFailed, ErrMalformed, did)
	}
	u, err := url.Parse("//" + host)
	if err != nil || u.Host != host || u.User != nil || u.Path != "" || u.Hostname() == "" {
		return "", "", false, fmt.Errorf("%w: %w: invalid did:web host in %s", identity.ErrDIDResolutionFailed, ErrMalformed, did)
	}
	name = u.Hostname()
	_, ipErr := netip.ParseAddr(name)
	literal := ipErr == nil || name == "localhost"
	if u.Port() == "" && !literal {
		return "", "", false, nil // an ordinary host name: indigo's
	}
	if _, err := syntax.ParseHandle(name); err != nil && !literal {
		return "", "", false, fmt.Errorf("%w: %w: did:web host is not a host name: %s", identity.ErrDIDResolutionFailed, ErrMalformed, did)
	}
	return host, name, true, nil
}

func isLoopbackName(name string) bool {
	return name == "localhost" || name == "127.0.0.1" || name == "::1"
}

// fetchDevDoc fetches /.well-known/did.json from host: http for loopback names when
// private addresses are allowed, https otherwise (the guard refuses private addresses).
func (d *Directory) fetchDevDoc(ctx context.Context, did syntax.DID, host, name string) (*identity.DIDDocument, error) {
	scheme := "https"
	if d.cfg.AllowPrivate && isLoopbackName(name) {
		scheme = "http"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+host+"/.well-known/did.json", nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", identity.ErrDIDResolutionFailed, did, err)
	}
	req.Header.Set("Accept", "application/did+ld+json, application/json")
	req.Header.Set("User-Agent", d.cfg.UserAgent)
	res, err := d.web.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", identity.ErrDIDResolutionFailed, did, err)
	}
	defer res.Body.Close()
	switch {
	case res.StatusCode == http.StatusNotFound || res.StatusCode == http.StatusGone:
		return nil, fmt.Errorf("%w: %s: HTTP %d", identity.ErrDIDNotFound, did, res.StatusCode)
	case res.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: %s: HTTP %d", identity.ErrDIDResolutionFailed, did, res.StatusCode)
	}
	var doc identity.DIDDocument
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", identity.ErrDIDResolutionFailed, did, err)
	}
	if doc.DID != did {
		return nil, fmt.Errorf("%w: document for %s has id %q", identity.ErrDIDResolutionFailed, did, doc.DID)
	}
	return &doc, nil
}

// router sends requests for the PLC directory's origin to plc and everything else to
// web, and caps every response body.
type router struct {
	plcOrigin string
	plc, web  http.RoundTripper
	max       int64
}

func (r *router) RoundTrip(req *http.Request) (*http.Response, error) {
	rt := r.web
	if r.plc != nil && origin(req.URL.String()) == r.plcOrigin {
		rt = r.plc
	}
	res, err := rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if res.ContentLength > r.max {
		res.Body.Close()
		return nil, fmt.Errorf("%s: answer of %d bytes is over the %d-byte cap", req.URL.Redacted(), res.ContentLength, r.max)
	}
	res.Body = &capped{rc: res.Body, left: r.max}
	return res, nil
}

// ErrMalformed marks a DID this package will not try to resolve because of its form
// (a did:web with a path, or whose host is not a host name); it also matches
// identity.ErrDIDResolutionFailed.
var ErrMalformed = errors.New("malformed DID")

// ErrTooLarge is the read error of a document over Config.MaxDocBytes.
var ErrTooLarge = errors.New("document over the size cap")

// capped fails reads past its limit rather than truncating (a cut document would only
// fail to parse later, with a less useful error).
type capped struct {
	rc   io.ReadCloser
	left int64
}

func (c *capped) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One more byte tells a document of exactly the cap from a longer one.
		var b [1]byte
		n, err := c.rc.Read(b[:])
		if n > 0 {
			return 0, ErrTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *capped) Close() error { return c.rc.Close() }

// origin is scheme://host of a URL ("" when it does not parse).
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
}

func transportOf(c *http.Client) http.RoundTripper {
	if c.Transport != nil {
		return c.Transport
	}
	return http.DefaultTransport
}

package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// DirectoryConfig configures NewDirectory.
type DirectoryConfig struct {
	// PLCURL is the PLC directory (operator-chosen, so it may be on loopback).
	PLCURL string
	// AllowPrivate lets did:web documents be fetched from loopback and private
	// addresses, over plain HTTP for localhost (development only).
	AllowPrivate bool
	// Timeout bounds one resolution (default 10s).
	Timeout time.Duration
	// CacheSize is the number of identities kept (default 100,000).
	CacheSize int
	// CacheTTL is how long a resolved identity is trusted (default 1h); #identity events
	// and failed signatures purge entries earlier.
	CacheTTL time.Duration
}

// NewDirectory returns a caching identity.Directory that resolves did:plc from the
// configured PLC directory and did:web from the DID's host. It does not resolve or
// verify handles: the feed generator only needs keys.
func NewDirectory(cfg DirectoryConfig) identity.Directory {
	r := NewResolver(cfg)
	size, ttl := cfg.CacheSize, cfg.CacheTTL
	if size <= 0 {
		size = 100_000
	}
	if ttl <= 0 {
		ttl = time.Hour
	}
	// Failures are cached briefly so a broken DID cannot make every event re-resolve.
	return identity.NewCacheDirectory(r, size, ttl, 2*time.Second, ttl)
}

// Resolver is an uncached identity.Directory over PLC and did:web.
type Resolver struct {
	plcURL       string
	allowPrivate bool
	plc          *http.Client // for the configured PLC directory
	web          *http.Client // for did:web hosts: refuses private addresses unless allowed
}

var _ identity.Directory = (*Resolver)(nil)

// maxDIDDocBytes bounds a DID document.
const maxDIDDocBytes = 1 << 20

// NewResolver builds a Resolver.
func NewResolver(cfg DirectoryConfig) *Resolver {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	plc := strings.TrimRight(cfg.PLCURL, "/")
	if plc == "" {
		plc = identity.DefaultPLCURL
	}
	return &Resolver{
		plcURL:       plc,
		allowPrivate: cfg.AllowPrivate,
		plc:          &http.Client{Timeout: timeout},
		web:          PublicHTTPClient(timeout, cfg.AllowPrivate),
	}
}

// ErrNonPublicAddress is the dial error of PublicHTTPClient for an address it refuses.
var ErrNonPublicAddress = errors.New("refusing to dial non-public address")

// PublicHTTPClient returns a client for URLs taken from untrusted documents: unless
// allowPrivate is set, it refuses to connect to loopback, private, link-local and
// other non-public addresses (checked on the resolved address, so DNS cannot dodge it),
// and it does not follow redirects.
func PublicHTTPClient(timeout time.Duration, allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: timeout}
	if !allowPrivate {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("refusing to dial %q: %w", address, err)
			}
			if !IsPublicAddr(ap.Addr()) {
				return fmt.Errorf("%w %s", ErrNonPublicAddress, ap.Addr())
			}
			return nil
		}
	}
	tr := &http.Transport{
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       30 * time.Second,
	}
	return &http.Client{
		Timeout:       timeout,
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// IsPublicAddr reports whether an address is globally routable.
func IsPublicAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && !a.IsLoopback() && !a.IsPrivate() && !a.IsLinkLocalUnicast() && !a.IsLinkLocalMulticast() &&
		!a.IsMulticast() && !a.IsUnspecified() && !a.IsInterfaceLocalMulticast() &&
		!netip.MustParsePrefix("100.64.0.0/10").Contains(a) && // carrier-grade NAT
		!netip.MustParsePrefix("0.0.0.0/8").Contains(a)
}

// ResolveDID fetches and checks a DID document.
func (r *Resolver) ResolveDID(ctx context.Context, did syntax.DID) (*identity.DIDDocument, error) {
	var u string
	client := r.web
	switch did.Method() {
	case "plc":
		u, client = r.plcURL+"/"+did.String(), r.plc
	case "web":
		host := strings.ReplaceAll(did.Identifier(), "%3A", ":")
		if strings.Contains(host, ":") && !r.allowPrivate {
			return nil, fmt.Errorf("%w: did:web with a port is for development only: %s", identity.ErrDIDResolutionFailed, did)
		}
		name, _, _ := strings.Cut(host, ":")
		if _, err := syntax.ParseHandle(name); err != nil && name != "localhost" {
			return nil, fmt.Errorf("%w: did:web host is not a host name: %s", identity.ErrDIDResolutionFailed, did)
		}
		scheme := "https"
		if r.allowPrivate && (name == "localhost" || name == "127.0.0.1") {
			scheme = "http"
		}
		u = scheme + "://" + host + "/.well-known/did.json"
	default:
		return nil, fmt.Errorf("%w: unsupported DID method %q", identity.ErrDIDResolutionFailed, did.Method())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/did+ld+json, application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", identity.ErrDIDResolutionFailed, did, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return nil, fmt.Errorf("%w: %s: HTTP %d", identity.ErrDIDNotFound, did, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: %s: HTTP %d", identity.ErrDIDResolutionFailed, did, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDIDDocBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", identity.ErrDIDResolutionFailed, did, err)
	}
	if len(body) > maxDIDDocBytes {
		return nil, fmt.Errorf("%w: %s: document larger than %d bytes", identity.ErrDIDResolutionFailed, did, maxDIDDocBytes)
	}
	var doc identity.DIDDocument
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", identity.ErrDIDResolutionFailed, did, err)
	}
	if doc.DID != did {
		return nil, fmt.Errorf("%w: document for %s has id %q", identity.ErrDIDResolutionFailed, did, doc.DID)
	}
	return &doc, nil
}

// LookupDID resolves a DID. The handle is not verified (Handle is handle.invalid).
func (r *Resolver) LookupDID(ctx context.Context, did syntax.DID) (*identity.Identity, error) {
	doc, err := r.ResolveDID(ctx, did)
	if err != nil {
		return nil, err
	}
	ident := identity.ParseIdentity(doc)
	ident.Handle = syntax.HandleInvalid
	return &ident, nil
}

var errNoHandles = errors.New("the feed generator does not resolve handles")

// LookupHandle is not supported.
func (r *Resolver) LookupHandle(context.Context, syntax.Handle) (*identity.Identity, error) {
	return nil, fmt.Errorf("%w: %w", identity.ErrHandleResolutionFailed, errNoHandles)
}

// Lookup resolves DIDs only.
func (r *Resolver) Lookup(ctx context.Context, atid syntax.AtIdentifier) (*identity.Identity, error) {
	did, err := atid.AsDID()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", identity.ErrHandleResolutionFailed, errNoHandles)
	}
	return r.LookupDID(ctx, did)
}

// Purge does nothing: the Resolver keeps no cache.
func (r *Resolver) Purge(context.Context, syntax.AtIdentifier) error { return nil }

// Package blobfetch fetches blobs for the feed generator's classifier: the ORIGINAL
// bytes of a post's images, from the author's PDS with com.atproto.sync.getBlob (CDN
// renditions have their metadata stripped). The PDS endpoint comes from a DID document,
// i.e. from whoever controls the DID, so every fetch goes through the netguard dial
// guard (no loopback, private or link-local addresses unless allowed), is size-capped,
// and is checked against the CID.
package blobfetch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/netguard"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// Blob fetch errors. ErrRefused, ErrNotFound, ErrTooLarge and
// ErrCIDMismatch are permanent for a given blob (see IsPermanent); anything
// else (timeouts, 5xx, resolution failures) may succeed later.
var (
	// ErrRefused: the PDS endpoint is not acceptable (bad URL, plain HTTP, a
	// non-public address) or the CID is not a blob CID.
	ErrRefused = errors.New("blob fetch refused")
	// ErrNotFound: the PDS does not have the blob (or the account).
	ErrNotFound = errors.New("blob not found")
	// ErrTooLarge: the blob is over the size cap.
	ErrTooLarge = errors.New("blob over the size cap")
	// ErrCIDMismatch: the bytes served do not hash to the requested CID.
	ErrCIDMismatch = errors.New("blob does not match its CID")
)

// IsPermanent reports whether retrying a failed fetch is pointless.
func IsPermanent(err error) bool {
	return errors.Is(err, ErrRefused) || errors.Is(err, ErrNotFound) ||
		errors.Is(err, ErrTooLarge) || errors.Is(err, ErrCIDMismatch)
}

// Config configures a Fetcher.
type Config struct {
	// AllowPrivate lets fetches reach loopback and private addresses over plain HTTP
	// (development: `hearth serve` on localhost fetching from its own PDS).
	AllowPrivate bool
	// Local maps PDS endpoints (as DID documents name them) to a trusted address of the
	// same PDS (a co-hosted one); those fetches go there, past the dial guard.
	Local map[string]string
	// MaxBytes caps a blob (default 16 MiB).
	MaxBytes int64
	// Timeout bounds one fetch, body included (default 30s).
	Timeout time.Duration
}

// DefaultMaxBytes is Config.MaxBytes when unset.
const DefaultMaxBytes = 16 << 20

// maxBlobRedirects bounds redirects (each hop goes through the same dial guard).
const maxBlobRedirects = 3

// Fetcher fetches blobs from their author's PDS.
type Fetcher struct {
	dir    identity.Directory
	client *http.Client
	// local reaches the co-hosted PDSes of cfg.Local (no dial guard, no redirects).
	local *http.Client
	cfg   Config
}

// New builds a fetcher that finds PDS endpoints through dir.
func New(dir identity.Directory, cfg Config) *Fetcher {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	client := netguard.NewClient(netguard.Options{AllowPrivate: cfg.AllowPrivate, Timeout: cfg.Timeout, DialTimeout: cfg.Timeout, ResponseHeaderTimeout: cfg.Timeout})
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxBlobRedirects {
			return fmt.Errorf("%w: more than %d redirects", ErrRefused, maxBlobRedirects)
		}
		return checkEndpoint(req.URL, cfg.AllowPrivate)
	}
	local := &http.Client{Timeout: cfg.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &Fetcher{dir: dir, client: client, local: local, cfg: cfg}
}

// checkEndpoint accepts https URLs (and http ones when private addresses are allowed).
// The address itself is checked when it is dialled.
func checkEndpoint(u *url.URL, allowPrivate bool) error {
	switch {
	case u.Scheme != "https" && !(allowPrivate && u.Scheme == "http"):
		return fmt.Errorf("%w: endpoint scheme %q (want https)", ErrRefused, u.Scheme)
	case u.Host == "" || u.User != nil:
		return fmt.Errorf("%w: endpoint %q is not a plain host URL", ErrRefused, u.Redacted())
	}
	return nil
}

// PDSEndpoint resolves did's #atproto_pds endpoint and checks it.
func (f *Fetcher) PDSEndpoint(ctx context.Context, did string) (*url.URL, error) {
	d, err := syntax.ParseDID(did)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	ident, err := f.dir.LookupDID(ctx, d)
	if err != nil {
		if errors.Is(err, identity.ErrDIDNotFound) {
			return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		return nil, err
	}
	ep := ident.PDSEndpoint()
	if ep == "" {
		return nil, fmt.Errorf("%w: %s has no #atproto_pds service", ErrNotFound, did)
	}
	if to, ok := f.cfg.Local[strings.TrimRight(ep, "/")]; ok {
		return url.Parse(to)
	}
	u, err := url.Parse(ep)
	if err != nil {
		return nil, fmt.Errorf("%w: endpoint %q: %w", ErrRefused, ep, err)
	}
	if err := checkEndpoint(u, f.cfg.AllowPrivate); err != nil {
		return nil, err
	}
	return u, nil
}

// isLocal reports whether base is one of the trusted co-hosted PDS addresses.
func (f *Fetcher) isLocal(base *url.URL) bool {
	b := strings.TrimRight(base.String(), "/")
	for _, to := range f.cfg.Local {
		if strings.TrimRight(to, "/") == b {
			return true
		}
	}
	return false
}

// CheckCID parses a blob CID: CIDv1, raw codec, sha2-256 (the only kind atproto
// blobs use).
func CheckCID(s string) (cid.Cid, error) {
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: cid %q: %w", ErrRefused, s, err)
	}
	p := c.Prefix()
	if p.Version != 1 || p.Codec != cid.Raw || p.MhType != multihash.SHA2_256 {
		return cid.Undef, fmt.Errorf("%w: cid %s is not a raw sha2-256 CIDv1", ErrRefused, s)
	}
	return c, nil
}

// Verify checks that data hashes to c.
func Verify(c cid.Cid, data []byte) error {
	got, err := c.Prefix().Sum(data)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCIDMismatch, err)
	}
	if !got.Equals(c) {
		return fmt.Errorf("%w: requested %s, got bytes hashing to %s", ErrCIDMismatch, c, got)
	}
	return nil
}

// Fetch downloads blob cidStr of did from the author's PDS and verifies it.
func (f *Fetcher) Fetch(ctx context.Context, did, cidStr string) ([]byte, error) {
	c, err := CheckCID(cidStr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	base, err := f.PDSEndpoint(ctx, did)
	if err != nil {
		return nil, err
	}
	return f.FetchFrom(ctx, base, did, c)
}

// FetchFrom downloads a blob from a given PDS endpoint (already resolved and checked).
func (f *Fetcher) FetchFrom(ctx context.Context, base *url.URL, did string, c cid.Cid) ([]byte, error) {
	hc := f.client
	if f.isLocal(base) {
		hc = f.local
	}
	xc := &xrpc.Client{Base: base.String(), HTTP: hc}
	data, err := xc.QueryBytes(ctx, "com.atproto.sync.getBlob", "", url.Values{"did": {did}, "cid": {c.String()}}, f.cfg.MaxBytes)
	var re *xrpc.ResponseError
	switch {
	case err == nil:
	case errors.Is(err, ErrRefused):
		return nil, err // a redirect the policy refused
	case errors.Is(err, netguard.ErrRefused):
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	case errors.Is(err, xrpc.ErrResponseTooLarge):
		return nil, fmt.Errorf("%w: %s: %w", ErrTooLarge, c, err)
	case errors.As(err, &re) && (re.Status == http.StatusNotFound || re.Status == http.StatusGone || re.Status == http.StatusBadRequest):
		// getBlob answers 400 (BlobNotFound, RepoNotFound, ...) for a missing blob.
		return nil, fmt.Errorf("%w: %s: %w", ErrNotFound, c, err)
	case errors.As(err, &re) && re.Status >= 300 && re.Status < 400:
		return nil, fmt.Errorf("%w: %s: unfollowed redirect (HTTP %d)", ErrRefused, c, re.Status)
	default:
		return nil, fmt.Errorf("getBlob %s: %w", c, err)
	}
	if err := Verify(c, data); err != nil {
		return nil, err
	}
	return data, nil
}

// Package netguard is the one outbound HTTP client for URLs that come from untrusted
// documents (DID documents, did:web names, handles): it refuses to connect to
// non-public addresses. The check runs in net.Dialer.Control, on the address actually
// being dialled after DNS resolution, so a name that resolves (or re-resolves, as in DNS
// rebinding) to a private address is refused too.
package netguard

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrRefused is the dial error for an address the guard refuses.
var ErrRefused = errors.New("refusing to dial non-public address")

// refused lists every range that is not globally reachable unicast. IPv4-mapped IPv6
// addresses are unmapped before the check, and the IPv6 forms that embed an IPv4
// address (NAT64, 6to4) are checked on the embedded address too.
var refused = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network", includes the unspecified address
	netip.MustParsePrefix("10.0.0.0/8"),      // private
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("127.0.0.0/8"),     // loopback
	netip.MustParsePrefix("169.254.0.0/16"),  // link-local (cloud metadata services)
	netip.MustParsePrefix("172.16.0.0/12"),   // private
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast (deprecated)
	netip.MustParsePrefix("192.168.0.0/16"),  // private
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("224.0.0.0/4"),     // multicast
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, includes broadcast
	// IPv6
	netip.MustParsePrefix("::/96"),         // unspecified, loopback, IPv4-compatible (deprecated)
	netip.MustParsePrefix("100::/64"),      // discard
	netip.MustParsePrefix("2001:db8::/32"), // documentation
	netip.MustParsePrefix("fc00::/7"),      // unique local
	netip.MustParsePrefix("fe80::/10"),     // link-local
	netip.MustParsePrefix("fec0::/10"),     // site-local (deprecated)
	netip.MustParsePrefix("ff00::/8"),      // multicast
}

// Ranges whose addresses carry an IPv4 address that is where the traffic ends up.
var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
)

// IsPublic reports whether a is a globally reachable unicast address.
func IsPublic(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	if !a.IsValid() {
		return false
	}
	for _, p := range refused {
		if p.Contains(a) {
			return false
		}
	}
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64.Contains(a):
			return IsPublic(netip.AddrFrom4([4]byte(b[12:16])))
		case sixTo4.Contains(a):
			return IsPublic(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	return true
}

// Control is a net.Dialer Control function that refuses non-public addresses.
func Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q: %w", ErrRefused, address, err)
	}
	if !IsPublic(ap.Addr()) {
		return fmt.Errorf("%w %s", ErrRefused, ap.Addr())
	}
	return nil
}

// Options configures NewClient and NewTransport. The zero value is a guarded client
// with default timeouts that follows no redirects.
type Options struct {
	// AllowPrivate turns the guard off (development: services on loopback or a LAN).
	AllowPrivate bool
	// Timeout bounds a whole request, body included (0: none; callers then bound
	// requests with their context).
	Timeout time.Duration
	// DialTimeout bounds a connection attempt (default 10 s); it also bounds the TLS
	// handshake.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for response headers (default 30 s).
	ResponseHeaderTimeout time.Duration
	// MaxIdleConnsPerHost is the idle pool per host (default 4).
	MaxIdleConnsPerHost int
	// FollowRedirects is how many redirects to follow (default 0: the 3xx answer is
	// returned). Every hop is dialled through the same guard.
	FollowRedirects int
	// Resolver, when set, resolves host names for the dialer (tests inject answers).
	Resolver *net.Resolver
}

// NewTransport returns a transport whose dialer refuses non-public addresses unless
// o.AllowPrivate. It never uses an HTTP proxy from the environment: the guard checks the
// address it dials, and a proxy would hide the real destination.
func NewTransport(o Options) *http.Transport {
	dialTimeout := o.DialTimeout
	if dialTimeout <= 0 {
		dialTimeout = 10 * time.Second
	}
	headerTimeout := o.ResponseHeaderTimeout
	if headerTimeout <= 0 {
		headerTimeout = 30 * time.Second
	}
	idle := o.MaxIdleConnsPerHost
	if idle <= 0 {
		idle = 4
	}
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second, Resolver: o.Resolver}
	if !o.AllowPrivate {
		d.Control = Control
	}
	return &http.Transport{
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   dialTimeout,
		ResponseHeaderTimeout: headerTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   idle,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
}

// NewClient returns an HTTP client over NewTransport(o).
func NewClient(o Options) *http.Client {
	max := o.FollowRedirects
	return &http.Client{
		Timeout:   o.Timeout,
		Transport: NewTransport(o),
		CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			if len(via) > max {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

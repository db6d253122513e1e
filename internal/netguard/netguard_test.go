package netguard

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestIsPublic(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		public bool
	}{
		{"93.184.216.34", true},
		{"1.1.1.1", true},
		{"2606:4700:4700::1111", true},
		{"::ffff:93.184.216.34", true},
		{"64:ff9b::5db8:d822", true}, // NAT64 of 93.184.216.34
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"10.1.2.3", false},
		{"100.64.0.1", false},
		{"100.127.255.254", false},
		{"127.0.0.1", false},
		{"127.8.8.8", false},
		{"169.254.169.254", false},
		{"172.16.0.1", false},
		{"172.31.255.255", false},
		{"192.0.0.8", false},
		{"192.0.2.1", false},
		{"192.168.1.1", false},
		{"198.18.0.1", false},
		{"198.51.100.1", false},
		{"203.0.113.1", false},
		{"224.0.0.1", false},
		{"239.255.255.250", false},
		{"240.0.0.1", false},
		{"255.255.255.255", false},
		{"::", false},
		{"::1", false},
		{"::127.0.0.1", false},
		{"100::1", false},
		{"2001:db8::1", false},
		{"fc00::1", false},
		{"fd12:3456::1", false},
		{"fe80::1", false},
		{"fe80::1%eth0", false},
		{"fec0::1", false},
		{"ff02::1", false},
		{"::ffff:127.0.0.1", false},
		{"::ffff:10.0.0.1", false},
		{"::ffff:169.254.169.254", false},
		{"::ffff:100.64.0.1", false},
		{"::ffff:0.0.0.0", false},
		{"::ffff:224.0.0.1", false},
		{"64:ff9b::7f00:1", false}, // NAT64 of 127.0.0.1
		{"2002:7f00:1::1", false},  // 6to4 of 127.0.0.1
		{"2002:a00:1::1", false},   // 6to4 of 10.0.0.1
	} {
		t.Run(tc.addr, func(t *testing.T) {
			require.Equal(t, tc.public, IsPublic(netip.MustParseAddr(tc.addr)))
		})
	}
	require.False(t, IsPublic(netip.Addr{}))
}

func TestControl(t *testing.T) {
	require.NoError(t, Control("tcp4", "93.184.216.34:443", nil))
	for _, a := range []string{"127.0.0.1:80", "[::1]:443", "[::ffff:127.0.0.1]:80", "[fe80::1%eth0]:80", "not-an-address"} {
		require.ErrorIs(t, Control("tcp", a, nil), ErrRefused, a)
	}
}

// loopbackClient's DNS answers every name with 127.0.0.1, as a hostile (or
// rebinding) name server would: the name only becomes loopback at dial time.
func loopbackClient(t *testing.T, o Options) *http.Client {
	o.Resolver = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return fakeDNS(t), nil
	}}
	o.Timeout = 5 * time.Second
	return NewClient(o)
}

// TestRefusedAtDialTime: a host name that resolves to 127.0.0.1 is refused when the
// connection is made; nothing reaches the server. With AllowPrivate it goes through.
func TestRefusedAtDialTime(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndexByte(srv.URL, ':'):]
	u := "http://rebind.example.com" + port + "/"

	c := loopbackClient(t, Options{})
	_, err := c.Get(u)
	require.ErrorIs(t, err, ErrRefused)
	require.ErrorContains(t, err, "127.0.0.1")
	require.Zero(t, hits.Load())

	c = loopbackClient(t, Options{AllowPrivate: true})
	res, err := c.Get(u)
	require.NoError(t, err)
	res.Body.Close()
	require.EqualValues(t, 1, hits.Load())

	// The plain client refuses a literal loopback address too.
	_, err = NewClient(Options{Timeout: 2 * time.Second}).Get(srv.URL)
	require.ErrorIs(t, err, ErrRefused)
}

func TestRedirects(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/end" {
			io.WriteString(w, "end")
			return
		}
		http.Redirect(w, r, srv.URL+"/end", http.StatusFound)
	}))
	defer srv.Close()
	res, err := NewClient(Options{AllowPrivate: true, Timeout: 2 * time.Second}).Get(srv.URL + "/start")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusFound, res.StatusCode, "redirects are not followed by default")
	res, err = NewClient(Options{AllowPrivate: true, Timeout: 2 * time.Second, FollowRedirects: 1}).Get(srv.URL + "/start")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
}

// fakeDNS is one end of a pipe whose other end answers DNS queries (TCP framing, as
// the Go resolver uses over a stream connection) with an A record for 127.0.0.1 and an
// empty AAAA answer.
func fakeDNS(t *testing.T) net.Conn {
	client, server := net.Pipe()
	go func() {
		defer server.Close()
		server.SetDeadline(time.Now().Add(5 * time.Second))
		for i := 0; i < 4; i++ {
			var lenBuf [2]byte
			if _, err := io.ReadFull(server, lenBuf[:]); err != nil {
				return
			}
			q := make([]byte, int(lenBuf[0])<<8|int(lenBuf[1]))
			if _, err := io.ReadFull(server, q); err != nil {
				return
			}
			ans, err := dnsAnswer(q)
			if err != nil {
				t.Errorf("fake DNS: %v", err)
				return
			}
			if _, err := server.Write(append([]byte{byte(len(ans) >> 8), byte(len(ans))}, ans...)); err != nil {
				return
			}
		}
	}()
	return client
}

// dnsAnswer answers query q: an A record 127.0.0.1 for type A, no records otherwise.
func dnsAnswer(q []byte) ([]byte, error) {
	if len(q) < 12 {
		return nil, errors.New("short query")
	}
	// Find the end of the question name.
	i := 12
	for i < len(q) && q[i] != 0 {
		i += int(q[i]) + 1
	}
	if i+5 > len(q) {
		return nil, errors.New("malformed question")
	}
	question := q[12 : i+5]
	qtype := int(q[i+1])<<8 | int(q[i+2])
	out := append([]byte{}, q[0], q[1], 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0)
	out = append(out, question...)
	if qtype == 1 {
		out[7] = 1 // one answer
		out = append(out, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1)
	}
	return out, nil
}

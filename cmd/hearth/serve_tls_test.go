package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// pebbleVersion is the Pebble ACME test server these tests run; .ci/run installs the
// same version (keep the two in step).
const pebbleVersion = "v2.10.3"

// TestServeACME runs `hearth serve --tls-acme` against a real ACME server, Pebble,
// started here with its validation authority on: a DNS server on 127.0.0.1 sends every
// name to 127.0.0.1 and Pebble validates tls-alpn-01 by connecting to Hearth's HTTPS
// listener. It checks that the PDS host and an active account's handle host get
// certificates issued under Pebble's root, that names the policy refuses (no account,
// a taken-down account, another domain) fail the handshake without any ACME order, that a
// handle host stops being served when its account is taken down and comes back when it
// is restored, that the HTTP listener redirects to https, that the certificate folder is
// 0700 with 0600 files, and that a restarted server serves the cached certificates
// without asking the CA again.
func TestServeACME(t *testing.T) {
	a := newACMETest(t, true)
	a.start(t)

	alice := a.signUp(t, "alice")
	a.takedown(t, a.signUp(t, "carol"), true)

	a.requireIssued(t, "pds.example.com")
	a.requireIssued(t, "alice.example.com")
	require.Equal(t, 2, a.orders(), "one ACME order per name\n%s", a.peb.out.String())
	// Validated by tls-alpn-01 on the HTTPS listener (Pebble logs each http-01 attempt).
	require.NotContains(t, a.peb.out.String(), "Attempting to validate w/ HTTP")

	// HTTP over the new certificates: the PDS host, and the handle host's atproto-did.
	https := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: a.roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, a.tlsAddr)
		},
	}}
	require.Contains(t, string(httpsGet(t, https, "https://pds.example.com", "/xrpc/_health")), "version")
	require.Equal(t, alice, string(httpsGet(t, https, "https://alice.example.com", "/.well-known/atproto-did")))

	// Names the policy refuses get no certificate and cause no ACME order.
	for _, name := range []string{"bob.example.com", "carol.example.com", "example.com", "www.pds.example.com", "alice.example.net", "localhost"} {
		_, err := a.handshake(name)
		require.Error(t, err, "%s got a certificate", name)
	}
	require.Equal(t, 2, a.orders(), "a refused name reached the CA\n%s", a.peb.out.String())

	// A taken-down account's handle host is refused even though its certificate is cached,
	// and served again (from the cache, no new order) once the takedown is lifted.
	a.takedown(t, alice, true)
	_, err := a.handshake("alice.example.com")
	require.Error(t, err)
	a.takedown(t, alice, false)
	a.requireIssued(t, "alice.example.com")
	require.Equal(t, 2, a.orders())

	// --tls-http-listen redirects plain HTTP to https.
	noRedirect := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(a.ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/xrpc/_health", a.httpPort), nil)
	require.NoError(t, err)
	req.Host = "pds.example.com"
	res, err := noRedirect.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusFound, res.StatusCode)
	require.Equal(t, "https://pds.example.com/xrpc/_health", res.Header.Get("Location"))

	// The certificate folder: 0700, every file 0600, nothing for refused names.
	cacheDir := filepath.Join(a.dataDir, "acme")
	info, err := os.Stat(cacheDir)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o700), info.Mode().Perm())
	var names []string
	require.NoError(t, filepath.WalkDir(cacheDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		require.Equal(t, fs.FileMode(0o600), fi.Mode().Perm(), path)
		names = append(names, d.Name())
		return nil
	}))
	require.ElementsMatch(t, []string{"acme_account+key", "pds.example.com", "alice.example.com"}, names)

	// After a restart the certificates come from the data dir: no new order.
	a.stop(t)
	a.start(t)
	a.requireIssued(t, "pds.example.com")
	a.requireIssued(t, "alice.example.com")
	require.Equal(t, 2, a.orders(), "a restarted server ordered again\n%s", a.peb.out.String())
	a.stop(t)
}

// TestServeACMEHTTP01: with --tls-http-listen, a certificate is still obtained when the
// CA cannot complete tls-alpn-01 (here Pebble validates it on a port nobody listens on):
// autocert falls back to http-01, which Pebble validates on Hearth's HTTP listener.
func TestServeACMEHTTP01(t *testing.T) {
	a := newACMETest(t, false)
	a.start(t)
	a.requireIssued(t, "pds.example.com")
	require.Contains(t, a.peb.out.String(), "Attempting to validate w/ HTTP", "validated by http-01")
	a.stop(t)
}

// acmeTest is `hearth serve --tls-acme` against a Pebble started for one test.
type acmeTest struct {
	ctx                              context.Context
	peb                              *pebbleServer
	port, plcPort, tlsPort, httpPort int
	tlsAddr, dataDir                 string
	roots                            *x509.CertPool // Pebble's root: what issued certificates chain to
	root                             *x509.Certificate
	client                           *testnet.Client
	out                              *lockedBuffer
	stopServe                        context.CancelFunc
	done                             chan error
}

// newACMETest starts Pebble (validating tls-alpn-01 on Hearth's HTTPS port when alpn is
// true, on a closed port otherwise, and http-01 on Hearth's HTTP listener).
func newACMETest(t *testing.T, alpn bool) *acmeTest {
	t.Helper()
	bin := pebbleBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	a := &acmeTest{ctx: ctx, port: freePort(t), plcPort: freePort(t), tlsPort: freePort(t), httpPort: freePort(t), dataDir: t.TempDir()}
	a.tlsAddr = fmt.Sprintf("127.0.0.1:%d", a.tlsPort)
	validateTLS := a.tlsPort
	if !alpn {
		validateTLS = freePort(t)
	}
	a.peb = startPebble(ctx, t, bin, startTestDNS(t), validateTLS, a.httpPort)
	// Pebble's root, fetched from its management interface: nothing else trusts it.
	rootPEM := httpsGet(t, &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: a.peb.https}}}, a.peb.mgmt, "/roots/0")
	a.root = parsePEMCert(t, rootPEM, a.peb.out)
	a.roots = x509.NewCertPool()
	a.roots.AddCert(a.root)
	return a
}

// start runs serve (bounded by the test's context) and waits until it answers.
func (a *acmeTest) start(t *testing.T) {
	t.Helper()
	args := []string{"hearth", "--log-level", "error", "serve", "--data-dir", a.dataDir, "--no-feedgen",
		"--listen", fmt.Sprintf("127.0.0.1:%d", a.port), "--plc-listen", fmt.Sprintf("127.0.0.1:%d", a.plcPort),
		"--admin-password", "x", "--hostname", "pds.example.com", "--handle-domains", ".example.com",
		"--tls-acme", "--tls-listen", a.tlsAddr, "--tls-http-listen", fmt.Sprintf("127.0.0.1:%d", a.httpPort),
		"--acme-directory", a.peb.dir, "--acme-directory-ca", a.peb.caFile, "--acme-email", "ops@example.com"}
	ctx, stop := context.WithCancel(a.ctx)
	a.stopServe, a.out, a.done = stop, &lockedBuffer{}, make(chan error, 1)
	t.Cleanup(stop)
	go func() { a.done <- newApp(a.out, a.out).RunContext(ctx, args) }()
	base := fmt.Sprintf("http://127.0.0.1:%d", a.port)
	waitHTTP(t, base+"/xrpc/_health", a.done, a.out)
	require.Contains(t, a.out.String(), "HTTPS:")
	a.client = testnet.NewClient(base, "x")
}

func (a *acmeTest) stop(t *testing.T) {
	t.Helper()
	stopApp(t, a.stopServe, a.done)
}

// signUp creates NAME.example.com and returns its DID.
func (a *acmeTest) signUp(t *testing.T, name string) string {
	t.Helper()
	r := a.client.Post(t, "com.atproto.server.createAccount", map[string]any{"handle": name + ".example.com", "password": "pw-" + name, "email": name + "@example.com"}, "")
	testnet.RequireOK(t, r)
	return r.Str("did")
}

func (a *acmeTest) takedown(t *testing.T, did string, applied bool) {
	t.Helper()
	testnet.RequireOK(t, a.client.Post(t, "com.atproto.admin.updateSubjectStatus", map[string]any{
		"subject": map[string]any{"$type": "com.atproto.admin.defs#repoRef", "did": did}, "takedown": map[string]any{"applied": applied}}, "admin"))
}

// handshake makes a TLS connection to the HTTPS listener with SNI name, verifying the
// certificate against Pebble's root only.
func (a *acmeTest) handshake(name string) (*tls.ConnectionState, error) {
	ctx, cancel := context.WithTimeout(a.ctx, 90*time.Second) // an order takes a few seconds
	defer cancel()
	d := &tls.Dialer{Config: &tls.Config{ServerName: name, RootCAs: a.roots, MinVersion: tls.VersionTLS12}}
	conn, err := d.DialContext(ctx, "tcp", a.tlsAddr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	st := conn.(*tls.Conn).ConnectionState()
	return &st, nil
}

// requireIssued checks name gets a certificate for name alone, chained to Pebble's root
// through its intermediate.
func (a *acmeTest) requireIssued(t *testing.T, name string) {
	t.Helper()
	st, err := a.handshake(name)
	require.NoError(t, err, "handshake with SNI %s\nserve:\n%s\npebble:\n%s", name, a.out.String(), a.peb.out.String())
	leaf := st.PeerCertificates[0]
	require.Equal(t, []string{name}, leaf.DNSNames)
	require.NotEmpty(t, st.VerifiedChains)
	chain := st.VerifiedChains[0]
	require.GreaterOrEqual(t, len(chain), 3, "leaf, Pebble's intermediate, Pebble's root")
	require.True(t, bytes.Equal(a.root.Raw, chain[len(chain)-1].Raw), "chain ends at Pebble's root")
	require.NotEqual(t, leaf.Issuer.String(), leaf.Subject.String())
}

// orders counts the ACME orders Pebble received.
func (a *acmeTest) orders() int { return strings.Count(a.peb.out.String(), "Added order") }

// pebbleBinary finds the pebble command (on PATH or in GOPATH/bin, where .ci/run installs
// it), or builds pebbleVersion from the Go module proxy into a temp dir; it skips the test
// only when Pebble cannot be had at all.
func pebbleBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("pebble"); err == nil {
		return p
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("Pebble is not installed and go is not on PATH to build it (.ci/run installs it)")
	}
	if gopath, err := exec.Command(goBin, "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(strings.SplitN(string(gopath), string(os.PathListSeparator), 2)[0]), "bin", "pebble")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "install", "github.com/letsencrypt/pebble/v2/cmd/pebble@"+pebbleVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("Pebble %s could not be built from the Go module proxy (.ci/run installs it): %v\n%s", pebbleVersion, err, b)
	}
	return filepath.Join(dir, "pebble")
}

// startTestDNS answers A 127.0.0.1 for every name (and no other records), so Pebble's
// validation authority connects to the listeners of this test. It serves DNS over TCP,
// the only transport Pebble's -dnsserver client uses.
func startTestDNS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	started := make(chan struct{})
	srv := &dns.Server{Listener: ln, NotifyStartedFunc: func() { close(started) }, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if len(q.Question) == 1 && q.Question[0].Qtype == dns.TypeA {
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: net.IPv4(127, 0, 0, 1)}}
		}
		w.WriteMsg(m)
	})}
	served := make(chan error, 1)
	go func() { served <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-served:
		t.Fatalf("test DNS server: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("test DNS server did not start")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		<-served
	})
	return ln.Addr().String()
}

// pebbleServer is a running Pebble: its ACME directory and management URLs, a pool
// trusting its HTTPS certificate (the PEM file caFile) and its output.
type pebbleServer struct {
	dir, mgmt string
	https     *x509.CertPool
	caFile    string
	out       *lockedBuffer
}

// startPebble runs Pebble with testdata/pebble/config.json (listen ports and its own
// HTTPS certificate, made here, filled in; validation on tlsPort and httpPort).
func startPebble(ctx context.Context, t *testing.T, bin, dnsAddr string, tlsPort, httpPort int) *pebbleServer {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	https := writeLoopbackCert(t, certFile, keyFile)

	raw, err := os.ReadFile(filepath.Join("testdata", "pebble", "config.json"))
	require.NoError(t, err)
	var cfg map[string]map[string]any
	require.NoError(t, json.Unmarshal(raw, &cfg))
	listen, mgmt := freePort(t), freePort(t)
	p := cfg["pebble"]
	p["listenAddress"] = fmt.Sprintf("127.0.0.1:%d", listen)
	p["managementListenAddress"] = fmt.Sprintf("127.0.0.1:%d", mgmt)
	p["certificate"], p["privateKey"] = certFile, keyFile
	p["tlsPort"], p["httpPort"] = tlsPort, httpPort
	raw, err = json.Marshal(cfg)
	require.NoError(t, err)
	cfgFile := filepath.Join(dir, "config.json")
	require.NoError(t, os.WriteFile(cfgFile, raw, 0o600))

	pctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(pctx, bin, "-config", cfgFile, "-dnsserver", dnsAddr)
	// No random validation delays, no deliberately rejected nonces: the test stays quick
	// and deterministic; validation itself stays on.
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	dirURL := fmt.Sprintf("https://127.0.0.1:%d/dir", listen)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: https}}}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		res, err := client.Get(dirURL)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		require.True(t, time.Now().Before(deadline), "Pebble did not answer at %s: %v\n%s", dirURL, err, out.String())
	}
	return &pebbleServer{dir: dirURL, mgmt: fmt.Sprintf("https://127.0.0.1:%d", mgmt), https: https, caFile: certFile, out: out}
}

// writeLoopbackCert writes a self-signed certificate for 127.0.0.1 and its key, and
// returns a pool trusting it.
func writeLoopbackCert(t *testing.T, certFile, keyFile string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Pebble in TestServeACME"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

func parsePEMCert(t *testing.T, b []byte, log *lockedBuffer) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(b)
	require.NotNil(t, block, "no PEM in %q\n%s", b, log.String())
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return cert
}

func httpsGet(t *testing.T, c *http.Client, base, path string) []byte {
	t.Helper()
	res, err := c.Get(base + path)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s%s: %s", base, path, b)
	return b
}

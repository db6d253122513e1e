package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hearth-social/hearth/internal/datadir"
	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// Built-in HTTPS (serve --tls-acme): certificates from an ACME CA (Let's Encrypt by
// default) through golang.org/x/crypto/acme/autocert, validated with tls-alpn-01 on the
// HTTPS listener itself (and http-01 too when --tls-http-listen is set). Which names get
// a certificate is pds.Server.CertificatePolicy's decision, the same one /tls-check gives
// a Caddy in front of Hearth.

func tlsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "tls-acme", Usage: "serve HTTPS on --tls-listen with certificates obtained and renewed from an ACME CA (accepting its terms of service) for --hostname and for the handle hosts of this PDS's accounts", EnvVars: []string{"HEARTH_TLS_ACME"}},
		&cli.StringFlag{Name: "tls-listen", Value: ":443", Usage: "HTTPS listener of --tls-acme (the CA validates tls-alpn-01 here: it must be reachable as port 443)", EnvVars: []string{"HEARTH_TLS_LISTEN"}},
		&cli.StringFlag{Name: "tls-http-listen", Usage: "with --tls-acme, also listen for plain HTTP here (e.g. :80): ACME http-01 challenges are answered and every other request is redirected to https (unset: no HTTP listener)", EnvVars: []string{"HEARTH_TLS_HTTP_LISTEN"}},
		&cli.StringFlag{Name: "acme-email", Usage: "contact address given to the ACME CA (optional)", EnvVars: []string{"HEARTH_ACME_EMAIL"}},
		&cli.StringFlag{Name: "acme-directory", Value: autocert.DefaultACMEDirectory, Usage: "ACME directory URL (default Let's Encrypt production; https://acme-staging-v02.api.letsencrypt.org/directory to try things out)", EnvVars: []string{"HEARTH_ACME_DIRECTORY"}},
		&cli.StringFlag{Name: "acme-directory-ca", Usage: "PEM file of the CA certificates to trust for the ACME directory's own HTTPS, for a private ACME server (unset: the system roots)", EnvVars: []string{"HEARTH_ACME_DIRECTORY_CA"}},
	}
}

// acmeConfig is the --tls-acme part of serveConfig (nil when it is off).
type acmeConfig struct {
	listen, httpListen string
	email, directory   string
	directoryRoots     *x509.CertPool // nil: the system roots
}

func readTLSFlags(cctx *cli.Context, hostname string) (*acmeConfig, error) {
	if !cctx.Bool("tls-acme") {
		for _, f := range []string{"tls-http-listen", "acme-email", "acme-directory-ca"} {
			if cctx.IsSet(f) {
				return nil, fmt.Errorf("--%s needs --tls-acme (HEARTH_TLS_ACME)", f)
			}
		}
		return nil, nil
	}
	if hostname == "localhost" {
		return nil, errors.New("--tls-acme needs --hostname (HEARTH_HOSTNAME): the public host name certificates are obtained for")
	}
	ac := &acmeConfig{
		listen:     cctx.String("tls-listen"),
		httpListen: cctx.String("tls-http-listen"),
		email:      cctx.String("acme-email"),
		directory:  cctx.String("acme-directory"),
	}
	if _, _, err := net.SplitHostPort(ac.listen); err != nil {
		return nil, fmt.Errorf("--tls-listen (HEARTH_TLS_LISTEN) %q: want host:port: %w", ac.listen, err)
	}
	if ac.httpListen != "" {
		if _, _, err := net.SplitHostPort(ac.httpListen); err != nil {
			return nil, fmt.Errorf("--tls-http-listen (HEARTH_TLS_HTTP_LISTEN) %q: want host:port: %w", ac.httpListen, err)
		}
	}
	if path := cctx.String("acme-directory-ca"); path != "" {
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--acme-directory-ca (HEARTH_ACME_DIRECTORY_CA): %w", err)
		}
		ac.directoryRoots = x509.NewCertPool()
		if !ac.directoryRoots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--acme-directory-ca (HEARTH_ACME_DIRECTORY_CA) %s: no PEM certificate in it", path)
		}
	}
	return ac, nil
}

// acmeCacheDir is where certificates, their keys and the ACME account key are kept
// (folder 0700, files 0600: autocert.DirCache writes each file as a 0600 temporary file
// renamed into place, and datadir.Prepare tightens anything looser at every start).
func acmeCacheDir(dataDir string) string { return filepath.Join(dataDir, "acme") }

// startACME adds the HTTPS listener (and the optional HTTP one) serving h to rt. policy
// says which names may have a certificate: autocert asks it (HostPolicy) on every
// handshake for a name, before its cache and before any order, so the handle host of an
// account that was taken down or deleted is not served from the cache either. It returns
// what serve prints.
//
// autocert keeps the certificates it loaded in memory and renews each 30 days before it
// expires, on timers of its own (the Manager has no Run/Close: those timers stop with
// the process; a renewal does not ask the policy again).
func startACME(ac *acmeConfig, dataDir, version string, policy autocert.HostPolicy, h http.Handler, rt *runtime, log *slog.Logger) (string, error) {
	dir := acmeCacheDir(dataDir)
	if err := os.MkdirAll(dir, datadir.DirMode); err != nil {
		return "", fmt.Errorf("creating the certificate folder %s: %w", dir, err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if ac.directoryRoots != nil {
		transport.TLSClientConfig = &tls.Config{RootCAs: ac.directoryRoots, MinVersion: tls.VersionTLS12}
	}
	m := &autocert.Manager{
		Prompt: autocert.AcceptTOS,
		Cache:  autocert.DirCache(dir),
		HostPolicy: func(ctx context.Context, host string) error {
			// An http-01 request's Host header reaches the policy as it came, with the
			// port when it is not 80.
			if name, _, err := net.SplitHostPort(host); err == nil {
				host = name
			}
			return policy(ctx, host)
		},
		Email: ac.email,
		Client: &acme.Client{
			DirectoryURL: ac.directory,
			UserAgent:    "hearth/" + version,
			HTTPClient:   &http.Client{Transport: transport, Timeout: time.Minute},
		},
	}
	tc := m.TLSConfig()
	tc.MinVersion = tls.VersionTLS12
	ln, err := net.Listen("tcp", ac.listen)
	if err != nil {
		return "", fmt.Errorf("--tls-listen (HEARTH_TLS_LISTEN) %s: %w", ac.listen, err)
	}
	out := fmt.Sprintf("https://%s (certificates from %s, kept in %s)", ln.Addr(), ac.directory, dir)
	var hln net.Listener
	if ac.httpListen != "" {
		if hln, err = net.Listen("tcp", ac.httpListen); err != nil {
			ln.Close()
			return "", fmt.Errorf("--tls-http-listen (HEARTH_TLS_HTTP_LISTEN) %s: %w", ac.httpListen, err)
		}
		out += fmt.Sprintf("; http://%s redirects there", hln.Addr())
	}
	rt.serveHTTP("pds https", tls.NewListener(ln, tc), h)
	rt.servers[len(rt.servers)-1].srv.ErrorLog = stdlog.New(httpsErrorLog{log.With("component", "https")}, "", 0)
	if hln != nil {
		// http-01 challenges, and a redirect to https for everything else.
		rt.serveHTTP("acme http", hln, m.HTTPHandler(nil))
	}
	log.Info("built-in HTTPS", "listen", ln.Addr().String(), "acme_directory", ac.directory, "cache", dir)
	return out, nil
}

// httpsErrorLog takes the HTTPS server's own log lines into slog. Failed handshakes are
// routine on a public port (scanners, names the policy refuses, old clients) and go to
// debug, except when obtaining a certificate failed (autocert's errors), which an
// operator needs to see; anything else is a warning.
type httpsErrorLog struct{ log *slog.Logger }

func (l httpsErrorLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if strings.HasPrefix(msg, "http: TLS handshake error") && !strings.Contains(msg, "acme/autocert") {
		l.log.Debug(msg)
	} else {
		l.log.Warn(msg)
	}
	return len(p), nil
}

// printTLS writes serve's HTTPS line (nothing without --tls-acme).
func printTLS(w io.Writer, line string) {
	if line != "" {
		fmt.Fprintf(w, "  HTTPS:          %s\n", line)
	}
}

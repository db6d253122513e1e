package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

func TestOutbox(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mail-outbox.jsonl")
	m, err := New(Config{Outbox: path})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"aaaaa-bbbbb", "ccccc-ddddd"} {
		if err := m.Send(context.Background(), Message{To: "a@example.com", Subject: "s", Body: "token " + tok, DID: "did:plc:x", Purpose: PurposePLCOperation, Token: tok}); err != nil {
			t.Fatal(err)
		}
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("outbox mode %v, want 0600", info.Mode().Perm())
	}
	got, err := ReadOutbox(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].Token != "ccccc-ddddd" || got[0].Sent.IsZero() {
		t.Fatalf("outbox holds %+v", got)
	}
	if none, err := ReadOutbox(filepath.Join(t.TempDir(), "nothing")); err != nil || none != nil {
		t.Fatalf("missing outbox: %v %v", none, err)
	}
}

// smtpBackend is a real SMTP server (emersion/go-smtp) that records what it received.
type smtpBackend struct {
	mu    sync.Mutex
	mails []received
	user  string
	pass  string
}

type received struct {
	from, to, data, user string
}

func (b *smtpBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{b: b}, nil }

type smtpSession struct {
	b    *smtpBackend
	cur  received
	auth bool
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.b.user || password != s.b.pass {
			return errors.New("bad credentials")
		}
		s.auth, s.cur.user = true, username
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if !s.auth {
		return smtp.ErrAuthRequired
	}
	s.cur.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error { s.cur.to = to; return nil }

func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = string(b)
	s.b.mu.Lock()
	s.b.mails = append(s.b.mails, s.cur)
	s.b.mu.Unlock()
	return nil
}

func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

// startSMTP runs an SMTP server on 127.0.0.1 with a test certificate: implicit TLS
// when implicit, else STARTTLS.
func startSMTP(t *testing.T, implicit bool) (*smtpBackend, string, *tls.Config) {
	t.Helper()
	ts := httptest.NewTLSServer(nil) // only for its certificate, valid for 127.0.0.1
	cert := ts.TLS.Certificates[0]
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	ts.Close()
	be := &smtpBackend{user: "hearth", pass: "s3cret"}
	srv := smtp.NewServer(be)
	srv.Domain = "127.0.0.1"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	var ln net.Listener
	var err error
	if implicit {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", srv.TLSConfig)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return be, ln.Addr().String(), &tls.Config{RootCAs: pool}
}

func TestSMTP(t *testing.T) {
	for _, tc := range []struct {
		name     string
		scheme   string
		implicit bool
	}{{"smtps implicit TLS", "smtps", true}, {"smtp STARTTLS", "smtp", false}} {
		t.Run(tc.name, func(t *testing.T) {
			be, addr, tlsConf := startSMTP(t, tc.implicit)
			// The certificate is for 127.0.0.1; go-mail checks it against the host.
			m, err := New(Config{SMTPURL: tc.scheme + "://hearth:s3cret@" + addr, From: "pds@example.com", TLS: tlsConf})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = m.Send(ctx, Message{To: "alice@example.com", Subject: "Your PLC operation token", Body: "Your token: abcde-fghij\n", Token: "abcde-fghij"})
			if err != nil {
				t.Fatal(err)
			}
			be.mu.Lock()
			defer be.mu.Unlock()
			if len(be.mails) != 1 {
				t.Fatalf("server received %d mails", len(be.mails))
			}
			got := be.mails[0]
			if got.from != "pds@example.com" || got.to != "alice@example.com" || got.user != "hearth" || !strings.Contains(got.data, "abcde-fghij") || !strings.Contains(got.data, "Subject: Your PLC operation token") {
				t.Fatalf("received %+v", got)
			}
		})
	}
	// Wrong credentials are an error, not a silent drop.
	_, addr, tlsConf := startSMTP(t, true)
	m, err := New(Config{SMTPURL: "smtps://hearth:wrong@" + addr, From: "pds@example.com", TLS: tlsConf})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), Message{To: "a@example.com", Subject: "s", Body: "b"}); err == nil {
		t.Fatal("sending with wrong credentials succeeded")
	}
	for _, bad := range []string{"http://x", "smtps://", "smtp://host:port"} {
		if _, err := New(Config{SMTPURL: bad, From: "a@b"}); err == nil {
			t.Errorf("SMTP URL %q accepted", bad)
		}
	}
}

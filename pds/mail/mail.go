// Package mail sends the PDS's mail: the tokens that confirm a PLC operation, an
// account deletion, an email address or its change, a password reset, a sign-in. With an SMTP URL it sends through that server
// (github.com/wneessen/go-mail: implicit TLS on smtps://, STARTTLS required on
// smtp://); without one (the embedded default) it appends to an outbox file in the
// data dir that only the operator can read, so a self-hoster can migrate an account
// without a mail server (`hearth admin mail` prints it).
package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/hearth-social/hearth/internal/datadir"
)

// Purposes of the tokens Hearth mails.
const (
	PurposePLCOperation  = "plc_operation"
	PurposeDeleteAccount = "delete_account"
	PurposeConfirmEmail  = "confirm_email"
	PurposeUpdateEmail   = "update_email"
	PurposeResetPassword = "reset_password"
	// PurposeSignIn is the code a password login needs when the email second factor is on.
	PurposeSignIn = "sign_in"
	// PurposeAdminMessage is a message from the administrator (com.atproto.admin.sendEmail).
	PurposeAdminMessage = "admin_message"
)

// Message is one plain-text mail. DID, Purpose and Token are kept in the outbox (so
// `hearth admin mail --token` can find a token) and never logged.
type Message struct {
	To      string    `json:"to"`
	Subject string    `json:"subject"`
	Body    string    `json:"body"`
	DID     string    `json:"did,omitempty"`
	Purpose string    `json:"purpose,omitempty"`
	Token   string    `json:"token,omitempty"`
	Sent    time.Time `json:"sent"`
}

// Mailer sends messages.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// Config chooses and configures the mailer.
type Config struct {
	// SMTPURL is smtps://user:pass@host[:465] (implicit TLS) or smtp://user:pass@host[:587]
	// (STARTTLS, required); empty writes to the outbox instead.
	SMTPURL string
	// From is the sender address.
	From string
	// Outbox is the outbox file used without SMTP.
	Outbox string
	// TLS overrides the TLS configuration (tests trust their own CA with it).
	TLS *tls.Config
}

// New returns the configured mailer.
func New(cfg Config) (Mailer, error) {
	if cfg.SMTPURL == "" {
		if cfg.Outbox == "" {
			return nil, errors.New("mail: no SMTP URL and no outbox path")
		}
		return &Outbox{Path: cfg.Outbox}, nil
	}
	return newSMTP(cfg)
}

// Outbox appends mail to a JSON-lines file (0600).
type Outbox struct {
	Path string
	mu   sync.Mutex
}

// Send appends m to the outbox.
func (o *Outbox) Send(_ context.Context, m Message) error {
	if m.Sent.IsZero() {
		m.Sent = time.Now().UTC()
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	f, err := datadir.OpenAppendPrivate(o.Path)
	if err != nil {
		return fmt.Errorf("mail outbox: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("mail outbox: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("mail outbox: %w", err)
	}
	return f.Close()
}

// ReadOutbox returns the outbox's messages, oldest first (none if it does not exist).
func ReadOutbox(path string) ([]Message, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var out []Message
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		var m Message
		if err := json.Unmarshal(line, &m); err != nil {
			return nil, fmt.Errorf("mail outbox %s: %w", path, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// smtpMailer sends through an SMTP server.
type smtpMailer struct {
	from string
	host string
	opts []gomail.Option
}

func newSMTP(cfg Config) (*smtpMailer, error) {
	u, err := url.Parse(cfg.SMTPURL)
	if err != nil {
		// url.Parse's error repeats the URL, password included: say less.
		return nil, errors.New("SMTP URL does not parse as a URL")
	}
	if cfg.From == "" {
		return nil, errors.New("SMTP needs a sender address (--mail-from)")
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("SMTP URL %q has no host", u.Redacted())
	}
	opts := []gomail.Option{gomail.WithTimeout(30 * time.Second)}
	port := 0
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("SMTP URL %q: bad port", u.Redacted())
		}
	}
	switch u.Scheme {
	case "smtps":
		if port == 0 {
			port = 465
		}
		opts = append(opts, gomail.WithSSL())
	case "smtp":
		if port == 0 {
			port = 587
		}
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	default:
		return nil, fmt.Errorf("SMTP URL %q: scheme must be smtps or smtp", u.Redacted())
	}
	opts = append(opts, gomail.WithPort(port))
	tc := cfg.TLS
	if tc == nil {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tc = tc.Clone()
	tc.ServerName = host
	opts = append(opts, gomail.WithTLSConfig(tc))
	if u.User != nil {
		pw, _ := u.User.Password()
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(u.User.Username()), gomail.WithPassword(pw))
	}
	return &smtpMailer{from: cfg.From, host: host, opts: opts}, nil
}

// Send delivers m over a fresh connection (Hearth sends a few mails a day).
func (s *smtpMailer) Send(ctx context.Context, m Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(s.from); err != nil {
		return fmt.Errorf("mail from: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("mail to: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetBodyString(gomail.TypeTextPlain, m.Body)
	c, err := gomail.NewClient(s.host, s.opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("sending mail through %s: %w", s.host, err)
	}
	return nil
}

// Package mail delivers the service's mail: an outbox in the database and
// a worker that sends its entries through an SMTP server, with retries.
package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Message is one mail to send. MessageID is the Message-ID header, without
// its angle brackets.
type Message struct {
	ID        bson.ObjectID
	To        string
	Subject   string
	Text      string
	MessageID string
}

// Sender delivers a message; an error means the server did not accept it.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Server is where an SMTP URL points.
type Server struct {
	Host string
	Port int
	// ImplicitTLS: smtps, TLS from the first byte; otherwise STARTTLS
	// whenever the server offers it.
	ImplicitTLS bool
	// User and Password, when User is set, log in with SMTP AUTH.
	User     string
	Password string
}

// Default ports: submission, and submission over implicit TLS.
const (
	DefaultPort    = 587
	DefaultTLSPort = 465
)

// ParseURL reads smtp://[user[:password]@]host[:port] or smtps://...
func ParseURL(raw string) (Server, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Server{}, fmt.Errorf("mail server URL: %w", err)
	}
	var s Server
	switch u.Scheme {
	case "smtp":
		s.Port = DefaultPort
	case "smtps":
		s.ImplicitTLS, s.Port = true, DefaultTLSPort
	default:
		return Server{}, fmt.Errorf("mail server URL: scheme %q is not smtp or smtps", u.Scheme)
	}
	s.Host = u.Hostname()
	if s.Host == "" {
		return Server{}, errors.New("mail server URL: no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Server{}, fmt.Errorf("mail server URL: port %q is not 1..65535", p)
		}
		s.Port = n
	}
	if u.User != nil {
		s.User = u.User.Username()
		s.Password, _ = u.User.Password()
	}
	return s, nil
}

// SMTP sends messages through one SMTP server, a connection per message.
type SMTP struct {
	server  Server
	from    string
	timeout time.Duration
	roots   *x509.CertPool
}

// SMTPOption adjusts an SMTP sender.
type SMTPOption func(*SMTP)

// TrustRoots verifies the server's certificate against roots instead of
// the system's.
func TrustRoots(roots *x509.CertPool) SMTPOption {
	return func(s *SMTP) { s.roots = roots }
}

// NewSMTP returns a sender through the server at rawURL (see ParseURL),
// with from as the From address; timeout bounds each step of a dialogue.
func NewSMTP(rawURL, from string, timeout time.Duration, opts ...SMTPOption) (*SMTP, error) {
	server, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if err := gomail.NewMsg().From(from); err != nil {
		return nil, fmt.Errorf("mail sender %q: %w", from, err)
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("mail timeout %s must be positive", timeout)
	}
	s := &SMTP{server: server, from: from, timeout: timeout}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Domain is the domain of the From address, the right side of the
// Message-IDs this sender's mail should carry.
func (s *SMTP) Domain() string {
	_, domain, _ := strings.Cut(s.from, "@")
	return strings.TrimRight(domain, ">")
}

// Send delivers m. The client is made for each message, so that sends in
// parallel share nothing.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(s.from); err != nil {
		return err
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("recipient %q: %w", m.To, err)
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(strings.Trim(m.MessageID, "<>"))
	msg.SetDate()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)

	timeout := s.timeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = time.Until(d)
	}
	if timeout <= 0 {
		return context.DeadlineExceeded
	}
	c, err := gomail.NewClient(s.server.Host, s.clientOptions(timeout)...)
	if err != nil {
		return err
	}
	return c.DialAndSendWithContext(ctx, msg)
}

func (s *SMTP) clientOptions(timeout time.Duration) []gomail.Option {
	opts := []gomail.Option{
		gomail.WithPort(s.server.Port),
		gomail.WithTimeout(timeout),
		gomail.WithTLSConfig(&tls.Config{ServerName: s.server.Host, RootCAs: s.roots, MinVersion: tls.VersionTLS12}),
	}
	if s.server.ImplicitTLS {
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if s.server.User != "" {
		// The strongest mechanism the server offers of these; PLAIN and
		// LOGIN refuse to send a password in the clear but to a local server.
		opts = append(opts, gomail.WithUsername(s.server.User), gomail.WithPassword(s.server.Password),
			gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1,
				gomail.SMTPAuthCramMD5, gomail.SMTPAuthPlain, gomail.SMTPAuthLogin))
	}
	return opts
}

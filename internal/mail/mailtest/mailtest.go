// Package mailtest runs a real SMTP server for tests, on a loopback port,
// and keeps every message it receives.
package mailtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one message the server accepted.
type Message struct {
	From string
	To   []string
	Data []byte
	// Header is the parsed header; Subject and MessageID are its fields of
	// those names, Body the text with its transfer encoding undone.
	Header    mail.Header
	Subject   string
	MessageID string
	Body      string
	// TLS says the message came over an encrypted connection; User is the
	// name it logged in with, if any.
	TLS  bool
	User string
}

// Server is an SMTP server listening on 127.0.0.1.
type Server struct {
	srv      *smtp.Server
	addr     string
	starttls bool
	implicit bool
	roots    *x509.CertPool
	user     string
	password string

	mu       sync.Mutex
	messages []Message
	refuse   int
	changed  chan struct{}
}

// Option configures a Server.
type Option func(*Server)

// RequireAuth makes the server accept mail only after AUTH PLAIN with user
// and password.
func RequireAuth(user, password string) Option {
	return func(s *Server) { s.user, s.password = user, password }
}

// WithTLS makes the server offer STARTTLS, with a certificate of its own
// (see RootCAs).
func WithTLS() Option {
	return func(s *Server) { s.starttls = true }
}

// WithImplicitTLS makes the server speak TLS from the first byte (smtps).
func WithImplicitTLS() Option {
	return func(s *Server) { s.implicit = true }
}

// Start starts a server, closed when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{changed: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, conn: c}, nil
	}))
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout, s.srv.WriteTimeout = 10*time.Second, 10*time.Second
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if s.starttls || s.implicit {
		cfg, roots, err := selfSigned()
		if err != nil {
			t.Fatal(err)
		}
		s.roots = roots
		if s.implicit {
			l = tls.NewListener(l, cfg)
		} else {
			s.srv.TLSConfig = cfg
		}
	}
	s.addr = l.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.srv.Serve(l)
	}()
	t.Cleanup(func() {
		_ = s.srv.Close()
		<-done
	})
	return s
}

// URL is the server's address as an SMTP URL, without credentials.
func (s *Server) URL() string {
	if s.implicit {
		return "smtps://" + s.addr
	}
	return "smtp://" + s.addr
}

// RootCAs holds the certificate the server presents over TLS.
func (s *Server) RootCAs() *x509.CertPool { return s.roots }

// Refuse answers 451 (try again later) to the recipients of the next n
// messages; a negative n refuses until Refuse(0).
func (s *Server) Refuse(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = n
}

// Messages returns every message received so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// To returns the messages received so far for the recipient to.
func (s *Server) To(to string) []Message {
	var out []Message
	for _, m := range s.Messages() {
		for _, r := range m.To {
			if strings.EqualFold(r, to) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// WaitFor returns the first message for to, waiting up to timeout for it
// to arrive; the test fails if none does.
func (s *Server) WaitFor(t testing.TB, to string, timeout time.Duration) Message {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		if got := s.To(to); len(got) > 0 {
			return got[0]
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("mailtest: no message for %s within %s", to, timeout)
		}
	}
}

func (s *Server) add(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, m)
	close(s.changed)
	s.changed = make(chan struct{})
}

// refusing counts one refusal off, if any is due.
func (s *Server) refusing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse == 0 {
		return false
	}
	if s.refuse > 0 {
		s.refuse--
	}
	return true
}

type session struct {
	s    *Server
	conn *smtp.Conn
	user string
	from string
	to   []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, password string) error {
		if user != ss.s.user || password != ss.s.password {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
		}
		ss.user = user
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.user != "" && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.s.refusing() {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "Try again later"}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, tlsOn := ss.conn.TLSConnectionState()
	m := Message{From: ss.from, To: ss.to, Data: data, TLS: tlsOn, User: ss.user}
	if parsed, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		m.Header = parsed.Header
		m.Subject, _ = new(mime.WordDecoder).DecodeHeader(parsed.Header.Get("Subject"))
		m.MessageID = parsed.Header.Get("Message-ID")
		m.Body = body(parsed)
	}
	ss.s.add(m)
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }

// body is the text of m with its transfer encoding undone.
func body(m *mail.Message) string {
	var r io.Reader = m.Body
	switch strings.ToLower(m.Header.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r)
	}
	b, _ := io.ReadAll(r)
	return string(b)
}

// selfSigned is a TLS configuration with a new certificate for 127.0.0.1,
// and the pool that trusts it.
func selfSigned() (*tls.Config, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mailtest"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}, MinVersion: tls.VersionTLS12}
	return cfg, roots, nil
}

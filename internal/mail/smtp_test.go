package mail_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/mail"
	"github.com/orgsvc/orgsvc/internal/mail/mailtest"
)

const from = "orgsvc@example.com"

func message(to string) mail.Message {
	id := bson.NewObjectID()
	return mail.Message{ID: id, To: to, Subject: "Welcome", Text: "token " + id.Hex(), MessageID: id.Hex() + "@example.com"}
}

// withUser is srv's URL with user and password in it.
func withUser(t *testing.T, srv *mailtest.Server, user, password string) string {
	t.Helper()
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

// TestParseURL: smtp and smtps with their default ports, credentials when
// given; anything else is an error that says what is wrong.
func TestParseURL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		raw  string
		want mail.Server
	}{
		{"smtp://mail.example.com", mail.Server{Host: "mail.example.com", Port: mail.DefaultPort}},
		{"smtp://u%40x:p%3Aw@127.0.0.1:2525", mail.Server{Host: "127.0.0.1", Port: 2525, User: "u@x", Password: "p:w"}},
		{"smtps://mailer@mail.example.com", mail.Server{Host: "mail.example.com", Port: mail.DefaultTLSPort, ImplicitTLS: true, User: "mailer"}},
	} {
		got, err := mail.ParseURL(c.raw)
		if err != nil || got != c.want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", c.raw, got, err, c.want)
		}
	}
	for raw, want := range map[string]string{
		"http://mail.example.com":   `scheme "http" is not smtp or smtps`,
		"mail.example.com:25":       "is not smtp or smtps",
		"smtp://":                   "no host",
		"smtp://:25":                "no host",
		"smtp://mail.example.com:0": "port",
	} {
		if _, err := mail.ParseURL(raw); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseURL(%q): %v, want an error saying %q", raw, err, want)
		}
		if _, err := mail.NewSMTP(raw, from, time.Second); err == nil {
			t.Errorf("NewSMTP(%q) accepted it", raw)
		}
	}
	if _, err := mail.NewSMTP("smtp://mail.example.com", "not an address", time.Second); err == nil {
		t.Error("NewSMTP accepted a From that is not an address")
	}
}

// TestSMTPSend: the message arrives with its headers and body, in the
// clear when the server offers no TLS.
func TestSMTPSend(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t)
	s, err := mail.NewSMTP(srv.URL(), from, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	m := message("ada@example.com")
	m.Text = "Join us: https://example.com/accept?token=äbc\nBye"
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := srv.WaitFor(t, m.To, 5*time.Second)
	if got.From != from || len(got.To) != 1 || got.To[0] != m.To || got.Subject != m.Subject ||
		got.MessageID != "<"+m.MessageID+">" || strings.TrimRight(strings.ReplaceAll(got.Body, "\r\n", "\n"), "\n") != m.Text {
		t.Fatalf("got from %q to %q, subject %q, Message-ID %q, body %q; want %+v", got.From, got.To, got.Subject, got.MessageID, got.Body, m)
	}
	if got.Header.Get("Date") == "" || !strings.HasPrefix(got.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("Date %q, Content-Type %q", got.Header.Get("Date"), got.Header.Get("Content-Type"))
	}
	if got.TLS || got.User != "" {
		t.Fatalf("TLS %v, user %q; want neither", got.TLS, got.User)
	}
}

// TestSMTPAuth: user and password in the URL log in; a wrong password or
// none is refused by a server that requires them.
func TestSMTPAuth(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t, mailtest.RequireAuth("mailer", "s3cret pass"))
	for _, c := range []struct {
		name, url string
		ok        bool
	}{
		{"right", withUser(t, srv, "mailer", "s3cret pass"), true},
		{"wrong password", withUser(t, srv, "mailer", "guess"), false},
		{"none", srv.URL(), false},
	} {
		s, err := mail.NewSMTP(c.url, from, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		m := message(strings.ReplaceAll(c.name, " ", "-") + "@example.com")
		err = s.Send(context.Background(), m)
		if (err == nil) != c.ok {
			t.Fatalf("%s credentials: send gave %v", c.name, err)
		}
		if c.ok {
			if got := srv.WaitFor(t, m.To, 5*time.Second); got.User != "mailer" {
				t.Fatalf("logged in as %q, want mailer", got.User)
			}
		} else if got := srv.To(m.To); len(got) != 0 {
			t.Fatalf("%s credentials: %d messages accepted", c.name, len(got))
		}
	}
}

// TestSMTPTLS: smtp uses STARTTLS when offered, smtps speaks TLS from the
// start; either checks the server's certificate.
func TestSMTPTLS(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		opt  mailtest.Option
	}{{"starttls", mailtest.WithTLS()}, {"implicit", mailtest.WithImplicitTLS()}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := mailtest.Start(t, c.opt, mailtest.RequireAuth("mailer", "pw"))
			untrusting, err := mail.NewSMTP(withUser(t, srv, "mailer", "pw"), from, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if err := untrusting.Send(context.Background(), message("x@example.com")); err == nil {
				t.Fatal("sent to a server whose certificate nothing vouches for")
			}
			s, err := mail.NewSMTP(withUser(t, srv, "mailer", "pw"), from, 5*time.Second, mail.TrustRoots(srv.RootCAs()))
			if err != nil {
				t.Fatal(err)
			}
			m := message("ada@example.com")
			if err := s.Send(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			if got := srv.WaitFor(t, m.To, 5*time.Second); !got.TLS || got.User != "mailer" {
				t.Fatalf("TLS %v, user %q; want TLS and mailer", got.TLS, got.User)
			}
		})
	}
}

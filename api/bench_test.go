package api_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/orgsvc/orgsvc/internal/app"
	"github.com/orgsvc/orgsvc/internal/storetest"
)

// benchService is the whole service over a fresh database on the package's
// embedded store, called in process through its http.Handler: each request
// pays routing, middleware, the handler and the database round trips, but
// no network between client and server.
type benchService struct {
	b *testing.B
	h http.Handler
}

func newBenchService(b *testing.B) *benchService {
	b.Helper()
	h, err := app.NewHandler(testConfig(), app.Components{
		DB: storetest.Database(b), Secret: testSecret, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	return &benchService{b: b, h: h}
}

// serve sends a request with a JSON body (when body is not nil) and a
// Bearer token (when token is not empty).
func (s *benchService) serve(method, path, token string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	return rec
}

// must sends a request and decodes the answer into out, failing the
// benchmark unless the status is want.
func (s *benchService) must(want int, method, path, token string, body any, out any) {
	s.b.Helper()
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			s.b.Fatal(err)
		}
	}
	rec := s.serve(method, path, token, raw)
	if rec.Code != want {
		s.b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
	}
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			s.b.Fatal(err)
		}
	}
}

// signUp creates an organization and returns its admin's token.
func (s *benchService) signUp(name string) string {
	s.b.Helper()
	creds := map[string]string{"email": "admin@" + name + ".example.com", "password": name + "-pass-1"}
	s.must(http.StatusCreated, "POST", "/org/create", "", map[string]string{
		"organization_name": name, "email": creds["email"], "password": creds["password"],
	}, nil)
	var login struct {
		AccessToken string `json:"access_token"`
	}
	s.must(http.StatusOK, "POST", "/admin/login", "", creds, &login)
	return login.AccessToken
}

var benchDocument = []byte(`{"kind":"invoice","n":42,"total":120.5,"paid":false,"customer":"Acme Inc","lines":[[1,2],[3]]}`)

// benchLoop sends the same request on every iteration and checks its
// status.
func (s *benchService) benchLoop(want int, method, path, token string, body []byte) {
	b := s.b
	b.ReportAllocs()
	for b.Loop() {
		if rec := s.serve(method, path, token, body); rec.Code != want {
			b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
		}
	}
}

// BenchmarkHealth is the cheapest route: routing and middleware alone.
func BenchmarkHealth(b *testing.B) {
	newBenchService(b).benchLoop(http.StatusOK, "GET", "/health", "", nil)
}

// BenchmarkAuthMiddleware is the Bearer check of an authenticated request
// (token verification and the admin and organization lookups), answered
// by a route that does nothing more: a malformed document id is a 404
// without a database read.
func BenchmarkAuthMiddleware(b *testing.B) {
	s := newBenchService(b)
	token := s.signUp("bench-auth")
	s.benchLoop(http.StatusNotFound, "GET", "/org/documents/not-an-id", token, nil)
}

// BenchmarkAuthRejected is a request with a token signed by another key:
// refused before any database read.
func BenchmarkAuthRejected(b *testing.B) {
	s := newBenchService(b)
	token := s.signUp("bench-rejected")
	forged := token[:len(token)-4] + "AAAA"
	if forged == token {
		forged = token[:len(token)-4] + "BBBB"
	}
	s.benchLoop(http.StatusUnauthorized, "GET", "/org/documents/not-an-id", forged, nil)
}

// BenchmarkDocumentRead is GET /org/documents/{id} through the full
// handler: authentication, the read and the envelope's encoding.
func BenchmarkDocumentRead(b *testing.B) {
	s := newBenchService(b)
	token := s.signUp("bench-read")
	var doc struct {
		ID string `json:"id"`
	}
	s.must(http.StatusCreated, "POST", "/org/documents", token, json.RawMessage(benchDocument), &doc)
	s.benchLoop(http.StatusOK, "GET", "/org/documents/"+doc.ID, token, nil)
}

// BenchmarkDocumentCreate is POST /org/documents through the full handler:
// authentication, the body's checks, the insert and the envelope.
func BenchmarkDocumentCreate(b *testing.B) {
	s := newBenchService(b)
	token := s.signUp("bench-create")
	s.benchLoop(http.StatusCreated, "POST", "/org/documents", token, benchDocument)
}

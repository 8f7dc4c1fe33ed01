package api_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The benchmarks set the service up with the tests' harness (newEnv,
// signUp) and then call its handler in process with httptest.NewRecorder:
// each request pays routing, middleware (the harness logs every request
// into memory), the handler and the round trips to the embedded store,
// but no network between client and server. The store runs in the same
// process, so B/op and allocs/op include its work on the queries.

var benchDocument = []byte(`{"kind":"invoice","n":42,"total":120.5,"paid":false,"customer":"Acme Inc","lines":[[1,2],[3]]}`)

// benchLoop sends the same request to e's handler on every iteration and
// checks its status.
func benchLoop(b *testing.B, e *env, want int, method, path, token string, body []byte) {
	b.Helper()
	h := e.srv.Config.Handler
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
		}
	}
}

// BenchmarkHealth is the cheapest route: routing and middleware alone.
func BenchmarkHealth(b *testing.B) {
	benchLoop(b, newEnv(b), http.StatusOK, "GET", "/health", "", nil)
}

// BenchmarkAuthMiddleware is the Bearer check of an authenticated request
// (the token's verification and whatever the check reads), answered by a
// route that does nothing more: a malformed document id is a 404 without a
// database read.
func BenchmarkAuthMiddleware(b *testing.B) {
	e := newEnv(b)
	o := e.signUp("bench-auth")
	benchLoop(b, e, http.StatusNotFound, "GET", "/org/documents/not-an-id", o.token, nil)
}

// BenchmarkAuthRejected is a request whose token's signature does not
// match: refused before any database read.
func BenchmarkAuthRejected(b *testing.B) {
	e := newEnv(b)
	o := e.signUp("bench-rejected")
	forged := o.token[:len(o.token)-4] + "AAAA"
	if forged == o.token {
		forged = o.token[:len(o.token)-4] + "BBBB"
	}
	benchLoop(b, e, http.StatusUnauthorized, "GET", "/org/documents/not-an-id", forged, nil)
}

// BenchmarkDocumentRead is GET /org/documents/{id} through the full
// handler: authentication, the read and the envelope's encoding.
func BenchmarkDocumentRead(b *testing.B) {
	e := newEnv(b)
	o := e.signUp("bench-read")
	r := e.request("POST", "/org/documents", benchDocument, map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + o.token})
	if r.status != http.StatusCreated {
		b.Fatalf("create: %d %s", r.status, r.raw)
	}
	id, _ := r.obj()["id"].(string)
	benchLoop(b, e, http.StatusOK, "GET", "/org/documents/"+id, o.token, nil)
}

// BenchmarkDocumentCreate is POST /org/documents through the full handler:
// authentication, the body's checks, the insert and the envelope.
func BenchmarkDocumentCreate(b *testing.B) {
	e := newEnv(b)
	o := e.signUp("bench-create")
	benchLoop(b, e, http.StatusCreated, "POST", "/org/documents", o.token, benchDocument)
}

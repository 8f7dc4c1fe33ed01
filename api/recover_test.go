package api

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPanicBecomes500 uses a handler that panics: a fault no real part of
// the service can be made to produce on demand.
func TestPanicBecomes500(t *testing.T) {
	var logs bytes.Buffer
	s := &server{log: slog.New(slog.NewJSONHandler(&logs, nil))}
	h := s.observe(s.recoverPanics(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("secret internal state")
	})))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/boom", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d", rec.Code)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["detail"] != "Internal Server Error" || len(body) != 1 {
		t.Fatalf("body %q", rec.Body.String())
	}
	if strings.Contains(rec.Body.String(), "secret") || strings.Contains(rec.Body.String(), "goroutine") {
		t.Fatal("the answer leaks the panic")
	}
	if !strings.Contains(logs.String(), "secret internal state") || !strings.Contains(logs.String(), "recover_test.go") {
		t.Fatalf("the log lacks the panic and its stack: %s", logs.String())
	}
	if !strings.Contains(logs.String(), `"status":500`) {
		t.Fatalf("the request line lacks the 500: %s", logs.String())
	}
}

// FuzzParse feeds arbitrary bodies to the request decoder and validator:
// it must never panic, and it either accepts a body (every required field
// set) or reports problems in the FastAPI shape.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"organization_name":"alpha","email":"a@b.com","password":"password-1"}`,
		`{"organization_name":12345,"email":"a@b.com","password":12345678}`,
		`{}`, `[]`, `null`, `"x"`, `{"email":{"$gt":""}}`, `{"organization_name":"  "}`,
		`{"organization_name": "x",`, "{\"password\":\"a\\u0000b\"}", `{"a":1} {}`, "\xff\xfe",
	} {
		f.Add([]byte(seed))
	}
	s := &server{validate: newValidator()}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req CreateOrgRequest
		problems := s.parse(body, &req)
		if len(problems) == 0 {
			if req.OrganizationName == nil || req.Email == nil || req.Password == nil {
				t.Fatalf("accepted %q with a field missing", body)
			}
			return
		}
		for _, p := range problems {
			if len(p.Loc) == 0 || p.Loc[0] != "body" || p.Msg == "" || p.Type == "" {
				t.Fatalf("malformed problem %+v for %q", p, body)
			}
		}
		if _, err := json.Marshal(ValidationError{Detail: problems}); err != nil {
			t.Fatalf("problems do not encode: %v", err)
		}
		var login LoginRequest
		_ = s.parse(body, &login)
	})
}

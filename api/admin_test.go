package api_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestLogin200(t *testing.T) {
	e := newEnv(t)
	alpha := e.signUp("alpha")
	r := e.call("POST", "/admin/login", "", map[string]any{"email": "admin@ALPHA.Example.com", "password": alpha.password})
	expect(t, r, http.StatusOK, "")
	if r.obj()["token_type"] != "bearer" {
		t.Fatalf("got %v", r.obj())
	}
	claims := decodeClaims(t, r.obj()["access_token"].(string))
	if claims["sub"] != alpha.adminID || claims["org"] != "alpha" || claims["iss"] != "orgsvc" || !hex24.MatchString(claims["org_id"].(string)) {
		t.Fatalf("claims: %v", claims)
	}
	exp, iat := claims["exp"].(float64), claims["iat"].(float64)
	if exp-iat != 3600 || time.Since(time.Unix(int64(iat), 0)) > time.Minute {
		t.Fatalf("iat %v exp %v", iat, exp)
	}
}

func decodeClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func TestLogin401(t *testing.T) {
	e := newEnv(t)
	alpha := e.signUp("alpha")
	for name, creds := range map[string][2]string{
		"wrong password":       {alpha.email, "wrong-password"},
		"unknown email":        {"nobody@nowhere.example.com", "whatever-1"},
		"local part case":      {"ADMIN@alpha.example.com", alpha.password},
		"nul in password":      {alpha.email, "x\x00y"},
		"password over 72":     {alpha.email, strings.Repeat("p", 100)},
		"password with suffix": {alpha.email, alpha.password + " "},
	} {
		t.Run(name, func(t *testing.T) {
			r := e.call("POST", "/admin/login", "", map[string]any{"email": creds[0], "password": creds[1]})
			expect(t, r, http.StatusUnauthorized, "Invalid credentials")
		})
	}
}

func TestLogin422(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name string
		body string
		typ  string
	}{
		{"missing password", `{"email": "admin@alpha.example.com"}`, "value_error.missing"},
		{"empty password", `{"email": "admin@alpha.example.com", "password": ""}`, "value_error.any_str.min_length"},
		{"bad email", `{"email": "alpha", "password": "alpha-pass-1"}`, "value_error.email"},
		{"no body", ``, "value_error.missing"},
		{"object email", `{"email": {"$gt": ""}, "password": "x"}`, "type_error.str"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.request("POST", "/admin/login", []byte(c.body), map[string]string{"Content-Type": "application/json"})
			expect(t, r, http.StatusUnprocessableEntity, "")
			if p := r.problems(); len(p) != 1 || p[0]["type"] != c.typ {
				t.Fatalf("problems: %v", p)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	e := newEnv(t)
	r := e.call("GET", "/health", "", nil)
	expect(t, r, http.StatusOK, "")
	if r.obj()["status"] != "ok" {
		t.Fatalf("health: %s", r.raw)
	}
	for _, path := range []string{"/nope", "/org", "/org/documents-nope"} {
		expect(t, e.call("GET", path, "", nil), http.StatusNotFound, "Not Found")
	}
	for _, c := range []struct{ method, path, allow string }{
		{"GET", "/org/create", "POST"},
		{"GET", "/admin/login", "POST"},
		{"DELETE", "/health", "GET, HEAD"},
		{"PUT", "/org/delete", "POST, DELETE"},
		{"GET", "/org/update", "POST, PUT"},
	} {
		r := e.call(c.method, c.path, "", nil)
		expect(t, r, http.StatusMethodNotAllowed, "Method Not Allowed")
		if r.header.Get("Allow") != c.allow {
			t.Fatalf("%s %s: Allow %q, want %q", c.method, c.path, r.header.Get("Allow"), c.allow)
		}
	}
	r = e.call("GET", "/health/", "", nil)
	if r.status != http.StatusTemporaryRedirect || r.header.Get("Location") != "/health" {
		t.Fatalf("trailing slash: %d %q", r.status, r.header.Get("Location"))
	}
	expect(t, e.call("GET", "/nope/", "", nil), http.StatusNotFound, "Not Found")

	r = e.call("GET", "/docs", "", nil)
	if r.status != http.StatusMovedPermanently || r.header.Get("Location") != "/docs/index.html" {
		t.Fatalf("/docs: %d %q", r.status, r.header.Get("Location"))
	}
	r = e.call("GET", "/docs/index.html", "", nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.raw), "swagger-ui") {
		t.Fatalf("/docs/index.html: %d", r.status)
	}
	r = e.call("GET", "/docs/doc.json", "", nil)
	expect(t, r, http.StatusOK, "")
	paths, _ := r.obj()["paths"].(map[string]any)
	for _, p := range []string{"/health", "/admin/login", "/org/create", "/org/get", "/org/update", "/org/delete"} {
		if _, ok := paths[p]; !ok {
			t.Fatalf("doc.json lacks %s", p)
		}
	}
}

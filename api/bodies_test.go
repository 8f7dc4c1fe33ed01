package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// jsonRoutes are every route that reads a JSON body, with a token where
// the route needs one.
func jsonRoutes(e *env) [][3]string {
	o := e.signUp("alpha")
	id := e.postDoc(o, `{"n":1}`)
	return [][3]string{
		{"POST", "/org/create", ""},
		{"POST", "/admin/login", ""},
		{"PUT", "/org/update", o.token},
		{"POST", "/org/update", o.token},
		{"DELETE", "/org/delete", o.token},
		{"POST", "/org/delete", o.token},
		{"POST", "/org/documents", o.token},
		{"PUT", "/org/documents/" + id, o.token},
		{"PATCH", "/org/documents/" + id, o.token},
	}
}

func (e *env) sendJSON(method, path, token, body string) response {
	e.t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	return e.request(method, path, []byte(body), h)
}

// TestMalformedJSONOneShape: a malformed body gets the same answer on
// every route, in the shape the contract pins for /org/create (step 13):
// loc ["body", offset], value_error.jsondecode, ctx with the position.
func TestMalformedJSONOneShape(t *testing.T) {
	e := newEnv(t)
	routes := jsonRoutes(e)
	bodies := []struct {
		name, body     string
		pos, line, col float64
	}{
		{"unterminated", `{"organization_name": "x",`, 26, 1, 27},
		{"bad character", "{\n  \"a\": x}", 9, 2, 8},
		{"trailing data", `{"a":1} {}`, 8, 1, 9},
		{"invalid UTF-8", "{\"a\":\"\xff\"}", 6, 1, 7},
	}
	for _, b := range bodies {
		t.Run(b.name, func(t *testing.T) {
			var first string
			for _, rt := range routes {
				r := e.sendJSON(rt[0], rt[1], rt[2], b.body)
				expect(t, r, http.StatusUnprocessableEntity, "")
				p := r.problems()
				ctx, _ := p[0]["ctx"].(map[string]any)
				if len(p) != 1 || p[0]["type"] != "value_error.jsondecode" || !equalLoc(p[0]["loc"], []any{"body", b.pos}) ||
					ctx["pos"] != b.pos || ctx["lineno"] != b.line || ctx["colno"] != b.col {
					t.Fatalf("%s %s: %s", rt[0], rt[1], r.raw)
				}
				if first == "" {
					first = string(r.raw)
				} else if string(r.raw) != first {
					t.Fatalf("%s %s answers %s, %s %s answered %s", rt[0], rt[1], r.raw, routes[0][0], routes[0][1], first)
				}
			}
			// A listing filter is JSON too: the same problem, under its own loc.
			r := e.call("GET", "/org/documents?filter="+url.QueryEscape(b.body), routes[2][2], nil)
			expect(t, r, http.StatusUnprocessableEntity, "")
			var want map[string]any
			if err := json.Unmarshal([]byte(first), &want); err != nil {
				t.Fatal(err)
			}
			wantP := want["detail"].([]any)[0].(map[string]any)
			wantP["loc"] = []any{"query", "filter", b.pos}
			if got := r.problems(); len(got) != 1 || !reflect.DeepEqual(got[0], wantP) {
				t.Fatalf("filter: got %s, want %v", r.raw, wantP)
			}
		})
	}
}

// TestMalformedJSONEchoesNoSecret: a 422 for malformed JSON names the
// position, never the body's content.
func TestMalformedJSONEchoesNoSecret(t *testing.T) {
	e := newEnv(t)
	const secret = "Sup3r-secret-pw"
	bodies := map[string]string{
		"unterminated":         `{"email":"a@b.example.com","password":"` + secret + `"`,
		"secret at the error":  `{"email":"a@b.example.com","password":` + secret + `}`,
		"broken after secret":  `{"password":"` + secret + `" "email":"a@b.example.com"}`,
		"literal-like secret":  `{"email":"a@b.example.com","password":t` + secret + `}`,
		"organization and pwd": `{"organization_name":"Acme","email":"a@b.example.com","password":"` + secret + `",}`,
	}
	for name, body := range bodies {
		for _, path := range []string{"/admin/login", "/org/create"} {
			t.Run(name+" "+path, func(t *testing.T) {
				r := e.sendJSON("POST", path, "", body)
				expect(t, r, http.StatusUnprocessableEntity, "")
				if p := r.problems(); len(p) != 1 || p[0]["type"] != "value_error.jsondecode" {
					t.Fatalf("problems: %s", r.raw)
				}
				// Not the secret, nor the character the parser stopped at.
				if strings.Contains(string(r.raw), secret) || strings.Contains(string(r.raw), "'S'") || strings.Contains(string(r.raw), `"doc"`) {
					t.Fatalf("the answer echoes the body: %s", r.raw)
				}
			})
		}
	}
}

// TestControlBodiesRefuseDuplicateKeys: a key given twice in a control body
// is a 422 naming it, and nothing happens.
func TestControlBodiesRefuseDuplicateKeys(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("alpha")
	cases := []struct {
		method, path, token, body, key string
	}{
		{"POST", "/org/create", "", `{"organization_name":"beta","organization_name":"gamma","email":"a@beta.example.com","password":"beta-pass-1"}`, "organization_name"},
		{"POST", "/admin/login", "", `{"email":"` + o.email + `","password":"wrong-pass-1","password":"` + o.password + `"}`, "password"},
		{"PUT", "/org/update", o.token, `{"organization_name":"alpha","new_organization_name":"one","new_organization_name":"two"}`, "new_organization_name"},
		{"POST", "/org/update", o.token, `{"organization_name":"alpha","password":"changed-pass-1","password":"changed-pass-2"}`, "password"},
		{"DELETE", "/org/delete", o.token, `{"organization_name":"nope","organization_name":"alpha"}`, "organization_name"},
		{"POST", "/org/delete", o.token, `{"organization_name":"alpha","organization_name":"alpha"}`, "organization_name"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			r := e.sendJSON(c.method, c.path, c.token, c.body)
			expect(t, r, http.StatusUnprocessableEntity, "")
			p := r.problems()
			if len(p) != 1 || p[0]["type"] != "value_error.key.duplicate" || !equalLoc(p[0]["loc"], []any{"body", c.key}) || p[0]["msg"] == "" {
				t.Fatalf("problems: %s", r.raw)
			}
		})
	}
	// Nested duplicates are named by their path.
	r := e.sendJSON("POST", "/org/create", "", `{"organization_name":"beta","email":"a@beta.example.com","password":"beta-pass-1","extra":{"k":1,"k":2}}`)
	if p := r.problems(); r.status != http.StatusUnprocessableEntity || len(p) != 1 || !equalLoc(p[0]["loc"], []any{"body", "extra", "k"}) {
		t.Fatalf("nested duplicate: %d %s", r.status, r.raw)
	}
	// Nothing was created, renamed, changed or deleted.
	for _, name := range []string{"beta", "gamma", "one", "two"} {
		expect(t, e.call("GET", "/org/get?organization_name="+name, "", nil), http.StatusNotFound, "")
	}
	expect(t, e.call("GET", "/org/get?organization_name=alpha", "", nil), http.StatusOK, "")
	e.login(o.email, o.password)
	expect(t, e.call("GET", "/org/documents", o.token, nil), http.StatusOK, "")
}

package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

var (
	hex24     = regexp.MustCompile(`^[0-9a-f]{24}$`)
	timestamp = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$`)
)

func TestCreate201(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name       string
		body       map[string]any
		wantName   string
		collection string
	}{
		{"plain", map[string]any{"organization_name": "alpha", "email": "admin@alpha.example.com", "password": "alpha-pass-1"}, "alpha", "org_alpha"},
		{"trimmed", map[string]any{"organization_name": "  Trim Me  ", "email": "a@trim.example.com", "password": "password-123"}, "Trim Me", "org_trim_me"},
		{"punctuation run", map[string]any{"organization_name": "Acme Inc!", "email": "a@acme.example.com", "password": "password-123"}, "Acme Inc!", "org_acme_inc_"},
		{"non-ascii", map[string]any{"organization_name": "日本", "email": "a@nihon.example.com", "password": "password-123"}, "日本", "org_xn--wgv71a"},
		{"unknown fields ignored", map[string]any{"organization_name": "extra", "email": "a@extra.example.com", "password": "password-123", "role": "superadmin", "collection_name": "organizations"}, "extra", "org_extra"},
		{"password of exactly 8", map[string]any{"organization_name": "eightpw", "email": "a@eightpw.example.com", "password": "12345678"}, "eightpw", "org_eightpw"},
		{"name of 50", map[string]any{"organization_name": strings.Repeat("n", 50), "email": "a@fifty.example.com", "password": "password-123"}, strings.Repeat("n", 50), "org_" + strings.Repeat("n", 50)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.call("POST", "/org/create", "", c.body)
			expect(t, r, http.StatusCreated, "")
			b := r.obj()
			if b["organization_name"] != c.wantName || b["collection_name"] != c.collection {
				t.Fatalf("got %v", b)
			}
			if !hex24.MatchString(b["admin_id"].(string)) || !timestamp.MatchString(b["created_at"].(string)) {
				t.Fatalf("admin_id or created_at malformed: %v", b)
			}
			if len(b) != 4 {
				t.Fatalf("want exactly 4 fields, got %v", b)
			}
			if !e.hasCollection(c.collection) {
				t.Fatalf("tenant collection %s missing", c.collection)
			}
		})
	}
	// Numbers are accepted where strings are expected, as in the original
	// (sent around the harness: the spec, rightly, asks for strings).
	res, err := http.Post(e.srv.URL+"/org/create", "application/json", strings.NewReader(`{"organization_name": 12345, "email": "a@num.example.com", "password": 12345678}`))
	if err != nil {
		t.Fatal(err)
	}
	var created map[string]any
	_ = json.NewDecoder(res.Body).Decode(&created)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated || created["organization_name"] != "12345" || created["collection_name"] != "org_12345" {
		t.Fatalf("numeric fields: %d %v", res.StatusCode, created)
	}
	e.login("a@num.example.com", "12345678")

	// The stored admin: domain lower-cased, local part kept, role admin.
	r := e.call("POST", "/org/create", "", map[string]any{"organization_name": "mailcase", "email": "Mixed.Case@MAILCASE.Example.COM", "password": "password-123"})
	expect(t, r, http.StatusCreated, "")
	id, _ := bson.ObjectIDFromHex(r.obj()["admin_id"].(string))
	var admin bson.M
	if err := e.db.Collection("admins").FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Decode(&admin); err != nil {
		t.Fatal(err)
	}
	if admin["email"] != "Mixed.Case@mailcase.example.com" || admin["role"] != "admin" || !strings.HasPrefix(admin["password_hash"].(string), "$2a$04$") {
		t.Fatalf("stored admin: %v", admin)
	}
}

func TestCreate400(t *testing.T) {
	e := newEnv(t)
	e.signUp("alpha")
	cases := []struct {
		name   string
		body   map[string]any
		detail string
	}{
		{"same name", map[string]any{"organization_name": "alpha", "email": "other@alpha.example.com", "password": "another-pass-1"}, "Organization already exists"},
		{"same name padded", map[string]any{"organization_name": "  alpha  ", "email": "other@alpha.example.com", "password": "another-pass-1"}, "Organization already exists"},
		{"same slug", map[string]any{"organization_name": "ALPHA", "email": "other@alpha.example.com", "password": "another-pass-1"}, "Organization already exists"},
		{"same email", map[string]any{"organization_name": "other", "email": "admin@alpha.example.com", "password": "another-pass-1"}, "Email already registered"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			expect(t, e.call("POST", "/org/create", "", c.body), http.StatusBadRequest, c.detail)
		})
	}
	// Nothing of the refused sign-ups remains.
	for _, coll := range []string{"organizations", "admins", "names", "emails"} {
		n, _ := e.db.Collection(coll).CountDocuments(context.Background(), bson.D{})
		if n != 1 {
			t.Fatalf("%s: %d documents, want 1", coll, n)
		}
	}
	if e.hasCollection("org_other") {
		t.Fatal("org_other left behind")
	}
}

func TestCreate422(t *testing.T) {
	e := newEnv(t)
	before := len(e.collections())
	ok := map[string]any{"organization_name": "valid", "email": "a@valid.example.com", "password": "password-123"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range ok {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name  string
		body  any
		loc   []any
		types []string
	}{
		{"bad email", with("email", "not-an-email"), []any{"body", "email"}, []string{"value_error.email"}},
		{"short password", with("password", "1234567"), []any{"body", "password"}, []string{"value_error.any_str.min_length"}},
		{"nul in password", with("password", "pass-with-\x00-nul"), []any{"body", "password"}, []string{"value_error.str.nul"}},
		{"1-char name", with("organization_name", "a"), []any{"body", "organization_name"}, []string{"value_error.any_str.min_length"}},
		{"51-char name", with("organization_name", strings.Repeat("n", 51)), []any{"body", "organization_name"}, []string{"value_error.any_str.max_length"}},
		{"blank name", with("organization_name", "   "), []any{"body", "organization_name"}, []string{"value_error.any_str.min_length"}},
		{"name trims to 1 char", with("organization_name", "  a  "), []any{"body", "organization_name"}, []string{"value_error.any_str.min_length"}},
		{"name not a string", with("organization_name", true), []any{"body", "organization_name"}, []string{"type_error.str"}},
		{"missing email", with("email", nil), []any{"body", "email"}, []string{"value_error.missing"}},
		{"list body", []any{"alpha"}, []any{"body"}, []string{"type_error.dict"}},
		{"all missing", map[string]any{}, nil, []string{"value_error.missing", "value_error.missing", "value_error.missing"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.call("POST", "/org/create", "", c.body)
			expect(t, r, http.StatusUnprocessableEntity, "")
			p := r.problems()
			if len(p) != len(c.types) {
				t.Fatalf("problems: %v", p)
			}
			for i, typ := range c.types {
				if p[i]["type"] != typ {
					t.Fatalf("problem %d: got %v, want type %s", i, p[i], typ)
				}
			}
			if c.loc != nil && !equalLoc(p[0]["loc"], c.loc) {
				t.Fatalf("loc: got %v, want %v", p[0]["loc"], c.loc)
			}
		})
	}
	raw := []struct {
		name, contentType, body, typ string
	}{
		{"malformed json", "application/json", `{"organization_name": "x",`, "value_error.jsondecode"},
		{"trailing data", "application/json", `{"organization_name": "x"} {}`, "value_error.jsondecode"},
		{"no body", "application/json", "", "value_error.missing"},
		{"null body", "application/json", "null", "value_error.missing"},
	}
	for _, c := range raw {
		t.Run(c.name, func(t *testing.T) {
			r := e.request("POST", "/org/create", []byte(c.body), map[string]string{"Content-Type": c.contentType})
			expect(t, r, http.StatusUnprocessableEntity, "")
			if p := r.problems(); len(p) != 1 || p[0]["type"] != c.typ {
				t.Fatalf("problems: %v", p)
			}
		})
	}
	// The malformed body's offset and position, as FastAPI reports them.
	r := e.request("POST", "/org/create", []byte(`{"organization_name": "x",`), map[string]string{"Content-Type": "application/json"})
	p := r.problems()[0]
	ctx, _ := p["ctx"].(map[string]any)
	if !equalLoc(p["loc"], []any{"body", 26.0}) || ctx["pos"] != 26.0 || ctx["lineno"] != 1.0 || ctx["colno"] != 27.0 {
		t.Fatalf("jsondecode problem: %v", p)
	}
	if n := len(e.collections()); n != before {
		t.Fatalf("refused creates changed the database: %v", e.collections())
	}
}

func equalLoc(got any, want []any) bool {
	list, ok := got.([]any)
	if !ok || len(list) != len(want) {
		return false
	}
	for i := range want {
		if list[i] != want[i] {
			return false
		}
	}
	return true
}

func TestGetOrg(t *testing.T) {
	e := newEnv(t)
	alpha := e.signUp("alpha")
	e.signUp("Acme Inc!")

	r := e.call("GET", "/org/get?organization_name=alpha", "", nil)
	expect(t, r, http.StatusOK, "")
	b := r.obj()
	if b["organization_name"] != "alpha" || b["collection_name"] != "org_alpha" || b["admin_id"] != alpha.adminID || !hex24.MatchString(b["_id"].(string)) || !timestamp.MatchString(b["created_at"].(string)) || len(b) != 5 {
		t.Fatalf("got %v", b)
	}
	expect(t, e.call("GET", "/org/get?organization_name=Acme+Inc%21", "", nil), http.StatusOK, "")

	for _, q := range []string{"no-such-org", "ALPHA", "+alpha", "alpha+", "", "a", "Acme+Inc"} {
		t.Run("404 "+q, func(t *testing.T) {
			expect(t, e.call("GET", "/org/get?organization_name="+q, "", nil), http.StatusNotFound, "Organization not found")
		})
	}
	r = e.call("GET", "/org/get", "", nil)
	expect(t, r, http.StatusUnprocessableEntity, "")
	if p := r.problems(); len(p) != 1 || !equalLoc(p[0]["loc"], []any{"query", "organization_name"}) || p[0]["type"] != "value_error.missing" {
		t.Fatalf("problems: %v", p)
	}
}

func TestUpdate200(t *testing.T) {
	e := newEnv(t)
	alpha := e.signUp("alpha")

	r := e.call("PUT", "/org/update", alpha.token, map[string]any{"organization_name": "alpha"})
	expect(t, r, http.StatusOK, "Organization updated successfully")
	if r.obj()["token_type"] != "bearer" || strings.Count(r.obj()["access_token"].(string), ".") != 2 {
		t.Fatalf("got %v", r.obj())
	}
	// A no-op changes nothing: the old token still works.
	expect(t, e.call("PUT", "/org/update", alpha.token, map[string]any{"organization_name": "alpha"}), http.StatusOK, "")

	r = e.call("PUT", "/org/update", alpha.token, map[string]any{"organization_name": "alpha", "email": "new-admin@alpha.example.com", "password": "alpha-pass-2"})
	expect(t, r, http.StatusOK, "")
	e.login("new-admin@alpha.example.com", "alpha-pass-2")
	for _, creds := range [][2]string{{alpha.email, alpha.password}, {"new-admin@alpha.example.com", alpha.password}, {alpha.email, "alpha-pass-2"}} {
		expect(t, e.call("POST", "/admin/login", "", map[string]any{"email": creds[0], "password": creds[1]}), http.StatusUnauthorized, "Invalid credentials")
	}
	tok := r.obj()["access_token"].(string)

	// Rename with POST, as the original's README documents it.
	r = e.call("POST", "/org/update", tok, map[string]any{"organization_name": "alpha", "new_organization_name": "  Alpha Prime  "})
	expect(t, r, http.StatusOK, "")
	r = e.call("GET", "/org/get?organization_name=Alpha+Prime", "", nil)
	expect(t, r, http.StatusOK, "")
	if r.obj()["collection_name"] != "org_alpha_prime" {
		t.Fatalf("got %v", r.obj())
	}
	// Changing the e-mail's case only keeps the claim and works.
	tok = e.login("new-admin@alpha.example.com", "alpha-pass-2")
	expect(t, e.call("PUT", "/org/update", tok, map[string]any{"organization_name": "Alpha Prime", "email": "New-Admin@alpha.example.com"}), http.StatusOK, "")
	e.login("New-Admin@alpha.example.com", "alpha-pass-2")
}

func TestUpdateErrors(t *testing.T) {
	e := newEnv(t)
	gamma := e.signUp("gamma")
	e.signUp("alpha")
	cases := []struct {
		name   string
		body   map[string]any
		status int
		detail string
	}{
		{"404 unknown", map[string]any{"organization_name": "no-such-org"}, 404, "Organization not found"},
		{"404 not exact", map[string]any{"organization_name": "Gamma"}, 404, "Organization not found"},
		{"403 other org", map[string]any{"organization_name": "alpha"}, 403, "Not authorized to update"},
		{"409 taken name", map[string]any{"organization_name": "gamma", "new_organization_name": "alpha"}, 409, "Organization name conflict"},
		{"409 taken slug", map[string]any{"organization_name": "gamma", "new_organization_name": "ALPHA"}, 409, "Organization name conflict"},
		{"409 own name", map[string]any{"organization_name": "gamma", "new_organization_name": "gamma"}, 409, "Organization name conflict"},
		{"422 missing name", map[string]any{"email": "x@gamma.example.com"}, 422, ""},
		{"422 bad email", map[string]any{"organization_name": "gamma", "email": "nope"}, 422, ""},
		{"422 short password", map[string]any{"organization_name": "gamma", "password": "short"}, 422, ""},
		{"422 1-char new name", map[string]any{"organization_name": "gamma", "new_organization_name": "b"}, 422, ""},
		{"422 empty new name", map[string]any{"organization_name": "gamma", "new_organization_name": "  "}, 422, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			expect(t, e.call("PUT", "/org/update", gamma.token, c.body), c.status, c.detail)
		})
	}
	// None of that changed anything: the token still works, the name stands.
	expect(t, e.call("PUT", "/org/update", gamma.token, map[string]any{"organization_name": "gamma"}), http.StatusOK, "")
	e.login(gamma.email, gamma.password)
}

func TestDelete(t *testing.T) {
	e := newEnv(t)
	alpha := e.signUp("alpha")
	beta := e.signUp("beta")

	expect(t, e.call("DELETE", "/org/delete", alpha.token, map[string]any{"organization_name": "no-such-org"}), 404, "Organization not found")
	expect(t, e.call("DELETE", "/org/delete", beta.token, map[string]any{"organization_name": "alpha"}), 403, "Not authorized to delete")
	r := e.request("DELETE", "/org/delete", nil, map[string]string{"Authorization": "Bearer " + alpha.token})
	expect(t, r, 422, "")
	if p := r.problems(); len(p) != 1 || !equalLoc(p[0]["loc"], []any{"body"}) || p[0]["type"] != "value_error.missing" {
		t.Fatalf("problems: %v", p)
	}

	expect(t, e.call("DELETE", "/org/delete", alpha.token, map[string]any{"organization_name": "alpha"}), 200, "Organization deleted successfully")
	expect(t, e.call("GET", "/org/get?organization_name=alpha", "", nil), 404, "")
	if e.hasCollection("org_alpha") {
		t.Fatal("org_alpha survived the delete")
	}
	for _, coll := range []string{"organizations", "admins", "names", "emails"} {
		n, _ := e.db.Collection(coll).CountDocuments(context.Background(), bson.D{})
		if n != 1 {
			t.Fatalf("%s: %d documents, want beta's 1", coll, n)
		}
	}
	// Name and e-mail are free again.
	r = e.call("POST", "/org/create", "", map[string]any{"organization_name": "alpha", "email": alpha.email, "password": "fresh-pass-1"})
	expect(t, r, http.StatusCreated, "")
	// POST works as DELETE does.
	expect(t, e.call("POST", "/org/delete", beta.token, map[string]any{"organization_name": "beta"}), 200, "Organization deleted successfully")
}

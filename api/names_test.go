package api_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/config"
)

// createOrg signs up name with its own admin address; the answer is
// returned as it is.
func (e *env) createOrg(name, email string) response {
	e.t.Helper()
	return e.call("POST", "/org/create", "", map[string]any{"organization_name": name, "email": email, "password": "password-123"})
}

func getOrg(e *env, name string) response {
	e.t.Helper()
	return e.call("GET", "/org/get?organization_name="+url.QueryEscape(name), "", nil)
}

// TestNamesWithoutASCIIGetTheirOwnCollections: names made only of
// non-ASCII letters no longer all share the slug "_", so one such sign-up
// blocks no other. Each gets a Punycode collection of its own.
func TestNamesWithoutASCIIGetTheirOwnCollections(t *testing.T) {
	e := newEnv(t)
	cases := []struct{ name, email, collection string }{
		{"日本", "a@nihon.example.com", "org_xn--wgv71a"},
		{"中国", "a@zhongguo.example.com", "org_xn--fiqs8s"},
		{"Москва", "a@moskva.example.com", "org_xn--80adxhks"},
		{"日本 東京", "a@tokyo.example.com", "org_xn--_-ux6az65enfb5j"},
		{"!!", "a@bang.example.com", "org__"}, // all ASCII: the original rule
	}
	for _, c := range cases {
		r := e.createOrg(c.name, c.email)
		expect(t, r, http.StatusCreated, "")
		if got := r.obj()["collection_name"]; got != c.collection || r.obj()["organization_name"] != c.name {
			t.Fatalf("create %q: got %v, want collection %s", c.name, r.obj(), c.collection)
		}
		if !e.hasCollection(c.collection) {
			t.Fatalf("no tenant collection %s", c.collection)
		}
	}
	for _, c := range cases {
		r := getOrg(e, c.name)
		expect(t, r, http.StatusOK, "")
		if r.obj()["collection_name"] != c.collection {
			t.Fatalf("get %q: %v", c.name, r.obj())
		}
	}
	// One slug is still one organization.
	expect(t, e.createOrg("МОСКВА", "b@moskva.example.com"), http.StatusBadRequest, "Organization already exists")
	expect(t, e.createOrg("日本", "b@nihon.example.com"), http.StatusBadRequest, "Organization already exists")
	// Each admin reaches its own collection only.
	tok := e.login("a@zhongguo.example.com", "password-123")
	expect(t, e.call("POST", "/org/documents", tok, map[string]any{"k": "v"}), http.StatusCreated, "")
	if n, err := e.tenant("org_xn--fiqs8s").CountDocuments(context.Background(), bson.D{}); err != nil || n != 1 {
		t.Fatalf("org_xn--fiqs8s holds %d documents (%v), want 1", n, err)
	}
	if n, _ := e.tenant("org_xn--wgv71a").CountDocuments(context.Background(), bson.D{}); n != 0 {
		t.Fatalf("org_xn--wgv71a holds %d documents, want 0", n)
	}
	// Rename onto, and delete under, a Punycode slug.
	r := e.call("PUT", "/org/update", tok, map[string]any{"organization_name": "中国", "new_organization_name": "北京"})
	expect(t, r, http.StatusOK, "")
	tok = r.obj()["access_token"].(string)
	expect(t, getOrg(e, "中国"), http.StatusNotFound, "Organization not found")
	if r := getOrg(e, "北京"); r.obj()["collection_name"] != "org_xn--1lq90i" {
		t.Fatalf("get 北京: %v", r.obj())
	}
	expect(t, e.createOrg("中国", "c@zhongguo.example.com"), http.StatusCreated, "")
	expect(t, e.call("DELETE", "/org/delete", tok, map[string]any{"organization_name": "北京"}), http.StatusOK, "")
	if e.hasCollection("org_xn--1lq90i") {
		t.Fatal("org_xn--1lq90i survived the delete")
	}
}

// TestVisuallyIdenticalNamesAreOneOrganization: names are NFKC-normalized
// before they are compared, slugged and stored, so fullwidth letters,
// ligatures and non-breaking spaces name the organization they look like.
// Case and leading or trailing spaces of a lookup still matter.
func TestVisuallyIdenticalNamesAreOneOrganization(t *testing.T) {
	e := newEnv(t)
	r := e.createOrg("Ａｃｍｅ Ｉｎｃ", "a@acme.example.com")
	expect(t, r, http.StatusCreated, "")
	if r.obj()["organization_name"] != "Acme Inc" || r.obj()["collection_name"] != "org_acme_inc" {
		t.Fatalf("fullwidth sign-up: %v, want it stored as Acme Inc in org_acme_inc", r.obj())
	}
	for _, twin := range []string{"Acme Inc", "Acme\u00a0Inc", "Ａｃｍｅ Ｉｎｃ"} {
		expect(t, e.createOrg(twin, "b@acme.example.com"), http.StatusBadRequest, "Organization already exists")
	}
	id := getOrg(e, "Acme Inc").obj()["_id"]
	for _, q := range []string{"Acme Inc", "Ａｃｍｅ Ｉｎｃ", "Acme\u00a0Inc"} {
		r := getOrg(e, q)
		expect(t, r, http.StatusOK, "")
		if r.obj()["_id"] != id || r.obj()["organization_name"] != "Acme Inc" {
			t.Fatalf("get %q: %v", q, r.obj())
		}
	}
	for _, q := range []string{"ACME INC", "Ａｃｍｅ ＩＮＣ", " Acme Inc", "Acme Inc\u3000"} {
		expect(t, getOrg(e, q), http.StatusNotFound, "Organization not found")
	}
	expect(t, e.createOrg("ﬁnance", "a@finance.example.com"), http.StatusCreated, "")
	expect(t, e.createOrg("finance", "b@finance.example.com"), http.StatusBadRequest, "Organization already exists")

	// Lengths are those of the stored form: three U+FDFA are 54 characters.
	r = e.createOrg(strings.Repeat("\ufdfa", 3), "a@long.example.com")
	expect(t, r, http.StatusUnprocessableEntity, "")
	if p := r.problems(); len(p) != 1 || p[0]["type"] != "value_error.any_str.max_length" {
		t.Fatalf("problems: %v", p)
	}

	// Update and delete find the organization by a fullwidth name too; a
	// rename is stored normalized.
	tok := e.login("a@acme.example.com", "password-123")
	r = e.call("PUT", "/org/update", tok, map[string]any{"organization_name": "Ａｃｍｅ Ｉｎｃ", "new_organization_name": "Ａｃｍｅ Ｇｒｏｕｐ"})
	expect(t, r, http.StatusOK, "")
	tok = r.obj()["access_token"].(string)
	if r := getOrg(e, "Acme Group"); r.obj()["organization_name"] != "Acme Group" || r.obj()["collection_name"] != "org_acme_group" {
		t.Fatalf("after the rename: %v", r.obj())
	}
	// Retrying the rename as it was sent answers 200 again.
	expect(t, e.call("PUT", "/org/update", tok, map[string]any{"organization_name": "Ａｃｍｅ Ｉｎｃ", "new_organization_name": "Ａｃｍｅ Ｇｒｏｕｐ"}), http.StatusOK, "")
	expect(t, e.call("PUT", "/org/update", tok, map[string]any{"organization_name": "Acme Group", "new_organization_name": "Ａｃｍｅ Ｇｒｏｕｐ"}), http.StatusConflict, "Organization name conflict")
	expect(t, e.call("DELETE", "/org/delete", tok, map[string]any{"organization_name": "Ａｃｍｅ Ｇｒｏｕｐ"}), http.StatusOK, "")
	expect(t, getOrg(e, "Acme Group"), http.StatusNotFound, "")
	// A retried deletion with the other form answers as the first did.
	expect(t, e.call("DELETE", "/org/delete", tok, map[string]any{"organization_name": "Acme Group"}), http.StatusOK, "")
}

// TestHiddenCharactersInNamesAreRefused: zero-width characters, bidi
// controls, NUL and line breaks make names that look like others; sign-up,
// rename and delete refuse them with 422, and a lookup finds nothing.
func TestHiddenCharactersInNamesAreRefused(t *testing.T) {
	e := newEnv(t)
	acme := e.signUp("acme")
	before := len(e.collections())
	hidden := map[string]string{
		"zero-width space": "\u200b", "ZWNJ": "\u200c", "ZWJ": "\u200d", "word joiner": "\u2060", "BOM": "\ufeff",
		"LRE": "\u202a", "RLE": "\u202b", "PDF": "\u202c", "LRO": "\u202d", "RLO": "\u202e",
		"LRI": "\u2066", "RLI": "\u2067", "FSI": "\u2068", "PDI": "\u2069", "LRM": "\u200e", "RLM": "\u200f", "ALM": "\u061c",
		"NUL": "\x00", "CR": "\r", "LF": "\n", "line separator": "\u2028", "paragraph separator": "\u2029",
	}
	refused := func(t *testing.T, r response, field string) {
		t.Helper()
		expect(t, r, http.StatusUnprocessableEntity, "")
		p := r.problems()
		if len(p) != 1 || !equalLoc(p[0]["loc"], []any{"body", field}) || p[0]["type"] != "value_error.name.characters" {
			t.Fatalf("problems: %v", p)
		}
	}
	for what, c := range hidden {
		t.Run(what, func(t *testing.T) {
			for _, name := range []string{"ac" + c + "me", "acme" + c, c + "acme"} {
				// New names are trimmed first, as in the original: a line
				// break at either end goes with the spaces.
				if name == "ac"+c+"me" || !unicode.IsSpace([]rune(c)[0]) {
					refused(t, e.createOrg(name, "x@hidden.example.com"), "organization_name")
					refused(t, e.call("PUT", "/org/update", acme.token, map[string]any{"organization_name": "acme", "new_organization_name": name}), "new_organization_name")
				}
				refused(t, e.call("DELETE", "/org/delete", acme.token, map[string]any{"organization_name": name}), "organization_name")
				expect(t, getOrg(e, name), http.StatusNotFound, "Organization not found")
			}
		})
	}
	if n := len(e.collections()); n != before {
		t.Fatalf("refused requests changed the database: %v", e.collections())
	}
	expect(t, getOrg(e, "acme"), http.StatusOK, "")
	e.login(acme.email, acme.password)
}

// TestEmailDomainsAreComparedAfterIDNA: an e-mail's domain is mapped as
// IDNA lookups map it (case, width, A-labels), so visually identical
// addresses are one for the uniqueness claim, for login and for the login
// limit. The local part still matches exactly. A domain the IDNA rules
// refuse is not a valid address.
func TestEmailDomainsAreComparedAfterIDNA(t *testing.T) {
	e := newEnv(t)
	expect(t, e.createOrg("kate", "kate@mail.test"), http.StatusCreated, "")
	for _, twin := range []string{"kate@ＭＡＩＬ.test", "kate@ｍａｉｌ.ｔｅｓｔ", "KATE@MAIL.TEST"} {
		expect(t, e.createOrg("other", twin), http.StatusBadRequest, "Email already registered")
	}
	e.login("kate@ＭＡＩＬ.test", "password-123")
	expect(t, e.call("POST", "/admin/login", "", map[string]any{"email": "Kate@ＭＡＩＬ.test", "password": "password-123"}), http.StatusUnauthorized, "Invalid credentials")

	// A-label and U-label are one domain; the U-label is stored.
	expect(t, e.createOrg("buecher", "hans@xn--bcher-kva.example"), http.StatusCreated, "")
	expect(t, e.createOrg("buecher2", "hans@BÜCHER.example"), http.StatusBadRequest, "Email already registered")
	tok := e.login("hans@bücher.example", "password-123")
	var admin bson.M
	if err := e.db.Collection("admins").FindOne(context.Background(), bson.D{{Key: "email", Value: "hans@bücher.example"}}).Decode(&admin); err != nil {
		t.Fatalf("stored address: %v", err)
	}
	// An update onto a twin of a taken address is refused too.
	expect(t, e.call("PUT", "/org/update", tok, map[string]any{"organization_name": "buecher", "email": "kate@Ｍail.test"}), http.StatusBadRequest, "Email already registered")

	// Domains the IDNA lookup profile refuses: 422 in the e-mail shape.
	for _, bad := range []string{"kate@a~b.test", "kate@exa\u200dmple.com", "kate@ab--cd.test", "kate@xn--zz.test"} {
		for _, r := range []response{
			e.createOrg("refused", bad),
			e.call("POST", "/admin/login", "", map[string]any{"email": bad, "password": "password-123"}),
			e.call("PUT", "/org/update", tok, map[string]any{"organization_name": "buecher", "email": bad}),
		} {
			expect(t, r, http.StatusUnprocessableEntity, "")
			if p := r.problems(); len(p) != 1 || !equalLoc(p[0]["loc"], []any{"body", "email"}) || p[0]["type"] != "value_error.email" || p[0]["msg"] != "value is not a valid email address" {
				t.Fatalf("%q: problems %v", bad, p)
			}
		}
	}

}

// TestLoginLimitCountsEverySpellingOfAnAddress: the per-e-mail login limit
// keys on the normalized address, so changing the domain's width or case
// does not buy more guesses.
func TestLoginLimitCountsEverySpellingOfAnAddress(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.LoginRatePerEmail = 2 })
	expect(t, e.createOrg("kate", "kate@mail.test"), http.StatusCreated, "")
	for _, spelling := range []string{"kate@ＭＡＩＬ.test", "kate@ｍａｉｌ.ｔｅｓｔ"} {
		expect(t, e.call("POST", "/admin/login", "", map[string]any{"email": spelling, "password": "wrong-pass"}), http.StatusUnauthorized, "Invalid credentials")
	}
	expect(t, e.call("POST", "/admin/login", "", map[string]any{"email": "kate@mail.test", "password": "wrong-pass"}), http.StatusTooManyRequests, "")
}

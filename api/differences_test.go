package api_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Each test here pins one deliberate difference from the original service
// (README, "Differences from the original").

func TestDifference1OnlyOwnAdminMayUpdateOrDelete(t *testing.T) {
	e := newEnv(t)
	victim := e.signUp("victim")
	beta := e.signUp("beta")

	for _, body := range []map[string]any{
		{"organization_name": "victim", "email": "attacker@beta.example.com", "password": "pwned-by-beta"},
		{"organization_name": "victim", "new_organization_name": "taken-by-beta"},
		{"organization_name": "victim"},
	} {
		expect(t, e.call("PUT", "/org/update", beta.token, body), http.StatusForbidden, "Not authorized to update")
	}
	expect(t, e.call("DELETE", "/org/delete", beta.token, map[string]any{"organization_name": "victim"}), http.StatusForbidden, "Not authorized to delete")

	// Nothing changed: victim's admin still logs in, its token still works,
	// its name and collection are as they were.
	e.login(victim.email, victim.password)
	expect(t, e.call("PUT", "/org/update", victim.token, map[string]any{"organization_name": "victim"}), http.StatusOK, "")
	expect(t, e.call("GET", "/org/get?organization_name=victim", "", nil), http.StatusOK, "")
	expect(t, e.call("GET", "/org/get?organization_name=taken-by-beta", "", nil), http.StatusNotFound, "Organization not found")
	if !e.hasCollection("org_victim") || e.hasCollection("org_taken_by_beta") {
		t.Fatalf("collections changed: %v", e.collections())
	}
	expect(t, e.call("POST", "/admin/login", "", map[string]any{"email": "attacker@beta.example.com", "password": "pwned-by-beta"}), http.StatusUnauthorized, "Invalid credentials")
}

func TestDifference2SameSlugIsSameOrganization(t *testing.T) {
	e := newEnv(t)
	e.signUp("Acme Inc")
	for i, name := range []string{"acme_inc", "ACME INC", "acme-inc", "  Acme   Inc  ", "acme.inc"} {
		email := "admin" + string(rune('a'+i)) + "@acme.example.com"
		r := e.call("POST", "/org/create", "", map[string]any{"organization_name": name, "email": email, "password": "password-123"})
		expect(t, r, http.StatusBadRequest, "Organization already exists")
	}
	// Renaming another organization onto the slug is a conflict too.
	other := e.signUp("other")
	expect(t, e.call("PUT", "/org/update", other.token, map[string]any{"organization_name": "other", "new_organization_name": "ACME_INC"}), http.StatusConflict, "Organization name conflict")

	n, err := e.db.Collection("organizations").CountDocuments(context.Background(), bson.D{{Key: "slug", Value: "acme_inc"}})
	if err != nil || n != 1 {
		t.Fatalf("organizations with slug acme_inc: %d, %v", n, err)
	}
	n, _ = e.db.Collection("admins").CountDocuments(context.Background(), bson.D{})
	if n != 2 {
		t.Fatalf("admins: got %d, want 2", n)
	}
}

func TestDifference3EmailsAreUniqueWithoutRegardToCase(t *testing.T) {
	e := newEnv(t)
	alpha := e.signUp("alpha")
	beta := e.signUp("beta")

	r := e.call("POST", "/org/create", "", map[string]any{"organization_name": "zeta", "email": "ADMIN@Alpha.example.com", "password": "zeta-pass-1"})
	expect(t, r, http.StatusBadRequest, "Email already registered")
	expect(t, e.call("GET", "/org/get?organization_name=zeta", "", nil), http.StatusNotFound, "")
	if e.hasCollection("org_zeta") {
		t.Fatal("refused create left org_zeta behind")
	}

	// A taken e-mail refuses the whole update: the rename in the same
	// request does not happen either.
	r = e.call("PUT", "/org/update", beta.token, map[string]any{"organization_name": "beta", "new_organization_name": "beta2", "email": "Admin@ALPHA.example.com"})
	expect(t, r, http.StatusBadRequest, "Email already registered")
	expect(t, e.call("GET", "/org/get?organization_name=beta", "", nil), http.StatusOK, "")
	e.login(alpha.email, alpha.password)
	e.login(beta.email, beta.password)

	// The name freed by an e-mail change can be taken by someone else.
	r = e.call("PUT", "/org/update", alpha.token, map[string]any{"organization_name": "alpha", "email": "owner@alpha.example.com"})
	expect(t, r, http.StatusOK, "")
	r = e.call("POST", "/org/create", "", map[string]any{"organization_name": "zeta", "email": alpha.email, "password": "zeta-pass-1"})
	expect(t, r, http.StatusCreated, "")
}

func TestDifference4RenameMovesTheCollectionKeepingIDs(t *testing.T) {
	e := newEnv(t)
	gamma := e.signUp("gamma")
	ctx := context.Background()
	var ids []any
	for i := range 3 {
		res, err := e.tenant("org_gamma").InsertOne(ctx, bson.D{{Key: "seq", Value: i}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.InsertedID)
	}
	r := e.call("PUT", "/org/update", gamma.token, map[string]any{"organization_name": "gamma", "new_organization_name": "Gamma Renamed"})
	expect(t, r, http.StatusOK, "Organization updated successfully")

	if e.hasCollection("org_gamma") || !e.hasCollection("org_gamma_renamed") {
		t.Fatalf("collections after rename: %v", e.collections())
	}
	cur, err := e.tenant("org_gamma_renamed").Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.M
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	var got []any
	for _, d := range docs {
		got = append(got, d["_id"])
	}
	if len(got) != len(ids) {
		t.Fatalf("documents after rename: got %d, want %d", len(got), len(ids))
	}
	for _, id := range ids {
		if !slices.Contains(got, id) {
			t.Fatalf("document %v lost its _id in the rename", id)
		}
	}
	r = e.call("GET", "/org/get?organization_name=Gamma+Renamed", "", nil)
	expect(t, r, http.StatusOK, "")
	if r.obj()["collection_name"] != "org_gamma_renamed" {
		t.Fatalf("collection_name: %v", r.obj()["collection_name"])
	}
	// The old name is free again.
	r = e.call("POST", "/org/create", "", map[string]any{"organization_name": "gamma", "email": "new@gamma.example.com", "password": "password-123"})
	expect(t, r, http.StatusCreated, "")

	// A rename to a name with the same slug keeps the collection and its data.
	delta := e.signUp("delta")
	if _, err := e.tenant("org_delta").InsertOne(ctx, bson.D{{Key: "keep", Value: true}}); err != nil {
		t.Fatal(err)
	}
	expect(t, e.call("PUT", "/org/update", delta.token, map[string]any{"organization_name": "delta", "new_organization_name": "Delta"}), http.StatusOK, "")
	n, _ := e.tenant("org_delta").CountDocuments(ctx, bson.D{})
	if n != 1 {
		t.Fatalf("org_delta after same-slug rename: %d documents, want 1", n)
	}
	expect(t, e.call("GET", "/org/get?organization_name=Delta", "", nil), http.StatusOK, "")
}

func TestDifference5TokensEndWhenTheyShould(t *testing.T) {
	e := newEnv(t)
	// A new e-mail or password ends the admin's earlier tokens; a rename
	// does not (as in the original: a token names its organization by id).
	changes := []struct {
		name  string
		body  func(o *org) map[string]any
		keeps bool
	}{
		{"rename", func(o *org) map[string]any {
			return map[string]any{"organization_name": o.name, "new_organization_name": o.name + "-new"}
		}, true},
		{"same-slug rename", func(o *org) map[string]any {
			return map[string]any{"organization_name": o.name, "new_organization_name": strings.ToUpper(o.name)}
		}, true},
		{"email", func(o *org) map[string]any {
			return map[string]any{"organization_name": o.name, "email": "changed@" + o.name + ".example.com"}
		}, false},
		{"password", func(o *org) map[string]any {
			return map[string]any{"organization_name": o.name, "password": "changed-pass-1"}
		}, false},
		{"rename and password", func(o *org) map[string]any {
			return map[string]any{"organization_name": o.name, "new_organization_name": o.name + "-new", "password": "changed-pass-1"}
		}, false},
	}
	for i, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			o := e.signUp("rev" + string(rune('a'+i)))
			old := o.token
			r := e.call("PUT", "/org/update", old, c.body(o))
			expect(t, r, http.StatusOK, "")
			fresh, _ := r.obj()["access_token"].(string)
			newName := o.name
			if n, ok := c.body(o)["new_organization_name"].(string); ok {
				newName = n
			}
			r = e.call("PUT", "/org/update", old, map[string]any{"organization_name": newName})
			if c.keeps {
				expect(t, r, http.StatusOK, "")
			} else {
				expect(t, r, http.StatusUnauthorized, "")
				if params, err := bearerChallenge(r.header.Get("WWW-Authenticate")); err != nil || params["error"] != "invalid_token" {
					t.Fatalf("401 without an invalid_token challenge: %q", r.header.Get("WWW-Authenticate"))
				}
			}
			expect(t, e.call("PUT", "/org/update", fresh, map[string]any{"organization_name": newName}), http.StatusOK, "")
		})
	}
	t.Run("delete", func(t *testing.T) {
		o := e.signUp("gone")
		expect(t, e.call("DELETE", "/org/delete", o.token, map[string]any{"organization_name": "gone"}), http.StatusOK, "")
		expect(t, e.call("PUT", "/org/update", o.token, map[string]any{"organization_name": "gone"}), http.StatusUnauthorized, "")
		expect(t, e.call("POST", "/admin/login", "", map[string]any{"email": o.email, "password": o.password}), http.StatusUnauthorized, "Invalid credentials")
	})
}

func TestDifference6NoRequestCreatesACollectionForAMissingOrganization(t *testing.T) {
	e := newEnv(t)
	gone := e.signUp("gone")
	moved := e.signUp("moved")
	oldMovedToken := moved.token
	expect(t, e.call("DELETE", "/org/delete", gone.token, map[string]any{"organization_name": "gone"}), http.StatusOK, "")
	expect(t, e.call("PUT", "/org/update", moved.token, map[string]any{"organization_name": "moved", "new_organization_name": "moved-away"}), http.StatusOK, "")

	before := e.collections()
	// Stale tokens, unknown names and failed requests of every kind.
	e.call("PUT", "/org/update", gone.token, map[string]any{"organization_name": "gone", "new_organization_name": "gone-again"})
	e.call("DELETE", "/org/delete", gone.token, map[string]any{"organization_name": "gone"})
	e.call("PUT", "/org/update", oldMovedToken, map[string]any{"organization_name": "moved"})
	e.call("GET", "/org/get?organization_name=gone", "", nil)
	e.call("GET", "/org/get?organization_name=never", "", nil)
	e.call("POST", "/org/create", "", map[string]any{"organization_name": "bad", "email": "nope", "password": "password-123"})
	e.call("POST", "/org/create", "", map[string]any{"organization_name": "long", "email": "a@long.example.com", "password": strings.Repeat("x", 73)})
	after := e.collections()
	slices.Sort(before)
	slices.Sort(after)
	if !slices.Equal(before, after) {
		t.Fatalf("collections changed: before %v, after %v", before, after)
	}
	for _, c := range after {
		if c == "org_gone" || c == "org_moved" || c == "org_gone_again" {
			t.Fatalf("collection %s exists for no organization", c)
		}
	}
}

func TestDifference7PasswordsOver72BytesAreRefused(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("L", 72) + "-tail"
	r := e.call("POST", "/org/create", "", map[string]any{"organization_name": "longpw", "email": "a@longpw.example.com", "password": long})
	expect(t, r, http.StatusUnprocessableEntity, "")
	if p := r.problems(); len(p) != 1 || p[0]["type"] != "value_error.any_str.max_bytes" {
		t.Fatalf("problems: %v", p)
	}
	if e.hasCollection("org_longpw") {
		t.Fatal("refused create left a collection")
	}

	// 72 bytes is fine, also in multi-byte characters (24 × 3 bytes).
	o := &org{name: "exact", email: "a@exact.example.com", password: strings.Repeat("€", 24)}
	expect(t, e.call("POST", "/org/create", "", map[string]any{"organization_name": o.name, "email": o.email, "password": o.password}), http.StatusCreated, "")
	tok := e.login(o.email, o.password)
	// Login with the 72-byte prefix plus more is a plain 401, not a match.
	expect(t, e.call("POST", "/admin/login", "", map[string]any{"email": o.email, "password": o.password + "x"}), http.StatusUnauthorized, "Invalid credentials")
	r = e.call("PUT", "/org/update", tok, map[string]any{"organization_name": "exact", "password": strings.Repeat("€", 25)})
	expect(t, r, http.StatusUnprocessableEntity, "")
	e.login(o.email, o.password)
}

func TestDifference8MissingTokenIs401WithChallenge(t *testing.T) {
	e := newEnv(t)
	e.signUp("alpha")
	cases := []struct {
		name, header, detail string
	}{
		{"no header", "", "Not authenticated"},
		{"basic scheme", "Basic YWRtaW46cGFzcw==", "Invalid authentication credentials"},
		{"bearer without token", "Bearer ", "Invalid authentication credentials"},
		{"garbage", "Bearer not-a-jwt", "Invalid token"},
	}
	for _, c := range cases {
		for _, route := range [][2]string{{"PUT", "/org/update"}, {"DELETE", "/org/delete"}, {"POST", "/org/update"}, {"POST", "/org/delete"}} {
			t.Run(c.name+" "+route[0]+" "+route[1], func(t *testing.T) {
				h := map[string]string{"Content-Type": "application/json"}
				if c.header != "" {
					h["Authorization"] = c.header
				}
				r := e.request(route[0], route[1], []byte(`{"organization_name":"alpha"}`), h)
				expect(t, r, http.StatusUnauthorized, c.detail)
				params, err := bearerChallenge(r.header.Get("WWW-Authenticate"))
				if err != nil || (params["error"] == "") != (c.header != "Bearer not-a-jwt") {
					t.Fatalf("WWW-Authenticate: %q", r.header.Get("WWW-Authenticate"))
				}
			})
		}
	}
	expect(t, e.call("GET", "/org/get?organization_name=alpha", "", nil), http.StatusOK, "")
}

package api_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/config"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/service"
	"github.com/orgsvc/orgsvc/internal/storetest"
)

// record is the organization's master record, read directly.
func (e *env) record(name string) model.Organization {
	e.t.Helper()
	var o model.Organization
	if err := e.db.Collection(model.Organizations).FindOne(context.Background(), bson.D{{Key: "slug", Value: model.Slug(name)}}).Decode(&o); err != nil {
		e.t.Fatalf("organization %q: %v", name, err)
	}
	return o
}

// consistent fails the test unless `orgsvc check` would find nothing.
func (e *env) consistent() {
	e.t.Helper()
	findings, err := service.NewChecker(e.orgs).Check(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	if len(findings) > 0 {
		e.t.Fatalf("check: %v", findings)
	}
}

// TestTenantDatabases: new organizations' collections fill the tenant
// databases in order, TENANTS_PER_DATABASE each (4 in the tests), each in
// the database its record names and nowhere else; a rename keeps the
// collection in its database, a delete drops it there, and documents are
// read and written there. Room a deletion leaves is used again after a
// restart.
func TestTenantDatabases(t *testing.T) {
	e := newEnv(t)
	var orgs []*org
	for i := range 10 {
		o := e.signUp(fmt.Sprintf("spread-%02d", i))
		orgs = append(orgs, o)
		rec := e.record(o.name)
		if want := model.TenantDatabase(e.db.Name(), i/4); rec.TenantDB != want {
			t.Fatalf("organization %d: tenant_db %q, want %q", i, rec.TenantDB, want)
		}
		if got := e.where(rec.CollectionName); !slices.Equal(got, []string{rec.TenantDB}) {
			t.Fatalf("%s lives in %q, its record says %q", rec.CollectionName, got, rec.TenantDB)
		}
	}

	o := orgs[0]
	home := e.record(o.name).TenantDB
	id := e.postDoc(o, `{"kept":true}`)
	var d model.Document
	if err := e.db.Client().Database(home).Collection("org_spread_00").FindOne(context.Background(), bson.D{{Key: "_id", Value: mustOID(t, id)}}).Decode(&d); err != nil {
		t.Fatalf("document %s not in %s.org_spread_00: %v", id, home, err)
	}

	r := e.call("PUT", "/org/update", o.token, map[string]any{"organization_name": o.name, "new_organization_name": "spread-moved"})
	expect(t, r, 200, "")
	if got := e.record("spread-moved").TenantDB; got != home {
		t.Fatalf("renamed organization's tenant_db: got %q, want %q", got, home)
	}
	if got := e.where("org_spread_moved"); !slices.Equal(got, []string{home}) {
		t.Fatalf("org_spread_moved lives in %q, want %q", got, home)
	}
	expect(t, e.call("GET", "/org/documents/"+id, o.token, nil), 200, "")
	e.consistent()

	o.name = "spread-moved"
	expect(t, e.call("DELETE", "/org/delete", o.token, map[string]any{"organization_name": o.name}), 200, "")
	if got := e.where("org_spread_moved"); len(got) != 0 {
		t.Fatalf("org_spread_moved survived its deletion in %q", got)
	}
	e.consistent()

	// This instance goes on after the last database it filled; a new one
	// starts from the first and finds the room the deletion left.
	if got := e.record(e.signUp("spread-10").name).TenantDB; got != model.TenantDatabase(e.db.Name(), 2) {
		t.Fatalf("the next organization went to %q, want the third database", got)
	}
	again := startEnv(t, e.db, func(ctx context.Context) error { return nil })
	if got := again.record(again.signUp("spread-11").name).TenantDB; got != home {
		t.Fatalf("after a restart the next organization went to %q, want %q with its free place", got, home)
	}
	again.consistent()
}

func mustOID(t *testing.T, hex string) bson.ObjectID {
	t.Helper()
	id, err := bson.ObjectIDFromHex(hex)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestTenantDatabasesChangedLater: organizations made while tenant
// collections went into the master database (TENANTS_PER_DATABASE=0, the
// original's layout) keep working, and stay where they are, after the
// setting changes; new organizations go to the tenant databases.
func TestTenantDatabasesChangedLater(t *testing.T) {
	db := storetest.Database(t)
	ready := func(ctx context.Context) error { return db.Client().Ping(ctx, nil) }
	before := startEnv(t, db, ready, func(c *config.Config) { c.TenantsPerDatabase = 0 })
	old := before.signUp("old-layout")
	id := before.postDoc(old, `{"n":1}`)
	if got := before.record(old.name).TenantDB; got != "" {
		t.Fatalf("tenant_db with TENANTS_PER_DATABASE=0: %q, want none", got)
	}
	if got := before.where("org_old_layout"); !slices.Equal(got, []string{""}) {
		t.Fatalf("org_old_layout lives in %q, want the master database", got)
	}

	after := startEnv(t, db, ready, func(c *config.Config) { c.TenantsPerDatabase = 4 })
	expect(t, after.call("GET", "/org/documents/"+id, old.token, nil), 200, "")
	after.postDoc(old, `{"n":2}`)
	r := after.call("PUT", "/org/update", old.token, map[string]any{"organization_name": old.name, "new_organization_name": "old-layout-2"})
	expect(t, r, 200, "")
	if got := after.where("org_old_layout_2"); !slices.Equal(got, []string{""}) {
		t.Fatalf("renamed org_old_layout_2 lives in %q, want the master database", got)
	}
	list := after.call("GET", "/org/documents", old.token, nil)
	expect(t, list, 200, "")
	if items, _ := list.obj()["items"].([]any); len(items) != 2 {
		t.Fatalf("documents after the rename: %s", list.raw)
	}

	fresh := after.signUp("new-layout")
	rec := after.record(fresh.name)
	if want := model.TenantDatabase(db.Name(), 0); rec.TenantDB != want {
		t.Fatalf("new organization's tenant_db with TENANTS_PER_DATABASE=4: %q, want %q", rec.TenantDB, want)
	}
	after.consistent()

	old.name = "old-layout-2"
	expect(t, after.call("DELETE", "/org/delete", old.token, map[string]any{"organization_name": old.name}), 200, "")
	if after.hasCollection("org_old_layout_2") {
		t.Fatal("org_old_layout_2 survived its deletion")
	}
	after.consistent()
}

// TestOrphansInTenantDatabases: a collection in a tenant database that no
// organization has there is an orphan, even when an organization of that
// slug lives in another database; repair drops it and only it.
func TestOrphansInTenantDatabases(t *testing.T) {
	e := newEnv(t)
	alpha := e.signUp("alpha")
	e.postDoc(alpha, `{"a":1}`)
	home := e.record("alpha").TenantDB
	other := model.TenantDatabase(e.db.Name(), 0)
	if other == home {
		other = model.TenantDatabase(e.db.Name(), 1)
	}
	ctx := context.Background()
	for _, name := range []string{"org_alpha", "org_ghost"} {
		if err := e.db.Client().Database(other).CreateCollection(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	checker := service.NewChecker(e.orgs)
	findings, err := checker.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, f := range findings {
		if f.Kind != "orphan-collection" {
			t.Fatalf("unexpected finding %v", f)
		}
		subjects = append(subjects, f.Subject)
	}
	slices.Sort(subjects)
	if want := []string{other + ".org_alpha", other + ".org_ghost"}; !slices.Equal(subjects, want) {
		t.Fatalf("orphans %v, want %v", subjects, want)
	}
	if _, err := checker.Repair(ctx); err != nil {
		t.Fatal(err)
	}
	e.consistent()
	if got := e.where("org_alpha"); !slices.Equal(got, []string{home}) {
		t.Fatalf("org_alpha after repair lives in %q, want %q", got, home)
	}
	list := e.call("GET", "/org/documents", alpha.token, nil)
	if items, _ := list.obj()["items"].([]any); len(items) != 1 {
		t.Fatalf("alpha's documents after repair: %s", list.raw)
	}
}

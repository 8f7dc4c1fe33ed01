package service_test

import (
	"context"
	"slices"
	"testing"

	"github.com/orgsvc/orgsvc/internal/model"
)

// hasTenant reports whether the collection t exists.
func (s *services) hasTenant(t model.Tenant) bool {
	s.t.Helper()
	all, err := s.tenants.Tenants(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	return slices.Contains(all, t)
}

// TestStaleWriteUnderANameClaimedInAnotherDatabase: a stale principal's
// create re-makes the collection of its organization's old name, which an
// organization placed in another tenant database now holds. The create
// lands in the organization's own collection, and the re-made one goes.
func TestStaleWriteUnderANameClaimedInAnotherDatabase(t *testing.T) {
	s := newServicesPer(t, 1)
	x := s.signUp("Old")
	stale := x
	s.rename(x, "Old", "New")
	y := s.signUpAs("Old", "y@old.example.com")
	if y.Tenant.DB == stale.Tenant.DB {
		t.Fatalf("the new Old shares %q with the former one", y.Tenant.DB)
	}
	s.create(stale, `{"late":true}`)
	if s.hasTenant(stale.Tenant) {
		t.Fatalf("%+v was made again by the stale write and left behind", stale.Tenant)
	}
	if f := s.findings("orphan-collection"); len(f) > 0 {
		t.Fatalf("orphans: %v", f)
	}
}

// TestSweepOrphans drops a collection nobody's record names (as a write
// cut short by a kill leaves), and keeps every organization's own.
func TestSweepOrphans(t *testing.T) {
	s := newServicesPer(t, 1)
	a := s.signUp("Kept")
	stray := model.Tenant{DB: a.Tenant.DB, Slug: "left_behind"}
	if _, err := s.db.Client().Database(s.tenantsDB(stray)).Collection("org_left_behind").InsertOne(context.Background(), map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if !s.hasTenant(stray) {
		t.Fatalf("the stray %+v was not made", stray)
	}
	n, err := s.orgs.SweepOrphans(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("SweepOrphans: %d, %v; want 1", n, err)
	}
	if s.hasTenant(stray) || !s.hasTenant(a.Tenant) {
		t.Fatalf("after the sweep: stray there %v, Kept's there %v", s.hasTenant(stray), s.hasTenant(a.Tenant))
	}
}

// tenantsDB is the database name of t.
func (s *services) tenantsDB(t model.Tenant) string {
	if t.DB == "" {
		return s.db.Name()
	}
	return t.DB
}

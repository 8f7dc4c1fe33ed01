package api_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/service"
)

// TestConsistencyCheck runs the checker behind `orgsvc check` over a
// database the API made (consistent), then breaks each invariant by hand.
func TestConsistencyCheck(t *testing.T) {
	e := newEnv(t)
	checker := service.NewChecker(e.orgs)
	kinds := func() []string {
		t.Helper()
		findings, err := checker.Check(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range findings {
			out = append(out, f.Kind)
			if f.Subject == "" || f.Detail == "" || !strings.Contains(f.String(), f.Kind) {
				t.Fatalf("finding without subject or detail: %+v", f)
			}
		}
		slices.Sort(out)
		return out
	}

	alpha := e.signUp("alpha")
	beta := e.signUp("beta")
	e.postDoc(alpha, `{"a":1}`)
	expect(t, e.call("PUT", "/org/update", beta.token, map[string]any{"organization_name": "beta", "new_organization_name": "beta2", "email": "new@beta.example.com"}), 200, "")
	gone := e.signUp("gone")
	expect(t, e.call("DELETE", "/org/delete", gone.token, map[string]any{"organization_name": "gone"}), 200, "")
	if got := kinds(); len(got) != 0 {
		t.Fatalf("a database made through the API is inconsistent: %v", got)
	}

	ctx := context.Background()
	if err := e.tenant("org_alpha").Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.db.CreateCollection(ctx, "org_ghost"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Collection("admins").DeleteOne(ctx, bson.D{{Key: "email", Value: "new@beta.example.com"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Collection("names").InsertOne(ctx, bson.D{{Key: "_id", Value: "stray"}, {Key: "organization_id", Value: bson.NewObjectID()}}); err != nil {
		t.Fatal(err)
	}
	// The deleted admin's membership is left without its account.
	want := []string{"missing-admin", "missing-collection", "orphan-collection", "orphan-membership", "stale-email-claim", "stale-name-claim"}
	if got := kinds(); !slices.Equal(got, want) {
		t.Fatalf("findings %v, want %v", got, want)
	}

	// Repair fixes all but the organization without an admin, which it
	// cannot make up.
	done, err := checker.Repair(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 5 {
		t.Fatalf("repair did %d things, want 5: %v", len(done), done)
	}
	if got := kinds(); !slices.Equal(got, []string{"missing-admin"}) {
		t.Fatalf("after repair: %v", got)
	}
	if e.hasCollection("org_ghost") || !e.hasCollection("org_alpha") {
		t.Fatalf("collections after repair: %v", e.collections())
	}
	expect(t, e.call("GET", "/org/documents", alpha.token, nil), 200, "")
	e.signUp("stray") // its name claim was released
	e.signUp("ghost") // its orphan collection was dropped
}

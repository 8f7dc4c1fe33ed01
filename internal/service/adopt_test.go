package service_test

import (
	"context"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/security"
	"github.com/orgsvc/orgsvc/internal/service"
)

// TestAdoptAdmins: organizations written by the version before teams (an
// admin record naming its organization, no membership) get one owner
// membership each at start-up, whether the adoption runs twice at once,
// again later, or after a run cut short; and the tokens issued before it
// keep working.
func TestAdoptAdmins(t *testing.T) {
	s := newServices(t)
	ctx := context.Background()
	master := repository.NewMasterRepository(s.db, true)
	// The previous version's shape: what a sign-up writes, but for the
	// membership and the account's teams mark.
	var legacy []service.Principal
	for _, name := range []string{"Old One", "Old Two", "Old Three"} {
		p := s.signUp(name)
		if err := master.DeleteMembership(ctx, model.MembershipID(p.AdminID, p.OrgID)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.Collection(model.Admins).UpdateOne(ctx, bson.D{{Key: "_id", Value: p.AdminID}}, bson.D{{Key: "$unset", Value: bson.D{{Key: "teams", Value: ""}}}}); err != nil {
			t.Fatal(err)
		}
		legacy = append(legacy, p)
	}
	if f, err := s.check.Check(ctx); err != nil || len(f) != 0 {
		t.Fatalf("check of the previous version's data: %v %v", f, err)
	}
	// Tokens of the previous version name no grant.
	var tokens []string
	for _, p := range legacy {
		org, err := master.Organization(ctx, p.OrgID)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := s.tokens.Issue(security.Grant{AdminID: p.AdminID.Hex(), OrgID: p.OrgID.Hex(), OrgSlug: org.Slug})
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	// A run cut short: the first account's membership made, its mark not.
	if err := master.InsertMembership(ctx, &model.Membership{AccountID: legacy[0].AdminID, OrgID: legacy[0].OrgID, Role: model.RoleOwner}); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	adopted := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.orgs.AdoptAdmins(ctx)
			if err != nil {
				t.Error(err)
			}
			adopted[i] = n
		}()
	}
	wg.Wait()
	if adopted[0]+adopted[1] < 3 {
		t.Fatalf("adopted %v, want each of the 3 accounts by at least one run", adopted)
	}
	if n, err := s.orgs.AdoptAdmins(ctx); err != nil || n != 0 {
		t.Fatalf("a later run adopted %d (%v), want 0", n, err)
	}
	all, err := master.AllMemberships(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("%d memberships, want 3: %+v", len(all), all)
	}
	for i, p := range legacy {
		m, err := master.Membership(ctx, p.AdminID, p.OrgID)
		if err != nil || m.Role != model.RoleOwner || !m.Grant.IsZero() {
			t.Fatalf("membership of %s: %+v %v, want an owner's under no grant", p.AdminID.Hex(), m, err)
		}
		got, err := s.auth.Authenticate(ctx, tokens[i])
		if err != nil || got.Role != model.RoleOwner || got.OrgID != p.OrgID {
			t.Fatalf("a token of the previous version: %+v %v", got, err)
		}
	}
	if f, err := s.check.Check(ctx); err != nil || len(f) != 0 {
		t.Fatalf("check after the adoption: %v %v", f, err)
	}
}

package service_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/service"
)

// TestCheckKnowsTeams: the check reports an organization without an
// owner, an account in no organization, and memberships, invitations and
// mails of an organization that is gone; repair removes the last four.
func TestCheckKnowsTeams(t *testing.T) {
	s := newServices(t)
	ctx := context.Background()
	mails := repository.NewOutboxRepository(s.db)
	s.orgs.SetInvitations(service.InvitationSettings{Mails: mails})
	master := repository.NewMasterRepository(s.db, true)
	p := s.signUp("Ownerless")
	if err := master.DeleteMembership(ctx, model.MembershipID(p.AdminID, p.OrgID)); err != nil {
		t.Fatal(err)
	}
	gone := bson.NewObjectID()
	if err := master.InsertMembership(ctx, &model.Membership{AccountID: p.AdminID, OrgID: gone, Role: model.RoleMember}); err != nil {
		t.Fatal(err)
	}
	if err := master.InsertInvitation(ctx, &model.Invitation{ID: bson.NewObjectID(), OrgID: gone, Email: "x@gone.example.com", Status: model.InvitePending, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := mails.Insert(ctx, &model.OutboxEntry{ID: bson.NewObjectID(), OrgID: gone, To: "x@gone.example.com", State: model.DeliveryPending}); err != nil {
		t.Fatal(err)
	}
	kinds := func() []string {
		t.Helper()
		f, err := s.check.Check(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, x := range f {
			out = append(out, x.Kind)
		}
		slices.Sort(out)
		return out
	}
	// The account's one membership is of an organization that is gone:
	// it counts, so the account is not yet in no organization.
	if got, want := kinds(), []string{"missing-admin", "no-owner", "orphan-invitation", "orphan-mail", "orphan-membership"}; !slices.Equal(got, want) {
		t.Fatalf("findings %v, want %v", got, want)
	}
	if _, err := s.check.Repair(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := kinds(), []string{"missing-admin", "no-owner", "orphan-admin"}; !slices.Equal(got, want) {
		t.Fatalf("after repair: %v, want %v", got, want)
	}
}

package service_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/audit"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/service"
)

// TestExpiredInvitationsRecordedOnce: an invitation past its expiry is
// recorded as invitation.expired by the sweep, once, whichever of two
// instances sweeps and however often.
func TestExpiredInvitationsRecordedOnce(t *testing.T) {
	ctx := context.Background()
	a := newServices(t)
	logs := audit.NewLog(repository.NewAuditRepository(a.db))
	a.orgs.SetAudit(logs)
	// A second instance on the same database, with a log of its own.
	b := service.NewOrgService(repository.NewMasterRepository(a.db, true), a.tenants, repository.NewOperationRepository(a.db, true), nil, nil, nil, service.Lifecycle{})
	b.SetAudit(audit.NewLog(repository.NewAuditRepository(a.db)))
	a.orgs.SetInvitations(service.InvitationSettings{TTL: 50 * time.Millisecond, Mails: repository.NewOutboxRepository(a.db)})

	p := a.signUp("Expiring")
	p.Email = "admin@expiring.example.com"
	inv, _, err := a.orgs.Invite(ctx, p, "late@expiring.example.com", model.RoleMember)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := a.orgs.RecordExpired(ctx); err != nil || n != 0 {
		t.Fatalf("before the expiry: %d recorded, %v", n, err)
	}
	time.Sleep(100 * time.Millisecond)
	total := 0
	for _, s := range []*service.OrgService{a.orgs, b, a.orgs} {
		n, err := s.RecordExpired(ctx)
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != 1 {
		t.Fatalf("%d expiries recorded, want 1", total)
	}
	var got []model.Event
	err = logs.Scan(ctx, p.OrgID, repository.AuditFilter{Action: service.ActInvitationExpired}, func(ev *model.Event) error {
		got = append(got, *ev)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Actor.Type != model.ActorSystem || got[0].Targets[0].ID != inv.ID.Hex() {
		t.Fatalf("expiry events: %+v", got)
	}
	if _, err := logs.Verify(ctx, p.OrgID); err != nil {
		t.Fatal(err)
	}
}

// TestRecordedOnceEvenWhenTheMarkIsLost: an instance that records an
// expiry and dies before marking the invitation leaves the next sweep to
// try again, which adds nothing (the event's source is the invitation's).
func TestRecordedOnceEvenWhenTheMarkIsLost(t *testing.T) {
	ctx := context.Background()
	s := newServices(t)
	logs := audit.NewLog(repository.NewAuditRepository(s.db))
	s.orgs.SetAudit(logs)
	s.orgs.SetInvitations(service.InvitationSettings{TTL: 10 * time.Millisecond, Mails: repository.NewOutboxRepository(s.db)})
	p := s.signUp("Marked")
	inv, _, err := s.orgs.Invite(ctx, p, "x@marked.example.com", model.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	if _, err := s.orgs.RecordExpired(ctx); err != nil {
		t.Fatal(err)
	}
	// The mark, lost.
	if _, err := s.db.Collection(model.Invitations).UpdateOne(ctx, bson.D{{Key: "_id", Value: inv.ID}},
		bson.D{{Key: "$unset", Value: bson.D{{Key: "expiry_recorded", Value: ""}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.orgs.RecordExpired(ctx); err != nil {
		t.Fatal(err)
	}
	n := 0
	err = logs.Scan(ctx, p.OrgID, repository.AuditFilter{Action: service.ActInvitationExpired}, func(*model.Event) error { n++; return nil })
	if err != nil || n != 1 {
		t.Fatalf("%d expiry events, want 1; %v", n, err)
	}
}

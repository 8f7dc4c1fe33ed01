package service_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/service"
)

// replay records op again, committed and abandoned, as a takeover finds
// an operation whose driver died after it had run all of phase two but
// its clean-up; then recovers it.
func (s *services) replay(op *model.Operation) {
	s.t.Helper()
	ctx := context.Background()
	ops := repository.NewOperationRepository(s.db, true)
	op.ExpiresAt = model.At(time.Now().Add(-time.Minute))
	if err := ops.Insert(ctx, op); err != nil {
		s.t.Fatal(err)
	}
	if _, err := ops.Decide(ctx, op.ID, op.Kind != model.OpCreate); err != nil {
		s.t.Fatal(err)
	}
	if err := s.orgs.Runner().Recover(ctx, op.OrgID, false); err != nil {
		s.t.Fatalf("recover the replayed %s: %v", op.Kind, err)
	}
}

// signUpAs makes an organization with its admin's e-mail.
func (s *services) signUpAs(name, email string) service.Principal {
	s.t.Helper()
	org, err := s.orgs.Create(context.Background(), service.CreateOrg{Name: name, Email: email, Password: "password-123"})
	if err != nil {
		s.t.Fatal(err)
	}
	return service.Principal{AdminID: org.AdminID, OrgID: org.ID, Tenant: org.Tenant(), Role: model.RoleOwner}
}

// expectIntact expects a clean check, and org b's documents all present.
func (s *services) expectIntact(b service.Principal, ids ...bson.ObjectID) {
	s.t.Helper()
	for _, id := range ids {
		if _, err := s.docs.Get(context.Background(), b, id.Hex()); err != nil {
			s.t.Fatalf("the new owner's document %s: %v", id.Hex(), err)
		}
	}
	if f, err := service.NewChecker(s.orgs).Check(context.Background()); err != nil || len(f) > 0 {
		s.t.Fatalf("check after the replay: %v %v", f, err)
	}
}

// TestRenameReplayedAfterItsNameWentToAnother: phase two of a rename runs
// again after the old name was released and signed up by another
// organization in the same database. The replay must leave that
// organization's collection alone (it dropped it before).
func TestRenameReplayedAfterItsNameWentToAnother(t *testing.T) {
	s := newServices(t)
	a := s.signUp("N1")
	uuid, err := s.tenants.UUID(context.Background(), a.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	s.rename(a, "N1", "N2")
	b := s.signUpAs("N1", "b@n1.example.com")
	if b.Tenant != a.Tenant {
		t.Fatalf("the new N1 lives in %+v, not in the old one's %+v", b.Tenant, a.Tenant)
	}
	doc := s.create(b, `{"owner":"b"}`)
	s.replay(&model.Operation{
		OrgID: a.OrgID, ID: bson.NewObjectID(), Kind: model.OpUpdate,
		Plan: model.OperationPlan{
			AdminID: a.AdminID, Name: "N2", Slug: "n2", OldName: "N1", OldSlug: "n1",
			Email: "admin@n1.example.com", OldEmail: "admin@n1.example.com", CollectionUUID: uuid, TenantDB: a.Tenant.DB,
		},
	})
	s.expectIntact(b, doc.ID)
}

// TestDeletionReplayedAfterItsNameWentToAnother: the same for phase two
// of a deletion.
func TestDeletionReplayedAfterItsNameWentToAnother(t *testing.T) {
	s := newServices(t)
	a := s.signUp("Gone")
	uuid, err := s.tenants.UUID(context.Background(), a.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.orgs.Delete(context.Background(), a, "Gone"); err != nil {
		t.Fatal(err)
	}
	// The deletion's receipt stays; the replay is of a record not yet done.
	if _, err := s.db.Collection(model.Operations).DeleteOne(context.Background(), bson.D{{Key: "_id", Value: a.OrgID}}); err != nil {
		t.Fatal(err)
	}
	b := s.signUpAs("Gone", "b@gone.example.com")
	doc := s.create(b, `{"owner":"b"}`)
	s.replay(&model.Operation{
		OrgID: a.OrgID, ID: bson.NewObjectID(), Kind: model.OpDelete,
		Plan: model.OperationPlan{
			AdminID: a.AdminID, OldName: "Gone", OldSlug: "gone", OldEmail: "admin@gone.example.com",
			CollectionUUID: uuid, TenantDB: a.Tenant.DB,
		},
	})
	s.expectIntact(b, doc.ID)
}

// TestDeadSweepersClaimExpires: a sweeper killed while it held a name's
// claim does not keep the name from sign-ups and renames for ever; a live
// sweeper's claim is only a moment's wait.
func TestDeadSweepersClaimExpires(t *testing.T) {
	s := newServices(t)
	ctx := context.Background()
	names := s.db.Collection(model.NameClaims)
	claim := func(slug string, at time.Time) {
		t.Helper()
		if _, err := names.InsertOne(ctx, model.NameClaim{Slug: slug, OrganizationID: bson.NewObjectID(), CreatedAt: model.At(at), Sweep: true}); err != nil {
			t.Fatal(err)
		}
	}
	claim("live", time.Now())
	if _, err := s.orgs.Create(ctx, service.CreateOrg{Name: "Live", Email: "a@live.example.com", Password: "password-123"}); !errors.Is(err, service.ErrOrgBusy) {
		t.Fatalf("sign-up over a live sweep: %v, want ErrOrgBusy", err)
	}
	claim("dead", time.Now().Add(-time.Hour))
	s.signUp("Dead")
	claim("dead_too", time.Now().Add(-time.Hour))
	p := s.signUp("Other")
	s.rename(p, "Other", "Dead Too")

	// A dead claim of a name nobody asks for goes with the next sweep; a
	// live one stays, and neither is a finding of orgsvc check.
	claim("unasked", time.Now().Add(-time.Hour))
	if f := s.findings("stale-name-claim"); len(f) != 1 || f[0].Subject != `name claim "unasked"` {
		t.Fatalf("check before the sweep: %v, want the dead claim of unasked alone", f)
	}
	if _, err := s.orgs.SweepOrphans(ctx); err != nil {
		t.Fatal(err)
	}
	master := repository.NewMasterRepository(s.db, true)
	if _, err := master.NameClaim(ctx, "unasked"); !errors.Is(err, repository.ErrNotFound) {
		t.Fatalf("the dead claim after the sweep: %v, want it gone", err)
	}
	if _, err := master.NameClaim(ctx, "live"); err != nil {
		t.Fatalf("the live claim after the sweep: %v, want it kept", err)
	}
	if f := s.findings("stale-name-claim"); len(f) != 0 {
		t.Fatalf("check after the sweep: %v, want none", f)
	}
}

// TestDeadSweepersClaimHasOneTaker: of many sign-ups of one name meeting
// a dead sweeper's claim at once, exactly one removes it and gets the name
// (the removal is a read, then a delete by _id). A taker that died does not
// keep the name for ever; one that is alive is waited for. Recovery removes
// takeover marks only once they expire.
func TestDeadSweepersClaimHasOneTaker(t *testing.T) {
	s := newServices(t)
	ctx := context.Background()
	names := s.db.Collection(model.NameClaims)
	ops := repository.NewOperationRepository(s.db, true)
	deadClaim := func(slug string) bson.ObjectID {
		t.Helper()
		id := bson.NewObjectID()
		if _, err := names.InsertOne(ctx, model.NameClaim{Slug: slug, OrganizationID: id, CreatedAt: model.At(time.Now().Add(-time.Hour)), Sweep: true}); err != nil {
			t.Fatal(err)
		}
		return id
	}

	deadClaim("contested")
	var wg sync.WaitGroup
	wins := make(chan bson.ObjectID, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			org, err := s.orgs.Create(ctx, service.CreateOrg{Name: "Contested", Email: fmt.Sprintf("a%d@contested.example.com", i), Password: "password-123"})
			switch {
			case err == nil:
				wins <- org.ID
			case !errors.Is(err, service.ErrOrgExists) && !errors.Is(err, service.ErrOrgBusy):
				t.Errorf("sign-up %d: %v, want success, ErrOrgExists or ErrOrgBusy", i, err)
			}
		}()
	}
	wg.Wait()
	close(wins)
	var won []bson.ObjectID
	for id := range wins {
		won = append(won, id)
	}
	if len(won) != 1 {
		t.Fatalf("%d sign-ups of one name succeeded (%v), want 1", len(won), won)
	}
	if c, err := repository.NewMasterRepository(s.db, true).NameClaim(ctx, "contested"); err != nil || c.OrganizationID != won[0] {
		t.Fatalf("claim on the name: %+v %v, want the winner %s", c, err, won[0].Hex())
	}

	died := deadClaim("dead_taker")
	if err := ops.InsertTakeover(ctx, died, 0, "a dead instance", time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	s.signUp("Dead Taker")
	alive := deadClaim("live_taker")
	if err := ops.InsertTakeover(ctx, alive, 0, "a live instance", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.orgs.Create(ctx, service.CreateOrg{Name: "Live Taker", Email: "a@live-taker.example.com", Password: "password-123"}); !errors.Is(err, service.ErrOrgBusy) {
		t.Fatalf("sign-up while a live taker removes the claim: %v, want ErrOrgBusy", err)
	}

	if _, _, err := s.orgs.Runner().RecoverAll(ctx, false); err != nil {
		t.Fatal(err)
	}
	leases, err := ops.AllLeases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, l := range leases {
		kept = append(kept, l.ID)
	}
	if want := repository.TakeoverPrefix + repository.LeaseID(alive, 0); !slices.Equal(kept, []string{want}) {
		t.Fatalf("leases after recovery: %v, want only the live taker's mark %s", kept, want)
	}
}

// TestLeftoverMarksAreInert: a finished operation leaves its lease and
// outcome behind; check accepts that state, and recovery removes them.
func TestLeftoverMarksAreInert(t *testing.T) {
	s := newServices(t)
	ctx := context.Background()
	ops := repository.NewOperationRepository(s.db, true)
	gone := bson.NewObjectID()
	if err := ops.InsertLease(ctx, gone, 1, "a dead instance", time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := ops.Decide(ctx, gone, true); err != nil {
		t.Fatal(err)
	}
	if f, err := service.NewChecker(s.orgs).Check(ctx); err != nil || len(f) > 0 {
		t.Fatalf("check with leftover marks: %v %v", f, err)
	}
	if _, _, err := s.orgs.Runner().RecoverAll(ctx, false); err != nil {
		t.Fatal(err)
	}
	leases, _ := ops.AllLeases(ctx)
	outcomes, _ := ops.AllOutcomes(ctx)
	if len(leases)+len(outcomes) != 0 {
		t.Fatalf("after recovery: leases %v, outcomes %v", leases, outcomes)
	}
}

// TestRetriedDeleteMeetsItsDeletionUnderWay: a retry of a deletion whose
// instance died mid-way is told to retry (ErrOrgBusy), before and after
// the admin is gone, and succeeds once the deletion is finished.
func TestRetriedDeleteMeetsItsDeletionUnderWay(t *testing.T) {
	s := newServices(t)
	ctx := context.Background()
	a := s.signUp("Half")
	ops := repository.NewOperationRepository(s.db, true)
	op := &model.Operation{
		OrgID: a.OrgID, ID: bson.NewObjectID(), Kind: model.OpDelete,
		ExpiresAt: model.At(time.Now().Add(time.Minute)),
		Plan:      model.OperationPlan{AdminID: a.AdminID, OldName: "Half", OldSlug: "half", OldEmail: "admin@half.example.com", TenantDB: a.Tenant.DB},
	}
	if err := ops.Insert(ctx, op); err != nil {
		t.Fatal(err)
	}
	if _, err := ops.Decide(ctx, op.ID, true); err != nil {
		t.Fatal(err)
	}
	master := repository.NewMasterRepository(s.db, true)
	if err := master.SetOrganizationState(ctx, a.OrgID, model.StateDeleting, op.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.orgs.Delete(ctx, a, "Half"); !errors.Is(err, service.ErrOrgBusy) {
		t.Fatalf("retry while the admin is there: %v, want ErrOrgBusy", err)
	}
	if err := master.DeleteAdmin(ctx, a.AdminID); err != nil {
		t.Fatal(err)
	}
	if err := s.orgs.Deleted(ctx, a.OrgID, a.AdminID, "Half"); !errors.Is(err, service.ErrOrgBusy) {
		t.Fatalf("retry once the admin is gone: %v, want ErrOrgBusy", err)
	}
	if err := s.orgs.Runner().Recover(ctx, a.OrgID, true); err != nil {
		t.Fatal(err)
	}
	if err := s.orgs.Deleted(ctx, a.OrgID, a.AdminID, "Half"); err != nil {
		t.Fatalf("retry after the deletion: %v", err)
	}
}

// TestRetriedDeleteAfterTheNameWasTaken: a deletion's retry, on an
// instance that still trusts the deleted admin's token, after another
// organization signed up the same name, is answered as the deletion was.
func TestRetriedDeleteAfterTheNameWasTaken(t *testing.T) {
	s := newServices(t)
	ctx := context.Background()
	a := s.signUp("Reused")
	if err := s.orgs.Delete(ctx, a, "Reused"); err != nil {
		t.Fatal(err)
	}
	s.signUpAs("Reused", "b@reused.example.com")
	if err := s.orgs.Delete(ctx, a, "Reused"); err != nil {
		t.Fatalf("the retry: %v, want the deletion's answer", err)
	}
}

// TestRetriedRenameAfterTheNameWasTaken: a rename's retry after another
// organization took the old name is answered as the rename was.
func TestRetriedRenameAfterTheNameWasTaken(t *testing.T) {
	s := newServices(t)
	ctx := context.Background()
	a := s.signUp("First")
	s.rename(a, "First", "Second")
	s.signUpAs("First", "b@first.example.com")
	to := "Second"
	if _, err := s.orgs.Update(ctx, a, service.UpdateOrg{Name: "First", NewName: &to}); err != nil {
		t.Fatalf("the retry: %v, want the rename's answer", err)
	}
}

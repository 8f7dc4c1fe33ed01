package service_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/security"
	"github.com/orgsvc/orgsvc/internal/service"
)

// newTrashServices is newServices with a restore window of an hour and
// invitations answered with their tokens.
func newTrashServices(t *testing.T) *services {
	t.Helper()
	s := newServicesPer(t, 2)
	s.orgs.SetDeleteRetention(time.Hour)
	s.orgs.SetInvitations(service.InvitationSettings{TTL: time.Hour, Mails: repository.NewOutboxRepository(s.db)})
	return s
}

// join invites email into p's organization with role and accepts it with
// password (an existing account's own), returning the member's id.
func (s *services) join(p service.Principal, email, role, password string) bson.ObjectID {
	s.t.Helper()
	ctx := context.Background()
	_, token, err := s.orgs.Invite(ctx, p, email, role)
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.orgs.Accept(ctx, token, password); err != nil {
		s.t.Fatal(err)
	}
	a, err := repository.NewMasterRepository(s.db, true).AdminByEmailKey(ctx, model.EmailKey(email))
	if err != nil {
		s.t.Fatal(err)
	}
	return a.ID
}

// deleteOrg deletes p's organization name.
func (s *services) deleteOrg(p service.Principal, name string) {
	s.t.Helper()
	if err := s.orgs.Delete(context.Background(), p, name); err != nil {
		s.t.Fatalf("delete %q: %v", name, err)
	}
}

// hasTrash reports whether organization org's trash collection exists in
// database db.
func (s *services) hasTrash(db string, org bson.ObjectID) bool {
	s.t.Helper()
	all, err := s.tenants.Trashes(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	return slices.Contains(all, [2]string{db, repository.TrashName(org)})
}

// deleted is the restorable organizations.
func (s *services) deleted() []service.DeletedSummary {
	s.t.Helper()
	all, err := s.orgs.ListDeleted(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	return all
}

// clean fails unless the check finds nothing.
func (s *services) clean(when string) {
	s.t.Helper()
	if all, err := s.check.Check(context.Background()); err != nil || len(all) != 0 {
		s.t.Fatalf("check %s: %v, %v", when, all, err)
	}
}

// TestDeleteToTrashAndRestore: a deletion with a restore window answers as
// before and frees the name and e-mails at once, but keeps the documents
// in a trash collection and the rest in an archive. A restore under a new
// name (the old one was taken meanwhile) brings back the documents with
// their ids, the member whose account lives on, and the accounts whose
// e-mail is free, with their passwords; it reports the one whose e-mail
// was taken. Tokens of before the deletion stay ended.
func TestDeleteToTrashAndRestore(t *testing.T) {
	s := newTrashServices(t)
	ctx := context.Background()
	a := s.signUp("Kept Co")
	docs := []bson.ObjectID{s.create(a, `{"n":1}`).ID, s.create(a, `{"n":2,"a":[[1]]}`).ID}
	slices.SortFunc(docs, func(x, y bson.ObjectID) int { return strings.Compare(x.Hex(), y.Hex()) })
	ana := s.join(a, "ana@kept.example.com", model.RoleMember, "ana-pass-1")
	other := s.signUpAs("Other Co", "bob@other.example.com")
	bob := s.join(a, "bob@other.example.com", model.RoleAdmin, "password-123")
	before, err := s.auth.Login(ctx, "admin@kept_co.example.com", "password-123", a.OrgID)
	if err != nil {
		t.Fatal(err)
	}

	s.deleteOrg(a, "Kept Co")
	if _, err := s.orgs.Get(ctx, "Kept Co"); !errors.Is(err, service.ErrOrgNotFound) {
		t.Fatalf("Get after the deletion: %v", err)
	}
	if s.hasTenant(a.Tenant) || !s.hasTrash(a.Tenant.DB, a.OrgID) {
		t.Fatalf("after the deletion: tenant collection there %v, trash there %v", s.hasTenant(a.Tenant), s.hasTrash(a.Tenant.DB, a.OrgID))
	}
	if err := s.orgs.Deleted(ctx, a.OrgID, a.AdminID, "Kept Co"); err != nil {
		t.Fatalf("a retried deletion: %v, want it answered as the first", err)
	}
	list := s.deleted()
	if len(list) != 1 || list[0].Archive.ID != a.OrgID || list[0].Stats.Documents != 2 || len(list[0].Archive.Members) != 3 || len(list[0].Archive.Accounts) != 2 {
		t.Fatalf("deleted: %+v", list)
	}
	if w := list[0].Archive.PurgeAt.Sub(list[0].Archive.DeletedAt); w < 59*time.Minute || w > 61*time.Minute {
		t.Fatalf("restore window %s, want 1h", w)
	}
	s.clean("after the deletion")

	// Meanwhile the name, and Ana's e-mail, are someone else's.
	s.signUpAs("Kept Co", "new@kept.example.com")
	s.signUpAs("Ana Co", "ana@kept.example.com")
	if _, err := s.orgs.Restore(ctx, service.RestoreRequest{ID: a.OrgID}); !errors.Is(err, service.ErrOrgExists) {
		t.Fatalf("restore under a taken name: %v, want ErrOrgExists", err)
	}
	if len(s.deleted()) != 1 {
		t.Fatal("a refused restore changed the archive")
	}
	res, err := s.orgs.Restore(ctx, service.RestoreRequest{ID: a.OrgID, Name: "Kept Again", Command: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Org.ID != a.OrgID || res.Org.Name != "Kept Again" || res.Documents != 2 || res.Org.TenantDB != a.Tenant.DB {
		t.Fatalf("restored: %+v, %d documents", res.Org, res.Documents)
	}
	back := map[bson.ObjectID]service.Restored{}
	for _, m := range res.Members {
		back[m.AccountID] = m
	}
	if len(res.Members) != 2 || !back[a.AdminID].Recreated || back[a.AdminID].Role != model.RoleOwner || back[bob].Recreated || back[bob].Role != model.RoleAdmin {
		t.Fatalf("members back: %+v", res.Members)
	}
	if len(res.LeftOut) != 1 || res.LeftOut[0].AccountID != ana || res.LeftOut[0].Reason != service.LeftEmailTaken {
		t.Fatalf("left out: %+v", res.LeftOut)
	}
	if len(s.deleted()) != 0 || s.hasTrash(a.Tenant.DB, a.OrgID) {
		t.Fatal("the archive or the trash outlived the restore")
	}
	s.clean("after the restore")

	login, err := s.auth.Login(ctx, "admin@kept_co.example.com", "password-123", a.OrgID)
	if err != nil {
		t.Fatalf("the owner's login with the old password: %v", err)
	}
	p, err := s.auth.Authenticate(ctx, login.Token)
	if err != nil {
		t.Fatal(err)
	}
	if ids := s.listIDs(p); !slices.Equal(ids, docs) {
		t.Fatalf("documents after the restore: %v, want %v", ids, docs)
	}
	if _, err := s.auth.Authenticate(ctx, before.Token); err == nil {
		t.Fatal("a token of before the deletion works again")
	}
	if _, err := s.auth.Login(ctx, "bob@other.example.com", "password-123", a.OrgID); err != nil {
		t.Fatalf("Bob's login to the restored organization: %v", err)
	}
	if _, err := s.auth.Login(ctx, "bob@other.example.com", "password-123", other.OrgID); err != nil {
		t.Fatalf("Bob's login to his other organization: %v", err)
	}
	// The restored organization is an organization like any other.
	s.rename(p, "Kept Again", "Kept Thrice")
}

// TestRestoreNeedsAnOwner: a restore that would bring back no owner is
// refused and changes nothing, unless an existing account is named the
// owner; an unknown one is refused too.
func TestRestoreNeedsAnOwner(t *testing.T) {
	s := newTrashServices(t)
	ctx := context.Background()
	a := s.signUp("Solo Co")
	s.create(a, `{"n":1}`)
	m := s.join(a, "m@solo.example.com", model.RoleMember, "member-pass-1")
	s.deleteOrg(a, "Solo Co")
	taker := s.signUpAs("Taker Co", "admin@solo_co.example.com")

	if _, err := s.orgs.Restore(ctx, service.RestoreRequest{ID: a.OrgID}); !errors.Is(err, service.ErrNoOwner) {
		t.Fatalf("restore with no owner: %v, want ErrNoOwner", err)
	}
	if _, err := s.orgs.Restore(ctx, service.RestoreRequest{ID: a.OrgID, Owner: "nobody@solo.example.com"}); !errors.Is(err, service.ErrAccountNotFound) {
		t.Fatalf("restore with an unknown owner: %v, want ErrAccountNotFound", err)
	}
	if _, err := s.orgs.Restore(ctx, service.RestoreRequest{ID: bson.NewObjectID()}); !errors.Is(err, service.ErrNotDeleted) {
		t.Fatalf("restore of nothing: %v, want ErrNotDeleted", err)
	}
	if len(s.deleted()) != 1 || !s.hasTrash(a.Tenant.DB, a.OrgID) {
		t.Fatal("a refused restore changed the archive or the trash")
	}
	if _, err := s.orgs.Get(ctx, "Solo Co"); !errors.Is(err, service.ErrOrgNotFound) {
		t.Fatalf("Get after refused restores: %v", err)
	}
	s.clean("after refused restores")

	res, err := s.orgs.Restore(ctx, service.RestoreRequest{ID: a.OrgID, Owner: "ADMIN@solo_co.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	roles := map[bson.ObjectID]string{}
	for _, r := range res.Members {
		roles[r.AccountID] = r.Role
	}
	if res.Org.Name != "Solo Co" || res.Org.AdminID != taker.AdminID || roles[taker.AdminID] != model.RoleOwner || roles[m] != model.RoleMember || len(res.LeftOut) != 1 {
		t.Fatalf("restored with an owner named: %+v, members %+v, left out %+v", res.Org, res.Members, res.LeftOut)
	}
	if _, err := s.auth.Login(ctx, "m@solo.example.com", "member-pass-1", a.OrgID); err != nil {
		t.Fatalf("the member made anew logs in: %v", err)
	}
	s.clean("after the restore")
	// A retry is answered; an organization never deleted is not restorable.
	if again, err := s.orgs.Restore(ctx, service.RestoreRequest{ID: a.OrgID}); err != nil || !again.Already || again.Documents != 1 {
		t.Fatalf("a retried restore: %+v, %v", again, err)
	}
	if _, err := s.orgs.Restore(ctx, service.RestoreRequest{ID: taker.OrgID}); !errors.Is(err, service.ErrNotDeleted) {
		t.Fatalf("restore of a live organization: %v", err)
	}
}

// TestPurgeAfterTheDeadline: nothing is purged before the restore window
// ends; after it the trash and the archive go, once, and the deletion's
// receipt still answers a retry.
func TestPurgeAfterTheDeadline(t *testing.T) {
	s := newTrashServices(t)
	ctx := context.Background()
	a := s.signUp("Brief Co")
	s.create(a, `{"n":1}`)
	s.deleteOrg(a, "Brief Co")
	if n, err := s.orgs.PurgeDue(ctx, time.Now()); n != 0 || err != nil {
		t.Fatalf("purge within the window: %d, %v", n, err)
	}
	if n, err := s.orgs.PurgeDue(ctx, time.Now().Add(2*time.Hour)); n != 1 || err != nil {
		t.Fatalf("purge after the window: %d, %v; want 1", n, err)
	}
	if s.hasTrash(a.Tenant.DB, a.OrgID) || len(s.deleted()) != 0 {
		t.Fatal("the trash or the archive outlived the purge")
	}
	if n, err := s.orgs.PurgeDue(ctx, time.Now().Add(2*time.Hour)); n != 0 || err != nil {
		t.Fatalf("a second purge: %d, %v", n, err)
	}
	if _, err := s.orgs.Restore(ctx, service.RestoreRequest{ID: a.OrgID}); !errors.Is(err, service.ErrNotDeleted) {
		t.Fatalf("restore after the purge: %v", err)
	}
	if err := s.orgs.Deleted(ctx, a.OrgID, a.AdminID, "Brief Co"); err != nil {
		t.Fatalf("a retried deletion after the purge: %v", err)
	}
	s.clean("after the purge")
}

// TestPurgeByTwoInstances: two service stacks on one store purge the same
// archives at the same moment: each archive is purged once, neither errs.
func TestPurgeByTwoInstances(t *testing.T) {
	s := newTrashServices(t)
	ctx := context.Background()
	var orgs []service.Principal
	for _, name := range []string{"One Co", "Two Co", "Three Co", "Four Co", "Five Co", "Six Co"} {
		p := s.signUp(name)
		s.create(p, `{"n":1}`)
		s.deleteOrg(p, name)
		orgs = append(orgs, p)
	}
	second := secondStack(t, s)
	later := time.Now().Add(2 * time.Hour)
	var wg sync.WaitGroup
	counts := make([]int, 2)
	errs := make([]error, 2)
	for i, o := range []*service.OrgService{s.orgs, second} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[i], errs[i] = o.PurgeDue(ctx, later)
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || counts[0]+counts[1] != len(orgs) {
		t.Fatalf("purged %v (errors %v), want %d in all", counts, errs, len(orgs))
	}
	for _, p := range orgs {
		if s.hasTrash(p.Tenant.DB, p.OrgID) {
			t.Fatalf("%s's trash is left", p.OrgID.Hex())
		}
	}
	if len(s.deleted()) != 0 {
		t.Fatal("archives are left")
	}
	s.clean("after the purges")
}

// secondStack is another instance's organization service over s's store.
func secondStack(t *testing.T, s *services) *service.OrgService {
	t.Helper()
	passwords, err := security.NewPasswords(4, 2, 16)
	if err != nil {
		t.Fatal(err)
	}
	master := repository.NewMasterRepository(s.db, true)
	tenants := repository.NewTenantRepository(s.db, 2)
	o := service.NewOrgService(master, tenants, repository.NewOperationRepository(s.db, true), passwords,
		service.NewAuthService(master, s.tokens, passwords, time.Second),
		slog.New(slog.NewTextHandler(io.Discard, nil)), service.Lifecycle{Lease: 30 * time.Second})
	o.SetDeleteRetention(time.Hour)
	return o
}

// TestCheckKnowsTrash: a trash collection without its archive, and an
// archive without its trash collection, are findings the repair mends.
func TestCheckKnowsTrash(t *testing.T) {
	s := newTrashServices(t)
	ctx := context.Background()
	a, b := s.signUp("Lost Archive"), s.signUp("Lost Trash")
	s.deleteOrg(a, "Lost Archive")
	s.deleteOrg(b, "Lost Trash")
	if _, err := s.db.Collection(model.DeletedOrgs).DeleteOne(ctx, bson.D{{Key: "_id", Value: a.OrgID}}); err != nil {
		t.Fatal(err)
	}
	if err := s.tenants.DropTrash(ctx, b.Tenant.DB, repository.TrashName(b.OrgID)); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, k := range []string{"orphan-trash", "archive-without-trash"} {
		for _, f := range s.findings(k) {
			if f.Repairable() {
				kinds = append(kinds, f.Kind)
			}
		}
	}
	if !slices.Equal(kinds, []string{"orphan-trash", "archive-without-trash"}) {
		t.Fatalf("repairable findings %v", kinds)
	}
	if _, err := s.check.Repair(ctx); err != nil {
		t.Fatal(err)
	}
	s.clean("after the repair")
	if s.hasTrash(a.Tenant.DB, a.OrgID) || len(s.deleted()) != 0 {
		t.Fatal("the repair left the trash or the archive")
	}
}

// TestDeleteWithoutRetention: with no restore window (the default) a
// deletion keeps nothing, as before.
func TestDeleteWithoutRetention(t *testing.T) {
	s := newServices(t)
	a := s.signUp("Gone Co")
	s.create(a, `{"n":1}`)
	s.deleteOrg(a, "Gone Co")
	if s.hasTenant(a.Tenant) || s.hasTrash(a.Tenant.DB, a.OrgID) || len(s.deleted()) != 0 {
		t.Fatal("a deletion without a restore window kept something")
	}
	s.clean("after the deletion")
}

// TestTrashDeletionReplayedAfterItsNameWentToAnother: phase two of a
// deletion to the trash runs again after the name went to another
// organization of the same database: it leaves that one's collection, and
// the trash, alone.
func TestTrashDeletionReplayedAfterItsNameWentToAnother(t *testing.T) {
	s := newTrashServices(t)
	ctx := context.Background()
	a := s.signUp("Binned")
	kept := s.create(a, `{"n":1}`)
	uuid, err := s.tenants.UUID(ctx, a.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	s.deleteOrg(a, "Binned")
	if _, err := s.db.Collection(model.Operations).DeleteOne(ctx, bson.D{{Key: "_id", Value: a.OrgID}}); err != nil {
		t.Fatal(err)
	}
	b := s.signUpAs("Binned", "b@binned.example.com")
	if b.Tenant != a.Tenant {
		t.Fatalf("the new Binned lives in %+v, not in the old one's %+v", b.Tenant, a.Tenant)
	}
	doc := s.create(b, `{"owner":"b"}`)
	s.replay(&model.Operation{
		OrgID: a.OrgID, ID: bson.NewObjectID(), Kind: model.OpDelete,
		Plan: model.OperationPlan{
			AdminID: a.AdminID, OldName: "Binned", OldSlug: "binned", OldEmail: "admin@binned.example.com",
			CollectionUUID: uuid, TenantDB: a.Tenant.DB,
			Trash: &model.TrashPlan{Org: a.OrgID, Trash: repository.TrashName(a.OrgID), PurgeAt: model.At(time.Now().Add(time.Hour))},
		},
	})
	s.expectIntact(b, doc.ID)
	res, err := s.orgs.Restore(ctx, service.RestoreRequest{ID: a.OrgID, Name: "Binned Again"})
	if err != nil || res.Documents != 1 {
		t.Fatalf("restore after the replay: %+v, %v", res, err)
	}
	a.Tenant.Slug = "binned_again"
	s.expectIntact(a, kept.ID)
}

// TestRestoreReplayedAfterARename: phase two of a restore runs again after
// the restored organization was renamed (its own operations are keyed by
// its id, not the deletion's): nothing changes.
func TestRestoreReplayedAfterARename(t *testing.T) {
	s := newTrashServices(t)
	ctx := context.Background()
	a := s.signUp("Back")
	doc := s.create(a, `{"n":1}`)
	uuid, err := s.tenants.UUID(ctx, a.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	s.deleteOrg(a, "Back")
	deletion := s.deleted()[0].Archive.DeletionID
	if _, err := s.orgs.Restore(ctx, service.RestoreRequest{ID: a.OrgID}); err != nil {
		t.Fatal(err)
	}
	s.rename(a, "Back", "Forth")
	a.Tenant.Slug = "forth"
	b := s.signUpAs("Back", "b@back.example.com")
	other := s.create(b, `{"owner":"b"}`)
	s.replay(&model.Operation{
		OrgID: deletion, ID: bson.NewObjectID(), Kind: model.OpRestore,
		Plan: model.OperationPlan{
			AdminID: a.AdminID, Name: "Back", Slug: "back", OldName: "Back", OldSlug: "back",
			CollectionUUID: uuid, TenantDB: a.Tenant.DB,
			Trash: &model.TrashPlan{Org: a.OrgID, Trash: repository.TrashName(a.OrgID)},
		},
	})
	s.expectIntact(b, other.ID)
	s.expectIntact(a, doc.ID)
}

package service_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgsvc/orgsvc/internal/jsondoc"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/security"
	"github.com/orgsvc/orgsvc/internal/service"
	"github.com/orgsvc/orgsvc/internal/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// services is the business layer over a fresh database of the embedded
// store.
type services struct {
	t       *testing.T
	db      *mongo.Database
	tenants *repository.TenantRepository
	orgs    *service.OrgService
	docs    *service.DocumentService
	check   *service.Checker
	auth    *service.AuthService
	tokens  *security.Tokens
}

func newServices(t *testing.T) *services {
	t.Helper()
	return newServicesPer(t, 0)
}

// newServicesPer is newServices with perDatabase tenant collections to a
// tenant database (0: all in the master database).
func newServicesPer(t *testing.T, perDatabase int) *services {
	t.Helper()
	db := storetest.Database(t)
	tokens, err := security.NewTokens([]byte("isolation-test-secret-0123456789abcdef"), "HS256", "orgsvc", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	passwords, err := security.NewPasswords(4, 2, 16)
	if err != nil {
		t.Fatal(err)
	}
	master := repository.NewMasterRepository(db, true)
	tenants := repository.NewTenantRepository(db, perDatabase)
	tenants.OnCreate(storetest.PrepareCollection(db))
	auth := service.NewAuthService(master, tokens, passwords, time.Second)
	orgs := service.NewOrgService(master, tenants, repository.NewOperationRepository(db, true), passwords, auth,
		slog.New(slog.NewTextHandler(io.Discard, nil)), service.Lifecycle{Lease: 30 * time.Second, AllStale: true})
	return &services{t: t, db: db, tenants: tenants, orgs: orgs, auth: auth, tokens: tokens,
		docs: service.NewDocumentService(tenants, orgs, 1<<20), check: service.NewChecker(orgs)}
}

// signUp makes an organization and returns its admin's principal.
func (s *services) signUp(name string) service.Principal {
	s.t.Helper()
	org, err := s.orgs.Create(context.Background(), service.CreateOrg{Name: name, Email: "admin@" + model.Slug(name) + ".example.com", Password: "password-123"})
	if err != nil {
		s.t.Fatal(err)
	}
	return service.Principal{AdminID: org.AdminID, OrgID: org.ID, Tenant: org.Tenant(), Role: model.RoleOwner}
}

// rename renames p's organization from one name to another; p, as a
// cache would keep it, still names the old collection.
func (s *services) rename(p service.Principal, from, to string) {
	s.t.Helper()
	if _, err := s.orgs.Update(context.Background(), p, service.UpdateOrg{Name: from, NewName: &to}); err != nil {
		s.t.Fatalf("rename %q to %q: %v", from, to, err)
	}
}

func (s *services) create(p service.Principal, data string) *model.Document {
	s.t.Helper()
	doc, problems := jsondoc.Parse([]byte(data))
	if len(problems) > 0 {
		s.t.Fatal(problems[0].Msg)
	}
	d, err := s.docs.Create(context.Background(), p, doc)
	if err != nil {
		s.t.Fatal(err)
	}
	return d
}

// raw reads document id of t as stored, bypassing every check; nil when
// there is none.
func (s *services) raw(t model.Tenant, id bson.ObjectID) bson.M {
	s.t.Helper()
	var m bson.M
	err := s.db.Collection(repository.CollectionName(t.Slug)).FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Decode(&m)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil
	}
	if err != nil {
		s.t.Fatal(err)
	}
	return m
}

// listIDs lists p's document ids.
func (s *services) listIDs(p service.Principal) []bson.ObjectID {
	s.t.Helper()
	page, err := s.docs.List(context.Background(), p, "", nil, 100)
	if err != nil {
		s.t.Fatal(err)
	}
	var ids []bson.ObjectID
	for _, d := range page.Items {
		ids = append(ids, d.ID)
	}
	return ids
}

// reachesNothing checks that p's read, replace, patch and delete of id all
// answer ErrDocumentNotFound.
func (s *services) reachesNothing(p service.Principal, id bson.ObjectID, who string) {
	s.t.Helper()
	ctx := context.Background()
	doc, _ := jsondoc.Parse([]byte(`{"stolen":true}`))
	hex := id.Hex()
	_, getErr := s.docs.Get(ctx, p, hex)
	_, putErr := s.docs.Replace(ctx, p, hex, doc)
	_, patchErr := s.docs.Patch(ctx, p, hex, []byte(`{"stolen":true}`))
	delErr := s.docs.Delete(ctx, p, hex)
	for op, err := range map[string]error{"Get": getErr, "Replace": putErr, "Patch": patchErr, "Delete": delErr} {
		if !errors.Is(err, service.ErrDocumentNotFound) {
			s.t.Errorf("%s's %s of %s: %v, want ErrDocumentNotFound", who, op, hex, err)
		}
	}
	if slices.Contains(s.listIDs(p), id) {
		s.t.Errorf("%s's listing holds %s", who, hex)
	}
}

// findings runs the check and returns its findings of kind.
func (s *services) findings(kind string) []service.Finding {
	s.t.Helper()
	all, err := s.check.Check(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	var out []service.Finding
	for _, f := range all {
		if f.Kind == kind {
			out = append(out, f)
		}
	}
	return out
}

// TestStalePrincipalMeetsAnotherOrganization: X's principal names the
// collection that, after X renamed itself away and V renamed itself to
// X's old name, is V's. Through it X neither reads, lists, replaces,
// patches nor deletes V's document; X's own are followed to X's new
// collection.
func TestStalePrincipalMeetsAnotherOrganization(t *testing.T) {
	s := newServices(t)
	x, v := s.signUp("Shared"), s.signUp("Victim")
	vd := s.create(v, `{"owner":"v"}`)
	xd := s.create(x, `{"owner":"x"}`)
	s.rename(x, "Shared", "Elsewhere")
	s.rename(v, "Victim", "Shared")
	v.Tenant = x.Tenant // V's collection now has the name X's principal holds
	if s.raw(v.Tenant, vd.ID) == nil {
		t.Fatalf("V's document is not in %s: the renames did not set the scene", repository.CollectionName(v.Tenant.Slug))
	}

	s.reachesNothing(x, vd.ID, "X")
	if m := s.raw(v.Tenant, vd.ID); m == nil || m["data_json"] != `{"owner":"v"}` || m["_org"] != v.OrgID {
		t.Fatalf("V's document afterwards: %v", m)
	}
	if d, err := s.docs.Get(context.Background(), x, xd.ID.Hex()); err != nil || d.JSON != `{"owner":"x"}` {
		t.Fatalf("X's own document through the stale principal: %+v, %v", d, err)
	}
	if ids := s.listIDs(x); !slices.Equal(ids, []bson.ObjectID{xd.ID}) {
		t.Fatalf("X's listing through the stale principal: %v, want [%s]", ids, xd.ID.Hex())
	}
}

// TestStrayCreate: a create through a principal that names another
// organization's collection lands in the caller's own collection only,
// leaving nothing in the other's; a document that a write left in a
// collection with another organization's _org is invisible to the
// collection's owner (and to the writer's current principal), reported
// by the check, and
// deleted by the repair, which leaves the owner's own documents alone.
func TestStrayCreate(t *testing.T) {
	s := newServices(t)
	ctx := context.Background()
	x, v := s.signUp("Alpha"), s.signUp("Beta")
	vd := s.create(v, `{"owner":"v"}`)
	s.rename(x, "Alpha", "Gamma")
	s.rename(v, "Beta", "Alpha")
	stale := x // names org_alpha, V's now
	x.Tenant.Slug = "gamma"
	v.Tenant.Slug = "alpha"

	d := s.create(stale, `{"owner":"x","n":1}`)
	if s.raw(v.Tenant, d.ID) != nil {
		t.Fatalf("the create through the stale principal left %s in V's collection", d.ID.Hex())
	}
	if m := s.raw(x.Tenant, d.ID); m == nil || m["_org"] != x.OrgID {
		t.Fatalf("the created document in X's collection: %v", m)
	}
	if ids := s.listIDs(v); !slices.Equal(ids, []bson.ObjectID{vd.ID}) {
		t.Fatalf("V's listing: %v, want only [%s]", ids, vd.ID.Hex())
	}
	if got := s.findings("foreign-documents"); len(got) != 0 {
		t.Fatalf("check after a withdrawn stray: %v", got)
	}

	// A stray that stayed behind: X's document in V's collection, as a
	// rename of V carrying it along would leave it.
	stray := &model.Document{ID: bson.NewObjectID(), JSON: `{"owner":"x","stray":true}`, Fields: bson.D{}, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
	if err := s.tenants.InsertDocument(ctx, v.Tenant, x.OrgID, stray); err != nil {
		t.Fatal(err)
	}
	s.reachesNothing(v, stray.ID, "V")
	s.reachesNothing(x, stray.ID, "X")
	if s.raw(v.Tenant, stray.ID) == nil {
		t.Fatal("the stray was changed away by a request")
	}
	got := s.findings("foreign-documents")
	if len(got) != 1 || !strings.Contains(got[0].Subject, "org_alpha") || !strings.Contains(got[0].Detail, x.OrgID.Hex()) || !got[0].Repairable() {
		t.Fatalf("check: %v, want one repairable foreign-documents finding on org_alpha naming %s", got, x.OrgID.Hex())
	}
	done, err := s.check.Repair(ctx)
	if err != nil || !slices.ContainsFunc(done, func(l string) bool { return strings.HasPrefix(l, "repaired foreign-documents") }) {
		t.Fatalf("repair: %v, %v", done, err)
	}
	if s.raw(v.Tenant, stray.ID) != nil {
		t.Fatal("the stray survived the repair")
	}
	if s.raw(v.Tenant, vd.ID) == nil || s.raw(x.Tenant, d.ID) == nil {
		t.Fatal("the repair removed an organization's own document")
	}
	if all, err := s.check.Check(ctx); err != nil || len(all) != 0 {
		t.Fatalf("check after the repair: %v, %v", all, err)
	}
}

// TestDocumentsStoredWithoutOrganization: documents stored before
// documents carried _org are their collection's owner's (read, listed,
// replaced, deleted), and nobody else's even through a principal naming
// that collection; the check reports them and the repair records the
// owner on them.
func TestDocumentsStoredWithoutOrganization(t *testing.T) {
	s := newServices(t)
	ctx := context.Background()
	a, b := s.signUp("Owner"), s.signUp("Other")
	coll := s.db.Collection(repository.CollectionName(a.Tenant.Slug))
	now := model.Now()
	var old []bson.ObjectID
	for i := range 3 {
		d := model.Document{ID: bson.NewObjectID(), JSON: `{"old":true}`, Fields: bson.D{{Key: "n", Value: int32(i)}}, CreatedAt: now, UpdatedAt: now}
		if _, err := coll.InsertOne(ctx, d); err != nil {
			t.Fatal(err)
		}
		old = append(old, d.ID)
	}

	intruder := b
	intruder.Tenant = a.Tenant
	s.reachesNothing(intruder, old[0], "B (naming A's collection)")
	if s.raw(a.Tenant, old[0]) == nil {
		t.Fatal("B's requests removed A's document")
	}

	if d, err := s.docs.Get(ctx, a, old[0].Hex()); err != nil || d.JSON != `{"old":true}` {
		t.Fatalf("A's Get: %+v, %v", d, err)
	}
	if ids := s.listIDs(a); !slices.Equal(ids, old) {
		t.Fatalf("A's listing: %v, want %v", ids, old)
	}
	doc, _ := jsondoc.Parse([]byte(`{"new":true}`))
	if d, err := s.docs.Replace(ctx, a, old[0].Hex(), doc); err != nil || d.JSON != `{"new":true}` {
		t.Fatalf("A's Replace: %+v, %v", d, err)
	}
	if m := s.raw(a.Tenant, old[0]); m["_org"] != a.OrgID {
		t.Fatalf("after A's Replace: %v, want _org recorded", m)
	}
	if err := s.docs.Delete(ctx, a, old[1].Hex()); err != nil {
		t.Fatalf("A's Delete: %v", err)
	}

	got := s.findings("unowned-documents")
	if len(got) != 1 || !strings.HasPrefix(got[0].Detail, "1 documents") || !got[0].Repairable() {
		t.Fatalf("check: %v, want one repairable unowned-documents finding of 1 document", got)
	}
	if _, err := s.check.Repair(ctx); err != nil {
		t.Fatal(err)
	}
	if m := s.raw(a.Tenant, old[2]); m["_org"] != a.OrgID {
		t.Fatalf("after the repair: %v, want _org %s", m, a.OrgID.Hex())
	}
	if all, err := s.check.Check(ctx); err != nil || len(all) != 0 {
		t.Fatalf("check after the repair: %v, %v", all, err)
	}
}

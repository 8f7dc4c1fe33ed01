package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/service"
)

// abandonRename leaves behind what an instance that died in the middle of
// renaming o to newName would have: the new name claimed, the organization
// marked, the operation recorded with a lease ending at expires, and
// (with commit) its outcome decided.
func abandonRename(t *testing.T, e *env, o *org, newName string, expires time.Time, commit bool) bson.ObjectID {
	t.Helper()
	ctx := context.Background()
	master := repository.NewMasterRepository(e.db, e.idFiltersOnly)
	tenants := repository.NewTenantRepository(e.db, 0)
	ops := repository.NewOperationRepository(e.db, e.idFiltersOnly)
	claim, err := master.NameClaim(ctx, model.Slug(o.name))
	if err != nil {
		t.Fatal(err)
	}
	orgID := claim.OrganizationID
	current, err := master.Organization(ctx, orgID)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := master.Admin(ctx, current.AdminID)
	if err != nil {
		t.Fatal(err)
	}
	uuid, err := tenants.UUID(ctx, current.Tenant())
	if err != nil || uuid == "" {
		t.Fatalf("uuid %q %v", uuid, err)
	}
	op := &model.Operation{
		OrgID: orgID, ID: bson.NewObjectID(), Kind: model.OpUpdate,
		Plan: model.OperationPlan{
			AdminID: admin.ID, Name: newName, Slug: model.Slug(newName), OldName: current.Name, OldSlug: current.Slug,
			Email: admin.Email, OldEmail: admin.Email, TokenVersion: admin.TokenVersion, CollectionUUID: uuid,
			TenantDB: current.TenantDB,
		},
		ExpiresAt: expires, Holder: "gone", StartedAt: time.Now().Add(-time.Minute),
	}
	if err := ops.Insert(ctx, op); err != nil {
		t.Fatal(err)
	}
	if err := master.ClaimName(ctx, op.Plan.Slug, orgID); err != nil {
		t.Fatal(err)
	}
	if err := master.SetOrganizationState(ctx, orgID, model.StateRenaming, op.ID); err != nil {
		t.Fatal(err)
	}
	if commit {
		if _, err := ops.Decide(ctx, op.ID, true); err != nil {
			t.Fatal(err)
		}
	}
	return orgID
}

func clean(t *testing.T, e *env) {
	t.Helper()
	findings, err := service.NewChecker(e.orgs).Check(context.Background())
	if err != nil || len(findings) > 0 {
		t.Fatalf("check: %v %v", findings, err)
	}
}

// TestAbandonedOperationIsFinishedByOneInstance: of two instances that meet
// the same abandoned, committed rename at once, many times over, exactly
// one takes it over; the rename is then complete and the database
// consistent.
func TestAbandonedOperationIsFinishedByOneInstance(t *testing.T) {
	a := newEnv(t)
	b := startEnv(t, a.db, func(ctx context.Context) error { return a.db.Client().Ping(ctx, nil) })
	o := a.signUp("alpha")
	doc := a.postDoc(o, `{"keep":1}`)
	orgID := abandonRename(t, a, o, "beta", time.Now().Add(-time.Second), true)

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := a
			if i%2 == 1 {
				e = b
			}
			errs <- e.orgs.Runner().Recover(context.Background(), orgID, false)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, service.ErrOrgBusy) {
			t.Fatalf("recover: %v", err)
		}
	}
	takeovers := strings.Count(a.logs.String(), "taking over an interrupted operation") +
		strings.Count(b.logs.String(), "taking over an interrupted operation")
	if takeovers != 1 {
		t.Fatalf("%d instances took the operation over, want 1", takeovers)
	}
	expect(t, a.call("GET", "/org/get?organization_name=alpha", "", nil), http.StatusNotFound, "")
	expect(t, a.call("GET", "/org/get?organization_name=beta", "", nil), http.StatusOK, "")
	expect(t, a.call("GET", "/org/documents/"+doc, o.token, nil), http.StatusOK, "")
	if a.hasCollection("org_alpha") || !a.hasCollection("org_beta") {
		t.Fatalf("collections after the rename: %v", a.collections())
	}
	clean(t, a)
}

// TestLiveOperationIsLeftAlone: while an instance holds an operation, no
// other takes it over, another change of the organization is refused with
// a retryable 409, and a document write waits, then gets a retryable 409
// too, leaving nothing written.
func TestLiveOperationIsLeftAlone(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("alpha")
	orgID := abandonRename(t, e, o, "beta", time.Now().Add(time.Minute), true)

	if err := e.orgs.Runner().Recover(context.Background(), orgID, false); !errors.Is(err, service.ErrOrgBusy) {
		t.Fatalf("recover of a live operation: %v, want ErrOrgBusy", err)
	}
	r := e.call("DELETE", "/org/delete", o.token, map[string]any{"organization_name": "alpha"})
	expect(t, r, http.StatusConflict, "Organization is being changed; retry")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("409 without Retry-After")
	}
	r = e.call("POST", "/org/documents", o.token, map[string]any{"late": true})
	expect(t, r, http.StatusConflict, "Organization is being changed; retry")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("409 without Retry-After")
	}
	n, err := e.tenant("org_alpha").CountDocuments(context.Background(), bson.D{})
	if err != nil || n != 0 {
		t.Fatalf("org_alpha holds %d documents (%v), want 0", n, err)
	}
	// When the lease is ignored (as at the start-up of the only instance),
	// the operation is finished.
	if err := e.orgs.Runner().Recover(context.Background(), orgID, true); err != nil {
		t.Fatal(err)
	}
	expect(t, e.call("GET", "/org/get?organization_name=beta", "", nil), http.StatusOK, "")
	clean(t, e)
}

// TestUndecidedOperationIsRolledBack: an abandoned update that never
// committed is undone: the new name is free again, the organization keeps
// its name and is at rest.
func TestUndecidedOperationIsRolledBack(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("alpha")
	orgID := abandonRename(t, e, o, "beta", time.Now().Add(-time.Second), false)
	if err := e.orgs.Runner().Recover(context.Background(), orgID, false); err != nil {
		t.Fatal(err)
	}
	expect(t, e.call("GET", "/org/get?organization_name=alpha", "", nil), http.StatusOK, "")
	expect(t, e.call("GET", "/org/get?organization_name=beta", "", nil), http.StatusNotFound, "")
	expect(t, e.call("POST", "/org/documents", o.token, map[string]any{"after": true}), http.StatusCreated, "")
	e.signUp("beta") // the claim was released
	clean(t, e)
}

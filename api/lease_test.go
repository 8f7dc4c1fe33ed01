package api_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/service"
)

// TestLiveOperationIsLeftAlone: while an instance holds an operation (a
// rename begun by the runner of another instance, whose phase one marked
// the organization), no other takes it over, another change of the
// organization is refused with a retryable 409, and a document write
// gets a retryable 409 too, leaving nothing written. The
// runner's own tests (internal/service/runner_test.go) cover takeovers and
// rollbacks.
func TestLiveOperationIsLeftAlone(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("alpha")
	ctx := context.Background()
	master := repository.NewMasterRepository(e.db, e.idFiltersOnly)
	claim, err := master.NameClaim(ctx, model.Slug(o.name))
	if err != nil {
		t.Fatal(err)
	}
	other := startEnv(t, e.db, func(ctx context.Context) error { return e.db.Client().Ping(ctx, nil) })
	r, _, cancel, err := other.orgs.Runner().Begin(ctx, model.OpUpdate, claim.OrganizationID, model.OperationPlan{
		Name: "beta", Slug: "beta", OldName: "alpha", OldSlug: "alpha",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	if err := master.SetOrganizationState(ctx, claim.OrganizationID, model.StateRenaming, r.Op.ID); err != nil {
		t.Fatal(err)
	}

	if err := e.orgs.Runner().Recover(ctx, claim.OrganizationID, false); !errors.Is(err, service.ErrOrgBusy) {
		t.Fatalf("recover of a live operation: %v, want ErrOrgBusy", err)
	}
	res := e.call("DELETE", "/org/delete", o.token, map[string]any{"organization_name": "alpha"})
	expect(t, res, http.StatusConflict, "Organization is being changed; retry")
	if res.header.Get("Retry-After") == "" {
		t.Fatal("409 without Retry-After")
	}
	res = e.call("POST", "/org/documents", o.token, map[string]any{"late": true})
	expect(t, res, http.StatusConflict, "Organization is being changed; retry")
	if res.header.Get("Retry-After") == "" {
		t.Fatal("409 without Retry-After")
	}
	n, err := e.tenant("org_alpha").CountDocuments(ctx, bson.D{})
	if err != nil || n != 0 {
		t.Fatalf("org_alpha holds %d documents (%v), want 0", n, err)
	}
	// When the lease is ignored (as at the start-up of the only instance),
	// the operation, never committed, is rolled back.
	if err := e.orgs.Runner().Recover(ctx, claim.OrganizationID, true); err != nil {
		t.Fatal(err)
	}
	expect(t, e.call("POST", "/org/documents", o.token, map[string]any{"after": true}), http.StatusCreated, "")
	expect(t, e.call("GET", "/org/get?organization_name=alpha", "", nil), http.StatusOK, "")
	findings, err := service.NewChecker(e.orgs).Check(ctx)
	if err != nil || len(findings) > 0 {
		t.Fatalf("check: %v %v", findings, err)
	}
}

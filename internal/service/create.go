package service

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/failpoint"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// CreateOrg is a sign-up: a new organization and its admin.
type CreateOrg struct {
	Name     string
	Email    string
	Password string
}

// Create signs up an organization. The name's slug and the admin's e-mail
// are claimed first, by inserts the database refuses when taken, so two
// concurrent sign-ups can never both win. Until it commits, the
// organization is "creating": invisible, and rolled back if the process
// dies.
func (s *OrgService) Create(ctx context.Context, in CreateOrg) (*model.Organization, error) {
	name := model.CanonicalName(in.Name)
	slug, err := slugOf(name, "organization_name")
	if err != nil {
		return nil, err
	}
	if err := s.heldUnderLegacySlug(ctx, name, ErrOrgExists); err != nil {
		return nil, err
	}
	email := model.NormalizeEmail(in.Email)
	hash, err := s.passwords.Hash(ctx, in.Password)
	if err != nil {
		return nil, err
	}
	tenantDB, err := s.tenants.Place(ctx)
	if err != nil {
		return nil, err
	}
	orgID := bson.NewObjectID()
	adminID := bson.NewObjectID()
	r, ctx, cancel, err := s.run.Begin(ctx, model.OpCreate, orgID, model.OperationPlan{
		AdminID: adminID, Name: name, Slug: slug, Email: email, PasswordHash: hash, TenantDB: tenantDB,
		Grant: bson.NewObjectID(),
		Events: []model.PlannedEvent{planned(ctx, orgID, "created", ActOrgCreated, accountActor(adminID, email),
			[]model.Target{orgTarget(orgID, name)}, nil)},
	})
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer s.auth.orgs.forget(orgID, slug) // after the writes
	committed, err := s.run.Drive(ctx, r)
	if !committed {
		return nil, err
	}
	if err != nil {
		// Committed: whoever meets the operation next finishes it.
		s.log.Warn("finish a sign-up", "organization_id", orgID.Hex(), "err", err)
	}
	p := r.Op.Plan
	return &model.Organization{
		ID: orgID, Name: name, Slug: slug, CollectionName: repository.CollectionName(slug), AdminID: p.AdminID,
		CreatedAt: r.Op.StartedAt, UpdatedAt: r.Op.StartedAt, CollectionUUID: p.CollectionUUID, TenantDB: tenantDB,
	}, nil
}

// prepareCreate claims the slug and the e-mail, and makes the organization
// (marked creating), its admin and its tenant collection.
func (s *OrgService) prepareCreate(ctx context.Context, r *Run) error {
	p, orgID := &r.Op.Plan, r.Op.OrgID
	if err := s.claimSlug(ctx, p.Slug, orgID); err != nil {
		if errors.Is(err, repository.ErrDuplicate) {
			return s.claimedBy(ctx, p.Slug)
		}
		return err
	}
	if err := s.master.ClaimEmail(ctx, model.EmailKey(p.Email), p.AdminID); err != nil {
		return mapDuplicate(err, ErrEmailTaken)
	}
	at := r.Op.StartedAt
	org := &model.Organization{
		ID: orgID, Name: p.Name, Slug: p.Slug, CollectionName: repository.CollectionName(p.Slug),
		AdminID: p.AdminID, CreatedAt: at, UpdatedAt: at,
		State: model.StateCreating, OperationID: r.Op.ID, TenantDB: p.TenantDB,
	}
	if err := s.master.InsertOrganization(ctx, org); err != nil {
		return err
	}
	admin := &model.Admin{
		ID: p.AdminID, Email: p.Email, PasswordHash: p.PasswordHash, OrganizationID: orgID,
		Role: model.RoleAdmin, CreatedAt: at, UpdatedAt: at, Teams: true,
	}
	if err := s.master.InsertAdmin(ctx, admin); err != nil {
		return err
	}
	owner := &model.Membership{AccountID: p.AdminID, OrgID: orgID, Role: model.RoleOwner, Grant: p.Grant, JoinedAt: at}
	if err := s.master.InsertMembership(ctx, owner); err != nil {
		return err
	}
	failpoint.Reach("create:before-collection")
	uuid, err := s.tenants.Create(ctx, org.Tenant())
	if err != nil {
		return err
	}
	failpoint.Reach("create:after-collection")
	p.CollectionUUID = uuid // recorded on the organization by completeCreate
	return nil
}

// completeCreate puts a committed sign-up at rest, with the identity of its
// collection (read again by a driver that took the sign-up over).
func (s *OrgService) completeCreate(ctx context.Context, r *Run) error {
	uuid := r.Op.Plan.CollectionUUID
	if uuid == "" {
		var err error
		if uuid, err = s.tenants.UUID(ctx, r.Op.Plan.Tenant()); err != nil {
			return err
		}
	}
	err := s.master.FinishCreate(ctx, r.Op.OrgID, uuid)
	if errors.Is(err, repository.ErrNotFound) {
		return nil
	}
	return err
}

// undoCreate rolls back a sign-up that was not committed.
func (s *OrgService) undoCreate(ctx context.Context, r *Run) error {
	p := r.Op.Plan
	// The collection is dropped only while the slug is still claimed by
	// this organization: otherwise it is someone else's, or nobody made it.
	if err := s.dropHeld(ctx, r, p.Tenant()); err != nil {
		return err
	}
	if err := s.master.DeleteMembership(ctx, model.MembershipID(p.AdminID, r.Op.OrgID)); err != nil {
		return err
	}
	if err := s.master.DeleteAdmin(ctx, p.AdminID); err != nil {
		return err
	}
	if err := s.master.ReleaseEmail(ctx, model.EmailKey(p.Email), p.AdminID); err != nil {
		return err
	}
	if err := s.master.DeleteOrganization(ctx, r.Op.OrgID); err != nil {
		return err
	}
	return s.master.ReleaseName(ctx, p.Slug, r.Op.OrgID)
}

// claimSlug claims slug for orgID; ErrDuplicate when an organization holds
// it. A sweeper's claim is held for at most half the lease (see
// DropOrphan), so one older than the lease was left by a sweeper that
// died: it is released and the claim made again. A live sweeper's claim is
// ErrOrgBusy: it goes in a moment.
func (s *OrgService) claimSlug(ctx context.Context, slug string, orgID bson.ObjectID) error {
	for range 2 {
		err := s.master.ClaimName(ctx, slug, orgID)
		if !errors.Is(err, repository.ErrDuplicate) {
			return err
		}
		claim, cerr := s.master.NameClaim(ctx, slug)
		switch {
		case errors.Is(cerr, repository.ErrNotFound):
			continue // released meanwhile
		case cerr != nil || !claim.Sweep:
			return err
		case !s.deadSweep(claim):
			return ErrOrgBusy
		}
		if err := s.releaseDeadSweep(ctx, claim); err != nil {
			return err
		}
	}
	return ErrOrgBusy
}

// deadSweep says claim is a sweeper's that has outlived the lease: the
// sweeper died holding it (a live one holds it for half a lease at most).
func (s *OrgService) deadSweep(claim *model.NameClaim) bool {
	return claim.Sweep && time.Since(claim.CreatedAt) >= s.run.life.Lease
}

// releaseDeadSweep removes the claim of a sweeper that died holding it.
// The removal reads the claim and then deletes it by _id, so two claimants
// removing it at once could delete a claim one of them made in between.
// Only the claimant whose takeover mark goes in first removes it, within
// half a lease; if that one dies too, the next mark is taken once its mark
// has expired. The others get ErrOrgBusy. The mark goes with the claim;
// a dead taker's is removed by recovery once it expires.
func (s *OrgService) releaseDeadSweep(ctx context.Context, claim *model.NameClaim) error {
	window := s.run.life.Lease / 2
	for n := int64(0); n < 8; n++ {
		mark, err := s.ops.Takeover(ctx, claim.OrganizationID, n)
		if err == nil {
			if time.Now().Before(mark.ExpiresAt) {
				return ErrOrgBusy
			}
			continue // that taker died
		}
		if !errors.Is(err, repository.ErrNotFound) {
			return err
		}
		expires := time.Now().Add(window)
		if err := s.ops.InsertTakeover(ctx, claim.OrganizationID, n, holder, expires); err != nil {
			if errors.Is(err, repository.ErrDuplicate) {
				return ErrOrgBusy
			}
			return err
		}
		rctx, cancel := context.WithDeadline(ctx, expires.Add(-window/4))
		defer cancel()
		if err := s.master.ReleaseName(rctx, claim.Slug, claim.OrganizationID); err != nil {
			return err
		}
		s.log.Warn("released a dead sweeper's claim", "slug", claim.Slug, "claimed_at", claim.CreatedAt)
		// The claim is gone: a later taker's read-then-delete finds nothing of it.
		if err := s.ops.DeleteLease(ctx, repository.TakeoverPrefix+repository.LeaseID(claim.OrganizationID, n)); err != nil {
			s.log.Warn("remove a takeover mark", "slug", claim.Slug, "err", err)
		}
		return nil
	}
	return ErrOrgBusy
}

// claimedBy explains why slug could not be claimed: an organization has it
// (ErrOrgExists). If the claim belongs to an operation that was abandoned,
// the operation is recovered at once, so that a retry can succeed.
func (s *OrgService) claimedBy(ctx context.Context, slug string) error {
	claim, err := s.master.NameClaim(ctx, slug)
	if errors.Is(err, repository.ErrNotFound) {
		return ErrOrgBusy // released meanwhile: a retry can claim it
	}
	if err != nil {
		return ErrOrgExists
	}
	if claim.Sweep {
		return ErrOrgBusy // held for a moment while a stray collection goes
	}
	if err := s.run.Recover(ctx, claim.OrganizationID, false); err == nil {
		if _, err := s.master.NameClaim(ctx, slug); errors.Is(err, repository.ErrNotFound) {
			return ErrOrgBusy // freed: a retry can claim it
		}
	}
	return ErrOrgExists
}

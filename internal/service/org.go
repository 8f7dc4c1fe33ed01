package service

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/failpoint"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/security"
)

// OrgService signs organizations up and lets their admins change and
// delete them. Each of these is a lifecycle operation (see lifecycle.go).
type OrgService struct {
	master     *repository.MasterRepository
	tenants    *repository.TenantRepository
	ops        *repository.OperationRepository
	passwords  *security.Passwords
	auth       *AuthService
	log        *slog.Logger
	life       Lifecycle
	recovering sync.Map // organization id -> recovery running here
}

// NewOrgService builds an OrgService.
func NewOrgService(master *repository.MasterRepository, tenants *repository.TenantRepository, ops *repository.OperationRepository, passwords *security.Passwords, auth *AuthService, log *slog.Logger, life Lifecycle) *OrgService {
	if life.Lease <= 0 {
		life.Lease = 30 * time.Second
	}
	return &OrgService{master: master, tenants: tenants, ops: ops, passwords: passwords, auth: auth, log: log, life: life}
}

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
	orgID, adminID := bson.NewObjectID(), bson.NewObjectID()
	r, ctx, cancel, err := s.begin(ctx, model.OpCreate, orgID, model.OperationPlan{
		AdminID: adminID, Name: name, Slug: slug, Email: email, TenantDB: tenantDB,
	})
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer s.auth.orgs.forget(orgID, slug) // after the writes
	org, err := s.create(ctx, r, name, slug, email, hash)
	if err != nil {
		if undo := s.abandon(ctx, r, s.undoCreate); undo != nil {
			s.log.Error("roll back a sign-up", "organization_id", orgID.Hex(), "err", undo)
		}
		return nil, err
	}
	return org, nil
}

func (s *OrgService) create(ctx context.Context, r *run, name, slug, email, hash string) (*model.Organization, error) {
	orgID, adminID := r.op.OrgID, r.op.Plan.AdminID
	if err := s.claimSlug(ctx, slug, orgID); err != nil {
		if errors.Is(err, repository.ErrDuplicate) {
			return nil, s.claimedBy(ctx, slug)
		}
		return nil, err
	}
	if err := s.master.ClaimEmail(ctx, model.EmailKey(email), adminID); err != nil {
		return nil, mapDuplicate(err, ErrEmailTaken)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	org := &model.Organization{
		ID: orgID, Name: name, Slug: slug, CollectionName: repository.CollectionName(slug),
		AdminID: adminID, CreatedAt: now, UpdatedAt: now,
		State: model.StateCreating, OperationID: r.op.ID, TenantDB: r.op.Plan.TenantDB,
	}
	if err := s.master.InsertOrganization(ctx, org); err != nil {
		return nil, err
	}
	admin := &model.Admin{
		ID: adminID, Email: email, PasswordHash: hash, OrganizationID: orgID,
		Role: model.RoleAdmin, CreatedAt: now, UpdatedAt: now,
	}
	if err := s.master.InsertAdmin(ctx, admin); err != nil {
		return nil, err
	}
	failpoint.Reach("create:before-collection")
	uuid, err := s.tenants.Create(ctx, org.Tenant())
	if err != nil {
		return nil, err
	}
	failpoint.Reach("create:after-collection")
	if err := s.master.SetCollectionUUID(ctx, orgID, uuid); err != nil {
		return nil, err
	}
	commit, err := s.ops.Decide(ctx, r.op.ID, true)
	if err != nil {
		return nil, err
	}
	if !commit {
		return nil, ErrInterrupted
	}
	if err := s.completeCreate(ctx, r); err != nil {
		// Committed: whoever meets the operation next finishes it.
		s.log.Warn("finish a sign-up", "organization_id", orgID.Hex(), "err", err)
	}
	org.State, org.OperationID, org.CollectionUUID = "", bson.ObjectID{}, uuid
	return org, nil
}

// abandon rolls back an operation that failed before it committed, unless
// it was committed meanwhile (then it is left for recovery to finish).
func (s *OrgService) abandon(ctx context.Context, r *run, undo func(context.Context, *run) error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil // past half the lease: recovery takes it from here
	}
	commit, err := s.ops.Decide(ctx, r.op.ID, false)
	if err != nil || commit {
		return err
	}
	return undo(ctx, r)
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
		case time.Since(claim.CreatedAt) < s.life.Lease:
			return ErrOrgBusy
		}
		if err := s.master.ReleaseName(ctx, slug, claim.OrganizationID); err != nil {
			return err
		}
		s.log.Warn("released a dead sweeper's claim", "slug", slug, "claimed_at", claim.CreatedAt)
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
	owner := claim.OrganizationID
	if err := s.Recover(ctx, owner, false); err == nil {
		if _, err := s.master.NameOwner(ctx, slug); errors.Is(err, repository.ErrNotFound) {
			return ErrOrgBusy // freed: a retry can claim it
		}
	}
	return ErrOrgExists
}

// Get returns the organization whose name is name (see byName). A name
// with a character names may not hold names none.
func (s *OrgService) Get(ctx context.Context, name string) (*model.Organization, error) {
	if model.HiddenInName(name) {
		return nil, ErrOrgNotFound
	}
	org, _, err := s.byNameCached(ctx, name)
	return org, err
}

// UpdateOrg is what an admin may change on its organization; nil fields
// stay as they are.
type UpdateOrg struct {
	Name     string
	NewName  *string
	Email    *string
	Password *string
}

// Update changes the caller's own organization: its name (moving the
// tenant collection on the server), the admin's e-mail or password. A new
// e-mail or password ends the admin's earlier tokens; a rename does not.
// The answer is a fresh token of the caller's session.
func (s *OrgService) Update(ctx context.Context, p Principal, in UpdateOrg) (string, error) {
	if in.NewName == nil && in.Email == nil && in.Password == nil && s.auth.orgs.enabled() {
		// A refresh changes nothing: the cached record will do, if it is
		// the caller's.
		org, cached, err := s.byNameCached(ctx, in.Name)
		if err == nil && cached && org.ID == p.OrgID && org.AdminID == p.AdminID {
			return s.token(ctx, p, org)
		}
	}
	org, err := s.byName(ctx, in.Name)
	// A retried rename that happened: the old name is gone, or someone
	// else's by now.
	if (errors.Is(err, ErrOrgNotFound) || (err == nil && org.ID != p.OrgID)) && in.NewName != nil && in.Email == nil && in.Password == nil {
		if org, ok := s.renamedAlready(ctx, p, in); ok {
			return s.token(ctx, p, org)
		}
	}
	if err != nil {
		return "", err
	}
	if org.ID != p.OrgID || org.AdminID != p.AdminID {
		return "", ErrNotOwnerUpdate
	}
	admin, err := s.master.Admin(ctx, p.AdminID)
	if err != nil {
		return "", err
	}

	// Everything that can be refused without the database is checked
	// before anything is written.
	plan := model.OperationPlan{
		AdminID: admin.ID, Name: org.Name, Slug: org.Slug, OldName: org.Name, OldSlug: org.Slug,
		Email: admin.Email, OldEmail: admin.Email, TokenVersion: admin.TokenVersion,
		CollectionUUID: org.CollectionUUID, TenantDB: org.TenantDB,
	}
	if in.Password != nil && len(*in.Password) > security.MaxPasswordBytes {
		return "", ErrPasswordTooLong
	}
	if in.NewName != nil {
		plan.Name = model.CanonicalName(*in.NewName)
		if plan.Name == org.Name {
			return "", ErrNameConflict
		}
		if plan.Slug, err = slugOf(plan.Name, "new_organization_name"); err != nil {
			return "", err
		}
		if err := s.heldUnderLegacySlug(ctx, plan.Name, ErrNameConflict); err != nil {
			return "", err
		}
	}
	if in.Email != nil {
		plan.Email = model.NormalizeEmail(*in.Email)
	}
	if plan.Name == plan.OldName && plan.Email == plan.OldEmail && in.Password == nil {
		return s.auth.issue(admin, org, p.SessionStart)
	}
	if plan.Slug != plan.OldSlug && plan.CollectionUUID == "" {
		// Organizations made before collections were identified.
		if plan.CollectionUUID, err = s.tenants.UUID(ctx, org.Tenant()); err != nil {
			return "", err
		}
	}

	r, ctx, cancel, err := s.begin(ctx, model.OpUpdate, org.ID, plan)
	if err != nil {
		return "", err
	}
	defer cancel()
	defer s.auth.orgs.forget(org.ID, plan.OldSlug, plan.Slug) // after the writes
	if err := s.unchanged(ctx, r, org, admin); err != nil {
		return "", err
	}
	if in.Password != nil {
		// Hashed only once the operation is ours: concurrent changes of
		// one organization cost one hash, the others are refused at once.
		if err := s.hashPassword(ctx, r, *in.Password); err != nil {
			return "", err
		}
	}
	if err := s.prepareUpdate(ctx, r); err != nil {
		if undo := s.abandon(ctx, r, s.undoUpdate); undo != nil {
			s.log.Error("roll back an update", "organization_id", org.ID.Hex(), "err", undo)
		}
		return "", err
	}
	commit, err := s.ops.Decide(ctx, r.op.ID, true)
	if err != nil {
		return "", err
	}
	if !commit {
		return "", ErrInterrupted
	}
	if admin, err = s.completeUpdate(ctx, r); err != nil {
		return "", err
	}
	org.Name, org.Slug, org.CollectionName = plan.Name, plan.Slug, repository.CollectionName(plan.Slug)
	return s.auth.issue(admin, org, p.SessionStart)
}

// hashPassword hashes an update's new password into its recorded plan. If
// it cannot, the operation is given up, having done nothing.
func (s *OrgService) hashPassword(ctx context.Context, r *run, password string) error {
	hash, err := s.passwords.Hash(ctx, password)
	if err == nil {
		err = s.ops.SetPasswordHash(ctx, r.op, hash)
	}
	if err != nil {
		if derr := s.ops.Delete(ctx, r.op, 0); derr != nil {
			s.log.Error("give up an operation", "organization_id", r.op.OrgID.Hex(), "err", derr)
		}
	}
	return err
}

// unchanged checks, once the operation is recorded (so that nothing else
// can change the organization any more), that the organization and its
// admin are still as they were read to make the plan: another operation may
// have ended in between. If not, the operation is given up, having done
// nothing, and ErrOrgBusy asks the client to retry.
func (s *OrgService) unchanged(ctx context.Context, r *run, org *model.Organization, admin *model.Admin) error {
	nowOrg, err := s.master.Organization(ctx, org.ID)
	if err == nil {
		var nowAdmin *model.Admin
		nowAdmin, err = s.master.Admin(ctx, admin.ID)
		if err == nil && nowOrg.Name == org.Name && nowOrg.Slug == org.Slug && nowOrg.State == "" &&
			nowOrg.AdminID == admin.ID && nowAdmin.Email == admin.Email && nowAdmin.TokenVersion == admin.TokenVersion {
			return nil
		}
	}
	if derr := s.ops.Delete(ctx, r.op, 0); derr != nil {
		s.log.Error("give up an operation", "organization_id", org.ID.Hex(), "err", derr)
	}
	if err != nil && !errors.Is(err, repository.ErrNotFound) {
		return err
	}
	return ErrOrgBusy
}

// prepareUpdate is an update's first phase: the new slug and e-mail are
// claimed, and a renamed organization is marked, so that document writes
// racing the move notice it.
func (s *OrgService) prepareUpdate(ctx context.Context, r *run) error {
	p := r.op.Plan
	if p.Slug != p.OldSlug {
		if err := s.claimSlug(ctx, p.Slug, r.op.OrgID); err != nil {
			return mapDuplicate(err, ErrNameConflict)
		}
	}
	if model.EmailKey(p.Email) != model.EmailKey(p.OldEmail) {
		if err := s.master.ClaimEmail(ctx, model.EmailKey(p.Email), p.AdminID); err != nil {
			return mapDuplicate(err, ErrEmailTaken)
		}
	}
	if p.Name != p.OldName {
		return s.master.SetOrganizationState(ctx, r.op.OrgID, model.StateRenaming, r.op.ID)
	}
	return nil
}

// renamedAlready answers a retried rename that already happened: the
// caller's organization now has the new name and had the old one.
func (s *OrgService) renamedAlready(ctx context.Context, p Principal, in UpdateOrg) (*model.Organization, bool) {
	org, err := s.master.Organization(ctx, p.OrgID)
	if err != nil || org.AdminID != p.AdminID || org.State != "" {
		return nil, false
	}
	return org, model.SameName(org.PreviousName, in.Name) && org.Name == model.CanonicalName(*in.NewName)
}

func (s *OrgService) token(ctx context.Context, p Principal, org *model.Organization) (string, error) {
	admin, err := s.master.Admin(ctx, p.AdminID)
	if err != nil {
		return "", err
	}
	return s.auth.issue(admin, org, p.SessionStart)
}

// Delete removes the caller's own organization: its tenant collection, its
// admin and its metadata.
func (s *OrgService) Delete(ctx context.Context, p Principal, name string) error {
	org, err := s.byName(ctx, name)
	if errors.Is(err, ErrOrgNotFound) {
		if derr := s.Deleted(ctx, p.OrgID, p.AdminID, name); !errors.Is(derr, ErrOrgNotFound) {
			return derr // a retry, on an instance that still trusted the token
		}
	}
	if err != nil {
		return err
	}
	if org.ID != p.OrgID || org.AdminID != p.AdminID {
		// The name may be someone else's since the caller's own deletion.
		if derr := s.Deleted(ctx, p.OrgID, p.AdminID, name); !errors.Is(derr, ErrOrgNotFound) {
			return derr
		}
		return ErrNotOwnerDelete
	}
	if org.State == model.StateDeleting {
		s.nudge(org.ID) // a retry meeting its own deletion under way
		return ErrOrgBusy
	}
	admin, err := s.master.Admin(ctx, org.AdminID)
	if err != nil {
		return err
	}
	r, ctx, cancel, err := s.begin(ctx, model.OpDelete, org.ID, model.OperationPlan{
		AdminID: admin.ID, OldName: org.Name, OldSlug: org.Slug, OldEmail: admin.Email, TenantDB: org.TenantDB,
		TokenVersion: admin.TokenVersion, CollectionUUID: org.CollectionUUID,
	})
	if err != nil {
		return err
	}
	defer cancel()
	defer s.auth.orgs.forget(org.ID, org.Slug) // after the writes
	if err := s.unchanged(ctx, r, org, admin); err != nil {
		return err
	}
	if err := s.master.SetOrganizationState(ctx, org.ID, model.StateDeleting, r.op.ID); err != nil {
		if undo := s.ops.Delete(ctx, r.op, 0); undo != nil {
			s.log.Error("abandon a deletion", "organization_id", org.ID.Hex(), "err", undo)
		}
		return err
	}
	if _, err := s.ops.Decide(ctx, r.op.ID, true); err != nil {
		return err
	}
	return s.completeDelete(ctx, r)
}

// Deleted says how a retried delete of the admin's organization under the
// given name is answered: nil when that admin deleted it recently enough
// that the retry is answered as the first delete was; ErrOrgBusy (after a
// nudge) while that deletion is still under way, for instance after its
// instance died; otherwise ErrOrgNotFound.
func (s *OrgService) Deleted(ctx context.Context, orgID, adminID bson.ObjectID, name string) error {
	op, err := s.ops.Get(ctx, orgID)
	if err != nil || op.Kind != model.OpDelete || op.Plan.AdminID != adminID || !model.SameName(op.Plan.OldName, name) {
		return ErrOrgNotFound
	}
	if op.DoneAt.IsZero() {
		s.nudge(orgID)
		return ErrOrgBusy
	}
	return nil
}

// byName finds the organization named name (exactly, or once
// NFKC-normalized), through the claim on its slug: a lookup by _id, two
// when the name's slug before normalization differs (see LookupSlugs).
func (s *OrgService) byName(ctx context.Context, name string) (*model.Organization, error) {
	for _, slug := range model.LookupSlugs(name) {
		org, err := s.master.OrganizationBySlug(ctx, slug)
		if errors.Is(err, repository.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if model.SameName(org.Name, name) && org.State != model.StateCreating {
			return org, nil
		}
	}
	return nil, ErrOrgNotFound
}

// byNameCached is byName through the organization cache; cached says the
// record came from it. An organization read here at rest under its own
// slug is cached.
func (s *OrgService) byNameCached(ctx context.Context, name string) (_ *model.Organization, cached bool, _ error) {
	if !s.auth.orgs.enabled() {
		org, err := s.byName(ctx, name)
		return org, false, err
	}
	for _, slug := range model.LookupSlugs(name) {
		key := orgSlugKey(slug)
		org, _, ok := s.auth.orgs.get(key)
		if !ok {
			gen := s.auth.orgs.generation(key)
			// Concurrent misses share the read (see flights).
			found, err := s.auth.orgReads.do(ctx, orgReadKey{key, gen}, func(ctx context.Context) (model.Organization, error) {
				org, err := s.master.OrganizationBySlug(ctx, slug)
				if err != nil {
					return model.Organization{}, err
				}
				if org.Slug == slug {
					s.auth.orgs.put(key, org, gen)
				}
				return *org, nil
			})
			if errors.Is(err, repository.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, false, err
			}
			org = &found
		}
		if model.SameName(org.Name, name) && org.State != model.StateCreating {
			return org, ok, nil
		}
	}
	return nil, false, ErrOrgNotFound
}

// heldUnderLegacySlug answers taken when an organization made before names
// were normalized holds name under the slug it had then (see
// model.LookupSlugs): its claim is not on the name's slug now.
func (s *OrgService) heldUnderLegacySlug(ctx context.Context, name string, taken error) error {
	if len(model.LookupSlugs(name)) < 2 {
		return nil
	}
	_, err := s.byName(ctx, name)
	switch {
	case err == nil:
		return taken
	case errors.Is(err, ErrOrgNotFound):
		return nil
	}
	return err
}

// slugOf checks that a canonical name is allowed and has a usable slug.
func slugOf(name, field string) (string, error) {
	slug := model.Slug(name)
	switch {
	case model.HiddenInName(name):
		return "", &InvalidError{Field: field, Message: model.NameCharsMessage, Type: model.NameCharsType}
	case slug == "":
		return "", &InvalidError{Field: field, Message: "name must contain at least one non-space character", Type: "value_error.name.empty"}
	case len(slug) > model.MaxSlugBytes:
		return "", &InvalidError{Field: field, Message: "name is too long for a collection name", Type: "value_error.name.too_long"}
	}
	return slug, nil
}

func mapDuplicate(err, to error) error {
	if errors.Is(err, repository.ErrDuplicate) {
		return to
	}
	return err
}

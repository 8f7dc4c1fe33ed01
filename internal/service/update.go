package service

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/failpoint"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/security"
)

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
	if p.Role != model.RoleOwner {
		return "", ErrNotOwnerUpdate // whatever its fields
	}
	if in.NewName == nil && in.Email == nil && in.Password == nil && s.auth.orgs.enabled() {
		// A refresh changes nothing: the cached record will do, if it is
		// the caller's.
		org, cached, err := s.byNameCached(ctx, in.Name)
		if err == nil && cached && org.ID == p.OrgID && p.Role == model.RoleOwner {
			return s.token(p, org)
		}
	}
	org, err := s.byName(ctx, in.Name)
	// A retried rename that happened: the old name is gone, or someone
	// else's by now.
	if (errors.Is(err, ErrOrgNotFound) || (err == nil && org.ID != p.OrgID)) && in.NewName != nil && in.Email == nil && in.Password == nil {
		if org, ok := s.renamedAlready(ctx, p, in); ok {
			return s.token(p, org)
		}
	}
	if err != nil {
		return "", err
	}
	if org.ID != p.OrgID || p.Role != model.RoleOwner {
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
		return s.auth.issue(admin, org, p.member(), p.SessionStart)
	}
	if plan.Events, err = s.orgUpdateEvents(ctx, p, org, plan, in.Password != nil); err != nil {
		return "", err
	}
	if plan.Slug != plan.OldSlug && plan.CollectionUUID == "" {
		// Organizations made before collections were identified.
		if plan.CollectionUUID, err = s.tenants.UUID(ctx, org.Tenant()); err != nil {
			return "", err
		}
	}

	r, ctx, cancel, err := s.run.Begin(ctx, model.OpUpdate, org.ID, plan)
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
	if _, err := s.run.Drive(ctx, r); err != nil {
		return "", err
	}
	if plan.Email != plan.OldEmail || in.Password != nil {
		admin.TokenVersion = plan.TokenVersion + 1
	}
	org.Name, org.Slug, org.CollectionName = plan.Name, plan.Slug, repository.CollectionName(plan.Slug)
	return s.auth.issue(admin, org, p.member(), p.SessionStart)
}

// hashPassword hashes an update's new password into its recorded plan. If
// it cannot, the operation is given up, having done nothing.
func (s *OrgService) hashPassword(ctx context.Context, r *Run, password string) error {
	hash, err := s.passwords.Hash(ctx, password)
	if err == nil {
		err = s.ops.SetPasswordHash(ctx, r.Op, hash)
	}
	if err != nil {
		s.run.GiveUp(ctx, r)
	}
	return err
}

// unchanged checks, once the operation is recorded (so that nothing else
// can change the organization any more), that the organization and its
// admin are still as they were read to make the plan: another operation may
// have ended in between. If not, the operation is given up, having done
// nothing, and ErrOrgBusy asks the client to retry.
func (s *OrgService) unchanged(ctx context.Context, r *Run, org *model.Organization, admin *model.Admin) error {
	nowOrg, err := s.master.Organization(ctx, org.ID)
	if err == nil {
		var nowAdmin *model.Admin
		var member *model.Membership
		nowAdmin, err = s.master.Admin(ctx, admin.ID)
		if err == nil {
			member, err = s.master.Membership(ctx, admin.ID, org.ID)
		}
		if err == nil && nowOrg.Name == org.Name && nowOrg.Slug == org.Slug && nowOrg.State == "" &&
			member.Role == model.RoleOwner && nowAdmin.Email == admin.Email && nowAdmin.TokenVersion == admin.TokenVersion {
			return nil
		}
	}
	s.run.GiveUp(ctx, r)
	if err != nil && !errors.Is(err, repository.ErrNotFound) {
		return err
	}
	return ErrOrgBusy
}

// prepareUpdate is an update's first phase: the new slug and e-mail are
// claimed, and a renamed organization is marked, so that document writes
// racing the move notice it.
func (s *OrgService) prepareUpdate(ctx context.Context, r *Run) error {
	p := r.Op.Plan
	if p.Slug != p.OldSlug {
		if err := s.claimSlug(ctx, p.Slug, r.Op.OrgID); err != nil {
			return mapDuplicate(err, ErrNameConflict)
		}
	}
	if model.EmailKey(p.Email) != model.EmailKey(p.OldEmail) {
		if err := s.master.ClaimEmail(ctx, model.EmailKey(p.Email), p.AdminID); err != nil {
			return mapDuplicate(err, ErrEmailTaken)
		}
	}
	if p.Name != p.OldName {
		return s.master.SetOrganizationState(ctx, r.Op.OrgID, model.StateRenaming, r.Op.ID)
	}
	return nil
}

// completeUpdate rolls a committed update forward: the admin's new e-mail
// and password, then the move of the tenant collection and the new name,
// then the release of the old claims.
func (s *OrgService) completeUpdate(ctx context.Context, r *Run) error {
	p := r.Op.Plan
	if p.Email != p.OldEmail || p.PasswordHash != "" {
		version := p.TokenVersion + 1
		change := repository.AdminChange{Version: &version}
		if p.Email != p.OldEmail {
			change.Email = &p.Email
		}
		if p.PasswordHash != "" {
			change.PasswordHash = &p.PasswordHash
		}
		_, err := s.master.UpdateAdmin(ctx, p.AdminID, change)
		s.forgetAdmin(p.AdminID) // after the write, whether it was done or not
		if err != nil {
			return err
		}
	}
	if p.Name != p.OldName {
		if p.Slug != p.OldSlug {
			failpoint.Reach("rename:before-collection")
			if err := s.tenants.Rename(ctx, p.OldTenant(), p.Slug, p.CollectionUUID); err != nil {
				return err
			}
			failpoint.Reach("rename:after-collection")
		}
		if err := s.master.FinishRename(ctx, r.Op.OrgID, p.Name, p.Slug, p.OldName); err != nil {
			return err
		}
		s.forgetAdmin(p.AdminID)
		if p.Slug != p.OldSlug {
			// A late write may have re-created the old collection.
			if err := s.dropHeld(ctx, r, p.OldTenant()); err != nil {
				return err
			}
			if err := s.master.ReleaseName(ctx, p.OldSlug, r.Op.OrgID); err != nil {
				return err
			}
			s.sweep(ctx, p.OldTenant())
		}
	}
	if model.EmailKey(p.Email) != model.EmailKey(p.OldEmail) {
		return s.master.ReleaseEmail(ctx, model.EmailKey(p.OldEmail), p.AdminID)
	}
	return nil
}

// undoUpdate rolls back an update that was not committed: its claims are
// released and the organization put back at rest.
func (s *OrgService) undoUpdate(ctx context.Context, r *Run) error {
	p := r.Op.Plan
	if p.Slug != p.OldSlug {
		if err := s.master.ReleaseName(ctx, p.Slug, r.Op.OrgID); err != nil {
			return err
		}
	}
	if model.EmailKey(p.Email) != model.EmailKey(p.OldEmail) {
		if err := s.master.ReleaseEmail(ctx, model.EmailKey(p.Email), p.AdminID); err != nil {
			return err
		}
	}
	return s.atRest(ctx, r)
}

// atRest puts the operation's organization back at rest (gone is fine).
func (s *OrgService) atRest(ctx context.Context, r *Run) error {
	err := s.master.SetOrganizationState(ctx, r.Op.OrgID, "", bson.ObjectID{})
	if errors.Is(err, repository.ErrNotFound) {
		return nil
	}
	return err
}

// renamedAlready answers a retried rename that already happened: the
// caller's organization now has the new name and had the old one.
func (s *OrgService) renamedAlready(ctx context.Context, p Principal, in UpdateOrg) (*model.Organization, bool) {
	org, err := s.master.Organization(ctx, p.OrgID)
	if err != nil || p.Role != model.RoleOwner || org.State != "" {
		return nil, false
	}
	return org, model.SameName(org.PreviousName, in.Name) && org.Name == model.CanonicalName(*in.NewName)
}

// token is a fresh token of the caller's session, of the token version
// the caller's token was checked against: an update that changes nothing
// reads no admin.
func (s *OrgService) token(p Principal, org *model.Organization) (string, error) {
	return s.auth.issue(&model.Admin{ID: p.AdminID, TokenVersion: p.TokenVersion}, org, p.member(), p.SessionStart)
}

package service

import (
	"context"
	"errors"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/failpoint"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// SetDeleteRetention sets how long a deleted organization may be restored:
// its tenant collection is moved to a trash collection and what a restore
// needs to an archive, until a purge (purge.go). 0, the default, drops
// everything at once.
func (s *OrgService) SetDeleteRetention(d time.Duration) { s.retention = d }

// Delete removes the caller's own organization (an owner's): its tenant
// collection (to the trash, with a restore window), its memberships, the
// accounts left in no organization, and its metadata.
func (s *OrgService) Delete(ctx context.Context, p Principal, name string) error {
	if p.Role != "" && p.Role != model.RoleOwner {
		return ErrNotOwnerDelete // whatever the name (a deleted organization's token has no role)
	}
	org, err := s.byName(ctx, name)
	if errors.Is(err, ErrOrgNotFound) {
		if derr := s.Deleted(ctx, p.OrgID, p.AdminID, name); !errors.Is(derr, ErrOrgNotFound) {
			return derr // a retry, on an instance that still trusted the token
		}
	}
	if err != nil {
		return err
	}
	if org.ID != p.OrgID || p.Role != model.RoleOwner {
		// The name may be someone else's since the caller's own deletion.
		if derr := s.Deleted(ctx, p.OrgID, p.AdminID, name); !errors.Is(derr, ErrOrgNotFound) {
			return derr
		}
		return ErrNotOwnerDelete
	}
	if org.State == model.StateDeleting {
		s.run.nudge(org.ID) // a retry meeting its own deletion under way
		return ErrOrgBusy
	}
	admin, err := s.master.Admin(ctx, p.AdminID)
	if err != nil {
		return err
	}
	plan := model.OperationPlan{
		AdminID: admin.ID, OldName: org.Name, OldSlug: org.Slug, OldEmail: admin.Email, TenantDB: org.TenantDB,
		TokenVersion: admin.TokenVersion, CollectionUUID: org.CollectionUUID,
		Events: []model.PlannedEvent{planned(ctx, org.ID, "deleted", ActOrgDeleted, p.actor(),
			[]model.Target{orgTarget(org.ID, org.Name)}, nil)},
	}
	if s.retention > 0 {
		plan.Trash = &model.TrashPlan{Org: org.ID, Trash: repository.TrashName(org.ID), PurgeAt: model.At(time.Now().Add(s.retention))}
	}
	r, ctx, cancel, err := s.run.Begin(ctx, model.OpDelete, org.ID, plan)
	if err != nil {
		return err
	}
	defer cancel()
	defer s.auth.orgs.forget(org.ID, org.Slug) // after the writes
	if err := s.unchanged(ctx, r, org, admin); err != nil {
		return err
	}
	_, err = s.run.Drive(ctx, r)
	return err
}

// Deleted says how a retried delete of the admin's organization under the
// given name is answered: nil when that admin deleted it recently enough
// that the retry is answered as the first delete was; ErrOrgBusy (after a
// nudge) while that deletion is still under way, for instance after its
// instance died; otherwise ErrOrgNotFound.
func (s *OrgService) Deleted(ctx context.Context, orgID, adminID bson.ObjectID, name string) error {
	op, err := s.run.Operation(ctx, orgID)
	if err != nil || op.Kind != model.OpDelete || op.Plan.AdminID != adminID || !model.SameName(op.Plan.OldName, name) {
		return ErrOrgNotFound
	}
	if op.DoneAt.IsZero() {
		s.run.nudge(orgID)
		return ErrOrgBusy
	}
	return nil
}

// prepareDelete marks the organization deleting: document writes stop.
func (s *OrgService) prepareDelete(ctx context.Context, r *Run) error {
	return s.master.SetOrganizationState(ctx, r.Op.OrgID, model.StateDeleting, r.Op.ID)
}

// undoDelete puts back at rest an organization whose deletion was never
// committed.
func (s *OrgService) undoDelete(ctx context.Context, r *Run) error { return s.atRest(ctx, r) }

// completeDelete removes the tenant collection (or, with a restore window,
// archives the organization and moves the collection to the trash), the
// memberships (and the accounts they leave alone) and the organization,
// then gives up the name.
func (s *OrgService) completeDelete(ctx context.Context, r *Run) error {
	p := r.Op.Plan
	if p.Trash != nil {
		if err := s.toTrash(ctx, r); err != nil {
			return err
		}
	} else {
		failpoint.Reach("delete:before-drop")
		if err := s.dropHeld(ctx, r, p.OldTenant()); err != nil {
			return err
		}
		failpoint.Reach("delete:after-drop")
	}
	if err := s.endInvitations(ctx, r.Op.OrgID); err != nil {
		return err
	}
	ended, err := s.endMemberships(ctx, r.Op.OrgID)
	if err != nil {
		return err
	}
	if !ended[p.AdminID] {
		// An operation begun before teams: its admin had no membership.
		if err := s.dropIfAlone(ctx, p.AdminID); err != nil {
			return err
		}
	}
	if err := s.master.DeleteOrganization(ctx, r.Op.OrgID); err != nil {
		return err
	}
	// Dropped again: a late write may have re-created it.
	if err := s.dropHeld(ctx, r, p.OldTenant()); err != nil {
		return err
	}
	if err := s.master.ReleaseName(ctx, p.OldSlug, r.Op.OrgID); err != nil {
		return err
	}
	s.sweep(ctx, p.OldTenant())
	return nil
}

// toTrash archives the organization, then moves its tenant collection to
// the trash. Both steps may run again: the archive is written once, before
// anything it records is removed, and the move is by the collection's
// UUID.
func (s *OrgService) toTrash(ctx context.Context, r *Run) error {
	p := r.Op.Plan
	if err := s.archive(ctx, r); err != nil {
		return err
	}
	failpoint.Reach("delete:before-trash")
	uuid := p.CollectionUUID
	if uuid == "" {
		// An organization from before collections' UUIDs were recorded:
		// moved already, or whatever its held name has.
		if moved, err := s.tenants.TrashUUID(ctx, p.TenantDB, p.Trash.Trash); err != nil || moved != "" {
			return err
		}
		claim, err := s.master.NameClaim(ctx, p.OldSlug)
		if errors.Is(err, repository.ErrNotFound) || (err == nil && claim.OrganizationID != r.Op.OrgID) {
			return nil
		}
		if err != nil {
			return err
		}
		if uuid, err = s.tenants.UUID(ctx, p.OldTenant()); err != nil || uuid == "" {
			return err
		}
	}
	err := s.tenants.MoveToTrash(ctx, p.OldTenant(), uuid, p.Trash.Trash)
	if errors.Is(err, repository.ErrNotFound) {
		// It had no collection (orgsvc check reports the archive alone).
		s.log.Warn("a deleted organization had no tenant collection to keep", "organization_id", r.Op.OrgID.Hex())
		return nil
	}
	if err != nil {
		return err
	}
	failpoint.Reach("delete:after-trash")
	return nil
}

// archive records what a restore of the organization needs: the
// organization, its memberships, and the accounts the deletion is about to
// remove. Written once, by a unique insert, before any of it is removed:
// a run cut short and run again keeps the first, whole, archive.
func (s *OrgService) archive(ctx context.Context, r *Run) error {
	p := r.Op.Plan
	if _, err := s.master.Archive(ctx, r.Op.OrgID); err == nil || !errors.Is(err, repository.ErrNotFound) {
		return err
	}
	org, err := s.master.Organization(ctx, r.Op.OrgID)
	if errors.Is(err, repository.ErrNotFound) {
		return nil // removed by a run that wrote the archive; it went since
	}
	if err != nil {
		return err
	}
	members, err := s.master.Members(ctx, org.ID, bson.ObjectID{}, 0)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(members, func(m model.Membership) bool { return m.AccountID == p.AdminID }) {
		// An admin from before teams: its organization's owner.
		members = append(members, model.Membership{ID: model.MembershipID(p.AdminID, org.ID), AccountID: p.AdminID, OrgID: org.ID, Role: model.RoleOwner, JoinedAt: org.CreatedAt})
	}
	d := &model.DeletedOrg{
		ID: org.ID, DeletionID: r.Op.ID, Org: *org, Members: members, Trash: p.Trash.Trash,
		DeletedAt: r.Op.StartedAt, PurgeAt: p.Trash.PurgeAt,
		DeletedBy: accountActor(p.AdminID, p.OldEmail),
	}
	if len(p.Events) > 0 {
		d.DeletedBy = p.Events[0].Actor
	}
	d.Org.State, d.Org.OperationID = "", bson.ObjectID{}
	for _, m := range members {
		alone, a, err := s.aloneBut(ctx, m.AccountID, org.ID)
		if err != nil {
			return err
		}
		if alone && a != nil {
			d.Accounts = append(d.Accounts, *a)
		}
	}
	return mapDuplicate(s.master.InsertArchive(ctx, d), nil)
}

// aloneBut reports whether account belongs to no organization but
// leaving, and returns it (nil when it is gone).
func (s *OrgService) aloneBut(ctx context.Context, account, leaving bson.ObjectID) (bool, *model.Admin, error) {
	ms, err := s.master.MembershipsOf(ctx, account)
	if err != nil {
		return false, nil, err
	}
	for _, m := range ms {
		if m.OrgID != leaving {
			return false, nil, nil
		}
	}
	a, err := s.master.Admin(ctx, account)
	if errors.Is(err, repository.ErrNotFound) {
		return true, nil, nil
	}
	return err == nil, a, err
}

// dropHeld drops t, the collection of a slug the operation claimed, only
// while the operation still holds that claim. Phase two may run again
// after a takeover, when the slug was released already and another
// organization may have claimed it since and made its collection there.
func (s *OrgService) dropHeld(ctx context.Context, r *Run, t model.Tenant) error {
	claim, err := s.master.NameClaim(ctx, t.Slug)
	if errors.Is(err, repository.ErrNotFound) || (err == nil && claim.OrganizationID != r.Op.OrgID) {
		return nil // released: whatever is there now is not this operation's
	}
	if err != nil {
		return err
	}
	return s.tenants.Drop(ctx, t)
}

// endMemberships removes every membership of org, each after its account
// if that was the account's last one, so that a run cut short anywhere
// finds, when run again, every account it has yet to look at; ended are
// the accounts it looked at.
func (s *OrgService) endMemberships(ctx context.Context, org bson.ObjectID) (ended map[bson.ObjectID]bool, _ error) {
	members, err := s.master.Members(ctx, org, bson.ObjectID{}, 0)
	if err != nil {
		return nil, err
	}
	ended = map[bson.ObjectID]bool{}
	for _, m := range members {
		if err := s.dropIfAloneBut(ctx, m.AccountID, org); err != nil {
			return nil, err
		}
		if err := s.master.DeleteMembership(ctx, m.ID); err != nil {
			return nil, err
		}
		s.forgetAdmin(m.AccountID)
		ended[m.AccountID] = true
	}
	return ended, nil
}

// dropIfAlone deletes an account that belongs to no organization, and
// releases its e-mail, so the address can sign up again.
func (s *OrgService) dropIfAlone(ctx context.Context, account bson.ObjectID) error {
	return s.dropIfAloneBut(ctx, account, bson.ObjectID{})
}

// dropIfAloneBut is dropIfAlone, counting a membership of leaving as gone.
func (s *OrgService) dropIfAloneBut(ctx context.Context, account, leaving bson.ObjectID) error {
	alone, a, err := s.aloneBut(ctx, account, leaving)
	if err != nil || !alone {
		return err
	}
	if a == nil {
		// Deleted by a run cut short before it released the e-mail.
		claims, err := s.master.EmailClaimsOf(ctx, account)
		if err != nil {
			return err
		}
		for _, c := range claims {
			if err := s.master.ReleaseEmail(ctx, c.Key, account); err != nil {
				return err
			}
		}
		return nil
	}
	err = s.master.DeleteAdmin(ctx, account)
	s.forgetAdmin(account) // after the write, whether it was done or not
	if err != nil {
		return err
	}
	failpoint.Reach("delete:after-account")
	return s.master.ReleaseEmail(ctx, model.EmailKey(a.Email), account)
}

package service

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/failpoint"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// ActOrgRestored: an operator restored a deleted organization.
const ActOrgRestored = "org.restored"

// Restore's errors.
var (
	// ErrNotDeleted: no archive of a deleted organization has that id
	// (never deleted with a restore window, purged, or restored).
	ErrNotDeleted = errors.New("no restorable deleted organization has that id")
	// ErrNoOwner: none of the organization's owners would come back.
	ErrNoOwner = errors.New("no owner would come back")
	// ErrAccountNotFound: no account has the e-mail named as the owner.
	ErrAccountNotFound = errors.New("no account has that e-mail")
)

// RestoreRequest is an operator's restore of a deleted organization.
type RestoreRequest struct {
	ID bson.ObjectID
	// Name, when set, is the name it comes back under; otherwise its own.
	Name string
	// Owner, when set, is the e-mail of an existing account made an owner.
	Owner string
	// Command names the operator's command, the actor of the event.
	Command string
}

// Restored is one account of a restore: back as a member (Role), or left
// out (Reason).
type Restored struct {
	AccountID bson.ObjectID
	Email     string
	Role      string
	// Recreated says the account was made anew, with its old password.
	Recreated bool
	Reason    string
}

// Left-out reasons.
const (
	LeftEmailTaken  = "e-mail taken"
	LeftAccountGone = "account deleted since"
)

// RestoreResult is what a restore brought back.
type RestoreResult struct {
	Org       *model.Organization
	Documents int64
	Members   []Restored
	LeftOut   []Restored
	// Already says a restore brought it back before (a retry).
	Already bool
}

// DeletedSummary is a restorable organization, for orgsvc org deleted.
type DeletedSummary struct {
	Archive model.DeletedOrg
	Stats   repository.Stats
}

// ListDeleted returns the restorable organizations, the latest deleted
// first, with what their trash collections hold (a collStats each).
func (s *OrgService) ListDeleted(ctx context.Context) ([]DeletedSummary, error) {
	archives, err := s.master.AllArchives(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(archives, func(a, b model.DeletedOrg) int { return b.DeletedAt.Compare(a.DeletedAt) })
	out := make([]DeletedSummary, 0, len(archives))
	for _, d := range archives {
		st, err := s.tenants.TrashStats(ctx, d.Org.TenantDB, d.Trash)
		if err != nil {
			return nil, err
		}
		out = append(out, DeletedSummary{Archive: d, Stats: st})
	}
	return out, nil
}

// Restore brings back a deleted organization from its archive, with the
// same id: its documents (the trash collection renamed back), the
// memberships of accounts that still exist, and the deleted accounts whose
// e-mail is still free, made anew with their old password hash. It runs
// as an operation keyed by the deletion, as a purge does, so the two never
// run at once. It refuses, changing nothing, when the name is taken
// (ErrOrgExists: give another) or no owner would come back (ErrNoOwner)
// unless Owner names an existing account.
func (s *OrgService) Restore(ctx context.Context, req RestoreRequest) (*RestoreResult, error) {
	d, err := s.master.Archive(ctx, req.ID)
	if errors.Is(err, repository.ErrNotFound) {
		return s.restored(ctx, req.ID)
	}
	if err != nil {
		return nil, err
	}
	name := d.Org.Name
	if req.Name != "" {
		name = model.CanonicalName(req.Name)
	}
	slug, err := slugOf(name, "name")
	if err != nil {
		return nil, err
	}
	taken := fmt.Errorf("%q: %w", name, ErrOrgExists)
	if err := s.heldUnderLegacySlug(ctx, name, taken); err != nil {
		return nil, err
	}
	if _, err := s.master.NameClaim(ctx, slug); err == nil {
		return nil, taken
	} else if !errors.Is(err, repository.ErrNotFound) {
		return nil, err
	}
	res, t, owner, err := s.planMembers(ctx, d, req.Owner)
	if err != nil {
		return nil, err
	}
	var changes map[string]model.Change
	if name != d.Org.Name {
		changes = map[string]model.Change{"organization_name": change(d.Org.Name, name)}
	}
	r, ctx, cancel, err := s.run.Begin(ctx, model.OpRestore, d.DeletionID, model.OperationPlan{
		AdminID: owner, Name: name, Slug: slug, OldName: d.Org.Name, OldSlug: d.Org.Slug,
		TenantDB: d.Org.TenantDB, CollectionUUID: d.Org.CollectionUUID, Trash: t,
		Events: []model.PlannedEvent{planned(ctx, d.ID, "restored", ActOrgRestored, model.Actor{Type: model.ActorSystem, ID: req.Command},
			[]model.Target{orgTarget(d.ID, name)}, changes)},
	})
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer s.forgetOrg(d.ID, slug) // after the writes
	if _, err := s.run.Drive(ctx, r); errors.Is(err, ErrOrgExists) {
		return nil, taken
	} else if err != nil {
		return nil, err
	}
	org, err := s.master.Organization(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	st, err := s.tenants.Stats(ctx, org.Tenant())
	if err != nil {
		return nil, err
	}
	res.Org, res.Documents = org, st.Documents
	return res, nil
}

// planMembers decides who comes back with d: the members whose account
// exists, and those whose account the deletion removed and whose e-mail is
// free (made anew); ownerEmail's account as an owner, if set. owner is the
// organization's admin after the restore; ErrNoOwner when there is none.
func (s *OrgService) planMembers(ctx context.Context, d *model.DeletedOrg, ownerEmail string) (res *RestoreResult, t *model.TrashPlan, owner bson.ObjectID, _ error) {
	var none bson.ObjectID
	res = &RestoreResult{}
	t = &model.TrashPlan{Org: d.ID, Trash: d.Trash}
	for _, m := range d.Members {
		back := Restored{AccountID: m.AccountID, Role: m.Role}
		a, err := s.master.Admin(ctx, m.AccountID)
		switch {
		case err == nil:
			back.Email = a.Email
		case !errors.Is(err, repository.ErrNotFound):
			return nil, nil, none, err
		default:
			old, ok := d.Account(m.AccountID)
			if !ok {
				back.Reason = LeftAccountGone
				res.LeftOut = append(res.LeftOut, back)
				continue
			}
			back.Email = old.Email
			if _, err := s.master.EmailClaim(ctx, model.EmailKey(old.Email)); err == nil {
				back.Reason = LeftEmailTaken
				res.LeftOut = append(res.LeftOut, back)
				continue
			} else if !errors.Is(err, repository.ErrNotFound) {
				return nil, nil, none, err
			}
			back.Recreated = true
			t.NewAccounts = append(t.NewAccounts, old.ID)
			t.NewEmails = append(t.NewEmails, old.Email)
		}
		res.Members = append(res.Members, back)
	}
	if ownerEmail != "" {
		a, err := s.master.AdminByEmailKey(ctx, model.EmailKey(ownerEmail))
		if errors.Is(err, repository.ErrNotFound) {
			return nil, nil, none, fmt.Errorf("%w: %s", ErrAccountNotFound, ownerEmail)
		}
		if err != nil {
			return nil, nil, none, err
		}
		if i := slices.IndexFunc(res.Members, func(b Restored) bool { return b.AccountID == a.ID }); i >= 0 {
			res.Members[i].Role = model.RoleOwner
		} else {
			res.Members = append(res.Members, Restored{AccountID: a.ID, Email: a.Email, Role: model.RoleOwner})
		}
	}
	for _, b := range res.Members {
		if b.Role == model.RoleOwner && (owner.IsZero() || b.AccountID == d.Org.AdminID) {
			owner = b.AccountID
		}
	}
	if owner.IsZero() {
		return nil, nil, none, ErrNoOwner
	}
	at := model.Now()
	for _, b := range res.Members {
		joined := at
		if i := slices.IndexFunc(d.Members, func(m model.Membership) bool { return m.AccountID == b.AccountID }); i >= 0 {
			joined = d.Members[i].JoinedAt
		}
		t.Members = append(t.Members, model.Membership{
			ID: model.MembershipID(b.AccountID, d.ID), AccountID: b.AccountID, OrgID: d.ID, Role: b.Role,
			Grant: bson.NewObjectID(), JoinedAt: joined,
		})
	}
	return res, t, owner, nil
}

// restored answers a retried restore of id: the organization, if a
// restore brought it back (Already); ErrNotDeleted otherwise.
func (s *OrgService) restored(ctx context.Context, id bson.ObjectID) (*RestoreResult, error) {
	org, err := s.master.Organization(ctx, id)
	if errors.Is(err, repository.ErrNotFound) || (err == nil && (org.RestoredAt.IsZero() || org.State != "")) {
		return nil, ErrNotDeleted
	}
	if err != nil {
		return nil, err
	}
	st, err := s.tenants.Stats(ctx, org.Tenant())
	if err != nil {
		return nil, err
	}
	return &RestoreResult{Org: org, Documents: st.Documents, Already: true}, nil
}

// prepareRestore claims the name and the e-mails of the accounts made
// anew, and makes the organization again, marked creating (invisible).
func (s *OrgService) prepareRestore(ctx context.Context, r *Run) error {
	p, t := r.Op.Plan, r.Op.Plan.Trash
	d, err := s.archiveOf(ctx, r)
	if errors.Is(err, errArchiveGone) {
		return ErrNotDeleted
	}
	if err != nil {
		return err
	}
	if err := s.deletionOver(ctx, t.Org, r.Op.OrgID); err != nil {
		return err
	}
	if err := s.claimSlug(ctx, p.Slug, t.Org); err != nil {
		if errors.Is(err, repository.ErrDuplicate) {
			return s.claimedBy(ctx, p.Slug)
		}
		return err
	}
	for i, id := range t.NewAccounts {
		if err := s.master.ClaimEmail(ctx, model.EmailKey(t.NewEmails[i]), id); err != nil {
			return fmt.Errorf("%s: %w", t.NewEmails[i], mapDuplicate(err, ErrEmailTaken))
		}
	}
	org := d.Org
	org.Name, org.Slug, org.CollectionName = p.Name, p.Slug, repository.CollectionName(p.Slug)
	org.AdminID, org.UpdatedAt, org.PreviousName = p.AdminID, r.Op.StartedAt, ""
	org.State, org.OperationID, org.RestoredAt = model.StateCreating, r.Op.ID, r.Op.StartedAt
	return s.master.InsertOrganization(ctx, &org)
}

// undoRestore removes what phase one made: the organization (if this
// restore's), the e-mail claims and the name claim.
func (s *OrgService) undoRestore(ctx context.Context, r *Run) error {
	p, t := r.Op.Plan, r.Op.Plan.Trash
	org, err := s.master.Organization(ctx, t.Org)
	if err == nil && org.OperationID == r.Op.ID {
		if err := s.master.DeleteOrganization(ctx, t.Org); err != nil {
			return err
		}
	} else if err != nil && !errors.Is(err, repository.ErrNotFound) {
		return err
	}
	for i, id := range t.NewAccounts {
		if err := s.master.ReleaseEmail(ctx, model.EmailKey(t.NewEmails[i]), id); err != nil {
			return err
		}
	}
	return s.master.ReleaseName(ctx, p.Slug, t.Org)
}

// completeRestore makes the accounts and memberships, moves the trash
// collection back under the organization's name, removes the deletion's
// receipt and the archive, and puts the organization at rest. Run again,
// each step finds its work done: the accounts and memberships by their
// _id, the collection by its UUID.
func (s *OrgService) completeRestore(ctx context.Context, r *Run) error {
	p, t := r.Op.Plan, r.Op.Plan.Trash
	// At rest, the organization is restored: putting it so is the last
	// step, and its own operations (keyed by its id, not the deletion's)
	// may have changed it since.
	if org, err := s.master.Organization(ctx, t.Org); errors.Is(err, repository.ErrNotFound) || (err == nil && org.OperationID != r.Op.ID) {
		return nil
	} else if err != nil {
		return err
	}
	d, err := s.archiveOf(ctx, r)
	if err != nil && !errors.Is(err, errArchiveGone) {
		return err
	}
	if d != nil { // gone: a run that removed it made the accounts first
		for _, id := range t.NewAccounts {
			a, ok := d.Account(id)
			if !ok {
				continue
			}
			again := *a
			again.Teams = true // its memberships are what follows
			if err := mapDuplicate(s.master.InsertAdmin(ctx, &again), nil); err != nil {
				return err
			}
		}
	}
	for _, m := range t.Members {
		if err := mapDuplicate(s.master.InsertMembership(ctx, &m), nil); err != nil {
			return err
		}
		s.forgetAdmin(m.AccountID)
	}
	failpoint.Reach("restore:before-move")
	uuid := p.CollectionUUID
	if uuid == "" { // an organization from before UUIDs were recorded
		if uuid, err = s.tenants.TrashUUID(ctx, p.TenantDB, t.Trash); err != nil {
			return err
		}
	}
	if uuid != "" {
		err := s.tenants.MoveFromTrash(ctx, t.Trash, uuid, p.Tenant())
		if err != nil && !errors.Is(err, repository.ErrNotFound) {
			return err
		}
	}
	if uuid, err = s.tenants.UUID(ctx, p.Tenant()); err != nil {
		return err
	}
	if uuid == "" {
		// Its documents were gone (orgsvc check reported the archive alone).
		if uuid, err = s.tenants.Create(ctx, p.Tenant()); err != nil {
			return err
		}
	}
	failpoint.Reach("restore:after-move")
	// The deletion's receipt would keep the organization's next operation
	// from beginning; tokens of before the deletion end with its grants.
	if err := s.ops.Delete(ctx, &model.Operation{OrgID: t.Org, ID: r.Op.OrgID}); err != nil {
		return err
	}
	if err := s.master.DeleteArchive(ctx, t.Org, r.Op.OrgID); err != nil {
		return err
	}
	err = s.master.FinishCreate(ctx, t.Org, uuid)
	s.forgetOrg(t.Org, p.Slug)
	return err
}

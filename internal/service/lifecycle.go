package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/failpoint"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// Lifecycle errors.
var (
	// ErrOrgBusy: another operation is changing the organization; retry.
	ErrOrgBusy = errors.New("organization is being changed")
	// ErrInterrupted: the operation ran out of time and was, or will be,
	// finished or rolled back by another driver; retry.
	ErrInterrupted = errors.New("operation interrupted")
)

// An organization's lifecycle (create, update, delete) touches the master
// metadata, the admins and a tenant collection, with no transaction to
// bind them. Each operation therefore runs as a plan recorded first in the
// operations collection, in two phases:
//
//   - Phase one takes what can be refused (the name and e-mail claims) and
//     marks the organization; it can be undone.
//   - An outcome, inserted once (commit by the driver, abort by whoever
//     finds the operation stale first), decides it.
//   - Phase two rolls forward: every step is idempotent, so it can be run
//     again from the start by whoever finishes the operation.
//
// The record's _id is the organization's: inserting it is the exclusive
// right to change the organization. The instance that starts an operation
// holds its lease for Lease, and stops acting after half of it; another
// instance may take over an operation whose lease has run out by inserting
// a lease of the next epoch, which only one can do.

// Lifecycle tuning.
type Lifecycle struct {
	// Lease is how long the driver of an operation holds it.
	Lease time.Duration
	// AllStale says no other instance shares the database, so an operation
	// found at start-up is abandoned whatever its lease says.
	AllStale bool
	// ReceiptTTL is how long the record of a deletion is kept, for retries
	// of it: the lifetime of the deleted admin's tokens.
	ReceiptTTL time.Duration
}

// holder names this process in the leases it takes.
var holder = func() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), bson.NewObjectID().Hex()[16:])
}()

// run is one driver's hold on an operation.
type run struct {
	op    *model.Operation
	epoch int64
}

// begin records a new operation on the organization; ErrOrgBusy when one is
// under way. The context returned ends at half the lease and outlives the
// caller's: an operation, once started, is not cut short by a client
// hanging up.
func (s *OrgService) begin(ctx context.Context, kind string, orgID bson.ObjectID, plan model.OperationPlan) (*run, context.Context, context.CancelFunc, error) {
	start := time.Now()
	op := &model.Operation{
		OrgID: orgID, ID: bson.NewObjectID(), Kind: kind, Step: "begin", Plan: plan,
		ExpiresAt: start.Add(s.life.Lease).UTC().Truncate(time.Millisecond), Holder: holder,
		StartedAt: start.UTC().Truncate(time.Millisecond),
	}
	if err := s.ops.Insert(ctx, op); err != nil {
		if errors.Is(err, repository.ErrDuplicate) {
			s.nudge(orgID)
			return nil, nil, nil, ErrOrgBusy
		}
		return nil, nil, nil, err
	}
	dctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), start.Add(s.life.Lease/2))
	return &run{op: op}, dctx, cancel, nil
}

// step records the step about to run.
func (s *OrgService) step(ctx context.Context, r *run, name string) error {
	return s.ops.SetStep(ctx, r.op, name)
}

// finish removes a finished operation's record (a deletion keeps it as a
// receipt).
func (s *OrgService) finish(ctx context.Context, r *run) error {
	if r.op.Kind == model.OpDelete {
		if err := s.ops.MarkDone(ctx, r.op); err != nil {
			return err
		}
		return s.ops.DeleteMarks(ctx, r.op.ID, r.epoch)
	}
	return s.ops.Delete(ctx, r.op, r.epoch)
}

// Recover finishes, or rolls back, the operation under way on an
// organization if its driver is gone (its lease ran out, or ignoreLease).
// It returns nil when there is nothing to do, ErrOrgBusy when a live driver
// holds the operation.
func (s *OrgService) Recover(ctx context.Context, orgID bson.ObjectID, ignoreLease bool) error {
	op, err := s.ops.Get(ctx, orgID)
	if errors.Is(err, repository.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !op.DoneAt.IsZero() {
		return nil
	}
	epoch, expires := int64(0), op.ExpiresAt
	for {
		l, err := s.ops.Lease(ctx, op.ID, epoch+1)
		if errors.Is(err, repository.ErrNotFound) {
			break
		}
		if err != nil {
			return err
		}
		epoch, expires = epoch+1, l.ExpiresAt
	}
	start := time.Now()
	if !ignoreLease && start.Before(expires) {
		return ErrOrgBusy
	}
	epoch++
	if err := s.ops.InsertLease(ctx, op.ID, epoch, holder, start.Add(s.life.Lease)); err != nil {
		if errors.Is(err, repository.ErrDuplicate) {
			return ErrOrgBusy
		}
		return err
	}
	dctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), start.Add(s.life.Lease/2))
	defer cancel()
	// The record may have gone, or been finished, while the lease was taken.
	again, err := s.ops.Get(dctx, orgID)
	if errors.Is(err, repository.ErrNotFound) || (err == nil && (again.ID != op.ID || !again.DoneAt.IsZero())) {
		return s.ops.DeleteLease(dctx, repository.LeaseID(op.ID, epoch))
	}
	if err != nil {
		return err
	}
	op = again
	r := &run{op: op, epoch: epoch}
	s.log.Warn("taking over an interrupted operation", "organization_id", orgID.Hex(), "kind", op.Kind, "step", op.Step, "epoch", epoch)
	switch op.Kind {
	case model.OpCreate:
		commit, err := s.ops.Decide(dctx, op.ID, false)
		if err != nil {
			return err
		}
		if commit {
			return s.completeCreate(dctx, r)
		}
		return s.undoCreate(dctx, r)
	case model.OpUpdate:
		commit, err := s.ops.Decide(dctx, op.ID, false)
		if err != nil {
			return err
		}
		if commit {
			_, err := s.completeUpdate(dctx, r)
			return err
		}
		return s.undoUpdate(dctx, r)
	case model.OpDelete:
		return s.completeDelete(dctx, r)
	}
	return fmt.Errorf("operation %s: unknown kind %q", op.ID.Hex(), op.Kind)
}

// RecoverAll recovers every operation found stale, and forgets the receipts
// of deletions older than ReceiptTTL. It reports how many operations it
// finished or rolled back, and how many are still held by live drivers.
func (s *OrgService) RecoverAll(ctx context.Context, ignoreLease bool) (recovered, busy int, err error) {
	if s.life.ReceiptTTL > 0 {
		if _, err := s.ops.DeleteReceiptsBefore(ctx, time.Now().Add(-s.life.ReceiptTTL)); err != nil {
			return 0, 0, err
		}
	}
	// Marks are read before the records: a mark whose record is then not
	// there (or is a finished deletion's) belongs to an operation that is
	// over, since a record is made before its marks and removed before them.
	leases, err := s.ops.AllLeases(ctx)
	if err != nil {
		return 0, 0, err
	}
	outcomes, err := s.ops.AllOutcomes(ctx)
	if err != nil {
		return 0, 0, err
	}
	ops, err := s.ops.All(ctx)
	if err != nil {
		return 0, 0, err
	}
	if err := s.removeLeftovers(ctx, ops, leases, outcomes); err != nil {
		return 0, 0, err
	}
	var errs []error
	for _, op := range ops {
		if !op.DoneAt.IsZero() {
			continue
		}
		switch err := s.Recover(ctx, op.OrgID, ignoreLease); {
		case errors.Is(err, ErrOrgBusy):
			busy++
		case err != nil:
			errs = append(errs, fmt.Errorf("organization %s: %w", op.OrgID.Hex(), err))
		default:
			recovered++
		}
	}
	return recovered, busy, errors.Join(errs...)
}

// removeLeftovers deletes the leases and outcomes of operations that are
// over: what a kill between the removal of a record and of its marks
// leaves behind.
func (s *OrgService) removeLeftovers(ctx context.Context, ops []model.Operation, leases []model.Lease, outcomes []model.Outcome) error {
	live := map[string]bool{}
	for _, op := range ops {
		if op.DoneAt.IsZero() {
			live[op.ID.Hex()] = true
		}
	}
	for _, l := range leases {
		if op, _, _ := strings.Cut(l.ID, ":"); !live[op] {
			if err := s.ops.DeleteLease(ctx, l.ID); err != nil {
				return err
			}
		}
	}
	for _, o := range outcomes {
		if !live[o.ID.Hex()] {
			if err := s.ops.DeleteOutcome(ctx, o.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// orphanSweepEvery is how many of Watch's rounds pass between two sweeps
// of orphan collections (SweepOrphans lists every tenant collection).
const orphanSweepEvery = 20

// Watch recovers stale operations every interval, and sweeps orphan
// collections every orphanSweepEvery intervals, until ctx ends.
func (s *OrgService) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for round := 1; ; round++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if round%orphanSweepEvery == 0 {
			if _, err := s.SweepOrphans(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("sweeping orphan collections", "err", err)
			}
		}
		if n, _, err := s.RecoverAll(ctx, false); err != nil {
			s.log.Warn("recovering operations", "err", err)
		} else if n > 0 {
			s.log.Info("recovered interrupted operations", "count", n)
		}
	}
}

// nudge recovers the organization's operation in the background if it is
// stale; a request that meets an operation under way calls it.
func (s *OrgService) nudge(orgID bson.ObjectID) {
	if _, running := s.recovering.LoadOrStore(orgID, struct{}{}); running {
		return
	}
	go func() {
		defer s.recovering.Delete(orgID)
		ctx, cancel := context.WithTimeout(context.Background(), s.life.Lease)
		defer cancel()
		if err := s.Recover(ctx, orgID, false); err != nil && !errors.Is(err, ErrOrgBusy) {
			s.log.Warn("recovering an operation", "organization_id", orgID.Hex(), "err", err)
		}
	}()
}

// ---------------------------------------------------------------------------
// Create.

// completeCreate puts a committed sign-up at rest.
func (s *OrgService) completeCreate(ctx context.Context, r *run) error {
	err := s.master.SetOrganizationState(ctx, r.op.OrgID, "", bson.ObjectID{})
	if err != nil && !errors.Is(err, repository.ErrNotFound) {
		return err
	}
	return s.finish(ctx, r)
}

// undoCreate rolls back a sign-up that was not committed; every step is
// safe to repeat, and touches only what the operation itself made.
func (s *OrgService) undoCreate(ctx context.Context, r *run) error {
	p := r.op.Plan
	if err := s.step(ctx, r, "undo"); err != nil {
		return err
	}
	// The collection is dropped only while the slug is still claimed by
	// this organization: otherwise it is someone else's, or nobody made it.
	if owner, err := s.master.NameOwner(ctx, p.Slug); err == nil && owner == r.op.OrgID {
		if err := s.tenants.Drop(ctx, p.Tenant()); err != nil {
			return err
		}
	} else if err != nil && !errors.Is(err, repository.ErrNotFound) {
		return err
	}
	if err := s.master.DeleteAdmin(ctx, p.AdminID); err != nil {
		return err
	}
	if err := s.master.ReleaseEmail(ctx, model.EmailKey(p.Email), p.AdminID); err != nil {
		return err
	}
	if err := s.master.DeleteOrganization(ctx, r.op.OrgID); err != nil {
		return err
	}
	if err := s.master.ReleaseName(ctx, p.Slug, r.op.OrgID); err != nil {
		return err
	}
	return s.finish(ctx, r)
}

// ---------------------------------------------------------------------------
// Update.

// completeUpdate rolls a committed update forward: the admin's new e-mail
// and password, then the move of the tenant collection and the new name,
// then the release of the old claims. It returns the admin as it now is.
func (s *OrgService) completeUpdate(ctx context.Context, r *run) (*model.Admin, error) {
	p := r.op.Plan
	if err := s.step(ctx, r, "admin"); err != nil {
		return nil, err
	}
	admin, err := s.master.Admin(ctx, p.AdminID)
	if err != nil {
		return nil, err
	}
	if p.Email != p.OldEmail || p.PasswordHash != "" {
		version := p.TokenVersion + 1
		change := repository.AdminChange{Version: &version}
		if p.Email != p.OldEmail {
			change.Email = &p.Email
		}
		if p.PasswordHash != "" {
			change.PasswordHash = &p.PasswordHash
		}
		admin, err = s.master.UpdateAdmin(ctx, p.AdminID, change)
		s.auth.Forget(p.AdminID) // after the write, whether it was done or not
		if err != nil {
			return nil, err
		}
	}
	if p.Name != p.OldName {
		if p.Slug != p.OldSlug {
			if err := s.step(ctx, r, "move"); err != nil {
				return nil, err
			}
			failpoint.Reach("rename:before-collection")
			if err := s.tenants.Rename(ctx, p.OldTenant(), p.Slug, p.CollectionUUID); err != nil {
				return nil, err
			}
			failpoint.Reach("rename:after-collection")
		}
		if err := s.step(ctx, r, "name"); err != nil {
			return nil, err
		}
		if err := s.master.FinishRename(ctx, r.op.OrgID, p.Name, p.Slug, p.OldName); err != nil {
			return nil, err
		}
		s.auth.Forget(p.AdminID)
		if p.Slug != p.OldSlug {
			if err := s.step(ctx, r, "release-name"); err != nil {
				return nil, err
			}
			// A late write may have re-created the old collection.
			if err := s.dropHeld(ctx, r, p.OldTenant()); err != nil {
				return nil, err
			}
			if err := s.master.ReleaseName(ctx, p.OldSlug, r.op.OrgID); err != nil {
				return nil, err
			}
			s.sweep(ctx, p.OldTenant())
		}
	}
	if model.EmailKey(p.Email) != model.EmailKey(p.OldEmail) {
		if err := s.master.ReleaseEmail(ctx, model.EmailKey(p.OldEmail), p.AdminID); err != nil {
			return nil, err
		}
	}
	return admin, s.finish(ctx, r)
}

// undoUpdate rolls back an update that was not committed: its claims are
// released and the organization put back at rest.
func (s *OrgService) undoUpdate(ctx context.Context, r *run) error {
	p := r.op.Plan
	if err := s.step(ctx, r, "undo"); err != nil {
		return err
	}
	if p.Slug != p.OldSlug {
		if err := s.master.ReleaseName(ctx, p.Slug, r.op.OrgID); err != nil {
			return err
		}
	}
	if model.EmailKey(p.Email) != model.EmailKey(p.OldEmail) {
		if err := s.master.ReleaseEmail(ctx, model.EmailKey(p.Email), p.AdminID); err != nil {
			return err
		}
	}
	if err := s.master.SetOrganizationState(ctx, r.op.OrgID, "", bson.ObjectID{}); err != nil && !errors.Is(err, repository.ErrNotFound) {
		return err
	}
	return s.finish(ctx, r)
}

// ---------------------------------------------------------------------------
// Delete.

// completeDelete removes the tenant collection, the admin and the
// organization, then gives up the name. A deletion, once recorded, always
// rolls forward.
func (s *OrgService) completeDelete(ctx context.Context, r *run) error {
	p := r.op.Plan
	if err := s.step(ctx, r, "drop"); err != nil {
		return err
	}
	failpoint.Reach("delete:before-drop")
	if err := s.dropHeld(ctx, r, p.OldTenant()); err != nil {
		return err
	}
	failpoint.Reach("delete:after-drop")
	if err := s.step(ctx, r, "admin"); err != nil {
		return err
	}
	err := s.master.DeleteAdmin(ctx, p.AdminID)
	s.auth.Forget(p.AdminID) // after the write, whether it was done or not
	if err != nil {
		return err
	}
	if err := s.master.ReleaseEmail(ctx, model.EmailKey(p.OldEmail), p.AdminID); err != nil {
		return err
	}
	if err := s.step(ctx, r, "organization"); err != nil {
		return err
	}
	if err := s.master.DeleteOrganization(ctx, r.op.OrgID); err != nil {
		return err
	}
	// Dropped again: a late write may have re-created it.
	if err := s.dropHeld(ctx, r, p.OldTenant()); err != nil {
		return err
	}
	if err := s.master.ReleaseName(ctx, p.OldSlug, r.op.OrgID); err != nil {
		return err
	}
	s.sweep(ctx, p.OldTenant())
	return s.finish(ctx, r)
}

// dropHeld drops t, the collection of a slug the operation claimed, only
// while the operation still holds that claim. Phase two may run again
// after a takeover, when the slug was released already and another
// organization may have claimed it since and made its collection there.
func (s *OrgService) dropHeld(ctx context.Context, r *run, t model.Tenant) error {
	owner, err := s.master.NameOwner(ctx, t.Slug)
	if errors.Is(err, repository.ErrNotFound) || (err == nil && owner != r.op.OrgID) {
		return nil // released: whatever is there now is not this operation's
	}
	if err != nil {
		return err
	}
	return s.tenants.Drop(ctx, t)
}

// ---------------------------------------------------------------------------
// Orphans.

// sweep drops the collection of a slug just released, if a late write made
// it again between the last drop and the release (a write arriving later
// still sweeps up after itself). A slug claimed by someone else meanwhile
// is theirs, and left alone.
func (s *OrgService) sweep(ctx context.Context, t model.Tenant) {
	if err := s.DropOrphan(ctx, t); err != nil && !errors.Is(err, ErrOrgBusy) {
		s.log.Warn("sweep a released name's collection", "slug", t.Slug, "err", err)
	}
}

// SweepOrphans drops every tenant collection that no organization's record
// names (a late write's, or one a crash left), and reports how many went.
// Each goes through DropOrphan, so a collection whose slug an operation or
// a sign-up under way holds in its database is left alone.
func (s *OrgService) SweepOrphans(ctx context.Context) (int, error) {
	tenants, err := s.tenants.Tenants(ctx)
	if err != nil {
		return 0, err
	}
	orgs, err := s.master.AllOrganizations(ctx)
	if err != nil {
		return 0, err
	}
	named := make(map[model.Tenant]bool, len(orgs))
	for _, o := range orgs {
		named[o.Tenant()] = true
	}
	dropped := 0
	for _, t := range tenants {
		if named[t] {
			continue
		}
		switch err := s.DropOrphan(ctx, t); {
		case err == nil:
			dropped++
			s.log.Info("dropped an orphan tenant collection", "collection", s.tenants.Describe(t))
		case !errors.Is(err, ErrOrgBusy):
			return dropped, err
		}
	}
	return dropped, nil
}

// DropOrphan removes a tenant collection that belongs to nobody. Its slug
// is claimed for the time it takes, so a sign-up of that name cannot make
// its collection in between. If the slug is claimed already, the
// collection is dropped only when the claimant is an organization whose
// collection lives in another database (it can never be this one);
// otherwise ErrOrgBusy.
func (s *OrgService) DropOrphan(ctx context.Context, t model.Tenant) error {
	sweeper := bson.NewObjectID()
	if err := s.master.ClaimNameToSweep(ctx, t.Slug, sweeper); err != nil {
		if !errors.Is(err, repository.ErrDuplicate) {
			return err
		}
		owner, err := s.master.NameOwner(ctx, t.Slug)
		if err != nil {
			return ErrOrgBusy
		}
		org, err := s.master.Organization(ctx, owner)
		if err != nil || org.TenantDB == t.DB {
			return ErrOrgBusy
		}
		return s.tenants.Drop(ctx, t)
	}
	// The claim is held for at most half the lease; one older than the
	// lease is a dead sweeper's, and the next claimant releases it.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.life.Lease/2)
	defer cancel()
	defer func() {
		if err := s.master.ReleaseName(dctx, t.Slug, sweeper); err != nil {
			s.log.Error("release a sweeper's claim", "slug", t.Slug, "err", err)
		}
	}()
	return s.tenants.Drop(dctx, t)
}

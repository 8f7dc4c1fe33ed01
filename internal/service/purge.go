package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/failpoint"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// errArchiveGone: the archive a purge or restore was planned on is gone
// (purged or restored meanwhile).
var errArchiveGone = errors.New("the deleted organization's archive is gone")

// PurgeDue purges every deleted organization whose restore window ended
// before now, and reports how many it purged. Each purge is an operation
// of the runner keyed by the deletion (see model.DeletedOrg.DeletionID):
// of instances purging at once, one begins it and the others leave it.
func (s *OrgService) PurgeDue(ctx context.Context, now time.Time) (int, error) {
	archives, err := s.master.AllArchives(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for i := range archives {
		d := &archives[i]
		if now.Before(d.PurgeAt) {
			continue
		}
		err := s.deletionOver(ctx, d.ID, d.DeletionID)
		if err == nil {
			err = s.purge(ctx, d)
		}
		switch {
		case err == nil:
			n++
			s.log.Info("purged a deleted organization", "organization_id", d.ID.Hex(), "deleted_at", d.DeletedAt)
		case errors.Is(err, ErrOrgBusy), errors.Is(err, errArchiveGone):
		default:
			errs = append(errs, fmt.Errorf("organization %s: %w", d.ID.Hex(), err))
		}
	}
	return n, errors.Join(errs...)
}

// purge drops d's trash collection and its archive; ErrOrgBusy when a
// purge or restore of it is under way.
func (s *OrgService) purge(ctx context.Context, d *model.DeletedOrg) error {
	r, ctx, cancel, err := s.run.Begin(ctx, model.OpPurge, d.DeletionID, model.OperationPlan{
		OldName: d.Org.Name, OldSlug: d.Org.Slug, TenantDB: d.Org.TenantDB, CollectionUUID: d.Org.CollectionUUID,
		Trash: &model.TrashPlan{Org: d.ID, Trash: d.Trash, PurgeAt: d.PurgeAt},
	})
	if err != nil {
		return err
	}
	defer cancel()
	_, err = s.run.Drive(ctx, r)
	return err
}

// preparePurge checks that the archive is still there (a purge that
// finished, or a restore, may have removed it since it was listed) and
// that its deletion is over.
func (s *OrgService) preparePurge(ctx context.Context, r *Run) error {
	if _, err := s.archiveOf(ctx, r); err != nil {
		return err
	}
	return s.deletionOver(ctx, r.Op.Plan.Trash.Org, r.Op.OrgID)
}

// deletionOver is ErrOrgBusy while the deletion of org (its operation id
// deletion) is still under way: until it is finished, a run of it may
// still archive and move what a purge or restore would act on.
func (s *OrgService) deletionOver(ctx context.Context, org, deletion bson.ObjectID) error {
	op, err := s.run.Operation(ctx, org)
	if errors.Is(err, repository.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if op.ID == deletion && op.DoneAt.IsZero() {
		s.run.nudge(org)
		return ErrOrgBusy
	}
	return nil
}

// archiveOf reads the archive r is planned on; errArchiveGone when it is
// not there, or is a later deletion's.
func (s *OrgService) archiveOf(ctx context.Context, r *Run) (*model.DeletedOrg, error) {
	d, err := s.master.Archive(ctx, r.Op.Plan.Trash.Org)
	if errors.Is(err, repository.ErrNotFound) || (err == nil && d.DeletionID != r.Op.OrgID) {
		return nil, errArchiveGone
	}
	return d, err
}

// completePurge drops the trash collection, then the archive. Run again,
// it finds the collection gone and drops nothing else: while it holds
// the deletion's operation no restore can bring the collection back.
func (s *OrgService) completePurge(ctx context.Context, r *Run) error {
	p := r.Op.Plan
	if err := s.tenants.DropTrash(ctx, p.TenantDB, p.Trash.Trash); err != nil {
		return err
	}
	failpoint.Reach("purge:after-drop")
	return s.master.DeleteArchive(ctx, p.Trash.Org, r.Op.OrgID)
}

// undoPurge: phase one changed nothing.
func (s *OrgService) undoPurge(context.Context, *Run) error { return nil }

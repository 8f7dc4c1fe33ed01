package service

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// orphanSweepEvery is how many of the runner's Watch rounds pass between
// two sweeps of orphan collections (SweepOrphans lists every tenant
// collection).
const orphanSweepEvery = 20

// Watch recovers stale operations every interval, and sweeps orphan
// collections every orphanSweepEvery intervals, until ctx ends.
func (s *OrgService) Watch(ctx context.Context, interval time.Duration) {
	s.run.Watch(ctx, interval, orphanSweepEvery, func(ctx context.Context) {
		if _, err := s.SweepOrphans(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("sweeping orphan collections", "err", err)
		}
	})
}

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
	dropped, err := s.sweepStagings(ctx)
	if err != nil {
		return dropped, err
	}
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
	if err := s.releaseDeadSweeps(ctx); err != nil {
		return dropped, err
	}
	return dropped, s.noteTrash(ctx)
}

// releaseDeadSweeps releases the claims of sweepers that died holding
// them, so that a name is free again without waiting for its next
// claimant.
func (s *OrgService) releaseDeadSweeps(ctx context.Context) error {
	claims, err := s.master.SweepClaims(ctx)
	if err != nil {
		return err
	}
	for i := range claims {
		if !s.deadSweep(&claims[i]) {
			continue
		}
		if err := s.releaseDeadSweep(ctx, &claims[i]); err != nil && !errors.Is(err, ErrOrgBusy) {
			return err
		}
	}
	return nil
}

// noteTrash reports the trash collections without an archive. A trash
// collection is no tenant collection ("org_" names alone are): the sweep
// never drops one, with its archive or without. One without is left, with
// the deleted organization's documents, to orgsvc check --repair.
func (s *OrgService) noteTrash(ctx context.Context) error {
	trashes, err := s.tenants.Trashes(ctx) // before the archives (see Checker.read)
	if err != nil {
		return err
	}
	if len(trashes) == 0 {
		return nil
	}
	archives, err := s.master.AllArchives(ctx)
	if err != nil {
		return err
	}
	archived := trashOf(archives)
	for _, t := range trashes {
		if !archived[t] {
			s.log.Warn("a trash collection has no archive: orgsvc check --repair drops it", "collection", s.tenants.DescribeIn(t[0], t[1]))
		}
	}
	return nil
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
		claim, err := s.master.NameClaim(ctx, t.Slug)
		if err != nil {
			return ErrOrgBusy
		}
		org, err := s.master.Organization(ctx, claim.OrganizationID)
		if err != nil || org.TenantDB == t.DB {
			return ErrOrgBusy
		}
		return s.tenants.Drop(ctx, t)
	}
	// The claim is held for at most half the lease; one older than the
	// lease is a dead sweeper's, and the next claimant releases it.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.run.life.Lease/2)
	defer cancel()
	defer func() {
		if err := s.master.ReleaseName(dctx, t.Slug, sweeper); err != nil {
			s.log.Error("release a sweeper's claim", "slug", t.Slug, "err", err)
		}
	}()
	return s.tenants.Drop(dctx, t)
}

// dropLeft drops t, a collection org wrote to after it had left it, unless
// org holds its slug again; claimed by another organization, it is dropped
// only if that one lives in another database (see DropOrphan).
func (s *OrgService) dropLeft(ctx context.Context, org bson.ObjectID, t model.Tenant) error {
	claim, err := s.master.NameClaim(ctx, t.Slug)
	if err == nil && claim.OrganizationID == org {
		return nil
	}
	if err != nil && !errors.Is(err, repository.ErrNotFound) {
		return err
	}
	if err := s.DropOrphan(ctx, t); err != nil && !errors.Is(err, ErrOrgBusy) {
		return err
	}
	return nil
}

// trashOf is the set of the archives' trash collections, as database and
// name.
func trashOf(archives []model.DeletedOrg) map[[2]string]bool {
	out := make(map[[2]string]bool, len(archives))
	for _, d := range archives {
		out[[2]string{d.Org.TenantDB, d.Trash}] = true
	}
	return out
}

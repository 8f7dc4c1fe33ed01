package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// Recover finishes, or rolls back, the operation under way on an
// organization if its driver is gone (its lease ran out, or ignoreLease).
// It returns nil when there is nothing to do, ErrOrgBusy when a live driver
// holds the operation.
func (rn *Runner) Recover(ctx context.Context, orgID bson.ObjectID, ignoreLease bool) error {
	op, err := rn.ops.Get(ctx, orgID)
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
		l, err := rn.ops.Lease(ctx, op.ID, epoch+1)
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
	lease := rn.lease(op.Kind)
	if err := rn.ops.InsertLease(ctx, op.ID, epoch, holder, start.Add(lease)); err != nil {
		if errors.Is(err, repository.ErrDuplicate) {
			return ErrOrgBusy
		}
		return err
	}
	dctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), start.Add(lease/2))
	defer cancel()
	// The record may have gone, or been finished, while the lease was taken.
	again, err := rn.ops.Get(dctx, orgID)
	if errors.Is(err, repository.ErrNotFound) || (err == nil && (again.ID != op.ID || !again.DoneAt.IsZero())) {
		return rn.ops.DeleteLease(dctx, repository.LeaseID(op.ID, epoch))
	}
	if err != nil {
		return err
	}
	if _, ok := rn.kinds[again.Kind]; !ok {
		return fmt.Errorf("operation %s: unknown kind %q", again.ID.Hex(), again.Kind)
	}
	r := &Run{Op: again, epoch: epoch}
	rn.log.Warn("taking over an interrupted operation", "organization_id", orgID.Hex(), "kind", again.Kind, "epoch", epoch)
	commit, err := rn.ops.Decide(dctx, again.ID, false)
	if err != nil {
		return err
	}
	if commit {
		return rn.complete(dctx, r)
	}
	return rn.undo(dctx, r)
}

// RecoverAll recovers every operation found stale, and forgets the receipts
// older than ReceiptTTL. It reports how many operations it finished or
// rolled back, and how many are still held by live drivers.
func (rn *Runner) RecoverAll(ctx context.Context, ignoreLease bool) (recovered, busy int, err error) {
	if rn.life.ReceiptTTL > 0 {
		if _, err := rn.ops.DeleteReceiptsBefore(ctx, time.Now().Add(-rn.life.ReceiptTTL)); err != nil {
			return 0, 0, err
		}
	}
	// Marks are read before the records: a mark whose record is then not
	// there (or is a receipt) belongs to an operation that is over, since a
	// record is made before its marks and removed before them.
	leases, err := rn.ops.AllLeases(ctx)
	if err != nil {
		return 0, 0, err
	}
	outcomes, err := rn.ops.AllOutcomes(ctx)
	if err != nil {
		return 0, 0, err
	}
	ops, err := rn.ops.All(ctx)
	if err != nil {
		return 0, 0, err
	}
	if err := rn.removeLeftovers(ctx, ops, leases, outcomes); err != nil {
		return 0, 0, err
	}
	var errs []error
	for _, op := range ops {
		if !op.DoneAt.IsZero() {
			continue
		}
		switch err := rn.Recover(ctx, op.OrgID, ignoreLease); {
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
// over (what finish leaves, and a kill before it).
func (rn *Runner) removeLeftovers(ctx context.Context, ops []model.Operation, leases []model.Lease, outcomes []model.Outcome) error {
	live := map[string]bool{}
	for _, op := range ops {
		if op.DoneAt.IsZero() {
			live[op.ID.Hex()] = true
		}
	}
	var leaseIDs []string
	now := time.Now()
	for _, l := range leases {
		if strings.HasPrefix(l.ID, repository.TakeoverPrefix) {
			if now.After(l.ExpiresAt) {
				leaseIDs = append(leaseIDs, l.ID)
			}
			continue
		}
		if op, _, _ := strings.Cut(l.ID, ":"); !live[op] {
			leaseIDs = append(leaseIDs, l.ID)
		}
	}
	var outcomeIDs []bson.ObjectID
	for _, o := range outcomes {
		if !live[o.ID.Hex()] {
			outcomeIDs = append(outcomeIDs, o.ID)
		}
	}
	return rn.ops.DeleteMarks(ctx, leaseIDs, outcomeIDs)
}

// Watch recovers stale operations every interval until ctx ends, and
// calls also every alsoEvery intervals (the sweep of orphan collections).
func (rn *Runner) Watch(ctx context.Context, interval time.Duration, alsoEvery int, also func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for round := 1; ; round++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if also != nil && alsoEvery > 0 && round%alsoEvery == 0 {
			also(ctx)
		}
		if n, _, err := rn.RecoverAll(ctx, false); err != nil {
			rn.log.Warn("recovering operations", "err", err)
		} else if n > 0 {
			rn.log.Info("recovered interrupted operations", "count", n)
		}
	}
}

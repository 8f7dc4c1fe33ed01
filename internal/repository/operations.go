package repository

import (
	"context"
	"errors"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgsvc/orgsvc/internal/model"
)

// OperationRepository keeps the records of lifecycle operations under way,
// their leases and their outcomes. Exclusivity rests on inserts alone: an
// operation's _id is its organization's, a lease's is its operation and
// epoch, an outcome's is its operation.
type OperationRepository struct {
	// idFiltersOnly: see MasterRepository.
	idFiltersOnly bool
	ops           *mongo.Collection
	leases        *mongo.Collection
	outcomes      *mongo.Collection
}

// NewOperationRepository returns a repository over db (idFiltersOnly as
// for NewMasterRepository).
func NewOperationRepository(db *mongo.Database, idFiltersOnly bool) *OperationRepository {
	return &OperationRepository{
		idFiltersOnly: idFiltersOnly,
		ops:           db.Collection(model.Operations),
		leases:        db.Collection(model.Leases),
		outcomes:      db.Collection(model.Outcomes),
	}
}

// Insert records a new operation; ErrDuplicate when its organization has
// one already.
func (r *OperationRepository) Insert(ctx context.Context, op *model.Operation) error {
	return insert(ctx, r.ops, op)
}

// Get returns the operation record of an organization.
func (r *OperationRepository) Get(ctx context.Context, orgID bson.ObjectID) (*model.Operation, error) {
	var op model.Operation
	if err := findByID(ctx, r.ops, orgID, &op); err != nil {
		return nil, err
	}
	return &op, nil
}

// SetPasswordHash records the admin's new password hash in the plan.
func (r *OperationRepository) SetPasswordHash(ctx context.Context, op *model.Operation, hash string) error {
	if err := r.set(ctx, op, bson.D{{Key: "plan.password_hash", Value: hash}}); err != nil {
		return err
	}
	op.Plan.PasswordHash = hash
	return nil
}

// MarkDone keeps a finished operation's record as a receipt.
func (r *OperationRepository) MarkDone(ctx context.Context, op *model.Operation) error {
	at := model.Now()
	if err := r.set(ctx, op, bson.D{{Key: "done_at", Value: at}}); err != nil {
		return err
	}
	op.DoneAt = at
	return nil
}

// set updates the record of op. The filter names the operation as well as
// its organization, so a slow driver leaves a later operation's record
// alone; ErrNotFound when op's record is gone.
func (r *OperationRepository) set(ctx context.Context, op *model.Operation, fields bson.D) error {
	filter, err := ownedBy(ctx, r.ops, r.idFiltersOnly, op.OrgID, "operation_id", op.ID)
	if err != nil {
		return err
	}
	if filter == nil {
		return ErrNotFound
	}
	res, err := r.ops.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: fields}})
	if err != nil {
		return wrap(err)
	}
	if res.MatchedCount == 0 {
		return ErrNotFound
	}
	return nil
}

// Delete removes an operation's record (not a later operation's). Its
// leases and outcome stay behind, inert, until DeleteMarks.
func (r *OperationRepository) Delete(ctx context.Context, op *model.Operation) error {
	filter, err := ownedBy(ctx, r.ops, r.idFiltersOnly, op.OrgID, "operation_id", op.ID)
	if err != nil || filter == nil {
		return err
	}
	_, err = r.ops.DeleteOne(ctx, filter)
	return wrap(err)
}

// DeleteMarks removes leases and outcomes of operations that are over, by
// _id, one command for each kind.
func (r *OperationRepository) DeleteMarks(ctx context.Context, leaseIDs []string, outcomeIDs []bson.ObjectID) error {
	if len(leaseIDs) > 0 {
		if _, err := r.leases.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: leaseIDs}}}}); err != nil {
			return wrap(err)
		}
	}
	if len(outcomeIDs) > 0 {
		if _, err := r.outcomes.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: outcomeIDs}}}}); err != nil {
			return wrap(err)
		}
	}
	return nil
}

// All returns every operation record.
func (r *OperationRepository) All(ctx context.Context) ([]model.Operation, error) {
	return all[model.Operation](ctx, r.ops)
}

// LeaseID is the _id of an operation's lease of the given epoch.
func LeaseID(opID bson.ObjectID, epoch int64) string {
	return opID.Hex() + ":" + strconv.FormatInt(epoch, 10)
}

// InsertLease takes an operation over at epoch; ErrDuplicate when another
// driver took it first.
func (r *OperationRepository) InsertLease(ctx context.Context, opID bson.ObjectID, epoch int64, holder string, expires time.Time) error {
	return insert(ctx, r.leases, model.Lease{ID: LeaseID(opID, epoch), Holder: holder, ExpiresAt: model.At(expires)})
}

// TakeoverPrefix starts the _id of a takeover mark (see InsertTakeover).
const TakeoverPrefix = "takeover:"

// InsertTakeover gives holder the n-th right to remove the name claim a
// dead sweeper left, until expires; ErrDuplicate when another claimant has
// it. The mark stays among the leases until it expires.
func (r *OperationRepository) InsertTakeover(ctx context.Context, sweeper bson.ObjectID, n int64, holder string, expires time.Time) error {
	return insert(ctx, r.leases, model.Lease{ID: TakeoverPrefix + LeaseID(sweeper, n), Holder: holder, ExpiresAt: model.At(expires)})
}

// Takeover returns the n-th takeover mark of a dead sweeper's claim.
func (r *OperationRepository) Takeover(ctx context.Context, sweeper bson.ObjectID, n int64) (*model.Lease, error) {
	var l model.Lease
	if err := findByID(ctx, r.leases, TakeoverPrefix+LeaseID(sweeper, n), &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// Lease returns an operation's lease of the given epoch.
func (r *OperationRepository) Lease(ctx context.Context, opID bson.ObjectID, epoch int64) (*model.Lease, error) {
	var l model.Lease
	if err := findByID(ctx, r.leases, LeaseID(opID, epoch), &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// AllLeases and AllOutcomes return every lease and outcome, for the check.
func (r *OperationRepository) AllLeases(ctx context.Context) ([]model.Lease, error) {
	return all[model.Lease](ctx, r.leases)
}

// AllOutcomes returns every outcome.
func (r *OperationRepository) AllOutcomes(ctx context.Context) ([]model.Outcome, error) {
	return all[model.Outcome](ctx, r.outcomes)
}

// DeleteLease removes one lease: a takeover's that found nothing to do.
func (r *OperationRepository) DeleteLease(ctx context.Context, id string) error {
	_, err := r.leases.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	return wrap(err)
}

// Decide records an operation's outcome unless one is recorded already,
// and returns the outcome that holds.
func (r *OperationRepository) Decide(ctx context.Context, opID bson.ObjectID, commit bool) (bool, error) {
	err := insert(ctx, r.outcomes, model.Outcome{ID: opID, Commit: commit, DecidedAt: model.Now()})
	if err == nil {
		return commit, nil
	}
	if !errors.Is(err, ErrDuplicate) {
		return false, err
	}
	var o model.Outcome
	if err := findByID(ctx, r.outcomes, opID, &o); err != nil {
		return false, err
	}
	return o.Commit, nil
}

// Outcome returns an operation's outcome; ErrNotFound while undecided.
func (r *OperationRepository) Outcome(ctx context.Context, opID bson.ObjectID) (bool, error) {
	var o model.Outcome
	if err := findByID(ctx, r.outcomes, opID, &o); err != nil {
		return false, err
	}
	return o.Commit, nil
}

// DeleteReceiptsBefore removes the records of deletions finished before t.
func (r *OperationRepository) DeleteReceiptsBefore(ctx context.Context, t time.Time) (int64, error) {
	res, err := r.ops.DeleteMany(ctx, bson.D{{Key: "done_at", Value: bson.D{{Key: "$lt", Value: t}}}})
	if err != nil {
		return 0, wrap(err)
	}
	return res.DeletedCount, nil
}

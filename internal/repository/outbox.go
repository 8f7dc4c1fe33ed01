package repository

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgsvc/orgsvc/internal/model"
)

// OutboxRepository keeps the mail outbox and its attempt marks in the
// master database. Only the holder of an entry's current attempt mark
// writes the entry, so no write needs a condition.
type OutboxRepository struct {
	entries  *mongo.Collection
	attempts *mongo.Collection
}

// NewOutboxRepository is the outbox of the master database db.
func NewOutboxRepository(db *mongo.Database) *OutboxRepository {
	return &OutboxRepository{entries: db.Collection(model.Outbox), attempts: db.Collection(model.OutboxAttempts)}
}

// Insert stores a new entry; ErrDuplicate when its id has one.
func (r *OutboxRepository) Insert(ctx context.Context, e *model.OutboxEntry) error {
	return insert(ctx, r.entries, e)
}

// Get returns the entry id.
func (r *OutboxRepository) Get(ctx context.Context, id bson.ObjectID) (*model.OutboxEntry, error) {
	var e model.OutboxEntry
	if err := findByID(ctx, r.entries, id, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// Due returns up to limit pending entries whose NextAt has come, the
// oldest first. The embedded store reads the whole outbox for it.
func (r *OutboxRepository) Due(ctx context.Context, now time.Time, limit int) ([]model.OutboxEntry, error) {
	filter := bson.D{{Key: "state", Value: model.DeliveryPending}, {Key: "next_at", Value: bson.D{{Key: "$lte", Value: now}}}}
	opts := options.Find().SetSort(bson.D{{Key: "next_at", Value: 1}}).SetLimit(int64(limit))
	return find[model.OutboxEntry](ctx, r.entries, filter, opts)
}

// ClaimAttempt gives holder the exclusive right to make attempt n of entry
// id until expires; ErrDuplicate when another instance has it.
func (r *OutboxRepository) ClaimAttempt(ctx context.Context, id bson.ObjectID, n int, holder string, expires time.Time) error {
	return insert(ctx, r.attempts, model.Lease{ID: LeaseID(id, int64(n)), Holder: holder, ExpiresAt: model.At(expires)})
}

// Attempt returns the mark of attempt n of entry id.
func (r *OutboxRepository) Attempt(ctx context.Context, id bson.ObjectID, n int) (*model.Lease, error) {
	var l model.Lease
	if err := findByID(ctx, r.attempts, LeaseID(id, int64(n)), &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// ReleaseAttempt drops the mark of attempt n, which its holder did not
// make after all.
func (r *OutboxRepository) ReleaseAttempt(ctx context.Context, id bson.ObjectID, n int) error {
	_, err := r.attempts.DeleteOne(ctx, bson.D{{Key: "_id", Value: LeaseID(id, int64(n))}})
	return wrap(err)
}

// Finish records the end of an entry's delivery after attempt number
// attempts: sent (at sentAt) or failed. Either way its Text is erased.
func (r *OutboxRepository) Finish(ctx context.Context, id bson.ObjectID, attempts int, state, lastError string, sentAt time.Time) error {
	if state != model.DeliverySent && state != model.DeliveryFailed {
		return fmt.Errorf("outbox: %q is not a final delivery state", state)
	}
	set := bson.D{{Key: "state", Value: state}, {Key: "attempts", Value: attempts}, {Key: "text", Value: ""}, {Key: "last_error", Value: lastError}}
	if !sentAt.IsZero() {
		set = append(set, bson.E{Key: "sent_at", Value: model.At(sentAt)})
	}
	return r.update(ctx, id, set)
}

// Retry records a failed attempt: the entry stays pending until nextAt.
func (r *OutboxRepository) Retry(ctx context.Context, id bson.ObjectID, attempts int, nextAt time.Time, lastError string) error {
	return r.update(ctx, id, bson.D{{Key: "state", Value: model.DeliveryPending}, {Key: "attempts", Value: attempts},
		{Key: "next_at", Value: model.At(nextAt)}, {Key: "last_error", Value: lastError}})
}

// update sets fields of entry id; ErrNotFound when it is gone.
func (r *OutboxRepository) update(ctx context.Context, id bson.ObjectID, set bson.D) error {
	res, err := r.entries.UpdateByID(ctx, id, bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return wrap(err)
	}
	if res.MatchedCount == 0 {
		return ErrNotFound
	}
	return nil
}

// Delete removes entry id and its attempt marks.
func (r *OutboxRepository) Delete(ctx context.Context, id bson.ObjectID) error {
	return r.deleteEntries(ctx, []bson.ObjectID{id})
}

// DeleteForOrg removes the entries of an organization and their attempt
// marks. The embedded store reads the whole outbox for it.
func (r *OutboxRepository) DeleteForOrg(ctx context.Context, orgID bson.ObjectID) error {
	docs, err := find[struct {
		ID bson.ObjectID `bson:"_id"`
	}](ctx, r.entries, bson.D{{Key: "org_id", Value: orgID}}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return err
	}
	ids := make([]bson.ObjectID, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	return r.deleteEntries(ctx, ids)
}

// deleteEntries removes the entries ids, then their marks: a mark left by
// a failure between the two blocks nothing once it expires.
func (r *OutboxRepository) deleteEntries(ctx context.Context, ids []bson.ObjectID) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := r.entries.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}); err != nil {
		return wrap(err)
	}
	hex := make([]string, len(ids))
	for i, id := range ids {
		hex[i] = id.Hex()
	}
	prefix := bson.Regex{Pattern: "^(?:" + strings.Join(hex, "|") + "):"}
	_, err := r.attempts.DeleteMany(ctx, bson.D{{Key: "_id", Value: prefix}})
	return wrap(err)
}

// All returns every entry, for the consistency check.
func (r *OutboxRepository) All(ctx context.Context) ([]model.OutboxEntry, error) {
	return all[model.OutboxEntry](ctx, r.entries)
}

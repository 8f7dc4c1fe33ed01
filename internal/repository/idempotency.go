package repository

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgsvc/orgsvc/internal/model"
)

// KeyRepository keeps the Idempotency-Keys of document creates in the
// master database, each looked up by its _id.
type KeyRepository struct {
	keys *mongo.Collection
}

// NewKeyRepository is the key repository of the master database db.
func NewKeyRepository(db *mongo.Database) *KeyRepository {
	return &KeyRepository{keys: db.Collection(model.IdempotencyKeys)}
}

// KeyID is the _id of org's key.
func KeyID(org bson.ObjectID, key string) string { return org.Hex() + ":" + key }

// Claim inserts k; ErrDuplicate when its key is taken.
func (r *KeyRepository) Claim(ctx context.Context, k *model.IdempotencyKey) error {
	return insert(ctx, r.keys, k)
}

// Key reads the record of id.
func (r *KeyRepository) Key(ctx context.Context, id string) (*model.IdempotencyKey, error) {
	var k model.IdempotencyKey
	if err := findByID(ctx, r.keys, id, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// MarkDone records that k's create was answered. Only the request that
// holds k's document makes this write, so no condition is needed.
func (r *KeyRepository) MarkDone(ctx context.Context, id string) error {
	_, err := r.keys.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "done", Value: true}}}})
	return wrap(err)
}

// Forget deletes the record id if it is the one made at createdAt, so
// that an expired key is freed without freeing its successor.
func (r *KeyRepository) Forget(ctx context.Context, id string, createdAt time.Time) error {
	_, err := r.keys.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "created_at", Value: createdAt}})
	return wrap(err)
}

// Sweep deletes every record made before cutoff and returns how many.
func (r *KeyRepository) Sweep(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := r.keys.DeleteMany(ctx, bson.D{{Key: "created_at", Value: bson.D{{Key: "$lt", Value: cutoff}}}})
	if err != nil {
		return 0, wrap(err)
	}
	return res.DeletedCount, nil
}

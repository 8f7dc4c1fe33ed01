package store

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgsvc/orgsvc/internal/model"
)

type index struct {
	collection string
	name       string
	keys       bson.D
	unique     bool
}

// indexes beyond _id. Uniqueness of slugs and e-mails rests on the claim
// collections, whose _id is the key; the unique slug index on organizations
// guards the metadata itself.
var indexes = []index{
	{model.Organizations, "slug_unique", bson.D{{Key: "slug", Value: 1}}, true},
	{model.Admins, "organization_id", bson.D{{Key: "organization_id", Value: 1}}, false},
	{model.Memberships, "account_joined", bson.D{{Key: "account_id", Value: 1}, {Key: "joined_at", Value: 1}}, false},
	{model.Memberships, "org_account", bson.D{{Key: "org_id", Value: 1}, {Key: "account_id", Value: 1}}, false},
}

// EnsureIndexes creates the master indexes one at a time, each with an
// explicit name, which is idempotent on MongoDB and on FerretDB alike.
func EnsureIndexes(ctx context.Context, db *mongo.Database) error {
	for _, ix := range indexes {
		opts := options.Index().SetName(ix.name)
		if ix.unique {
			opts.SetUnique(true)
		}
		_, err := db.Collection(ix.collection).Indexes().CreateOne(ctx, mongo.IndexModel{Keys: ix.keys, Options: opts})
		if err != nil {
			return fmt.Errorf("create index %s.%s: %w", ix.collection, ix.name, err)
		}
	}
	return nil
}

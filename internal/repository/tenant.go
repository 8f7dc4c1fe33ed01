package repository

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// TenantPrefix starts the name of every tenant collection, and of nothing
// else in the database.
const TenantPrefix = "org_"

// TenantRepository owns the per-organization collections. It is the only
// code that turns an organization's slug into a collection name.
type TenantRepository struct {
	db *mongo.Database
}

// NewTenantRepository returns a repository over db.
func NewTenantRepository(db *mongo.Database) *TenantRepository {
	return &TenantRepository{db: db}
}

// CollectionName is the tenant collection of the organization with slug.
func CollectionName(slug string) string { return TenantPrefix + slug }

// Create makes the tenant collection of slug. An existing collection of that
// name is dropped first: it can only be left over from a create that never
// finished, since the caller holds the slug's claim.
func (r *TenantRepository) Create(ctx context.Context, slug string) error {
	name := CollectionName(slug)
	err := r.db.CreateCollection(ctx, name)
	if isCode(err, 48) { // NamespaceExists
		if err := r.db.Collection(name).Drop(ctx); err != nil {
			return err
		}
		err = r.db.CreateCollection(ctx, name)
	}
	if err != nil {
		return fmt.Errorf("create tenant collection %s: %w", name, wrap(err))
	}
	return nil
}

// Rename moves the tenant collection of from to to on the server, keeping
// every document and its _id.
func (r *TenantRepository) Rename(ctx context.Context, from, to string) error {
	cmd := bson.D{
		{Key: "renameCollection", Value: r.db.Name() + "." + CollectionName(from)},
		{Key: "to", Value: r.db.Name() + "." + CollectionName(to)},
		{Key: "dropTarget", Value: false},
	}
	if err := r.db.Client().Database("admin").RunCommand(ctx, cmd).Err(); err != nil {
		return fmt.Errorf("rename tenant collection %s to %s: %w", CollectionName(from), CollectionName(to), wrap(err))
	}
	return nil
}

// Drop removes the tenant collection of slug; dropping a missing one is no
// error.
func (r *TenantRepository) Drop(ctx context.Context, slug string) error {
	return wrap(r.db.Collection(CollectionName(slug)).Drop(ctx))
}

// Slugs lists the slugs of every tenant collection in the database.
func (r *TenantRepository) Slugs(ctx context.Context) ([]string, error) {
	names, err := r.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, wrap(err)
	}
	var slugs []string
	for _, n := range names {
		if slug, ok := strings.CutPrefix(n, TenantPrefix); ok {
			slugs = append(slugs, slug)
		}
	}
	return slugs, nil
}

func isCode(err error, code int32) bool {
	var ce mongo.CommandError
	return errors.As(err, &ce) && ce.Code == code
}

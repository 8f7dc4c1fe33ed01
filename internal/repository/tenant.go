package repository

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
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
	// prepare, when set, is called with the name of every tenant
	// collection made (the embedded store indexes it).
	prepare func(ctx context.Context, collection string) error
}

// NewTenantRepository returns a repository over db.
func NewTenantRepository(db *mongo.Database) *TenantRepository {
	return &TenantRepository{db: db}
}

// OnCreate sets what is done to every tenant collection made, after it is
// made (see store.Store.IndexCollection).
func (r *TenantRepository) OnCreate(f func(ctx context.Context, collection string) error) {
	r.prepare = f
}

// CollectionName is the tenant collection of the organization with slug.
func CollectionName(slug string) string { return TenantPrefix + slug }

// Create makes the tenant collection of slug and returns its UUID. An
// existing collection of that name is dropped first: the caller holds the
// slug's claim, so it can only be left over from a create that never
// finished, or made by a late write for an organization gone since.
func (r *TenantRepository) Create(ctx context.Context, slug string) (string, error) {
	name := CollectionName(slug)
	err := r.db.CreateCollection(ctx, name)
	if isCode(err, codeNamespaceExists) {
		if err := r.db.Collection(name).Drop(ctx); err != nil {
			return "", wrap(err)
		}
		err = r.db.CreateCollection(ctx, name)
	}
	if err != nil {
		return "", fmt.Errorf("create tenant collection %s: %w", name, wrap(err))
	}
	if r.prepare != nil {
		if err := r.prepare(ctx, name); err != nil {
			return "", fmt.Errorf("prepare tenant collection %s: %w", name, err)
		}
	}
	uuid, err := r.UUID(ctx, slug)
	if err != nil {
		return "", err
	}
	if uuid == "" {
		return "", fmt.Errorf("create tenant collection %s: it is not listed", name)
	}
	return uuid, nil
}

// UUID returns the UUID of the tenant collection of slug, or "" when there
// is no such collection. A rename keeps a collection's UUID.
func (r *TenantRepository) UUID(ctx context.Context, slug string) (string, error) {
	uuids, err := r.uuids(ctx, slug)
	return uuids[0], err
}

// uuids returns the UUIDs of the tenant collections of slugs, in order, ""
// for each that does not exist, from one listing.
func (r *TenantRepository) uuids(ctx context.Context, slugs ...string) ([]string, error) {
	names := make([]string, len(slugs))
	for i, slug := range slugs {
		names[i] = CollectionName(slug)
	}
	out := make([]string, len(slugs))
	specs, err := r.db.ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: bson.D{{Key: "$in", Value: names}}}})
	if err != nil {
		return out, wrap(err)
	}
	for _, s := range specs {
		i := slices.Index(names, s.Name)
		switch {
		case i < 0:
		case s.UUID == nil:
			out[i] = "-" // a store that does not tell; any non-empty value
		default:
			out[i] = hex.EncodeToString(s.UUID.Data)
		}
	}
	return out, nil
}

// Rename moves the tenant collection of from to to on the server, keeping
// every document and its _id. The collection moved is the one with the
// given UUID: a rename that already happened is not repeated, and a
// collection of either name that is not the organization's (one re-created
// by a late write) is dropped first. An empty uuid moves whatever is there.
func (r *TenantRepository) Rename(ctx context.Context, from, to, uuid string) error {
	found, err := r.uuids(ctx, from, to)
	if err != nil {
		return err
	}
	src, dst := found[0], found[1]
	if uuid != "" && dst == uuid {
		// Moved already; anything under the old name came later.
		if src != "" {
			return r.Drop(ctx, from)
		}
		return nil
	}
	if uuid != "" && src != uuid {
		return fmt.Errorf("rename tenant collection %s: %w", CollectionName(from), ErrNotFound)
	}
	if dst != "" {
		if err := r.Drop(ctx, to); err != nil {
			return err
		}
	}
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

const codeNamespaceExists = 48

func isCode(err error, code int32) bool {
	var ce mongo.CommandError
	return errors.As(err, &ce) && ce.Code == code
}

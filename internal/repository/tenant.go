package repository

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgsvc/orgsvc/internal/model"
)

// TenantPrefix starts the name of every tenant collection, and of nothing
// else in the database.
const TenantPrefix = "org_"

// TenantRepository owns the per-organization collections. It is the only
// code that turns an organization's slug into a collection name, and its
// tenant database into a database.
//
// Tenant collections live in tenant databases beside the master database,
// "<master>_t000", "<master>_t001", ...: each receives perDatabase new
// collections, then the next one is started. An organization's database
// is chosen when it is made and recorded with it, so the setting can
// change at any time. On the embedded store each database is a file of
// its own, and making or dropping a collection costs in proportion to the
// collections of its file: bounding them keeps a sign-up as cheap at
// 5,000 organizations as at 10 (see README, "Design choices").
type TenantRepository struct {
	// beforeMove, when set (by tests), runs before each renameCollection
	// and between Create's drop of a collection in its way and its create.
	beforeMove func()

	master      *mongo.Database
	perDatabase int
	// prepare, when set, is called with the database and name of every
	// tenant collection made (the embedded store indexes it).
	prepare func(ctx context.Context, db, collection string) error

	mu   sync.Mutex
	next int // the lowest tenant database that may have room
	// room is how many more collections database next takes, as counted
	// at counted (see Place).
	room    int
	counted time.Time

	// idOnly is whether the store evaluates only a lone _id equality
	// filter itself (see store.IDFiltersOnly): 0 not known yet, 1 no, 2
	// yes.
	idOnly atomic.Int32

	// scans bounds the listings reading whole collections at once.
	scans scanSlots
	// afterIDScan, when set (by tests), runs after each id scan of a
	// listing on the embedded store.
	afterIDScan func()
	// raw, when set, reads an export's ids on the embedded store (see
	// ReadRaw).
	raw RawReader
}

// SetIDFiltersOnly says whether the store evaluates only a lone _id
// equality filter itself, as the embedded store does; unless set, the
// store is asked once, at the first document call.
func (r *TenantRepository) SetIDFiltersOnly(v bool) {
	if v {
		r.idOnly.Store(2)
	} else {
		r.idOnly.Store(1)
	}
}

// idFiltersOnly reports what SetIDFiltersOnly set, or else IDFiltersOnly.
func (r *TenantRepository) idFiltersOnly(ctx context.Context) (bool, error) {
	switch r.idOnly.Load() {
	case 1:
		return false, nil
	case 2:
		return true, nil
	}
	ferret, err := IDFiltersOnly(ctx, r.master)
	if err != nil {
		return false, wrap(err)
	}
	known := int32(1)
	if ferret {
		known = 2
	}
	r.idOnly.CompareAndSwap(0, known)
	return r.idOnly.Load() == 2, nil
}

// IDFiltersOnly reports whether db is served by FerretDB, which evaluates
// only a lone _id equality filter itself: from the buildInfo answer, in
// which only FerretDB gives a ferretdbVersion.
func IDFiltersOnly(ctx context.Context, db *mongo.Database) (bool, error) {
	var info bson.M
	if err := db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return false, err
	}
	_, ferret := info["ferretdbVersion"]
	return ferret, nil
}

// NewTenantRepository returns a repository whose tenant databases beside
// master receive perDatabase collections each (0: new collections go into
// master itself, the original service's layout).
func NewTenantRepository(master *mongo.Database, perDatabase int) *TenantRepository {
	return &TenantRepository{master: master, perDatabase: perDatabase}
}

// OnCreate sets what is done to every tenant collection made, after it is
// made (see store.Store.IndexCollection).
func (r *TenantRepository) OnCreate(f func(ctx context.Context, db, collection string) error) {
	r.prepare = f
}

// CollectionName is the tenant collection of the organization with slug.
func CollectionName(slug string) string { return TenantPrefix + slug }

// Place chooses the tenant database of a new organization ("" for the
// master database): the first one holding fewer than perDatabase tenant
// collections, counted from the database's own list, starting where the
// last choice was made (from the first after a restart, so that room left
// by deletions is used again). A count is used for placeRecount, one
// collection less each time, so that a burst of sign-ups lists the
// database once. Instances choosing within that time may put a few more
// into a database; the bound is a target, not a limit.
func (r *TenantRepository) Place(ctx context.Context) (string, error) {
	if r.perDatabase <= 0 {
		return "", nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.room > 0 && time.Since(r.counted) < placeRecount {
		r.room--
		return model.TenantDatabase(r.master.Name(), r.next), nil
	}
	for {
		db := model.TenantDatabase(r.master.Name(), r.next)
		names, err := r.database(db).ListCollectionNames(ctx, bson.D{})
		if err != nil {
			return "", wrap(err)
		}
		n := 0
		for _, name := range names {
			if strings.HasPrefix(name, TenantPrefix) {
				n++
			}
		}
		if n < r.perDatabase {
			r.room, r.counted = r.perDatabase-n-1, time.Now()
			return db, nil
		}
		r.next++
	}
}

// placeRecount is how long Place trusts its count of a database.
const placeRecount = 5 * time.Second

// database is the database of a tenant collection.
func (r *TenantRepository) database(db string) *mongo.Database {
	if db == "" || db == r.master.Name() {
		return r.master
	}
	return r.master.Client().Database(db)
}

// collection is the tenant collection t. Every document operation goes
// through here: the collection is resolved per call from the organization
// of the caller's verified token.
func (r *TenantRepository) collection(t model.Tenant) *mongo.Collection {
	return r.database(t.DB).Collection(CollectionName(t.Slug))
}

// Describe names the tenant collection t for people: database.collection.
func (r *TenantRepository) Describe(t model.Tenant) string {
	return r.database(t.DB).Name() + "." + CollectionName(t.Slug)
}

// Create makes the tenant collection t and returns its UUID. An existing
// collection of that name is dropped first: the caller holds the slug's
// claim, so it can only be left over from a create that never finished,
// or made by a late write for an organization gone since.
func (r *TenantRepository) Create(ctx context.Context, t model.Tenant) (string, error) {
	db, name := r.database(t.DB), CollectionName(t.Slug)
	err := db.CreateCollection(ctx, name)
	// A late write may make it again between the drop and the create.
	for attempt := 0; isCode(err, codeNamespaceExists) && attempt < 3; attempt++ {
		if err := db.Collection(name).Drop(ctx); err != nil {
			return "", wrap(err)
		}
		if r.beforeMove != nil {
			r.beforeMove()
		}
		err = db.CreateCollection(ctx, name)
	}
	if err != nil {
		return "", fmt.Errorf("create tenant collection %s.%s: %w", db.Name(), name, wrap(err))
	}
	if r.prepare != nil {
		if err := r.prepare(ctx, db.Name(), name); err != nil {
			return "", fmt.Errorf("prepare tenant collection %s.%s: %w", db.Name(), name, err)
		}
	}
	uuid, err := r.UUID(ctx, t)
	if err != nil {
		return "", err
	}
	if uuid == "" {
		return "", fmt.Errorf("create tenant collection %s.%s: it is not listed", db.Name(), name)
	}
	return uuid, nil
}

// UUID returns the UUID of the tenant collection t, or "" when there is no
// such collection. A rename keeps a collection's UUID.
func (r *TenantRepository) UUID(ctx context.Context, t model.Tenant) (string, error) {
	uuids, err := r.uuids(ctx, t.DB, t.Slug)
	return uuids[0], err
}

// uuids returns the UUIDs of the tenant collections of slugs in database
// db, in order, "" for each that does not exist, from one listing.
func (r *TenantRepository) uuids(ctx context.Context, db string, slugs ...string) ([]string, error) {
	names := make([]string, len(slugs))
	for i, slug := range slugs {
		names[i] = CollectionName(slug)
	}
	return r.uuidsOf(ctx, db, names)
}

// uuidsOf is uuids for collection names.
func (r *TenantRepository) uuidsOf(ctx context.Context, db string, names []string) ([]string, error) {
	out := make([]string, len(names))
	specs, err := r.database(db).ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: bson.D{{Key: "$in", Value: names}}}})
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

// Rename moves the tenant collection t to the slug to, in the same
// database, on the server, keeping every document and its _id. The
// collection moved is the one with the given UUID: a rename that already
// happened is not repeated (what is under the old name then is left to
// the caller, which alone knows whether that name is still its own), and a
// collection under the new name that is not the organization's (one
// re-created by a late write) is dropped first.
// An empty uuid moves whatever is there.
func (r *TenantRepository) Rename(ctx context.Context, t model.Tenant, to, uuid string) error {
	return r.move(ctx, t.DB, CollectionName(t.Slug), CollectionName(to), uuid, "tenant collection ")
}

// move is Rename for collection names from and to of database db; what
// names the collections in errors.
func (r *TenantRepository) move(ctx context.Context, db, from, to, uuid, what string) error {
	name := r.database(db).Name()
	// A late write may re-make the target between its drop and the move:
	// the move is then tried again, a few times.
	for attempt := 1; ; attempt++ {
		found, err := r.uuidsOf(ctx, db, []string{from, to})
		if err != nil {
			return err
		}
		src, dst := found[0], found[1]
		if uuid != "" && dst == uuid {
			// Moved already. Whatever is under the old name came later, and
			// may be another organization's by now: the caller decides.
			return nil
		}
		if uuid != "" && src != uuid {
			return fmt.Errorf("rename %s%s: %w", what, from, ErrNotFound)
		}
		if dst != "" {
			if err := wrap(r.database(db).Collection(to).Drop(ctx)); err != nil {
				return err
			}
		}
		if r.beforeMove != nil {
			r.beforeMove()
		}
		cmd := bson.D{
			{Key: "renameCollection", Value: name + "." + from},
			{Key: "to", Value: name + "." + to},
			{Key: "dropTarget", Value: false},
		}
		err = r.master.Client().Database("admin").RunCommand(ctx, cmd).Err()
		if err == nil {
			return nil
		}
		if !isCode(err, codeNamespaceExists) || attempt == 3 {
			return fmt.Errorf("rename %s%s to %s: %w", what, from, to, wrap(err))
		}
	}
}

// Stats are a tenant collection's documents and the bytes they take, as
// the store counts them (collStats).
type Stats struct {
	Documents int64
	Bytes     int64
}

// Stats counts the tenant collection t: one command. A missing collection
// holds nothing.
func (r *TenantRepository) Stats(ctx context.Context, t model.Tenant) (Stats, error) {
	return r.statsOf(ctx, t.DB, CollectionName(t.Slug))
}

// statsOf is Stats for collection name of database db.
func (r *TenantRepository) statsOf(ctx context.Context, db, name string) (Stats, error) {
	var out struct {
		Count int64 `bson:"count"`
		Size  int64 `bson:"size"`
	}
	err := r.database(db).RunCommand(ctx, bson.D{{Key: "collStats", Value: name}}).Decode(&out)
	if isCode(err, codeNamespaceNotFound) {
		return Stats{}, nil
	}
	if err != nil {
		return Stats{}, wrap(err)
	}
	return Stats{Documents: out.Count, Bytes: out.Size}, nil
}

const codeNamespaceNotFound = 26

// Drop removes the tenant collection t; dropping a missing one is no
// error.
func (r *TenantRepository) Drop(ctx context.Context, t model.Tenant) error {
	return wrap(r.collection(t).Drop(ctx))
}

// Tenants lists every tenant collection: those of the master database
// (DB "") and of every tenant database, whether or not new organizations
// are still placed there.
func (r *TenantRepository) Tenants(ctx context.Context) ([]model.Tenant, error) {
	dbs, err := r.databases(ctx)
	if err != nil {
		return nil, err
	}
	var out []model.Tenant
	for _, db := range dbs {
		names, err := r.database(db).ListCollectionNames(ctx, bson.D{})
		if err != nil {
			return nil, wrap(err)
		}
		for _, n := range names {
			if slug, ok := strings.CutPrefix(n, TenantPrefix); ok {
				out = append(out, model.Tenant{DB: db, Slug: slug})
			}
		}
	}
	return out, nil
}

// databases are the databases that may hold tenant collections: "" (the
// master database) and every tenant database.
func (r *TenantRepository) databases(ctx context.Context) ([]string, error) {
	dbs, err := r.master.Client().ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, wrap(err)
	}
	out := []string{""}
	for _, db := range dbs {
		if model.IsTenantDatabase(r.master.Name(), db) {
			out = append(out, db)
		}
	}
	return out, nil
}

const codeNamespaceExists = 48

func isCode(err error, code int32) bool {
	var ce mongo.CommandError
	return errors.As(err, &ce) && ce.Code == code
}

// DocumentOwners returns the _id and _org (zero when it has none) of every
// document of t, reading the whole collection, for the consistency check.
func (r *TenantRepository) DocumentOwners(ctx context.Context, t model.Tenant) ([]model.Document, error) {
	opts := options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "_org", Value: 1}})
	cur, err := r.collection(t).Find(ctx, bson.D{}, opts)
	if err != nil {
		return nil, wrap(err)
	}
	var out []model.Document
	if err := cur.All(ctx, &out); err != nil {
		return nil, wrap(err)
	}
	return out, nil
}

// DeleteStrays removes the documents ids of t whose _org is set and is
// not owner's: documents of other organizations that a write left in t.
func (r *TenantRepository) DeleteStrays(ctx context.Context, t model.Tenant, owner bson.ObjectID, ids []bson.ObjectID) (int64, error) {
	res, err := r.collection(t).DeleteMany(ctx, bson.D{
		{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}},
		{Key: "_org", Value: bson.D{{Key: "$exists", Value: true}, {Key: "$ne", Value: owner}}},
	})
	if err != nil {
		return 0, wrap(err)
	}
	return res.DeletedCount, nil
}

// RecordOwner sets _org to owner on the documents ids of t that have none.
// The ids must have been read from owner's collection: a document of that
// _id, wherever a rename has taken it since, is owner's.
func (r *TenantRepository) RecordOwner(ctx context.Context, t model.Tenant, owner bson.ObjectID, ids []bson.ObjectID) (int64, error) {
	res, err := r.collection(t).UpdateMany(ctx,
		bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}, noOrg},
		bson.D{{Key: "$set", Value: bson.D{{Key: "_org", Value: owner}}}})
	if err != nil {
		return 0, wrap(err)
	}
	return res.ModifiedCount, nil
}

package repository

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgsvc/orgsvc/internal/failpoint"
	"github.com/orgsvc/orgsvc/internal/model"
)

// StagingPrefix begins the name of the collections an import loads before
// it is swapped in or merged ("import_" + an ObjectID, whose time says how
// old a leftover is), and of the collections a swap parks the old data in
// ("import_old_" + the operation's id). Neither starts with "org_".
const StagingPrefix = "import_"

// StagingName is the staging collection of an import.
func StagingName(id bson.ObjectID) string { return StagingPrefix + id.Hex() }

// ParkedName is where the swap of operation op parks the data it replaces.
func ParkedName(op bson.ObjectID) string { return StagingPrefix + "old_" + op.Hex() }

// CreateStaging makes an empty staging collection in database db, prepared
// as tenant collections are, and returns its UUID.
func (r *TenantRepository) CreateStaging(ctx context.Context, db, name string) (string, error) {
	d := r.database(db)
	if err := d.CreateCollection(ctx, name); err != nil {
		return "", fmt.Errorf("create staging collection %s.%s: %w", d.Name(), name, wrap(err))
	}
	if r.prepare != nil {
		if err := r.prepare(ctx, d.Name(), name); err != nil {
			return "", fmt.Errorf("prepare staging collection %s.%s: %w", d.Name(), name, err)
		}
	}
	uuids, err := r.namedUUIDs(ctx, db, name)
	if err != nil {
		return "", err
	}
	return uuids[0], nil
}

// InsertStaged writes docs to a staging collection, all of them even when
// some fail; dups are the indexes in docs of those whose id was taken.
func (r *TenantRepository) InsertStaged(ctx context.Context, db, name string, docs []*model.Document) (dups []int, err error) {
	if len(docs) == 0 {
		return nil, nil
	}
	batch := make([]any, len(docs))
	for i, d := range docs {
		batch[i] = d
	}
	_, err = r.database(db).Collection(name).InsertMany(ctx, batch, options.InsertMany().SetOrdered(false))
	var bulk mongo.BulkWriteException
	if errors.As(err, &bulk) && bulk.WriteConcernError == nil {
		for _, we := range bulk.WriteErrors {
			if !mongo.IsDuplicateKeyError(we) {
				return nil, wrap(err)
			}
			dups = append(dups, we.Index)
		}
		return dups, nil
	}
	return nil, wrap(err)
}

// DropStaging removes a staging or parked collection; a missing one is no
// error.
func (r *TenantRepository) DropStaging(ctx context.Context, db, name string) error {
	if !strings.HasPrefix(name, StagingPrefix) {
		return fmt.Errorf("drop staging collection: %q is not one", name)
	}
	return r.dropNamed(ctx, db, name)
}

// dropNamed drops collection name of database db; a missing one is no
// error.
func (r *TenantRepository) dropNamed(ctx context.Context, db, name string) error {
	return wrap(r.database(db).Collection(name).Drop(ctx))
}

// Staged counts the documents of a staging collection.
func (r *TenantRepository) Staged(ctx context.Context, db, name string) (int64, error) {
	n, err := r.database(db).Collection(name).EstimatedDocumentCount(ctx)
	return n, wrap(err)
}

// Swap puts the staging collection (its UUID stagingUUID) in the place of
// the tenant collection t, whose data goes to parked and then away: two
// renames, since FerretDB refuses renameCollection with dropTarget. Each
// step checks by UUID what is where, so the swap may run again from the
// start: done when t holds the staged collection. liveUUID is the tenant
// collection's before the swap ("" when unknown: whatever is under t).
func (r *TenantRepository) Swap(ctx context.Context, t model.Tenant, staging, stagingUUID, liveUUID, parked string) error {
	live := CollectionName(t.Slug)
	found, err := r.namedUUIDs(ctx, t.DB, live, staging)
	if err != nil {
		return err
	}
	if found[0] == stagingUUID && stagingUUID != "" {
		return r.DropStaging(ctx, t.DB, parked)
	}
	if found[1] != stagingUUID {
		return fmt.Errorf("swap into %s: the staging collection %s is gone: %w", live, staging, ErrNotFound)
	}
	if found[0] != "" {
		if liveUUID == "" || found[0] == liveUUID {
			if err := r.renameNamed(ctx, t.DB, live, parked); err != nil {
				return err
			}
			failpoint.Reach("import:between-renames")
		} else if err := r.Drop(ctx, t); err != nil {
			return err // a late write's collection, made after the old one left
		}
	}
	if r.beforeMove != nil {
		r.beforeMove()
	}
	for attempt := 1; ; attempt++ {
		err := r.renameNamed(ctx, t.DB, staging, live)
		if err == nil {
			break
		}
		if !isCode(err, codeNamespaceExists) || attempt == 3 {
			return err
		}
		// A late write made the live name again between the renames.
		if err := r.Drop(ctx, t); err != nil {
			return err
		}
	}
	return r.DropStaging(ctx, t.DB, parked)
}

// renameNamed renames collection from to to, in database db.
func (r *TenantRepository) renameNamed(ctx context.Context, db, from, to string) error {
	name := r.database(db).Name()
	cmd := bson.D{
		{Key: "renameCollection", Value: name + "." + from},
		{Key: "to", Value: name + "." + to},
		{Key: "dropTarget", Value: false},
	}
	if err := r.master.Client().Database("admin").RunCommand(ctx, cmd).Err(); err != nil {
		return fmt.Errorf("rename %s to %s: %w", from, to, err)
	}
	return nil
}

// mergeBatch is how many upserts a command of a merge carries, and
// ferretMergeBatch on the embedded store: its update command (FerretDB
// 1.24, handler.updateDocument) keeps a connection of the database's
// SQLite pool, of 100, for every statement that matched a document until
// the command ends, so a command replacing about 100 existing documents
// waits forever for a connection, and every request to that database
// with it.
const (
	mergeBatch       = 500
	ferretMergeBatch = 16
)

// Merge upserts every document of the staging collection into the tenant
// collection t, by _id, as org's: running it again gives the same state.
// It returns how many documents it upserted.
func (r *TenantRepository) Merge(ctx context.Context, t model.Tenant, staging string, org bson.ObjectID) (int64, error) {
	idOnly, err := r.idFiltersOnly(ctx)
	if err != nil {
		return 0, err
	}
	batch := mergeBatch
	if idOnly {
		batch = ferretMergeBatch
	}
	cur, err := r.database(t.DB).Collection(staging).Find(ctx, bson.D{}, options.Find().SetBatchSize(mergeBatch))
	if err != nil {
		return 0, wrap(err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	live := r.collection(t)
	var n int64
	var models []mongo.WriteModel
	flush := func() error {
		if len(models) == 0 {
			return nil
		}
		_, err := live.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
		n += int64(len(models))
		models = models[:0]
		return wrap(err)
	}
	for cur.Next(ctx) {
		var raw bson.Raw = append(bson.Raw(nil), cur.Current...)
		id := raw.Lookup("_id")
		models = append(models, mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}).SetReplacement(raw).SetUpsert(true))
		if len(models) == batch {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := cur.Err(); err != nil {
		return n, wrap(err)
	}
	return n, flush()
}

// namedUUIDs is uuids for collection names.
func (r *TenantRepository) namedUUIDs(ctx context.Context, db string, names ...string) ([]string, error) {
	return r.uuidsOf(ctx, db, names)
}

// Stagings lists the staging and parked collections of every database
// holding tenant collections, as database and name.
func (r *TenantRepository) Stagings(ctx context.Context) ([][2]string, error) {
	return r.prefixed(ctx, StagingPrefix)
}

// prefixed lists the collections whose name begins with prefix in every
// database holding tenant collections, as database and name.
func (r *TenantRepository) prefixed(ctx context.Context, prefix string) ([][2]string, error) {
	dbs, err := r.databases(ctx)
	if err != nil {
		return nil, err
	}
	var out [][2]string
	for _, db := range dbs {
		names, err := r.database(db).ListCollectionNames(ctx, bson.D{})
		if err != nil {
			return nil, wrap(err)
		}
		for _, n := range names {
			if strings.HasPrefix(n, prefix) {
				out = append(out, [2]string{db, n})
			}
		}
	}
	return out, nil
}

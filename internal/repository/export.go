package repository

import (
	"bytes"
	"context"
	"errors"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgsvc/orgsvc/internal/model"
)

// exportBatch is how many documents a batch of an export reads.
const exportBatch = 1000

// ScanDocuments calls fn with every document of org in t, in id order
// (documents stored without _org among them, with Org zero: the caller
// confirms the collection is org's). Memory does not grow with the
// collection, but for its ids on the embedded store: there a collection is
// read in the order it was written, so the ids are read first, and if that
// order is id order (the usual case) the documents are read in one more
// pass; otherwise each document is read by _id in id order.
func (r *TenantRepository) ScanDocuments(ctx context.Context, t model.Tenant, org bson.ObjectID, fn func(*model.Document) error) error {
	idOnly, err := r.idFiltersOnly(ctx)
	if err != nil {
		return err
	}
	coll := r.collection(t)
	if !idOnly {
		opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(exportBatch).SetProjection(noScalars)
		return scanDocs(ctx, coll, bson.D{orgOrNone(org)}, opts, org, fn)
	}
	ids, sorted, err := naturalIDs(ctx, coll)
	if err != nil {
		return err
	}
	if sorted {
		// Documents written since the ids were read may come out of
		// order: those are left out, as if written after the export.
		var last bson.ObjectID
		return scanDocs(ctx, coll, bson.D{}, options.Find().SetBatchSize(exportBatch).SetProjection(noScalars), org, func(d *model.Document) error {
			if bytes.Compare(d.ID[:], last[:]) <= 0 {
				return nil
			}
			last = d.ID
			return fn(d)
		})
	}
	for _, id := range ids {
		var d model.Document
		err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}, options.FindOne().SetProjection(noScalars)).Decode(&d)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue // deleted since
		}
		if err != nil {
			return wrap(err)
		}
		if d.Org != org && !d.Org.IsZero() {
			continue
		}
		if err := fn(&d); err != nil {
			return err
		}
	}
	return nil
}

// scanDocs calls fn with each of org's documents the query finds.
func scanDocs(ctx context.Context, coll *mongo.Collection, filter bson.D, opts *options.FindOptionsBuilder, org bson.ObjectID, fn func(*model.Document) error) error {
	cur, err := coll.Find(ctx, filter, opts)
	if err != nil {
		return wrap(err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		var d model.Document
		if err := cur.Decode(&d); err != nil {
			return err
		}
		if d.Org != org && !d.Org.IsZero() {
			continue
		}
		if err := fn(&d); err != nil {
			return err
		}
	}
	return wrap(cur.Err())
}

// naturalIDs reads the ObjectID _ids of coll in the order the store keeps
// them, and says whether that is id order; unsorted, they come back sorted.
func naturalIDs(ctx context.Context, coll *mongo.Collection) ([]bson.ObjectID, bool, error) {
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(idBatch))
	if err != nil {
		return nil, false, wrap(err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	var ids []bson.ObjectID
	sorted := true
	for cur.Next(ctx) {
		id, ok := cur.Current.Lookup("_id").ObjectIDOK()
		if !ok {
			continue
		}
		if n := len(ids); n > 0 && bytes.Compare(ids[n-1][:], id[:]) >= 0 {
			sorted = false
		}
		ids = append(ids, id)
	}
	if err := cur.Err(); err != nil {
		return nil, false, wrap(err)
	}
	if !sorted {
		slices.SortFunc(ids, func(a, b bson.ObjectID) int { return bytes.Compare(a[:], b[:]) })
	}
	return ids, sorted, nil
}

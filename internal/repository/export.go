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

// ReadRaw sets the reader of an export's ids past the driver on the
// embedded store, where FerretDB would decode every whole document for
// them.
func (r *TenantRepository) ReadRaw(raw RawReader) { r.raw = raw }

// ScanDocuments calls fn with every document of org in t, in id order
// (documents stored without _org among them, with Org zero: the caller
// confirms the collection is org's). Memory does not grow with the
// collection, but for its ids on the embedded store: there a collection is
// read in the order it was written, so the ids are read first in that
// order. The longest increasing run of them (all of them when that order
// is id order, the usual case) is read in one more pass over the
// collection; the others, the strays, are read one by one by _id, each
// between the documents of the pass it falls between.
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
	var ids []bson.ObjectID
	if r.raw != nil {
		ids, err = r.raw.NaturalIDs(ctx, coll.Database().Name(), coll.Name())
	} else {
		ids, err = naturalIDs(ctx, coll)
	}
	if err != nil {
		return wrap(err)
	}
	pass, strays := splitIncreasing(ids)
	return mergeScan(ctx, coll, org, pass, strays, fn)
}

// mergeScan calls fn, in id order, with org's documents among those of
// coll whose ids are in pass, read in one natural-order pass, and in
// strays, read by _id; both are sorted, and pass is in natural order.
// Documents written since the ids were read, or come out of pass's order
// (deleted and written again), are left out, as if written after the
// export; documents deleted since are skipped.
func mergeScan(ctx context.Context, coll *mongo.Collection, org bson.ObjectID, pass, strays []bson.ObjectID, fn func(*model.Document) error) error {
	// readStrays calls fn with each stray not yet read below the id
	// below (every one left when below is nil).
	readStrays := func(below *bson.ObjectID) error {
		for len(strays) > 0 && (below == nil || compareIDs(strays[0], *below) < 0) {
			d, err := readDocument(ctx, coll, org, strays[0])
			if err != nil {
				return err
			}
			strays = strays[1:]
			if d != nil {
				if err := fn(d); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if len(pass) > 0 {
		cur, err := coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(exportBatch).SetProjection(noScalars))
		if err != nil {
			return wrap(err)
		}
		defer cur.Close(context.WithoutCancel(ctx))
		next := 0 // pass[next] is the first id the pass has not reached
		for cur.Next(ctx) {
			id, ok := cur.Current.Lookup("_id").ObjectIDOK()
			if !ok {
				continue
			}
			at := next
			if at >= len(pass) || pass[at] != id {
				i, found := slices.BinarySearchFunc(pass[next:], id, compareIDs)
				if !found {
					continue // a stray, or written since
				}
				at = next + i // those before: deleted since
			}
			next = at + 1
			var d model.Document
			if err := cur.Decode(&d); err != nil {
				return err
			}
			if d.Org != org && !d.Org.IsZero() {
				continue
			}
			if err := readStrays(&d.ID); err != nil {
				return err
			}
			if err := fn(&d); err != nil {
				return err
			}
		}
		if err := cur.Err(); err != nil {
			return wrap(err)
		}
	}
	return readStrays(nil)
}

// readDocument reads org's document id in coll (or one without _org); nil
// when there is none.
func readDocument(ctx context.Context, coll *mongo.Collection, org, id bson.ObjectID) (*model.Document, error) {
	var d model.Document
	err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}, options.FindOne().SetProjection(noScalars)).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil // deleted since
	}
	if err != nil {
		return nil, wrap(err)
	}
	if d.Org != org && !d.Org.IsZero() {
		return nil, nil
	}
	return &d, nil
}

// scanDocs calls fn with each of org's documents the query finds.
func scanDocs(ctx context.Context, coll *mongo.Collection, filter bson.D, opts *options.FindOptionsBuilder, org bson.ObjectID, fn func(*model.Document) error) error {
	var fnErr error
	err := findDocs(ctx, coll, filter, opts, org, func(d *model.Document) bool {
		fnErr = fn(d)
		return fnErr == nil
	})
	if fnErr != nil {
		return fnErr
	}
	return wrap(err)
}

// findDocs calls more with each of org's documents (and each without
// _org) the query finds, in the order they come, until more returns
// false. The store's errors are returned as the driver gives them.
func findDocs(ctx context.Context, coll *mongo.Collection, filter bson.D, opts *options.FindOptionsBuilder, org bson.ObjectID, more func(*model.Document) bool) error {
	cur, err := coll.Find(ctx, filter, opts)
	if err != nil {
		return err
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
		if !more(&d) {
			return nil
		}
	}
	return cur.Err()
}

// naturalIDs reads the ObjectID _ids of coll through the driver, in the
// order the store keeps them.
func naturalIDs(ctx context.Context, coll *mongo.Collection) ([]bson.ObjectID, error) {
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(idBatch))
	if err != nil {
		return nil, err
	}
	defer cur.Close(context.WithoutCancel(ctx))
	var ids []bson.ObjectID
	for cur.Next(ctx) {
		if id, ok := cur.Current.Lookup("_id").ObjectIDOK(); ok {
			ids = append(ids, id)
		}
	}
	return ids, cur.Err()
}

func compareIDs(a, b bson.ObjectID) int { return bytes.Compare(a[:], b[:]) }

// splitIncreasing splits ids, in natural order, into a longest strictly
// increasing subsequence, in its order, and the others, sorted. It reuses
// ids for the first.
func splitIncreasing(ids []bson.ObjectID) (increasing, others []bson.ObjectID) {
	// tails[k] is the index of the least id that ends an increasing
	// subsequence of k+1 ids so far; prev[i] the index of the id before
	// ids[i] in the longest one ending at it (-1: none).
	var tails []int32
	prev := make([]int32, len(ids))
	for i, id := range ids {
		k, _ := slices.BinarySearchFunc(tails, id, func(t int32, id bson.ObjectID) int { return compareIDs(ids[t], id) })
		prev[i] = -1
		if k > 0 {
			prev[i] = tails[k-1]
		}
		if k == len(tails) {
			tails = append(tails, int32(i))
		} else {
			tails[k] = int32(i)
		}
	}
	const kept = -2
	if len(tails) > 0 {
		for i := tails[len(tails)-1]; i >= 0; {
			before := prev[i]
			prev[i] = kept
			i = before
		}
	}
	others = make([]bson.ObjectID, 0, len(ids)-len(tails))
	increasing = ids[:0]
	for i, id := range ids {
		if prev[i] == kept {
			increasing = append(increasing, id)
		} else {
			others = append(others, id)
		}
	}
	slices.SortFunc(others, compareIDs)
	return increasing, others
}

package repository

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgsvc/orgsvc/internal/jsondoc"
	"github.com/orgsvc/orgsvc/internal/model"
)

// Batch sizes of a listing's reads. sortedBatch bounds the documents a
// batch of a sorted read holds (MongoDB also caps a batch at 16 MiB);
// idBatch the ids of a batch of the embedded store's id scan.
const (
	sortedBatch = 64
	idBatch     = 1000
)

// ListDocuments returns org's documents with ids above after (all when
// after is zero) that match every condition, in id order: up to limit of
// them, and no more than fit in maxBytes of data (their JSON text), but
// one at least when any matches. more reports whether another document follows
// them. The documents are read one at a time and the read stops once the
// page is full: a listing holds about maxBytes, whatever the collection.
// Documents stored without _org are among them, with Org zero: the caller
// must confirm that the collection is org's.
func (r *TenantRepository) ListDocuments(ctx context.Context, t model.Tenant, org, after bson.ObjectID, where []jsondoc.Condition, limit, maxBytes int) (docs []model.Document, more bool, err error) {
	idOnly, err := r.idFiltersOnly(ctx)
	if err != nil {
		return nil, false, err
	}
	var p *page
	err = reread(ctx, func() error {
		p = &page{limit: max(limit, 1), maxBytes: maxBytes}
		if !idOnly {
			return listSorted(ctx, r.collection(t), org, listFilter(org, after, where), p)
		}
		release, err := r.scans.acquire(ctx, org)
		if err != nil {
			return err
		}
		defer release()
		return r.listByIDs(ctx, r.collection(t), org, after, where, p)
	})
	if droppedUnder(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, wrap(err)
	}
	return p.docs, p.more, nil
}

// page collects a listing's page.
type page struct {
	limit, maxBytes, bytes int
	docs                   []model.Document
	more                   bool
}

// add puts d, the next document in id order, on the page; false when the
// page is full, d left off and more set.
func (p *page) add(d model.Document) bool {
	if len(p.docs) == p.limit || (len(p.docs) > 0 && p.bytes+len(d.JSON) > p.maxBytes) {
		p.more = true
		return false
	}
	p.docs = append(p.docs, d)
	p.bytes += len(d.JSON)
	return true
}

// listFilter matches org's documents (and those without _org) above
// after that meet every condition, in either stored form of the scalars.
func listFilter(org, after bson.ObjectID, where []jsondoc.Condition) bson.D {
	filter := bson.D{orgOrNone(org)}
	if !after.IsZero() {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}})
	}
	if len(where) == 0 {
		return filter
	}
	all := make(bson.A, 0, len(where))
	for _, c := range where {
		var cond any = c.Value
		if c.Value == nil {
			// {field: null} would also match documents without the field.
			cond = bson.D{{Key: "$type", Value: "null"}}
		}
		entry, _ := model.ScalarEntry(c.Field, c.Value)
		all = append(all, bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: model.ScalarsKey, Value: entry}},
			bson.D{{Key: model.LegacyFieldsKey + "." + c.Field, Value: cond}},
		}}})
	}
	return append(filter, bson.E{Key: "$and", Value: all})
}

// listSorted reads the page from a store that serves a sort on _id from
// its index (MongoDB): documents in id order, a batch at a time, until
// the page is full.
func listSorted(ctx context.Context, coll *mongo.Collection, org bson.ObjectID, filter bson.D, p *page) error {
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(p.limit) + 1).
		SetBatchSize(int32(min(p.limit+1, sortedBatch))).SetProjection(noScalars)
	return findDocs(ctx, coll, filter, opts, org, func(d *model.Document) bool { return p.add(*d) })
}

// listByIDs reads the page from the embedded store, which sorts in memory
// by holding every document it sorts, and evaluates no filter but a lone
// _id equality itself. The ids are read unsorted, projected to _id in
// batches of idBatch, keeping only the limit+1 smallest; then each
// document is read by _id (an index lookup) and checked again, until the
// page is full. If documents among those ids went meanwhile, the ids past
// them are read again.
func (r *TenantRepository) listByIDs(ctx context.Context, coll *mongo.Collection, org, after bson.ObjectID, where []jsondoc.Condition, p *page) error {
	for {
		ids, truncated, err := smallestIDs(ctx, coll, listFilter(org, after, where), p.limit+1)
		if err != nil {
			return err
		}
		if r.afterIDScan != nil {
			r.afterIDScan()
		}
		for _, id := range ids {
			opts := options.FindOne()
			if len(where) == 0 {
				opts.SetProjection(noScalars)
			}
			var d model.Document
			err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}, opts).Decode(&d)
			if errors.Is(err, mongo.ErrNoDocuments) {
				continue // deleted since
			}
			if err != nil {
				return err
			}
			if (d.Org != org && !d.Org.IsZero()) || !matches(d.Fields, where) {
				continue
			}
			if !p.add(d) {
				return nil
			}
		}
		if !truncated {
			return nil
		}
		after = ids[len(ids)-1]
	}
}

// smallestIDs returns, in order, the n smallest ObjectID _ids of the
// documents filter matches, and whether there were more.
func smallestIDs(ctx context.Context, coll *mongo.Collection, filter bson.D, n int) ([]bson.ObjectID, bool, error) {
	opts := options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(idBatch)
	cur, err := coll.Find(ctx, filter, opts)
	if err != nil {
		return nil, false, err
	}
	defer cur.Close(context.WithoutCancel(ctx))
	h := make(idHeap, 0, n)
	seen := 0
	for cur.Next(ctx) {
		id, ok := cur.Current.Lookup("_id").ObjectIDOK()
		if !ok {
			continue
		}
		seen++
		switch {
		case len(h) < n:
			heap.Push(&h, id)
		case bytes.Compare(id[:], h[0][:]) < 0:
			h[0] = id
			heap.Fix(&h, 0)
		}
	}
	if err := cur.Err(); err != nil {
		return nil, false, err
	}
	ids := []bson.ObjectID(h)
	slices.SortFunc(ids, func(a, b bson.ObjectID) int { return bytes.Compare(a[:], b[:]) })
	return ids, seen > n, nil
}

// idHeap is a max-heap of ids: its root is the largest id kept.
type idHeap []bson.ObjectID

func (h idHeap) Len() int           { return len(h) }
func (h idHeap) Less(i, j int) bool { return bytes.Compare(h[i][:], h[j][:]) > 0 }
func (h idHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *idHeap) Push(x any)        { *h = append(*h, x.(bson.ObjectID)) }
func (h *idHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// matches reports whether a document's scalars meet every condition, as
// the stores compare them (see model.ScalarEntry).
func matches(fields bson.D, where []jsondoc.Condition) bool {
	for _, c := range where {
		want, _ := model.ScalarEntry(c.Field, c.Value)
		if !slices.ContainsFunc(fields, func(e bson.E) bool {
			got, ok := model.ScalarEntry(e.Key, e.Value)
			return ok && got == want
		}) {
			return false
		}
	}
	return true
}

// scanSlots bound the listings that read a whole collection at once on
// the embedded store: each holds one of the driver's few connections to it
// (store.EmbeddedPoolSize: two per core) and a core for as long as it
// reads. At most one per core run at once, so that half the connections
// stay free for every other request, and an organization gets at most half
// of those slots, so that another's listing finds one free. The others
// wait, within their deadline.
type scanSlots struct {
	mu     sync.Mutex
	all    chan struct{}
	perOrg int
	orgs   map[bson.ObjectID]*orgSlots
}

type orgSlots struct {
	slots chan struct{}
	users int
}

// acquire waits for a slot for org; release gives it back.
func (s *scanSlots) acquire(ctx context.Context, org bson.ObjectID) (release func(), err error) {
	s.mu.Lock()
	if s.all == nil {
		n := max(1, runtime.NumCPU())
		s.all, s.perOrg, s.orgs = make(chan struct{}, n), max(1, n/2), map[bson.ObjectID]*orgSlots{}
	}
	o := s.orgs[org]
	if o == nil {
		o = &orgSlots{slots: make(chan struct{}, s.perOrg)}
		s.orgs[org] = o
	}
	o.users++
	s.mu.Unlock()
	done := func() {
		s.mu.Lock()
		if o.users--; o.users == 0 {
			delete(s.orgs, org)
		}
		s.mu.Unlock()
	}
	select {
	case o.slots <- struct{}{}:
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
	select {
	case s.all <- struct{}{}:
	case <-ctx.Done():
		<-o.slots
		done()
		return nil, ctx.Err()
	}
	return func() {
		<-s.all
		<-o.slots
		done()
	}, nil
}

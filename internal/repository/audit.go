package repository

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgsvc/orgsvc/internal/model"
)

// AuditRepository keeps the organizations' audit logs: one collection per
// organization (model.AuditCollection) in the master database, whose _id
// is the event's sequence number, so that every read of a page is an _id
// lookup within one organization's events, however many others there are.
type AuditRepository struct {
	db *mongo.Database
	// idFiltersOnly: see MasterRepository.
	idFiltersOnly bool
	// prepare, when set, is called for every log made (see
	// store.Store.IndexCollection).
	prepare func(ctx context.Context, db, collection string) error
}

// OnPrepare sets what is done to every log made, once made.
func (r *AuditRepository) OnPrepare(f func(ctx context.Context, db, collection string) error) {
	r.prepare = f
}

// NewAuditRepository returns the audit logs over db.
func NewAuditRepository(db *mongo.Database, idFiltersOnly bool) *AuditRepository {
	return &AuditRepository{db: db, idFiltersOnly: idFiltersOnly}
}

func (r *AuditRepository) log(org bson.ObjectID) *mongo.Collection {
	return r.db.Collection(model.AuditCollection(org))
}

// sourceIndex makes an event's source unique within its log.
const sourceIndex = "source_unique"

// Prepare makes org's log with its index on source (which makes the
// collection), then has it prepared (OnPrepare); it is idempotent.
func (r *AuditRepository) Prepare(ctx context.Context, org bson.ObjectID) error {
	_, err := r.log(org).Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "source", Value: 1}}, Options: options.Index().SetName(sourceIndex).SetUnique(true),
	})
	if err != nil {
		return wrap(err)
	}
	if r.prepare != nil {
		return r.prepare(ctx, r.db.Name(), model.AuditCollection(org))
	}
	return nil
}

// Insert adds ev to org's log; ErrDuplicate when its seq or its source is
// taken.
func (r *AuditRepository) Insert(ctx context.Context, org bson.ObjectID, ev *model.Event) error {
	ev.Key = model.EventKey(ev.Seq)
	return insert(ctx, r.log(org), ev)
}

// Event returns the seq-th event of org.
func (r *AuditRepository) Event(ctx context.Context, org bson.ObjectID, seq int64) (*model.Event, error) {
	var ev model.Event
	if err := findByID(ctx, r.log(org), model.EventKey(seq), &ev); err != nil {
		return nil, err
	}
	return &ev, nil
}

// Last returns org's newest event; ErrNotFound when its log is empty.
func (r *AuditRepository) Last(ctx context.Context, org bson.ObjectID) (*model.Event, error) {
	evs, err := find[model.Event](ctx, r.log(org), bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(1))
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, ErrNotFound
	}
	return &evs[0], nil
}

// First returns org's oldest kept event; ErrNotFound when there is none.
func (r *AuditRepository) First(ctx context.Context, org bson.ObjectID) (*model.Event, error) {
	evs, err := find[model.Event](ctx, r.log(org), bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(1))
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, ErrNotFound
	}
	return &evs[0], nil
}

// AuditFilter selects events: each set field must match. Since is
// inclusive, Until exclusive; both are event times (model.EventTime).
type AuditFilter struct {
	Action, Actor, Since, Until string
}

func (f AuditFilter) empty() bool { return f == AuditFilter{} }

func (f AuditFilter) bson(below int64) bson.D {
	d := bson.D{}
	if below > 0 {
		d = append(d, bson.E{Key: "_id", Value: bson.D{{Key: "$lt", Value: model.EventKey(below)}}})
	}
	if f.Action != "" {
		d = append(d, bson.E{Key: "action", Value: f.Action})
	}
	if f.Actor != "" {
		d = append(d, bson.E{Key: "actor.id", Value: f.Actor})
	}
	var t bson.D
	if f.Since != "" {
		t = append(t, bson.E{Key: "$gte", Value: f.Since})
	}
	if f.Until != "" {
		t = append(t, bson.E{Key: "$lt", Value: f.Until})
	}
	if t != nil {
		d = append(d, bson.E{Key: "time", Value: t})
	}
	return d
}

// Page returns up to limit of org's events below seq before (all when
// before is 0) that match f, newest first, and whether more follow. On the
// embedded store a page without a filter is read event by event by _id
// from the newest down, so that it costs the same in a long log as in a
// short one; a filtered page reads the organization's log.
func (r *AuditRepository) Page(ctx context.Context, org bson.ObjectID, f AuditFilter, before int64, limit int) ([]model.Event, bool, error) {
	if !r.idFiltersOnly || !f.empty() {
		evs, err := find[model.Event](ctx, r.log(org), f.bson(before),
			options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(int64(limit)+1))
		if err != nil {
			return nil, false, err
		}
		if len(evs) > limit {
			return evs[:limit], true, nil
		}
		return evs, false, nil
	}
	seq := before - 1
	if before <= 0 {
		last, err := r.Last(ctx, org)
		if errors.Is(err, ErrNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		seq = last.Seq
	}
	var evs []model.Event
	for ; seq > 0 && len(evs) <= limit; seq-- {
		ev, err := r.Event(ctx, org, seq)
		if errors.Is(err, ErrNotFound) && len(evs) == 0 && before > 0 {
			// A cursor past the newest event: start from the newest.
			last, err := r.Last(ctx, org)
			if err == nil && last.Seq < seq {
				seq = last.Seq + 1
				continue
			}
		}
		if errors.Is(err, ErrNotFound) {
			break // before the first kept event
		}
		if err != nil {
			return nil, false, err
		}
		evs = append(evs, *ev)
	}
	if len(evs) > limit {
		return evs[:limit], true, nil
	}
	return evs, false, nil
}

// Scan calls fn with each of org's events that match f, in sequence order,
// reading batch at a time: memory does not grow with the log. An error
// from fn ends the scan and is returned. The embedded store reads in insertion order, which is sequence
// order (an event is inserted only once the one before it is there, and
// events are removed only from the start); Scan checks that it is.
func (r *AuditRepository) Scan(ctx context.Context, org bson.ObjectID, f AuditFilter, batch int32, fn func(*model.Event) error) error {
	filter := f.bson(0)
	opts := options.Find().SetBatchSize(batch)
	if !r.idFiltersOnly {
		opts.SetSort(bson.D{{Key: "_id", Value: 1}})
	}
	cur, err := r.log(org).Find(ctx, filter, opts)
	if err != nil {
		return wrap(err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	var last int64
	for cur.Next(ctx) {
		var ev model.Event
		if err := cur.Decode(&ev); err != nil {
			return err
		}
		if ev.Seq <= last {
			return fmt.Errorf("audit log of %s: event %d read after event %d", org.Hex(), ev.Seq, last)
		}
		last = ev.Seq
		if err := fn(&ev); err != nil {
			return err
		}
	}
	return wrap(cur.Err())
}

// DeleteBefore removes org's events with seq below seq.
func (r *AuditRepository) DeleteBefore(ctx context.Context, org bson.ObjectID, seq int64) (int64, error) {
	res, err := r.log(org).DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: model.EventKey(seq)}}}})
	if err != nil {
		return 0, wrap(err)
	}
	return res.DeletedCount, nil
}

// Drop removes org's whole log.
func (r *AuditRepository) Drop(ctx context.Context, org bson.ObjectID) error {
	return wrap(r.log(org).Drop(ctx))
}

// Logs returns the organizations that have an audit log, live or deleted.
func (r *AuditRepository) Logs(ctx context.Context) ([]bson.ObjectID, error) {
	names, err := r.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, wrap(err)
	}
	var orgs []bson.ObjectID
	for _, n := range names {
		if !strings.HasPrefix(n, model.AuditPrefix) {
			continue
		}
		if id, ok := model.AuditOrg(n); ok {
			orgs = append(orgs, id)
		}
	}
	return orgs, nil
}

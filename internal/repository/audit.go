package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgsvc/orgsvc/internal/model"
)

// AuditRepository keeps the organizations' audit logs: one collection per
// organization (model.AuditCollection), in the organization's tenant
// database, whose _id is the event's sequence number, so that every read
// of a page is an _id lookup within one organization's events, however
// many others there are.
type AuditRepository struct {
	master *mongo.Database
	// idFiltersOnly: see MasterRepository.
	idFiltersOnly bool
	// prepare, when set, is called for every log made (see
	// store.Store.IndexCollection).
	prepare func(ctx context.Context, db, collection string) error
	// raw, when set, reads a whole collection's documents as JSON, in
	// insertion order (see store.Store.ScanCollection).
	raw func(ctx context.Context, db, collection string, fn func([]byte) error) error
}

// LogRef names one organization's log: the database that holds it (a
// full name) and the organization.
type LogRef struct {
	DB  string
	Org bson.ObjectID
}

// OnPrepare sets what is done to every log made, once made.
func (r *AuditRepository) OnPrepare(f func(ctx context.Context, db, collection string) error) {
	r.prepare = f
}

// ReadRaw sets how whole logs are read, in place of the driver (see the
// raw field).
func (r *AuditRepository) ReadRaw(f func(ctx context.Context, db, collection string, fn func([]byte) error) error) {
	r.raw = f
}

// NewAuditRepository returns the audit logs beside the master database.
func NewAuditRepository(master *mongo.Database, idFiltersOnly bool) *AuditRepository {
	return &AuditRepository{master: master, idFiltersOnly: idFiltersOnly}
}

// Master is the master database's name.
func (r *AuditRepository) Master() string { return r.master.Name() }

func (r *AuditRepository) log(l LogRef) *mongo.Collection {
	return r.master.Client().Database(l.DB).Collection(model.AuditCollection(l.Org))
}

// sourceIndex makes an event's source unique within its log.
const sourceIndex = "source_unique"

// Prepare makes l's log with its index on source (which makes the
// collection), then has it prepared (OnPrepare); it is idempotent.
func (r *AuditRepository) Prepare(ctx context.Context, l LogRef) error {
	_, err := r.log(l).Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "source", Value: 1}}, Options: options.Index().SetName(sourceIndex).SetUnique(true),
	})
	if err != nil {
		return wrap(err)
	}
	if r.prepare != nil {
		return r.prepare(ctx, l.DB, model.AuditCollection(l.Org))
	}
	return nil
}

// Insert adds ev to the log l; ErrDuplicate when its seq or its source is
// taken.
func (r *AuditRepository) Insert(ctx context.Context, l LogRef, ev *model.Event) error {
	ev.Key = model.EventKey(ev.Seq)
	return insert(ctx, r.log(l), ev)
}

// Event returns the seq-th event of the log l.
func (r *AuditRepository) Event(ctx context.Context, l LogRef, seq int64) (*model.Event, error) {
	var ev model.Event
	if err := findByID(ctx, r.log(l), model.EventKey(seq), &ev); err != nil {
		return nil, err
	}
	return &ev, nil
}

// Last returns the newest event of l; ErrNotFound when it is empty.
func (r *AuditRepository) Last(ctx context.Context, l LogRef) (*model.Event, error) {
	evs, err := find[model.Event](ctx, r.log(l), bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(1))
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, ErrNotFound
	}
	return &evs[0], nil
}

// First returns the oldest kept event of l; ErrNotFound when there is
// none.
func (r *AuditRepository) First(ctx context.Context, l LogRef) (*model.Event, error) {
	evs, err := find[model.Event](ctx, r.log(l), bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(1))
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

// Page returns up to limit of l's events below seq before (all when
// before is 0) that match f, newest first, and whether more follow. On the
// embedded store a page without a filter is read event by event by _id
// from the newest down, so that it costs the same in a long log as in a
// short one; a filtered page reads the organization's log.
func (r *AuditRepository) Page(ctx context.Context, l LogRef, f AuditFilter, before int64, limit int) ([]model.Event, bool, error) {
	if !r.idFiltersOnly || !f.empty() {
		evs, err := find[model.Event](ctx, r.log(l), f.bson(before),
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
		last, err := r.Last(ctx, l)
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
		ev, err := r.Event(ctx, l, seq)
		if errors.Is(err, ErrNotFound) && len(evs) == 0 && before > 0 {
			// A cursor past the newest event: start from the newest.
			last, err := r.Last(ctx, l)
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

// Scan calls fn with each of l's events that match f, in sequence order,
// reading batch at a time: memory does not grow with the log. An error
// from fn ends the scan and is returned. The embedded store reads in
// insertion order, which is sequence order (an event is inserted only once
// the one before it is there, and events are removed only from the
// start); Scan checks that it is.
func (r *AuditRepository) Scan(ctx context.Context, l LogRef, f AuditFilter, batch int32, fn func(*model.Event) error) error {
	var last int64
	inOrder := func(ev *model.Event) error {
		if ev.Seq <= last {
			return fmt.Errorf("audit log of %s: event %d read after event %d", l.Org.Hex(), ev.Seq, last)
		}
		last = ev.Seq
		return fn(ev)
	}
	if r.raw != nil {
		return r.scanRaw(ctx, l, f, inOrder)
	}
	opts := options.Find().SetBatchSize(batch)
	if !r.idFiltersOnly {
		opts.SetSort(bson.D{{Key: "_id", Value: 1}})
	}
	cur, err := r.log(l).Find(ctx, f.bson(0), opts)
	if err != nil {
		return wrap(err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		var ev model.Event
		if err := cur.Decode(&ev); err != nil {
			return err
		}
		if err := inOrder(&ev); err != nil {
			return err
		}
	}
	return wrap(cur.Err())
}

// storedEvent is an event as the embedded store's table holds it: its
// fields under their BSON names (which are the JSON names of model.Event
// but for these two).
type storedEvent struct {
	model.Event
	Key    string `json:"_id"`
	Source string `json:"source"`
}

// scanRaw is Scan through the raw reader, f applied here.
func (r *AuditRepository) scanRaw(ctx context.Context, l LogRef, f AuditFilter, fn func(*model.Event) error) error {
	return r.raw(ctx, l.DB, model.AuditCollection(l.Org), func(doc []byte) error {
		var st storedEvent
		if err := json.Unmarshal(doc, &st); err != nil {
			return fmt.Errorf("audit log of %s: %w", l.Org.Hex(), err)
		}
		ev := st.Event
		ev.Key, ev.Source = st.Key, st.Source
		if !f.matches(&ev) {
			return nil
		}
		return fn(&ev)
	})
}

// matches is f.bson evaluated on ev.
func (f AuditFilter) matches(ev *model.Event) bool {
	return (f.Action == "" || ev.Action == f.Action) && (f.Actor == "" || ev.Actor.ID == f.Actor) &&
		(f.Since == "" || ev.Time >= f.Since) && (f.Until == "" || ev.Time < f.Until)
}

// DeleteBefore removes l's events with seq below seq.
func (r *AuditRepository) DeleteBefore(ctx context.Context, l LogRef, seq int64) (int64, error) {
	res, err := r.log(l).DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: model.EventKey(seq)}}}})
	if err != nil {
		return 0, wrap(err)
	}
	return res.DeletedCount, nil
}

// Drop removes the whole log l.
func (r *AuditRepository) Drop(ctx context.Context, l LogRef) error {
	return wrap(r.log(l).Drop(ctx))
}

// Logs returns every log, live or of a deleted organization: those of the
// master database and of each tenant database.
func (r *AuditRepository) Logs(ctx context.Context) ([]LogRef, error) {
	dbs, err := r.master.Client().ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, wrap(err)
	}
	out, err := r.LogsIn(ctx, r.master.Name())
	if err != nil {
		return nil, err
	}
	for _, db := range dbs {
		if !model.IsTenantDatabase(r.master.Name(), db) {
			continue
		}
		refs, err := r.LogsIn(ctx, db)
		if err != nil {
			return nil, err
		}
		out = append(out, refs...)
	}
	return out, nil
}

// LogsIn returns the logs the database db holds.
func (r *AuditRepository) LogsIn(ctx context.Context, db string) ([]LogRef, error) {
	names, err := r.master.Client().Database(db).ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, wrap(err)
	}
	var out []LogRef
	for _, n := range names {
		if !strings.HasPrefix(n, model.AuditPrefix) {
			continue
		}
		if id, ok := model.AuditOrg(n); ok {
			out = append(out, LogRef{DB: db, Org: id})
		}
	}
	return out, nil
}

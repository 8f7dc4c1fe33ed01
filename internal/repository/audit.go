package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgsvc/orgsvc/internal/model"
)

// AuditRepository keeps the organizations' audit logs: in each database
// that holds tenant collections, one collection (model.AuditCollection)
// with the events of its organizations, each log a range of _ids
// (model.EventKey). A sign-up adds an event to a collection that exists,
// and changes no schema; a page or a log is read by its range of _ids.
type AuditRepository struct {
	master *mongo.Database
	// raw, when set, reads ranges of _ids on the embedded store, which
	// would otherwise evaluate them over the whole collection (as FerretDB
	// reached through MONGO_URI does).
	raw RawReader
	// prepare, when set, is called for every audit collection made (see
	// store.Store.IndexCollection).
	prepare func(ctx context.Context, db, collection string) error
}

// RawReader reads the embedded store's tables past the driver (see
// store.RawReader).
type RawReader interface {
	// ScanIDs calls fn with the documents of the collection whose string
	// _id is in the range r, as JSON, in r's order. The bytes passed to
	// fn are valid only during the call.
	ScanIDs(ctx context.Context, db, collection string, r IDRange, fn func(doc []byte) error) error
	// NaturalIDs returns the ObjectID _ids of the collection in the order
	// a find without sort returns its documents (none for a collection
	// that does not exist); other _ids are left out.
	NaturalIDs(ctx context.Context, db, collection string) ([]bson.ObjectID, error)
}

// IDRange is the documents whose _id is From or above and below To, in _id
// order (descending when Desc), at most Limit of them (0: all).
type IDRange struct {
	From, To string
	Desc     bool
	Limit    int
}

// LogRef names one organization's log: the database that holds it (a
// full name) and the organization.
type LogRef struct {
	DB  string
	Org bson.ObjectID
}

// NewAuditRepository returns the audit logs beside the master database.
func NewAuditRepository(master *mongo.Database) *AuditRepository {
	return &AuditRepository{master: master}
}

// OnPrepare sets what is done to every audit collection made, once made.
func (r *AuditRepository) OnPrepare(f func(ctx context.Context, db, collection string) error) {
	r.prepare = f
}

// ReadRaw sets the reader of ranges of _ids on the embedded store.
func (r *AuditRepository) ReadRaw(raw RawReader) { r.raw = raw }

// Master is the master database's name.
func (r *AuditRepository) Master() string { return r.master.Name() }

func (r *AuditRepository) events(db string) *mongo.Collection {
	return r.master.Client().Database(db).Collection(model.AuditCollection)
}

// sourceIndex makes an event's source unique within its log.
const sourceIndex = "org_source_unique"

// Prepare makes the audit collection of the database db, with its index on
// org_id and source, and has it prepared (OnPrepare); it is idempotent.
func (r *AuditRepository) Prepare(ctx context.Context, db string) error {
	_, err := r.events(db).Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "org_id", Value: 1}, {Key: "source", Value: 1}},
		Options: options.Index().SetName(sourceIndex).SetUnique(true),
	})
	if err != nil {
		return wrap(err)
	}
	if r.prepare != nil {
		return r.prepare(ctx, db, model.AuditCollection)
	}
	return nil
}

// Insert adds ev to the log l; ErrDuplicate when its seq or its source is
// taken.
func (r *AuditRepository) Insert(ctx context.Context, l LogRef, ev *model.Event) error {
	ev.Key = model.EventKey(l.Org, ev.Seq)
	return insert(ctx, r.events(l.DB), ev)
}

// Event returns the seq-th event of the log l.
func (r *AuditRepository) Event(ctx context.Context, l LogRef, seq int64) (*model.Event, error) {
	var ev model.Event
	if err := findByID(ctx, r.events(l.DB), model.EventKey(l.Org, seq), &ev); err != nil {
		return nil, err
	}
	return &ev, nil
}

// Last returns the newest event of l; ErrNotFound when it is empty.
func (r *AuditRepository) Last(ctx context.Context, l LogRef) (*model.Event, error) {
	return r.end(ctx, l, true)
}

// First returns the oldest kept event of l; ErrNotFound when there is
// none.
func (r *AuditRepository) First(ctx context.Context, l LogRef) (*model.Event, error) {
	return r.end(ctx, l, false)
}

func (r *AuditRepository) end(ctx context.Context, l LogRef, newest bool) (*model.Event, error) {
	var out *model.Event
	err := r.read(ctx, l, AuditFilter{}, 0, newest, func(ev *model.Event) error {
		out = ev
		return errStop
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, ErrNotFound
	}
	return out, nil
}

// AuditFilter selects events: each set field must match. Since is
// inclusive, Until exclusive; both are event times (model.EventTime).
type AuditFilter struct {
	Action, Actor, Since, Until string
}

// matches is f evaluated on ev.
func (f AuditFilter) matches(ev *model.Event) bool {
	return (f.Action == "" || ev.Action == f.Action) && (f.Actor == "" || ev.Actor.ID == f.Actor) &&
		(f.Since == "" || ev.Time >= f.Since) && (f.Until == "" || ev.Time < f.Until)
}

// bson is f, over l's events below seq below (all when 0).
func (f AuditFilter) bson(l LogRef, below int64) bson.D {
	to := model.EventKeyTo(l.Org)
	if below > 0 {
		to = model.EventKey(l.Org, below)
	}
	d := bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: model.EventKeyFrom(l.Org)}, {Key: "$lt", Value: to}}}}
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

// errStop ends a read early, with no error.
var errStop = errors.New("stop")

// read calls fn with l's events below seq below (all when 0) that match
// f, in sequence order or newest first, until fn returns errStop (which
// read does not return) or another error (which it does). Memory does not
// grow with the log.
func (r *AuditRepository) read(ctx context.Context, l LogRef, f AuditFilter, below int64, newest bool, fn func(*model.Event) error) error {
	var err error
	switch {
	case r.raw != nil:
		err = r.readRaw(ctx, l, f, below, newest, fn)
	default:
		err = r.findEvents(ctx, l.DB, f.bson(l, below), newest, fn)
	}
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

func (r *AuditRepository) findEvents(ctx context.Context, db string, filter bson.D, newest bool, fn func(*model.Event) error) error {
	order := 1
	if newest {
		order = -1
	}
	opts := options.Find().SetBatchSize(256).SetSort(bson.D{{Key: "_id", Value: order}})
	cur, err := r.events(db).Find(ctx, filter, opts)
	if err != nil {
		return wrap(err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		var ev model.Event
		if err := cur.Decode(&ev); err != nil {
			return err
		}
		if err := fn(&ev); err != nil {
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

func (r *AuditRepository) readRaw(ctx context.Context, l LogRef, f AuditFilter, below int64, newest bool, fn func(*model.Event) error) error {
	rg := IDRange{From: model.EventKeyFrom(l.Org), To: model.EventKeyTo(l.Org), Desc: newest}
	if below > 0 {
		rg.To = model.EventKey(l.Org, below)
	}
	return r.scanRaw(ctx, l.DB, rg, func(ev *model.Event) error {
		if !f.matches(ev) {
			return nil
		}
		return fn(ev)
	})
}

func (r *AuditRepository) scanRaw(ctx context.Context, db string, rg IDRange, fn func(*model.Event) error) error {
	return r.raw.ScanIDs(ctx, db, model.AuditCollection, rg, func(doc []byte) error {
		var st storedEvent
		if err := json.Unmarshal(doc, &st); err != nil {
			return fmt.Errorf("%s.%s: %w", db, model.AuditCollection, err)
		}
		ev := st.Event
		ev.Key, ev.Source = st.Key, st.Source
		return fn(&ev)
	})
}

// ScanDatabase calls fn with every event of every log that db holds, in
// _id order: log by log, each in sequence order. It reads the collection
// once, where reading it log by log is a whole-collection read per log on
// the embedded store when it is reached over the wire.
func (r *AuditRepository) ScanDatabase(ctx context.Context, db string, fn func(*model.Event) error) error {
	var err error
	if r.raw != nil {
		err = r.scanRaw(ctx, db, IDRange{From: "", To: "~"}, fn) // "~" sorts after every character of an _id
	} else {
		err = r.findEvents(ctx, db, bson.D{}, false, fn)
	}
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// Page returns up to limit of l's events below seq before (all when
// before is 0) that match f, newest first, and whether more follow.
func (r *AuditRepository) Page(ctx context.Context, l LogRef, f AuditFilter, before int64, limit int) ([]model.Event, bool, error) {
	var evs []model.Event
	err := r.read(ctx, l, f, before, true, func(ev *model.Event) error {
		evs = append(evs, *ev)
		if len(evs) > limit {
			return errStop
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	if len(evs) > limit {
		return evs[:limit], true, nil
	}
	return evs, false, nil
}

// Scan calls fn with each of l's events that match f, in sequence order,
// and checks that the order holds. An error from fn ends the scan and is
// returned.
func (r *AuditRepository) Scan(ctx context.Context, l LogRef, f AuditFilter, fn func(*model.Event) error) error {
	var last int64
	return r.read(ctx, l, f, 0, false, func(ev *model.Event) error {
		if ev.Seq <= last {
			return fmt.Errorf("audit log of %s: event %d read after event %d", l.Org.Hex(), ev.Seq, last)
		}
		last = ev.Seq
		return fn(ev)
	})
}

// DeleteBefore removes l's events with seq below seq.
func (r *AuditRepository) DeleteBefore(ctx context.Context, l LogRef, seq int64) (int64, error) {
	return r.remove(ctx, l, model.EventKey(l.Org, seq))
}

// Drop removes the whole log l.
func (r *AuditRepository) Drop(ctx context.Context, l LogRef) error {
	_, err := r.remove(ctx, l, model.EventKeyTo(l.Org))
	return err
}

func (r *AuditRepository) remove(ctx context.Context, l LogRef, below string) (int64, error) {
	res, err := r.events(l.DB).DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{
		{Key: "$gte", Value: model.EventKeyFrom(l.Org)}, {Key: "$lt", Value: below}}}})
	if err != nil {
		return 0, wrap(err)
	}
	return res.DeletedCount, nil
}

// Logs returns every log, live or of a deleted organization: those of the
// master database and of each tenant database.
func (r *AuditRepository) Logs(ctx context.Context) ([]LogRef, error) {
	held, err := r.Databases(ctx)
	if err != nil {
		return nil, err
	}
	var out []LogRef
	for _, db := range held {
		orgs, err := r.orgsIn(ctx, db)
		if err != nil {
			return nil, err
		}
		for _, org := range orgs {
			out = append(out, LogRef{DB: db, Org: org})
		}
	}
	return out, nil
}

// Databases are the databases that may hold logs: the master database
// and each tenant database.
func (r *AuditRepository) Databases(ctx context.Context) ([]string, error) {
	dbs, err := r.master.Client().ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, wrap(err)
	}
	held := []string{r.master.Name()}
	for _, db := range dbs {
		if model.IsTenantDatabase(r.master.Name(), db) {
			held = append(held, db)
		}
	}
	return held, nil
}

// orgsIn are the organizations with events in the database db: from one
// log's first _id to the next's, an index seek each.
func (r *AuditRepository) orgsIn(ctx context.Context, db string) ([]bson.ObjectID, error) {
	var out []bson.ObjectID
	for from := ""; ; {
		key, err := r.firstKey(ctx, db, from)
		if err != nil || key == "" {
			return out, err
		}
		org, ok := model.EventKeyOrg(key)
		if !ok {
			return nil, fmt.Errorf("%s.%s: _id %q is no event's", db, model.AuditCollection, key)
		}
		out = append(out, org)
		from = model.EventKeyTo(org)
	}
}

// firstKey is the lowest _id of db's audit collection at or above from;
// "" when there is none.
func (r *AuditRepository) firstKey(ctx context.Context, db, from string) (string, error) {
	var first struct {
		Key string `bson:"_id" json:"_id"`
	}
	if r.raw != nil {
		// "~" sorts after every character of an event's _id.
		err := r.raw.ScanIDs(ctx, db, model.AuditCollection, IDRange{From: from, To: "~", Limit: 1}, func(doc []byte) error {
			return json.Unmarshal(doc, &first)
		})
		return first.Key, err
	}
	err := r.events(db).FindOne(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: from}}}},
		options.FindOne().SetSort(bson.D{{Key: "_id", Value: 1}}).SetProjection(bson.D{{Key: "_id", Value: 1}})).Decode(&first)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", nil
	}
	return first.Key, wrap(err)
}

// LegacyLogs are the logs the master database holds in the layout of one
// collection per organization (model.LegacyAuditPrefix).
func (r *AuditRepository) LegacyLogs(ctx context.Context) ([]bson.ObjectID, error) {
	names, err := r.master.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, wrap(err)
	}
	var out []bson.ObjectID
	for _, n := range names {
		if id, ok := model.LegacyAuditOrg(n); ok {
			out = append(out, id)
		}
	}
	return out, nil
}

// MoveLegacy copies org's log from its collection of the earlier layout
// into the audit collection of the database to, event by event (an event
// copied already is left as it is), then drops the old collection: run
// again after a crash, or by two instances at once, it ends the same. It
// returns how many events it copied.
func (r *AuditRepository) MoveLegacy(ctx context.Context, org bson.ObjectID, to string) (int, error) {
	old := r.master.Collection(model.LegacyAuditPrefix + org.Hex())
	cur, err := old.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return 0, wrap(err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	n := 0
	for cur.Next(ctx) {
		var ev model.Event
		if err := cur.Decode(&ev); err != nil {
			return n, err
		}
		err := r.Insert(ctx, LogRef{DB: to, Org: org}, &ev)
		if err != nil && !errors.Is(err, ErrDuplicate) {
			return n, err
		}
		n++
	}
	if err := cur.Err(); err != nil {
		return n, wrap(err)
	}
	return n, wrap(old.Drop(ctx))
}

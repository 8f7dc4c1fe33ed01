package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgsvc/orgsvc/internal/jsondoc"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/proc"
)

// floorEnv, when set to an address, makes the program the floor server.
const floorEnv = "ORGBENCH_FLOOR_ADDR"

// floor is the running floor server.
type floor struct {
	addr string
	pid  int
}

// startFloor starts the floor server: the tool itself again, in a process
// of its own as the service is, so that both pay the same for crossing
// between processes. It answers a constant {"status":"ok"} from a bare
// net/http handler: the most any HTTP handler can do here.
func startFloor(ctx context.Context) (string, *proc.Process, error) {
	addr, err := proc.FreeAddr()
	if err != nil {
		return "", nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	p, err := proc.Start(proc.Spec{Bin: self, Env: append(os.Environ(), floorEnv+"="+addr), Stderr: os.Stderr})
	if err != nil {
		return "", nil, err
	}
	if err := p.WaitHealthy(ctx, "http://"+addr, 10*time.Second); err != nil {
		_ = p.Kill()
		return "", nil, fmt.Errorf("the floor server on %s: %w", addr, err)
	}
	return addr, p, nil
}

// serveFloor answers every request with a constant JSON, as GET /health
// does, with nothing else in the way.
func serveFloor(addr string) error {
	body := []byte(`{"status":"ok"}`)
	srv := &http.Server{
		Addr: addr,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	return srv.ListenAndServe()
}

// driverOrgGet does what GET /org/get of "bench" does in the database: the
// name claim by _id, then the organization by _id. level, when not 0, is
// the organizations present (the org-count series).
func (b *bench) driverOrgGet(ctx context.Context, name string, level int) []work {
	if b.db == nil {
		return nil
	}
	t, err := b.tenant(ctx, "bench")
	if err != nil {
		b.note("%s skipped: %v", name, err)
		return nil
	}
	names, orgs := b.db.Collection(model.NameClaims), b.db.Collection(model.Organizations)
	w := b.driverWork(name, "FindOne names by _id, then organizations by _id", func(ctx context.Context) error {
		var c model.NameClaim
		if err := names.FindOne(ctx, bson.D{{Key: "_id", Value: t.org.Slug}}).Decode(&c); err != nil {
			return err
		}
		var o model.Organization
		return orgs.FindOne(ctx, bson.D{{Key: "_id", Value: c.OrganizationID}}).Decode(&o)
	})
	w.organizations = level
	return []work{w}
}

// orgOrNone is the service's filter on _org: the organization's
// documents and those stored before documents carried it.
func orgOrNone(org bson.ObjectID) bson.E {
	return bson.E{Key: "_org", Value: bson.D{{Key: "$in", Value: bson.A{org, nil}}}}
}

// benchTenant is "bench" for the driver baselines; nil (and noted) when
// there is no database address or it cannot be read.
func (b *bench) benchTenant(ctx context.Context, name string) *tenant {
	if b.db == nil {
		return nil
	}
	t, err := b.tenant(ctx, b.benchOrg.Name)
	if err != nil {
		b.note("%s skipped: %v", name, err)
		return nil
	}
	return t
}

// driverDocRead does what GET /org/documents/{id} does in the database:
// FindOne by _id in the tenant collection, over the same ids, with _org in
// the filter on MongoDB (FerretDB would read the whole collection for it:
// there the service checks _org after reading by _id, and so does this).
// Then, informational, the same after reading the admin and the
// organization by _id, as the Bearer check of every authenticated
// request does.
func (b *bench) driverDocRead(ctx context.Context) []work {
	t := b.benchTenant(ctx, "driver doc-read")
	if t == nil {
		return nil
	}
	ids := make([]bson.ObjectID, len(b.benchDocIDs))
	for i, s := range b.benchDocIDs {
		ids[i], _ = bson.ObjectIDFromHex(s)
	}
	admins, orgs := b.db.Collection(model.Admins), b.db.Collection(model.Organizations)
	op := func(auth bool) func(context.Context) error {
		var n atomic.Uint64
		return func(ctx context.Context) error {
			if auth {
				var a model.Admin
				if err := admins.FindOne(ctx, bson.D{{Key: "_id", Value: t.org.AdminID}}).Decode(&a); err != nil {
					return err
				}
				var o model.Organization
				if err := orgs.FindOne(ctx, bson.D{{Key: "_id", Value: t.org.ID}}).Decode(&o); err != nil {
					return err
				}
			}
			filter := bson.D{{Key: "_id", Value: ids[(n.Add(1)-1)%uint64(len(ids))]}}
			if !b.idOnly {
				filter = append(filter, orgOrNone(t.org.ID))
			}
			var d model.Document
			if err := t.docs.FindOne(ctx, filter).Decode(&d); err != nil {
				return err
			}
			if d.Org != t.org.ID {
				return fmt.Errorf("document %s: _org %s, want %s", d.ID.Hex(), d.Org.Hex(), t.org.ID.Hex())
			}
			return nil
		}
	}
	return []work{
		b.driverWork("driver doc-read", "FindOne by _id (with _org on MongoDB) in the tenant collection, _org checked", op(false)),
		b.driverWork("driver doc-read+auth", "FindOne admins, organizations, then the document, each by _id (informational)", op(true)),
	}
}

// driverDocList does what GET /org/documents?limit=50 does in the
// database: Find of the organization's documents by _org, sorted by _id,
// limit 51.
func (b *bench) driverDocList(ctx context.Context) []work {
	t := b.benchTenant(ctx, "driver doc-list")
	if t == nil {
		return nil
	}
	filter := bson.D{orgOrNone(t.org.ID)}
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(51)
	return []work{b.driverWork("driver doc-list", "Find {_org: {$in: [org, null]}} sorted by _id, limit 51", func(ctx context.Context) error {
		cur, err := t.docs.Find(ctx, filter, opts)
		if err != nil {
			return err
		}
		out := make([]model.Document, 0, 51)
		if err := cur.All(ctx, &out); err != nil {
			return err
		}
		if len(out) != 51 {
			return fmt.Errorf("got %d documents, want 51", len(out))
		}
		return nil
	})}
}

// driverDocCreate does what POST /org/documents does in the database:
// InsertOne of the stored form of the same document, then FindOne of the
// organization by _id, the confirmation every document write makes (that
// the organization was not renamed or deleted under the write). Then,
// informational, the insert alone.
func (b *bench) driverDocCreate(ctx context.Context) []work {
	doc, problems := jsondoc.Parse(mustJSON(sampleDocument(7)))
	if len(problems) > 0 {
		panic(problems[0].Msg)
	}
	t := b.benchTenant(ctx, "driver doc-create")
	if t == nil {
		return nil
	}
	orgs := b.db.Collection(model.Organizations)
	op := func(insertOnly bool) func(context.Context) error {
		return func(ctx context.Context) error {
			now := model.Now()
			if _, err := t.docs.InsertOne(ctx, &model.Document{ID: bson.NewObjectID(), Org: t.org.ID, JSON: string(doc.JSON), Fields: doc.Fields, CreatedAt: now, UpdatedAt: now}); err != nil || insertOnly {
				return err
			}
			var o model.Organization
			return orgs.FindOne(ctx, bson.D{{Key: "_id", Value: t.org.ID}}).Decode(&o)
		}
	}
	return []work{
		b.driverWork("driver doc-create", "InsertOne into the tenant collection, then FindOne organizations by _id", op(false)),
		b.driverWork("driver insert", "InsertOne into the tenant collection alone (informational)", op(true)),
	}
}

// driverRename sends renameCollection directly, moving the tenant
// collection of the rename scenario name's organization between its two
// names' collections as many times as the scenario renamed it, one at a
// time. The second name's collection is learnt from the service: one
// rename there and back through the API, outside the measurement.
func (b *bench) driverRename(ctx context.Context, scenario string) []work {
	r := b.renamed[scenario]
	name := "driver " + scenario
	if b.db == nil || r == nil {
		return nil
	}
	var colls [2]string
	var t *tenant
	err := func() (err error) {
		for i := range 2 {
			if t, err = b.tenant(ctx, r.a.Name); err != nil {
				return err
			}
			colls[i] = t.docs.Name()
			if err := b.api.rename(ctx, r.a, r.other()); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		b.note("%s skipped: %v", name, err)
		return nil
	}
	db := t.docs.Database().Name()
	b.logf("baseline %s: renameCollection %s <-> %s", name, colls[0], colls[1])
	admin := b.mongo.Database("admin")
	return []work{{
		name: name, kind: "baseline", pid: b.pid, times: b.sz.renames,
		note: "renameCollection sent directly, one at a time",
		op: func(ctx context.Context, i int) error {
			return admin.RunCommand(ctx, bson.D{
				{Key: "renameCollection", Value: db + "." + colls[i%2]},
				{Key: "to", Value: db + "." + colls[(i+1)%2]},
				{Key: "dropTarget", Value: false},
			}).Err()
		},
	}}
}

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/crypto/bcrypt"

	"github.com/orgsvc/orgsvc/internal/jsondoc"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// baseline measures op at the given concurrency for the scenario duration.
// The service's RSS is sampled too: the driver baselines load its store.
func (b *bench) baseline(ctx context.Context, name string, concurrency int, op func(context.Context) error) *Result {
	b.logf("baseline %s: %d goroutines for %s", name, concurrency, b.opts.duration)
	r := collect(ctx, b.log, name, "baseline", concurrency, b.opts.duration, runFunc(concurrency, b.opts.duration, op), b.pid)
	b.add(r)
	return r
}

// startFloor starts the floor server: the tool itself again, in a process
// of its own as the service is, so that both pay the same for crossing
// between processes. It answers a constant {"status":"ok"} from a bare
// net/http handler: the most any HTTP handler can do here.
func startFloor(ctx context.Context) (addr string, pid int, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", 0, nil, err
	}
	addr = ln.Addr().String()
	ln.Close()
	self, err := os.Executable()
	if err != nil {
		return "", 0, nil, err
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), floorEnv+"="+addr)
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return addr, cmd.Process.Pid, stop, nil
		}
		if i > 100 {
			stop()
			return "", 0, nil, fmt.Errorf("the floor server did not start on %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// alternateRounds is how many turns each side of an alternating
// measurement gets.
const alternateRounds = 5

// turn is one side of an alternating measurement: start runs its load
// for a while (for d, unless it bounds itself otherwise, as size then
// says); after, when set, runs once each turn has ended, outside the
// measured time.
type turn struct {
	name, kind string
	server     string // the service process measured; empty: the bench's own
	pid        int
	base       string // the service's address, to count its database commands; empty: not counted
	size       string
	start      func(d time.Duration) load
	after      func()
}

// httpTurn drives targets with vegeta, as attack does.
func (b *bench) httpTurn(name, kind string, pid int, base string, targets vegeta.Targeter) turn {
	return turn{name: name, kind: kind, pid: pid, base: base, start: func(d time.Duration) load {
		return attackHTTP(name, targets, b.opts.concurrency, d, nil)
	}}
}

// driverTurn calls op from as many goroutines, as baseline does.
func (b *bench) driverTurn(name string, op func(context.Context) error) turn {
	return turn{name: name, kind: "baseline", pid: b.pid, start: func(d time.Duration) load {
		return runFunc(b.opts.concurrency, d, op)
	}}
}

// alternate measures two HTTP loads in turns, each running for a fifth of
// the scenario duration at a time until both have run for all of it. On
// a shared machine, load from elsewhere comes and goes on a scale of
// seconds and moves either side's throughput more than the difference
// between them; in turns, both see the same machine.
func (b *bench) alternate(ctx context.Context, sides [2]turn) [2]*Result {
	const rounds = alternateRounds
	slice := b.opts.duration / rounds
	var out [2]chan *vegeta.Result
	var busy [2]atomic.Int64
	var stopped atomic.Bool
	var current atomic.Pointer[func()]
	stop := func() {
		stopped.Store(true)
		if f := current.Load(); f != nil {
			(*f)()
		}
	}
	var cmds [2]*cmdMeter
	for i, s := range sides {
		out[i] = make(chan *vegeta.Result, 4*b.opts.concurrency)
		if s.kind == "scenario" && s.base != "" {
			cmds[i] = newCmdMeter(s.base)
		}
	}
	go func() {
		defer close(out[0])
		defer close(out[1])
		for round := range rounds {
			for i, s := range sides {
				if stopped.Load() {
					return
				}
				b.logf("  %s: turn %d of %d", s.name, round+1, rounds)
				if cmds[i] != nil {
					cmds[i].begin()
				}
				began := time.Now()
				l := s.start(slice)
				current.Store(&l.stop)
				for r := range l.results {
					out[i] <- r
				}
				busy[i].Add(int64(time.Since(began)))
				if cmds[i] != nil {
					cmds[i].end()
				}
				if s.after != nil {
					s.after()
				}
			}
		}
	}()
	var res [2]*Result
	var wg sync.WaitGroup
	for i, s := range sides {
		size := s.size
		if size == "" {
			size = slice.String()
		}
		b.logf("%s %s: %d clients, %d turns of %s, alternating with %s", s.kind, s.name, b.opts.concurrency, rounds, size, sides[1-i].name)
		wg.Go(func() {
			l := load{results: out[i], stop: stop, busy: func() time.Duration { return time.Duration(busy[i].Load()) }}
			res[i] = collect(ctx, io.Discard, s.name, s.kind, b.opts.concurrency, b.opts.duration, l, s.pid)
			// The tool's CPU covers both sides' load at once, and so
			// does the service's when both sides load it (the driver
			// baselines run on its embedded store): not attributable.
			res[i].ToolCPU = 0
			if sides[0].pid == sides[1].pid {
				res[i].ServiceCPU = 0
			}
			res[i].Server = s.server
			cmds[i].fill(res[i])
		})
	}
	wg.Wait()
	for _, r := range res {
		b.add(r)
	}
	return res
}

// floorEnv, when set to an address, makes the program the floor server.
const floorEnv = "ORGBENCH_FLOOR_ADDR"

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

// bcryptCompare checks a password against a hash of the given cost on as
// many goroutines as cores: the most logins per second the machine allows.
func (b *bench) bcryptCompare(ctx context.Context, cost int) *Result {
	hash, err := bcrypt.GenerateFromPassword([]byte("bench-password-1"), cost)
	if err != nil {
		panic(err) // the cost was checked
	}
	r := b.baseline(ctx, fmt.Sprintf("bcrypt compare (cost %d)", cost), runtime.NumCPU(), func(context.Context) error {
		return bcrypt.CompareHashAndPassword(hash, []byte("bench-password-1"))
	})
	r.Note = "bcrypt.CompareHashAndPassword on runtime.NumCPU() goroutines"
	return r
}

// bcryptHash hashes passwords at the given cost on as many goroutines as
// cores: the most sign-ups per second the machine allows.
func (b *bench) bcryptHash(ctx context.Context, cost int) *Result {
	r := b.baseline(ctx, fmt.Sprintf("bcrypt hash (cost %d)", cost), runtime.NumCPU(), func(context.Context) error {
		_, err := bcrypt.GenerateFromPassword([]byte("bench-password-1"), cost)
		return err
	})
	r.Note = "bcrypt.GenerateFromPassword on runtime.NumCPU() goroutines"
	return r
}

// driverOrgGet does what GET /org/get does in the database: the name claim
// by _id, then the organization by _id.
func (b *bench) driverOrgGet(ctx context.Context, name, orgName string) *Result {
	names, orgs := b.db.Collection(model.NameClaims), b.db.Collection(model.Organizations)
	slug := model.Slug(orgName)
	r := b.baseline(ctx, name, b.opts.concurrency, func(ctx context.Context) error {
		var c model.NameClaim
		if err := names.FindOne(ctx, bson.D{{Key: "_id", Value: slug}}).Decode(&c); err != nil {
			return err
		}
		var o model.Organization
		return orgs.FindOne(ctx, bson.D{{Key: "_id", Value: c.OrganizationID}}).Decode(&o)
	})
	r.Note = "FindOne names by _id, then organizations by _id"
	return r
}

// idFiltersOnly reports whether db is FerretDB, which evaluates only a
// lone _id equality filter itself (as store.IDFiltersOnly tells the
// service).
func idFiltersOnly(ctx context.Context, db *mongo.Database) (bool, error) {
	var info bson.M
	if err := db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return false, err
	}
	_, ferret := info["ferretdbVersion"]
	return ferret, nil
}

// orgOrNone is the service's filter on _org: the organization's
// documents and those stored before documents carried it.
func orgOrNone(org bson.ObjectID) bson.E {
	return bson.E{Key: "_org", Value: bson.D{{Key: "$in", Value: bson.A{org, nil}}}}
}

// driverDocRead does what GET /org/documents/{id} does in the database:
// FindOne by _id in the tenant collection, over the same ids, with _org in
// the filter on MongoDB (FerretDB would read the whole collection for it:
// there the service checks _org after reading by _id, and so does this).
// With auth it also reads the admin and the organization by _id first, as
// the Bearer check of every authenticated request does. ok is false (and
// noted) when the organization cannot be read.
func (b *bench) driverDocRead(ctx context.Context, auth bool) (name, note string, op func(context.Context) error, ok bool) {
	org, err := b.organization(ctx, model.Slug(b.benchOrg.Name))
	if err != nil {
		b.note("driver doc-read skipped: %v", err)
		return "", "", nil, false
	}
	idOnly, err := idFiltersOnly(ctx, b.db)
	if err != nil {
		b.note("driver doc-read skipped: %v", err)
		return "", "", nil, false
	}
	docs := b.documents(org)
	ids := make([]bson.ObjectID, len(b.benchDocIDs))
	for i, s := range b.benchDocIDs {
		ids[i], _ = bson.ObjectIDFromHex(s)
	}
	admins, orgs := b.db.Collection(model.Admins), b.db.Collection(model.Organizations)
	var n atomic.Uint64
	name, note = "driver doc-read", "FindOne by _id (with _org on MongoDB) in the tenant collection, _org checked"
	if auth {
		name, note = "driver doc-read+auth", "FindOne admins, organizations, then the document, each by _id (informational)"
	}
	return name, note, func(ctx context.Context) error {
		if auth {
			var a model.Admin
			if err := admins.FindOne(ctx, bson.D{{Key: "_id", Value: org.AdminID}}).Decode(&a); err != nil {
				return err
			}
			var o model.Organization
			if err := orgs.FindOne(ctx, bson.D{{Key: "_id", Value: org.ID}}).Decode(&o); err != nil {
				return err
			}
		}
		filter := bson.D{{Key: "_id", Value: ids[(n.Add(1)-1)%uint64(len(ids))]}}
		if !idOnly {
			filter = append(filter, orgOrNone(org.ID))
		}
		var d model.Document
		if err := docs.FindOne(ctx, filter).Decode(&d); err != nil {
			return err
		}
		if d.Org != org.ID {
			return fmt.Errorf("document %s: _org %s, want %s", d.ID.Hex(), d.Org.Hex(), org.ID.Hex())
		}
		return nil
	}, true
}

// driverDocList does what GET /org/documents?limit=50 does in the
// database: Find of the organization's documents by _org, sorted by _id,
// limit 51.
func (b *bench) driverDocList(ctx context.Context) *Result {
	org, err := b.organization(ctx, model.Slug(b.benchOrg.Name))
	if err != nil {
		b.note("driver doc-list skipped: %v", err)
		return nil
	}
	docs := b.documents(org)
	filter := bson.D{orgOrNone(org.ID)}
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(51)
	r := b.baseline(ctx, "driver doc-list", b.opts.concurrency, func(ctx context.Context) error {
		cur, err := docs.Find(ctx, filter, opts)
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
	})
	r.Note = "Find {_org: {$in: [org, null]}} sorted by _id, limit 51"
	return r
}

// driverDocCreate does what POST /org/documents does in the database:
// InsertOne of the stored form of the same document, then FindOne of the
// organization by _id, the confirmation every document write makes (that
// the organization was not renamed or deleted under the write). With
// insertOnly, the insert alone (informational).
func (b *bench) driverDocCreate(ctx context.Context, insertOnly bool) (name, note string, op func(context.Context) error, ok bool) {
	orgs := b.db.Collection(model.Organizations)
	doc, problems := jsondoc.Parse(mustJSON(sampleDocument(7)))
	if len(problems) > 0 {
		panic(problems[0].Msg)
	}
	org, err := b.organization(ctx, model.Slug(b.benchOrg.Name))
	if err != nil {
		b.note("driver doc-create skipped: %v", err)
		return "", "", nil, false
	}
	docs := b.documents(org)
	name, note = "driver doc-create", "InsertOne into the tenant collection, then FindOne organizations by _id"
	if insertOnly {
		name, note = "driver insert", "InsertOne into the tenant collection alone (informational)"
	}
	return name, note, func(ctx context.Context) error {
		now := time.Now().UTC().Truncate(time.Millisecond)
		if _, err := docs.InsertOne(ctx, &model.Document{ID: bson.NewObjectID(), Org: org.ID, JSON: string(doc.JSON), Fields: doc.Fields, CreatedAt: now, UpdatedAt: now}); err != nil || insertOnly {
			return err
		}
		var o model.Organization
		return orgs.FindOne(ctx, bson.D{{Key: "_id", Value: org.ID}}).Decode(&o)
	}, true
}

// withDriver measures an HTTP scenario in turns with the driver doing the
// same database work (see alternate), or alone when the database cannot
// be reached (driver returns ok false); then the informational variant
// of the driver's work, if there is one, on its own.
func (b *bench) withDriver(ctx context.Context, name string, targets vegeta.Targeter, driver func(ctx context.Context, variant bool) (string, string, func(context.Context) error, bool), informational bool) {
	var base, note string
	var op func(context.Context) error
	ok := false
	if b.db != nil {
		base, note, op, ok = driver(ctx, false)
	}
	if !ok {
		b.attack(ctx, name, targets, b.opts.concurrency, nil)
		return
	}
	r := b.alternate(ctx, [2]turn{b.httpTurn(name, "scenario", b.pid, b.base, targets), b.driverTurn(base, op)})
	r[1].Note = note + "; in turns with " + name
	compare(r[0], r[1])
	if informational {
		if base, note, op, ok := driver(ctx, true); ok {
			b.baseline(ctx, base, b.opts.concurrency, op).Note = note
		}
	}
}

// driverRename sends renameCollection directly, moving the tenant
// collection between the two names' collections as many times as the
// scenario renamed it, one at a time.
func (b *bench) driverRename(ctx context.Context, name string, names [2]string) *Result {
	var db string
	for _, n := range names {
		if coll, err := b.tenantCollection(ctx, n); err == nil {
			db = coll.Database().Name()
		}
	}
	if db == "" {
		b.note("%s skipped: neither %s nor %s is in the database", name, names[0], names[1])
		return nil
	}
	colls := [2]string{repository.CollectionName(model.Slug(names[0])), repository.CollectionName(model.Slug(names[1]))}
	b.logf("baseline %s: %d renameCollection commands %s <-> %s", name, b.sz.renames, colls[0], colls[1])
	admin := b.mongo.Database("admin")
	r := b.timeEach(ctx, name, "baseline", b.sz.renames, func(ctx context.Context, i int) error {
		from, to := colls[i%2], colls[(i+1)%2]
		return admin.RunCommand(ctx, bson.D{
			{Key: "renameCollection", Value: db + "." + from},
			{Key: "to", Value: db + "." + to},
			{Key: "dropTarget", Value: false},
		}).Err()
	})
	r.Note = "renameCollection sent directly, one at a time"
	b.add(r)
	return r
}

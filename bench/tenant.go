package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgsvc/orgsvc/internal/model"
)

// The tenant data scenarios:
//
//   - tenant-export: GET /org/export of an organization of tenantDocs
//     documents, read to its end, one export at a time, in turns with a
//     bare driver cursor over the same collection;
//   - tenant-import: POST /org/import?mode=replace of that export into a
//     second organization, in turns with InsertMany batches of the same
//     documents into a fresh collection;
//   - noisy-neighbour: organization A floods with noisyFlood clients while
//     B reads at a steady rate from noisyClients; B alone first, then both.
//
// The first two run on a service of their own, so that its idle RSS is
// that of a service holding the data and nothing else; the third on one
// started with the organization rate limit on.

// tenantDocs is the exported organization's documents: rename-100k's
// count (100,000; 1,000 with -short).
func tenantDocs(s sizes) int { return s.renameDocs }

// streamRuns is how many exports, imports and baseline operations are
// timed, in turns: each is a whole pass over the organization's documents
// (tens of seconds at 100,000 on two cores).
const streamRuns = 3

// tenantBatch is how many documents an InsertMany carries, seeding and in
// the import's baseline: the service's staging batch (service.stageBatch).
const tenantBatch = 1000

// The targets of export and import.
const (
	exportMin       = 0.7 // export documents/s over the cursor's
	importMin       = 0.5 // import documents/s over InsertMany's
	rssAboveIdleMax = 64  // MiB the service's RSS may grow during either
)

// The noisy-neighbour scenario: the rate limit the service runs with (the
// service's defaults, which the tool's other services turn off), A's
// clients, and B's clients and their paced rate, half the limit, so that
// B is never refused itself.
const (
	noisyOrgRate  = 200
	noisyOrgBurst = 50
	noisyFlood    = 32
	noisyClients  = 2
	noisyRate     = 100
	noisyP99Max   = 2.0
)

// Result names of the tenant data scenarios.
const (
	exportName      = "tenant-export"
	cursorName      = "driver cursor"
	importName      = "tenant-import"
	insertManyName  = "driver InsertMany"
	quietAloneName  = "noisy-neighbour B alone"
	quietBesideName = "noisy-neighbour B beside A"
	floodName       = "noisy-neighbour A"
)

// tenantRun is what the tenant data scenarios' setups leave to their runs
// and targets.
type tenantRun struct {
	restore func() // gives the measured service back; nil: none taken
	owner   *account
	source  *tenant // the exported organization
	docs    int
	freshMB float64            // the tenant service's RSS before seeding
	idleMB  map[string]float64 // by scenario: the RSS before its runs

	seeded []*model.Document // source's documents, as stored but for _org

	into   *account // the organization imported into
	target *tenant
	body   []byte // an export of source
	stored []any  // its documents as the service stores them into target

	loud, quiet       *account // A and B
	loudIDs, quietIDs []string
}

// tenantRuns holds each bench's tenantRun (the bench has no field for it).
var (
	tenantRunsMu sync.Mutex
	tenantRuns   = map[*bench]*tenantRun{}
)

// tenantData is b's tenantRun, made empty the first time.
func (b *bench) tenantData() *tenantRun {
	tenantRunsMu.Lock()
	defer tenantRunsMu.Unlock()
	st := tenantRuns[b]
	if st == nil {
		st = &tenantRun{idleMB: map[string]float64{}}
		tenantRuns[b] = st
	}
	return st
}

// useService starts a service of its own, at BCRYPT_COST=seriesCost and
// with extra in its environment, and makes it the measured one (its API,
// its pid, its store) until the returned function stops it and gives the
// one measured before back.
func (b *bench) useService(ctx context.Context, name string, extra ...string) (func(), error) {
	svc0, api, base, pid, server, cost := b.svc, b.api, b.base, b.pid, b.server, b.cost
	client, db, idOnly, masters, tenants := b.mongo, b.db, b.idOnly, b.masters, b.tenants
	restore := func() {
		if b.mongo != client {
			b.disconnect()
		}
		b.svc, b.api, b.base, b.pid, b.server, b.cost = svc0, api, base, pid, server, cost
		b.mongo, b.db, b.idOnly, b.masters, b.tenants = client, db, idOnly, masters, tenants
	}
	svc, err := b.startService(ctx, name, seriesCost, extra...)
	if err != nil {
		return nil, err
	}
	b.svc, b.api, b.base, b.pid, b.server, b.cost = svc, newAPIClient(svc.URL), svc.URL, svc.PID(), name, seriesCost
	if err := b.connect(ctx, svc.MongoURI); err != nil {
		svc.Stop()
		restore()
		return nil, err
	}
	return func() {
		svc.Stop()
		restore()
	}, nil
}

// storedDocuments are n documents (storedDocument's), in id order.
func storedDocuments(n int) ([]*model.Document, error) {
	docs := make([]*model.Document, n)
	for i := range docs {
		d, err := storedDocument(i)
		if err != nil {
			return nil, err
		}
		docs[i] = d
	}
	return docs, nil
}

// asBatch is docs for InsertMany, each of org.
func asBatch(docs []*model.Document, org bson.ObjectID) []any {
	out := make([]any, len(docs))
	for i, d := range docs {
		c := *d
		c.Org = org
		out[i] = &c
	}
	return out
}

// hexIDs are the ids of docs.
func hexIDs(docs []*model.Document) []string {
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID.Hex()
	}
	return ids
}

// insertBatches inserts docs into coll in InsertMany batches of
// tenantBatch, one batch at a time and in their order.
func insertBatches(ctx context.Context, coll *mongo.Collection, docs []any, opts *options.InsertManyOptionsBuilder) error {
	for from := 0; from < len(docs); from += tenantBatch {
		if _, err := coll.InsertMany(ctx, docs[from:min(from+tenantBatch, len(docs))], opts); err != nil {
			return fmt.Errorf("insert documents into %s: %w", coll.Name(), err)
		}
	}
	return nil
}

// seedTenant signs up an organization named name on the measured service
// and stores n documents in it through the driver, in id order (the order
// a collection written one batch at a time is read in on the embedded
// store, and the one an export reads fastest); it returns the owner, the
// organization and the documents.
func (b *bench) seedTenant(ctx context.Context, name string, n int) (*account, *tenant, []*model.Document, error) {
	a := newAccount(name)
	if err := b.api.ensure(ctx, a); err != nil {
		return nil, nil, nil, fmt.Errorf("sign up %s: %w", name, err)
	}
	t, err := b.tenant(ctx, name)
	if err != nil {
		return nil, nil, nil, err
	}
	docs, err := storedDocuments(n)
	if err != nil || n == 0 {
		return a, t, docs, err
	}
	b.logf("inserting %d documents into %s through the driver, %d a batch", n, b.tenants.Describe(t.org.Tenant()), tenantBatch)
	began := time.Now()
	if err := insertBatches(ctx, t.docs, asBatch(docs, t.org.ID), nil); err != nil {
		return nil, nil, nil, err
	}
	b.logf("inserted %d documents in %s", n, time.Since(began).Round(time.Millisecond))
	return a, t, docs, nil
}

// tenantSource starts the tenant data scenarios' service, once, and seeds
// the exported organization; with -target, on the measured service.
func (b *bench) tenantSource(ctx context.Context) error {
	st := b.tenantData()
	if st.source != nil {
		return nil
	}
	if b.svc != nil {
		restore, err := b.useService(ctx, "tenant")
		if err != nil {
			return err
		}
		st.restore = restore
	}
	if b.db == nil {
		b.note("tenant-export and tenant-import skipped: seeding the documents needs the database address (-mongo)")
		return errSkip
	}
	if rss, err := procStatus(b.pid, "VmRSS"); err == nil {
		st.freshMB = mib(rss)
	}
	st.docs = tenantDocs(b.sz)
	var err error
	st.owner, st.source, st.seeded, err = b.seedTenant(ctx, "bench-tenant-"+b.runID, st.docs)
	return err
}

// releaseTenant gives the measured service back once the scenarios that
// share the tenant service have run.
func (b *bench) releaseTenant() {
	st := b.tenantData()
	if st.restore != nil {
		st.restore()
	}
	st.restore, st.source, st.seeded, st.body, st.stored = nil, nil, nil, nil, nil
}

// setupTenantExport seeds the exported organization; its service stays
// for tenant-import when that runs too.
func (b *bench) setupTenantExport(ctx context.Context) error {
	if !b.opts.wants(importName) {
		b.undo = append(b.undo, b.releaseTenant)
	}
	return b.tenantSource(ctx)
}

// setupTenantImport signs up the organization imported into, exports the
// source once (the stream every import sends) and imports it once, so
// that each timed import replaces as many documents as it brings. The
// baseline inserts the source's documents as seeded, with the second
// organization's _org: what the import stores (the export keeps ids, data
// and times, at the millisecond they are stored at).
func (b *bench) setupTenantImport(ctx context.Context) error {
	b.undo = append(b.undo, b.releaseTenant)
	if err := b.tenantSource(ctx); err != nil {
		return err
	}
	st := b.tenantData()
	var err error
	if st.into, st.target, _, err = b.seedTenant(ctx, "bench-tenant-into-"+b.runID, 0); err != nil {
		return err
	}
	var body bytes.Buffer
	lines, err := b.api.export(ctx, st.owner, &body)
	if err != nil {
		return err
	}
	if lines != st.docs+1 {
		return fmt.Errorf("the export of %s: %d lines, want %d", st.owner.Name, lines, st.docs+1)
	}
	st.body, st.stored = body.Bytes(), asBatch(st.seeded, st.target.org.ID)
	b.logf("tenant-import: a first import of the export (%s, %d documents) into %s, not timed", fmtBytes(len(st.body)), len(st.stored), st.into.Name)
	n, err := b.api.importStream(ctx, st.into, st.body)
	if err == nil && n != int64(st.docs) {
		err = fmt.Errorf("imported %d documents, want %d", n, st.docs)
	}
	return err
}

// opMeter samples the service's RSS and CPU time during each call of an
// operation alone, not while the operation it alternates with runs.
type opMeter struct {
	pid   int
	peak  int64
	cpu   time.Duration
	calls int
}

func (m *opMeter) wrap(op func(context.Context, int) error) func(context.Context, int) error {
	return func(ctx context.Context, i int) error {
		rss := watchRSS(m.pid)
		cpu, ok := processCPU(m.pid)
		err := op(ctx, i)
		if now, ok2 := processCPU(m.pid); ok && ok2 {
			m.cpu += now - cpu
		}
		m.calls++
		m.peak = max(m.peak, rss.Peak())
		return err
	}
}

// fill sets r's peak RSS and service CPU per operation from m.
func (m *opMeter) fill(r *Result) {
	r.PeakMB = mib(m.peak)
	if m.calls > 0 && m.cpu > 0 {
		r.ServiceCPU = float64(m.cpu/time.Microsecond) / float64(m.calls)
	}
}

// streamTurns times the scenario's operation, its baseline's and any
// informational ones after, one at a time, in turns, streamRuns of
// each, with the service's RSS and CPU sampled during each one's own
// operations; the RSS before the first is the scenario's idle RSS.
func (b *bench) streamTurns(ctx context.Context, ws []work) {
	st := b.tenantData()
	meters := make([]*opMeter, len(ws))
	for i := range ws {
		meters[i] = &opMeter{pid: b.pid}
		ws[i].times, ws[i].pid, ws[i].op = streamRuns, b.pid, meters[i].wrap(ws[i].op)
	}
	if rss, err := procStatus(b.pid, "VmRSS"); err == nil {
		st.idleMB[ws[0].name] = mib(rss)
	}
	b.logf("%s: %d runs of each, one at a time, in turns with %s", ws[0].name, streamRuns, ws[1].name)
	rs := b.timeInTurns(ctx, ws)
	for i, r := range rs {
		meters[i].fill(r)
		if r.P50 > 0 {
			r.Note += fmt.Sprintf("; %s documents/s at the median", group(int(docsPerSecond(r, st.docs))))
		}
	}
	compare(rs[0], rs[1])
	if r := rs[0]; r.PeakMB > 0 {
		b.note("%s: the service's RSS was %.1f MiB when it had started (before seeding), %.1f MiB before these runs; its peak %.1f MiB during the %s runs, %.1f MiB during the %s ones",
			r.Name, st.freshMB, st.idleMB[r.Name], r.PeakMB, r.Name, rs[1].PeakMB, rs[1].Name)
	}
}

// docsPerSecond is the documents one operation of r moves, over its median.
func docsPerSecond(r *Result, docs int) float64 {
	if r == nil || r.P50 <= 0 {
		return 0
	}
	return float64(docs) / (r.P50 / 1000)
}

// tenantExport times whole exports of the seeded organization against a
// driver cursor reading the same documents; then, informational, what the
// export reads on the embedded store: the ids first, then the documents.
func (b *bench) tenantExport(ctx context.Context) error {
	st := b.tenantData()
	t, n := st.source, st.docs
	filter, opts := bson.D{}, options.Find().SetBatchSize(tenantBatch).SetProjection(bson.D{{Key: model.ScalarsKey, Value: 0}, {Key: model.LegacyFieldsKey, Value: 0}})
	how := "Find {} in the order the store keeps the documents"
	if !b.idOnly {
		filter, how = bson.D{orgOrNone(t.org.ID)}, "Find {_org: {$in: [org, null]}} sorted by _id"
		opts.SetSort(bson.D{{Key: "_id", Value: 1}})
	}
	ids := options.Find().SetBatchSize(tenantBatch).SetProjection(bson.D{{Key: "_id", Value: 1}})
	ws := []work{
		{name: exportName, kind: "scenario", base: b.base,
			note: fmt.Sprintf("GET /org/export of an organization of %s documents stored in id order, read to its end, its lines counted (the header + %s); one at a time, in turns with %s; req/s is exports per second at the median", group(n), group(n), cursorName),
			op: func(ctx context.Context, _ int) error {
				lines, err := b.api.export(ctx, st.owner, io.Discard)
				if err == nil && lines != n+1 {
					err = fmt.Errorf("the export had %d lines, want %d", lines, n+1)
				}
				return err
			}},
		{name: cursorName, kind: "baseline",
			note: fmt.Sprintf("%s of the same collection, batches of %d, without the scalars (as the export reads), each document taken as bson.Raw, not decoded", how, tenantBatch),
			op:   func(ctx context.Context, _ int) error { return readAll(ctx, t.docs, filter, opts, n) }},
	}
	if b.idOnly {
		ws = append(ws, work{name: "driver ids, then cursor", kind: "baseline",
			note: fmt.Sprintf("what the export reads from the embedded store: Find {} of the _ids alone (to learn whether the store's order is id order), then %s as above; in turns with %s (informational)", cursorName, exportName),
			op: func(ctx context.Context, _ int) error {
				if err := readAll(ctx, t.docs, bson.D{}, ids, n); err != nil {
					return err
				}
				return readAll(ctx, t.docs, filter, opts, n)
			}})
	}
	b.streamTurns(ctx, ws)
	return ctx.Err()
}

// readAll reads every document a Find of coll gives, each as bson.Raw,
// and fails unless there are n.
func readAll(ctx context.Context, coll *mongo.Collection, filter bson.D, opts *options.FindOptionsBuilder, n int) error {
	cur, err := coll.Find(ctx, filter, opts)
	if err != nil {
		return err
	}
	defer cur.Close(context.WithoutCancel(ctx))
	got := 0
	for cur.Next(ctx) { // cur.Current is the document, raw
		got++
	}
	if err := cur.Err(); err != nil {
		return err
	}
	if got != n {
		return fmt.Errorf("the cursor read %d documents, want %d", got, n)
	}
	return nil
}

// tenantImport times whole imports (mode=replace) of the export into the
// second organization against InsertMany batches of its documents into a
// fresh collection of the same database, dropped after the runs.
func (b *bench) tenantImport(ctx context.Context) error {
	st := b.tenantData()
	n := st.docs
	db := st.target.docs.Database()
	var fresh []*mongo.Collection
	defer func() {
		for _, c := range fresh {
			if err := c.Drop(context.WithoutCancel(ctx)); err != nil {
				b.note("tenant-import: drop the baseline's collection %s: %v", c.Name(), err)
			}
		}
	}()
	b.streamTurns(ctx, []work{
		{name: importName, kind: "scenario", base: b.base,
			note: fmt.Sprintf("POST /org/import?mode=replace of an export of %s documents (%s) into an organization holding as many (the same export imported once before), timed to the answer; one at a time, in turns with %s; req/s is imports per second at the median", group(n), fmtBytes(len(st.body)), insertManyName),
			op: func(ctx context.Context, _ int) error {
				got, err := b.api.importStream(ctx, st.into, st.body)
				if err == nil && got != int64(n) {
					err = fmt.Errorf("imported %d documents, want %d", got, n)
				}
				return err
			}},
		{name: insertManyName, kind: "baseline",
			note: fmt.Sprintf("the import's %s documents as the service stores them, InsertMany batches of %d (unordered, as its staging), one batch at a time, into a fresh collection of the same database", group(n), tenantBatch),
			op: func(ctx context.Context, i int) error {
				c := db.Collection(fmt.Sprintf("bench_insert_%s_%02d", b.runID, i))
				fresh = append(fresh, c)
				return insertBatches(ctx, c, st.stored, options.InsertMany().SetOrdered(false))
			}},
	})
	return ctx.Err()
}

// fmtBytes writes a size in MiB, or KiB below one.
func fmtBytes(n int) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// tenantTargets: the scenario's documents per second against its
// baseline's, and the service's RSS during it against before it.
func tenantTargets(name, goal string, least float64) func(*bench) []Target {
	ratio := ratioTarget(goal, name, least)
	return func(b *bench) []Target {
		out := ratio(b)
		r := b.find(name)
		st := b.tenantData()
		if r != nil && r.Baseline != "" && st.docs > 0 {
			base := b.find(r.Baseline)
			out[0].Measured = fmt.Sprintf("%.2f (%s vs %s documents/s of %s; %s vs %s, medians of %d runs in turns)", r.Ratio,
				group(int(docsPerSecond(r, st.docs))), group(int(docsPerSecond(base, st.docs))), r.Baseline, fmtMs(r.P50), fmtMs(base.P50), streamRuns)
		}
		t := Target{Goal: fmt.Sprintf("service RSS during %s < %d MiB above its RSS before", name, rssAboveIdleMax), Met: "n/a", Measured: "not measured"}
		if r != nil && r.PeakMB > 0 && st.idleMB[name] > 0 {
			idle := st.idleMB[name]
			t.Measured = fmt.Sprintf("%.1f MiB above (peak %.1f MiB during its runs, %.1f MiB before them)", r.PeakMB-idle, r.PeakMB, idle)
			t.Met = yesNo(r.PeakMB-idle < rssAboveIdleMax)
		}
		return append(out, t)
	}
}

// setupNoisy starts a service with the organization rate limit on, at
// the service's defaults, and signs up A and B, each with sz.listDocs
// documents stored through the driver.
func (b *bench) setupNoisy(ctx context.Context) error {
	if b.svc == nil {
		b.note("noisy-neighbour skipped: it starts a service of its own with ORG_RATE_PER_SECOND on, which -target cannot")
		return errSkip
	}
	restore, err := b.useService(ctx, "noisy", "ORG_RATE_PER_SECOND="+strconv.Itoa(noisyOrgRate), "ORG_RATE_BURST="+strconv.Itoa(noisyOrgBurst))
	if err != nil {
		return err
	}
	b.undo = append(b.undo, restore)
	st := b.tenantData()
	var docs [2][]*model.Document
	if st.loud, _, docs[0], err = b.seedTenant(ctx, "bench-noisy-a-"+b.runID, b.sz.listDocs); err != nil {
		return err
	}
	if st.quiet, _, docs[1], err = b.seedTenant(ctx, "bench-noisy-b-"+b.runID, b.sz.listDocs); err != nil {
		return err
	}
	st.loudIDs, st.quietIDs = hexIDs(docs[0]), hexIDs(docs[1])
	// The limits in force, as the service reports them to B.
	var usage struct {
		Limits struct {
			Rate  float64 `json:"rate_per_second"`
			Burst int     `json:"rate_burst"`
		} `json:"limits"`
	}
	if err := b.api.do(ctx, http.MethodGet, "/org/usage", st.quiet.Token, nil, http.StatusOK, &usage); err != nil {
		return err
	}
	if usage.Limits.Rate != noisyOrgRate || usage.Limits.Burst != noisyOrgBurst {
		return fmt.Errorf("the noisy service's limits are %+v, want rate %d and burst %d", usage.Limits, noisyOrgRate, noisyOrgBurst)
	}
	return nil
}

// docReads reads the documents ids of a in turn, on the measured service.
func (b *bench) docReads(a *account, ids []string) vegeta.Targeter {
	h := jsonHeader(a.Token)
	targets := make([]vegeta.Target, len(ids))
	for i, id := range ids {
		targets[i] = vegeta.Target{Method: http.MethodGet, URL: b.base + "/org/documents/" + id, Header: h}
	}
	return roundRobin(targets)
}

// quietWork is B's load: document reads from noisyClients clients at
// noisyRate a second in all.
func (b *bench) quietWork(name, when string) work {
	st := b.tenantData()
	w := b.httpWork(name, b.docReads(st.quiet, st.quietIDs), vegeta.ConstantPacer{Freq: noisyRate, Per: time.Second})
	w.concurrency = noisyClients
	w.note = fmt.Sprintf("organization B: GET /org/documents/{id} of its %s documents in turn, paced at %d requests/s in all (half ORG_RATE_PER_SECOND=%d, so that B itself is never refused), %s", group(len(st.quietIDs)), noisyRate, noisyOrgRate, when)
	return w
}

// expect429 counts A's 429 answers as answers, not errors: they are what
// the scenario expects past A's rate.
func expect429(l load) load {
	out := make(chan *vegeta.Result, cap(l.results))
	go func() {
		defer close(out)
		for r := range l.results {
			if r.Code == http.StatusTooManyRequests {
				r.Error = ""
			}
			out <- r
		}
	}()
	return load{results: out, stop: l.stop}
}

// floodWork is A's load: document reads from noisyFlood unpaced clients,
// its 429s counted as answers.
func (b *bench) floodWork(name, when string) work {
	st := b.tenantData()
	w := b.httpWork(name, b.docReads(st.loud, st.loudIDs), nil)
	start := w.start
	w.start = func(c int, d time.Duration) load { return expect429(start(c, d)) }
	w.concurrency = noisyFlood
	w.note = fmt.Sprintf("organization A: GET /org/documents/{id} of its %s documents in turn from %d unpaced clients, %s; req/s counts every answer, 200 and 429 (the expected answer past its rate: ORG_RATE_PER_SECOND=%d, ORG_RATE_BURST=%d)", group(len(st.loudIDs)), noisyFlood, when, noisyOrgRate, noisyOrgBurst)
	return w
}

// noisyNeighbour measures B alone, then B while A floods; then,
// informational, A alone (what its refused requests cost), its bucket
// empty from the flood before.
func (b *bench) noisyNeighbour(ctx context.Context) error {
	b.measure(ctx, b.quietWork(quietAloneName, "alone"))
	if err := ctx.Err(); err != nil {
		return err
	}
	sides := [2]work{b.floodWork(floodName, "at once with B"), b.quietWork(quietBesideName, fmt.Sprintf("while A floods from %d clients", noisyFlood))}
	b.logf("noisy-neighbour: A from %d clients and B from %d at once, for %s", noisyFlood, noisyClients, b.opts.duration)
	var res [2]*Result
	var wg sync.WaitGroup
	cpu := startCPU(b.pid)
	began := time.Now()
	for i, w := range sides {
		progress := io.Discard
		if i == 0 {
			progress = b.log
		}
		wg.Go(func() {
			res[i] = collect(ctx, progress, w.name, w.kind, b.clients(w), b.opts.duration, w.start(b.clients(w), b.opts.duration), w.pid)
			// Both loads at once: neither's CPU is its own.
			res[i].ServiceCPU, res[i].ToolCPU, res[i].Note = 0, 0, w.note
		})
	}
	wg.Wait()
	wall := time.Since(began).Seconds()
	for _, r := range res {
		b.add(r)
	}
	if answers := res[0].Requests + res[1].Requests; answers > 0 {
		svc, tool := cpu.perRequest(answers)
		b.note("noisy-neighbour: while A and B ran at once, the service used %.2f cores (%.0f µs of CPU an answer, 429s included) and the tool %.2f (load generator); %d CPUs, load average %s",
			svc*float64(answers)/1e6/wall, svc, tool*float64(answers)/1e6/wall, runtime.NumCPU(), loadAverage())
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.measure(ctx, b.floodWork(floodName+" alone", "alone, right after the flood beside B (its burst spent); informational"))
	return ctx.Err()
}

// accepted is the rate of r's 200 answers.
func accepted(r *Result) float64 {
	if r == nil || r.Seconds <= 0 {
		return 0
	}
	return float64(r.StatusCodes["200"]) / r.Seconds
}

// noisyTargets: B's p99 beside A's flood against alone, and A held to its
// rate: refused with 429 past it, and its accepted rate between 0.9 ×
// the rate and 1.05 × what the bucket allows over the run (the rate, and
// the burst once).
func noisyTargets(b *bench) []Target {
	quiet := Target{Goal: fmt.Sprintf("noisy-neighbour: B's p99 beside A (%d clients) ≤ %.0f × B's p99 alone", noisyFlood, noisyP99Max), Met: "n/a", Measured: "not measured"}
	if alone, beside := b.find(quietAloneName), b.find(quietBesideName); alone != nil && beside != nil && alone.P99 > 0 {
		x := beside.P99 / alone.P99
		quiet.Measured = fmt.Sprintf("%.2f× (%s vs %s; p50 %s vs %s)", x, fmtMs(beside.P99), fmtMs(alone.P99), fmtMs(beside.P50), fmtMs(alone.P50))
		quiet.Met = yesNo(x <= noisyP99Max)
	}
	loud := Target{Goal: fmt.Sprintf("noisy-neighbour: A answered 429 past its rate, its accepted rate ≈ ORG_RATE_PER_SECOND=%d (≥ 0.9 ×, ≤ 1.05 × the rate plus the burst of %d over the run)", noisyOrgRate, noisyOrgBurst), Met: "n/a", Measured: "not measured"}
	if r := b.find(floodName); r != nil && r.Seconds > 0 {
		refused, ok := r.StatusCodes["429"], accepted(r)
		allowed := noisyOrgRate + noisyOrgBurst/r.Seconds
		loud.Measured = fmt.Sprintf("%s answers 429; %.0f accepted/s (%s in %.1f s; the bucket allows %.0f/s over the run)", group(refused), ok, group(r.StatusCodes["200"]), r.Seconds, allowed)
		loud.Met = yesNo(refused > 0 && ok >= 0.9*noisyOrgRate && ok <= 1.05*allowed)
	}
	return []Target{quiet, loud}
}

// streamRequest sends a request whose body, or answer, is a stream: no
// timeout but ctx's (the tool's client has one of two minutes, which an
// export of a large organization on a busy machine may pass). It returns
// the answer when its status is want.
func (c *apiClient) streamRequest(ctx context.Context, method, path, token, contentType string, body io.Reader, want int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := (&http.Client{Transport: c.hc.Transport}).Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != want {
		defer res.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(res.Body, 300))
		return nil, &statusError{method: method, path: path, status: res.StatusCode, body: string(raw)}
	}
	return res, nil
}

// exportFormat names the format in an export's header line.
const exportFormat = "orgsvc-export"

// export reads GET /org/export of a's organization to its end, copying it
// to keep, and returns how many lines it had; the first must be an
// export's header.
func (c *apiClient) export(ctx context.Context, a *account, keep io.Writer) (int, error) {
	res, err := c.streamRequest(ctx, http.MethodGet, "/org/export", a.Token, "", nil, http.StatusOK)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(io.TeeReader(res.Body, keep))
	sc.Buffer(make([]byte, 64<<10), 2<<20)
	lines := 0
	for sc.Scan() {
		if lines == 0 {
			var h struct {
				Format string `json:"format"`
			}
			if err := json.Unmarshal(sc.Bytes(), &h); err != nil || h.Format != exportFormat {
				return 0, fmt.Errorf("GET /org/export: the first line is not an export's header: %.200s", sc.Bytes())
			}
		}
		lines++
	}
	return lines, sc.Err()
}

// importStream sends body to POST /org/import?mode=replace for a's
// organization and returns the documents the answer says it imported.
func (c *apiClient) importStream(ctx context.Context, a *account, body []byte) (int64, error) {
	res, err := c.streamRequest(ctx, http.MethodPost, "/org/import?mode=replace", a.Token, "application/x-ndjson", bytes.NewReader(body), http.StatusOK)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	var out struct {
		Mode      string `json:"mode"`
		Documents int64  `json:"documents"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return 0, fmt.Errorf("POST /org/import: %w", err)
	}
	if out.Mode != "replace" {
		return 0, fmt.Errorf("POST /org/import: mode %q, want replace", out.Mode)
	}
	return out.Documents, nil
}

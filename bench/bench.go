package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/errgroup"

	"github.com/orgsvc/orgsvc/internal/jsondoc"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// seriesCost is the bcrypt cost of the second service started for the
// org-count series: 5,000 sign-ups at cost 12 would take about 8 minutes
// on two cores, at cost 4 they take seconds.
const seriesCost = 4

// bench is one run of the tool.
type bench struct {
	opts   config
	sz     sizes
	log    io.Writer
	runID  string
	report Report

	workDir string
	bin     string

	// The service being measured and its database.
	svc     *service // nil with -target
	api     *apiClient
	base    string
	pid     int    // 0 when unknown (-target): no RSS
	server  string // "main", "series" or "target"
	cost    int    // the service's bcrypt cost
	mongo   *mongo.Client
	db      *mongo.Database // nil without a database address: no driver baselines
	idOnly  bool            // the store evaluates only a lone _id filter (FerretDB)
	masters *repository.MasterRepository
	tenants *repository.TenantRepository

	// started is every service started, stopped at the end.
	started []*service
	// undo is what the current scenario's setup left to undo.
	undo []func()

	// Seeded data.
	benchOrg    *account
	benchDocIDs []string
	loginAdmins []*account
	// team is an account in sz.teamOrgs organizations, teamOrgs their
	// names (login-many, switch).
	team     *account
	teamOrgs []string
	renamed  map[string]*renamed // by rename scenario
	floor    floor
	ref      *reference // the org-count series' reference service
	audit    auditState // the audit scenarios' services and logs
}

func newBench(opts config, log io.Writer) *bench {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return &bench{opts: opts, sz: defaultSizes(opts.short), log: log, runID: hex.EncodeToString(b), report: newReport(opts), renamed: map[string]*renamed{}}
}

// logf prints a line about what the tool is doing.
func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// runAll seeds and runs every selected scenario with its baselines.
func (b *bench) runAll(ctx context.Context) (err error) {
	if b.workDir, err = os.MkdirTemp("", "orgbench-"); err != nil {
		return err
	}
	defer os.RemoveAll(b.workDir)
	defer func() {
		for _, svc := range b.started {
			svc.Stop()
		}
	}()
	defer b.endScenario()

	if b.opts.target == "" {
		if b.bin = b.opts.bin; b.bin == "" {
			b.logf("building ./cmd/orgsvc")
			if b.bin, b.report.Revision, err = buildService(ctx, b.workDir); err != nil {
				return err
			}
		}
		if _, err := b.start(ctx, "main", b.opts.bcryptCost); err != nil {
			return err
		}
	} else {
		b.api, b.base, b.server, b.cost = newAPIClient(b.opts.target), b.opts.target, "target", b.opts.bcryptCost
		if b.opts.mongoURI != "" {
			if err := b.connect(ctx, b.opts.mongoURI); err != nil {
				return err
			}
		}
		b.report.Service = "running service at " + b.opts.target
	}
	defer b.disconnect()
	b.report.BcryptCost = b.cost
	return b.runScenarios(ctx)
}

// startService starts a service on a fresh embedded store, stopped at the
// end of the run; extra goes into its environment.
func (b *bench) startService(ctx context.Context, name string, cost int, extra ...string) (*service, error) {
	settings := ""
	for _, e := range extra {
		settings += ", " + e
	}
	b.logf("starting the %s service (BCRYPT_COST=%d%s, embedded store)", name, cost, settings)
	svc, err := startService(ctx, b.bin, b.workDir, b.opts.out, name, b.opts.mongoDB, cost, extra...)
	if err != nil {
		return nil, err
	}
	b.started = append(b.started, svc)
	b.logf("%s service: %s, pid %d, store %s, log %s", name, svc.URL, svc.PID(), svc.MongoURI, svc.LogPath)
	return svc, nil
}

// start starts a service and makes it the one measured.
func (b *bench) start(ctx context.Context, name string, cost int) (*service, error) {
	svc, err := b.startService(ctx, name, cost)
	if err != nil {
		return nil, err
	}
	b.svc, b.api, b.base, b.pid, b.server, b.cost = svc, newAPIClient(svc.URL), svc.URL, svc.PID(), name, cost
	if err := b.connect(ctx, svc.MongoURI); err != nil {
		return nil, err
	}
	if b.report.Service == "" {
		b.report.Service = "orgsvc started by orgbench on the embedded store (FerretDB with SQLite) in a fresh temporary DATA_DIR, with LOG_LEVEL=warn, LOGIN_RATE_PER_ADDRESS=0, CREATE_RATE_PER_ADDRESS=0 (all load comes from one address) and ORG_RATE_PER_SECOND=0 (most scenarios load one organization), other settings at their defaults"
	}
	return svc, nil
}

func (b *bench) connect(ctx context.Context, uri string) error {
	c, db, idOnly, err := openDB(ctx, uri, b.opts.mongoDB)
	if err != nil {
		return err
	}
	b.mongo, b.db, b.idOnly = c, db, idOnly
	b.masters = repository.NewMasterRepository(db, idOnly)
	b.tenants = repository.NewTenantRepository(db, 0)
	return nil
}

// openDB connects to the database at uri and opens the master database
// name; idOnly is whether the store evaluates only a lone _id filter.
func openDB(ctx context.Context, uri, name string) (c *mongo.Client, db *mongo.Database, idOnly bool, err error) {
	if c, err = mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(10 * time.Second)); err != nil {
		return nil, nil, false, err
	}
	if err := c.Ping(ctx, nil); err != nil {
		_ = c.Disconnect(context.Background())
		return nil, nil, false, fmt.Errorf("database at %s: %w", uri, err)
	}
	db = c.Database(name)
	if idOnly, err = repository.IDFiltersOnly(ctx, db); err != nil {
		_ = c.Disconnect(context.Background())
		return nil, nil, false, fmt.Errorf("database at %s: %w", uri, err)
	}
	return c, db, idOnly, nil
}

func (b *bench) disconnect() {
	if b.mongo != nil {
		_ = b.mongo.Disconnect(context.Background())
		b.mongo, b.db, b.masters, b.tenants = nil, nil, nil, nil
	}
}

// add records a result and prints its summary; a measurement that an
// interrupt stopped before any request is dropped.
func (b *bench) add(r *Result) {
	if r.Requests == 0 {
		return
	}
	if r.Kind == "scenario" && r.Server == "" {
		r.Server = b.server
	}
	b.report.Results = append(b.report.Results, r)
	rss := ""
	if r.PeakMB > 0 {
		rss = fmt.Sprintf("  peak RSS %.0f MiB", r.PeakMB)
	}
	fmt.Fprintf(b.log, "  %-22s %9s req %10.1f req/s  p50 %s  p99 %s  p99.9 %s  errors %d%s\n",
		r.Name, group(int(r.Requests)), r.RPS, fmtMs(r.P50), fmtMs(r.P99), fmtMs(r.P999), r.Errors, rss)
	for _, e := range r.ErrorSamples {
		fmt.Fprintf(b.log, "      error: %s\n", e)
	}
}

// find returns the recorded result named name.
func (b *bench) find(name string) *Result {
	for _, r := range b.report.Results {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// compare sets r's baseline and ratio.
func compare(r, base *Result) {
	if r == nil || base == nil || r.Requests == 0 || base.Requests == 0 {
		return // one of them was interrupted before it began
	}
	r.Baseline = base.Name
	if base.RPS > 0 {
		r.Ratio = r.RPS / base.RPS
	}
}

// seedBenchOrg signs up the organization "bench" with n documents stored
// through the API.
func (b *bench) seedBenchOrg(ctx context.Context, n int) error {
	if b.benchOrg != nil && len(b.benchDocIDs) >= n {
		return nil
	}
	b.benchOrg = newAccount("bench")
	if err := b.api.ensure(ctx, b.benchOrg); err != nil {
		return fmt.Errorf("seed organization bench: %w", err)
	}
	b.logf("seeding %d documents of bench through POST /org/documents", n)
	ids := make([]string, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range n {
		g.Go(func() (err error) {
			ids[i], err = b.api.createDocument(gctx, b.benchOrg, sampleDocument(i))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("seed documents: %w", err)
	}
	b.benchDocIDs = ids
	return nil
}

// seedLoginAdmins signs up, once, the organizations whose admins the
// login scenario cycles through; with -target it reads the service's bcrypt
// cost from one of their hashes.
func (b *bench) seedLoginAdmins(ctx context.Context) error {
	if b.loginAdmins != nil {
		return nil // seeded for login, and used by login-one too
	}
	n := b.sz.loginAdmins
	b.logf("signing up %d organizations for login (bcrypt cost %d)", n, b.cost)
	admins := make([]*account, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(b.signUpWorkers())
	for i := range admins {
		admins[i] = newAccount(fmt.Sprintf("bench-login-%s-%02d", b.runID, i))
		g.Go(func() error { return b.api.signUp(gctx, admins[i]) })
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("seed login admins: %w", err)
	}
	b.loginAdmins = admins
	if b.opts.target != "" {
		b.cost = b.serviceCost(ctx, admins[0].Name, b.opts.bcryptCost)
		b.report.BcryptCost = b.cost
	}
	return nil
}

// seedDocuments stores n documents in the organization name's tenant
// collection through the tenant repository, in the service's storage
// format.
func (b *bench) seedDocuments(ctx context.Context, name string, n int) error {
	t, err := b.tenant(ctx, name)
	if err != nil {
		return err
	}
	b.logf("inserting %d documents into %s through the tenant repository", n, b.tenants.Describe(t.org.Tenant()))
	began := time.Now()
	var inserted atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range n {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			d, err := storedDocument(i)
			if err == nil {
				err = b.tenants.InsertDocument(gctx, t.org.Tenant(), t.org.ID, d)
			}
			if err != nil {
				return fmt.Errorf("insert documents into %s: %w", b.tenants.Describe(t.org.Tenant()), err)
			}
			inserted.Add(1)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// Counted from the answers: a count on the embedded store would read
	// every document into the service's memory and skew its RSS.
	if got := int(inserted.Load()); got != n {
		return fmt.Errorf("%s: %d documents inserted, want %d", name, got, n)
	}
	b.logf("inserted %d documents in %s", n, time.Since(began).Round(time.Millisecond))
	return nil
}

// sampleDocument is the i-th seeded document's data.
func sampleDocument(i int) map[string]any {
	return map[string]any{"kind": "invoice", "n": i, "total": 120.5, "paid": i%2 == 0, "customer": "Acme Inc", "lines": [][]int{{1, 2}, {3}}}
}

// storedDocument is the i-th seeded document as the service stores it.
func storedDocument(i int) (*model.Document, error) {
	raw := fmt.Sprintf(`{"kind":"invoice","n":%d,"total":120.5,"paid":%t,"customer":"Acme Inc","lines":[[1,2],[3]]}`, i, i%2 == 0)
	doc, problems := jsondoc.Parse([]byte(raw))
	if len(problems) > 0 {
		return nil, errors.New(problems[0].Msg)
	}
	now := model.Now()
	return &model.Document{ID: bson.NewObjectID(), JSON: string(doc.JSON), Fields: doc.Fields, CreatedAt: now, UpdatedAt: now}, nil
}

// serviceCost reads the bcrypt cost of the hash of the admin of the
// organization name; fallback when there is no database or it cannot be
// read.
func (b *bench) serviceCost(ctx context.Context, name string, fallback int) int {
	if b.db == nil {
		return fallback
	}
	info, err := b.api.organization(ctx, name)
	if err != nil {
		return fallback
	}
	id, err := bson.ObjectIDFromHex(info.AdminID)
	if err != nil {
		return fallback
	}
	a, err := b.masters.Admin(ctx, id)
	if err != nil {
		return fallback
	}
	if c, err := bcrypt.Cost([]byte(a.PasswordHash)); err == nil {
		return c
	}
	return fallback
}

// tenant is an organization of the measured service, for the driver
// baselines and the seeding: its record and its tenant collection.
type tenant struct {
	org  *model.Organization
	docs *mongo.Collection
}

// tenant finds the organization named name: its id and collection as GET
// /org/get answers them, its record (and the database of its collection)
// through the master repository.
func (b *bench) tenant(ctx context.Context, name string) (*tenant, error) {
	info, err := b.api.organization(ctx, name)
	if err != nil {
		return nil, err
	}
	id, err := bson.ObjectIDFromHex(info.ID)
	if err != nil {
		return nil, fmt.Errorf("organization %s: id %q: %w", name, info.ID, err)
	}
	org, err := b.masters.Organization(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("organization %s: %w", name, err)
	}
	db := b.db
	if org.TenantDB != "" {
		db = b.mongo.Database(org.TenantDB)
	}
	return &tenant{org: org, docs: db.Collection(info.CollectionName)}, nil
}

// signUpWorkers is how many sign-ups seeding sends at once. At a high
// bcrypt cost more than the cores can hash only queue up in the service;
// at a low one the embedded store, which creates one collection per
// sign-up, slows down sharply when many creations run at once.
func (b *bench) signUpWorkers() int {
	if b.cost > 6 {
		return 2 * runtime.NumCPU()
	}
	return 4
}

// checkAlive fails when the started service has exited.
func (b *bench) checkAlive() error {
	if b.svc == nil {
		return nil
	}
	return b.svc.alive()
}

// note adds a line to the report's notes and prints it.
func (b *bench) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	b.report.Notes = append(b.report.Notes, s)
	b.logf("note: %s", strings.TrimSpace(s))
}

// seedTeam signs up sz.teamOrgs organizations and makes one account a
// member of all of them: the owner of the first, invited into the others
// and accepting. It leaves the account logged in.
func (b *bench) seedTeam(ctx context.Context) error {
	if b.team != nil {
		return nil
	}
	n := b.sz.teamOrgs
	b.logf("signing up %d organizations for one account (login-many, switch)", n)
	owners := make([]*account, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(b.signUpWorkers())
	for i := range owners {
		owners[i] = newAccount(fmt.Sprintf("bench-team-%s-%02d", b.runID, i))
		g.Go(func() error { return b.api.ensure(gctx, owners[i]) })
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("seed team organizations: %w", err)
	}
	team := owners[0]
	names := []string{team.Name}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(b.signUpWorkers())
	for _, o := range owners[1:] {
		names = append(names, o.Name)
		g.Go(func() error {
			token, err := b.api.invite(gctx, o, team.Email, "member")
			if err != nil {
				return err
			}
			return b.api.accept(gctx, team, token)
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("seed team memberships: %w", err)
	}
	if err := b.api.login(ctx, team); err != nil {
		return err
	}
	b.team, b.teamOrgs = team, names
	return nil
}

package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/sync/errgroup"

	"github.com/orgsvc/orgsvc/internal/audit"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// The audit log's scenarios:
//
//   - audit-write: a sign-up, a rename and a member's role change on a
//     service with the log and on one started with ORGSVC_AUDIT_OFF=1,
//     one operation at a time, in turns (both at BCRYPT_COST=seriesCost,
//     so that a sign-up is not all bcrypt), then sign-ups from
//     -concurrency clients on both in turns (informational);
//   - audit-list: GET /org/audit?limit=50 on a service holding sz.auditOrgs
//     logs of sz.auditEvents events, in turns with one holding
//     sz.auditListed, the events seeded through the driver;
//   - audit-verify: orgsvc audit verify --org of one log of
//     sz.verifyEvents events, the built binary run against the main
//     service's store.

// Result names of audit-write: each operation with the log, and without;
// the sign-ups under load have no target.
var auditWriteOps = []struct {
	key, with, without string
	target             bool
}{
	{"sign-up", "sign-up with log", "sign-up without log", true},
	{"rename", "rename with log", "rename without log", true},
	{"role change", "role change with log", "role change without log", true},
	{"sign-up under load", "sign-up under load with log", "sign-up under load without log", false},
}

// auditWriteMax is the most an operation may take with the log, as a
// multiple of its time without.
const auditWriteMax = 1.15

// auditListMax bounds the p50 of a page of the audit log with many logs
// present over the same with few.
const auditListMax = 1.5

// verifyPer100k is the longest orgsvc audit verify may take for 100,000
// events.
const verifyPer100k = 10 * time.Second

// listClients is how many clients audit-list runs: few, since it was set
// when a page was slow on the embedded store (BENCHMARKS.md, "Audit log").
const listClients = 4

// auditSeedWorkers is how many logs are seeded at once; auditBatch how
// many events one InsertMany carries. The logs of a tenant database are
// one collection of one SQLite file on the embedded store, whose writes
// are serialized there (so more writers only wait).
const (
	auditSeedWorkers = 2
	auditBatch       = 1_000
)

// writeSide is one service of audit-write and what it seeded.
type writeSide struct {
	svc     *service
	api     *apiClient
	renamed *renamed
	owner   *account // of the organization whose member changes role
	member  string   // the member's account id
}

// listSide is one service of audit-list and the logs it holds.
type listSide struct {
	svc   *service
	api   *apiClient
	orgs  []*account // signed up, logged in: their logs are listed
	logs  int        // audit logs present, listed or not
	seed  time.Duration
	made  time.Duration // of seed, making the logs of no organization
	total int64         // events seeded through the driver
}

// auditState is what the audit scenarios' setups leave to their runs.
type auditState struct {
	write      [2]*writeSide // with the log, without
	list       [2]*listSide  // many logs, few
	verifyOrg  bson.ObjectID
	verifySeed time.Duration
	verifyBin  string // the orgsvc binary verify runs
	verifyDir  string // the DATA_DIR it opens, or
	verifyURI  string // the store it reads; neither: verify in process
}

// startWriteSide starts a service of audit-write and signs up its
// organizations: one to rename, one with a second member.
func (b *bench) startWriteSide(ctx context.Context, name string, extra ...string) (*writeSide, error) {
	svc, err := b.startService(ctx, name, seriesCost, extra...)
	if err != nil {
		return nil, err
	}
	b.undo = append(b.undo, svc.Stop)
	s := &writeSide{svc: svc, api: newAPIClient(svc.URL)}
	r := newAccount("bench-aw-rename-" + b.runID)
	if err := s.api.ensure(ctx, r); err != nil {
		return nil, fmt.Errorf("%s: sign up %s: %w", name, r.Name, err)
	}
	s.renamed = &renamed{a: r, names: [2]string{r.Name, r.Name + "-b"}}
	s.owner = newAccount("bench-aw-team-" + b.runID)
	if err := s.api.ensure(ctx, s.owner); err != nil {
		return nil, fmt.Errorf("%s: sign up %s: %w", name, s.owner.Name, err)
	}
	m := newAccount("bench-aw-member-" + b.runID)
	token, err := s.api.invite(ctx, s.owner, m.Email, "member")
	if err != nil {
		return nil, fmt.Errorf("%s: invite: %w", name, err)
	}
	if err := s.api.accept(ctx, m, token); err != nil {
		return nil, fmt.Errorf("%s: accept: %w", name, err)
	}
	members, err := s.api.members(ctx, s.owner)
	if err != nil {
		return nil, fmt.Errorf("%s: members: %w", name, err)
	}
	for _, x := range members {
		if x.Email == m.Email && x.Role == "member" {
			s.member = x.ID
		}
	}
	if s.member == "" {
		return nil, fmt.Errorf("%s: the invited member is not among %+v", name, members)
	}
	return s, nil
}

// setupAuditWrite starts the two services of audit-write: with the log,
// and without (ORGSVC_AUDIT_OFF=1).
func (b *bench) setupAuditWrite(ctx context.Context) error {
	if b.svc == nil {
		b.note("audit-write skipped: it starts services of its own (one without the audit log), which -target cannot")
		return errSkip
	}
	on, err := b.startWriteSide(ctx, "audit-on")
	if err != nil {
		return err
	}
	off, err := b.startWriteSide(ctx, "audit-off", "ORGSVC_AUDIT_OFF=1")
	if err != nil {
		return err
	}
	b.audit.write = [2]*writeSide{on, off}
	return nil
}

// auditWrite times sign-ups, renames and role changes on the services
// with and without the log, one at a time and in turns, and pairs each
// operation with the log with the same without.
func (b *bench) auditWrite(ctx context.Context) error {
	n := b.sz.auditOps
	var ws []work
	for k := range 3 {
		for i, s := range b.audit.write {
			name := auditWriteOps[k].with
			if i == 1 {
				name = auditWriteOps[k].without
			}
			w := work{name: name, kind: "scenario", server: s.svc.Name, pid: s.svc.PID(), base: s.svc.URL, times: n}
			switch k {
			case 0:
				w.note = "POST /org/create, a new organization each time"
				w.op = func(ctx context.Context, j int) error {
					return s.api.signUpOnce(ctx, newAccount(fmt.Sprintf("bench-aw-%s-%05d", b.runID, j)))
				}
			case 1:
				r := s.renamed
				w.note = "PUT /org/update renaming an empty organization back and forth"
				w.op = func(ctx context.Context, j int) error { return s.api.rename(ctx, r.a, r.names[(j+1)%2]) }
			case 2:
				roles := [2]string{"admin", "member"}
				w.note = "PATCH /org/members/{account_id} of the second member, admin and member in turn"
				w.op = func(ctx context.Context, j int) error { return s.api.changeRole(ctx, s.owner, s.member, roles[j%2]) }
			}
			w.note += fmt.Sprintf("; one at a time, in turns with the same on the service %s the audit log (BCRYPT_COST=%d)", map[int]string{0: "without", 1: "with"}[i], seriesCost)
			ws = append(ws, w)
		}
	}
	b.logf("audit-write: %d sign-ups, renames and role changes on each service, one at a time, in turns", n)
	rs := b.timeInTurns(ctx, ws)
	for i := 0; i+1 < len(rs); i += 2 {
		pairReference(rs[i], rs[i+1])
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Sign-ups from -concurrency clients, in turns of a fifth each: what
	// the log costs them when they run at once (informational). Each
	// service's organizations grow by auditBurst.
	per := max(1, b.sz.auditBurst/alternateRounds)
	var burst [2]work
	for i, s := range b.audit.write {
		op := auditWriteOps[3]
		name := map[int]string{0: op.with, 1: op.without}[i]
		prefix := "bench-aw-load-" + b.runID
		var issued atomic.Int64
		burst[i] = work{name: name, kind: "scenario", server: s.svc.Name, pid: s.svc.PID(), base: s.svc.URL, size: fmt.Sprintf("%d sign-ups", per),
			note: fmt.Sprintf("POST /org/create, a new organization each time; %d turns of %d sign-ups, in turns with the service %s the audit log; not deleted", alternateRounds, per, map[int]string{0: "without", 1: "with"}[i]),
			start: func(c int, _ time.Duration) load {
				return attackHTTP(name, signUps(s.svc.URL, prefix, &issued), c, 0, maxHits(per))
			}}
	}
	res := b.alternate(ctx, burst)
	pairReference(res[0], res[1])
	if err := ctx.Err(); err != nil {
		return err
	}
	// What the log itself writes for a new organization, through the
	// driver: the first event.
	on := b.audit.write[0]
	client, db, _, err := openDB(ctx, on.svc.MongoURI, b.opts.mongoDB)
	if err != nil {
		return err
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	repo := repository.NewAuditRepository(db)
	b.measure(ctx, work{name: "driver audit-log create+append", kind: "baseline", pid: on.svc.PID(), times: n,
		note: "a new log's first event through the driver, as a sign-up writes it: one insert into the audit collection of the first tenant database; one at a time, on the audit-on service's store (informational)",
		op: func(ctx context.Context, _ int) error {
			at := repository.LogRef{DB: model.TenantDatabase(db.Name(), 0), Org: bson.NewObjectID()}
			ev := seedEvent(at.Org, 1, audit.ZeroHash, time.Now())
			return repo.Insert(ctx, at, &ev)
		}})
	return ctx.Err()
}

// auditWriteTargets: each operation with the log against the same
// without.
func auditWriteTargets(b *bench) []Target {
	var out []Target
	for _, op := range auditWriteOps {
		if !op.target {
			continue
		}
		t := Target{Goal: fmt.Sprintf("%s with the audit log ≤ %.2f × without (p50)", op.key, auditWriteMax), Met: "n/a", Measured: "not measured"}
		if on, off := b.find(op.with), b.find(op.without); on != nil && off != nil && on.P50 > 0 && off.P50 > 0 {
			x := on.P50 / off.P50
			t.Measured = fmt.Sprintf("%.2f× (%s vs %s, one at a time, in turns)", x, fmtMs(on.P50), fmtMs(off.P50))
			t.Met = yesNo(x <= auditWriteMax)
		}
		out = append(out, t)
	}
	return out
}

// startListSide starts a service of audit-list, signs up the
// organizations whose logs are listed, and seeds their logs and logs more
// logs-only ones, each to sz.auditEvents events, through the driver.
func (b *bench) startListSide(ctx context.Context, name string, logsOnly int) (*listSide, error) {
	svc, err := b.startService(ctx, name, seriesCost)
	if err != nil {
		return nil, err
	}
	b.undo = append(b.undo, svc.Stop)
	s := &listSide{svc: svc, api: newAPIClient(svc.URL), logs: b.sz.auditListed + logsOnly}
	client, db, _, err := openDB(ctx, svc.MongoURI, b.opts.mongoDB)
	if err != nil {
		return nil, err
	}
	b.undo = append(b.undo, func() { _ = client.Disconnect(context.Background()) })
	repo := repository.NewAuditRepository(db)

	b.logf("%s: signing up the %d organizations whose logs are listed", name, b.sz.auditListed)
	s.orgs = make([]*account, b.sz.auditListed)
	ids := make([]bson.ObjectID, len(s.orgs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := range s.orgs {
		s.orgs[i] = newAccount(fmt.Sprintf("bench-al-%s-%02d", b.runID, i))
		g.Go(func() error {
			if err := s.api.ensure(gctx, s.orgs[i]); err != nil {
				return err
			}
			info, err := s.api.organization(gctx, s.orgs[i].Name)
			if err == nil {
				ids[i], err = bson.ObjectIDFromHex(info.ID)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("%s: sign up: %w", name, err)
	}

	n := b.sz.auditEvents
	b.logf("%s: seeding %d logs of %d events through the driver (%d of signed-up organizations, %d of logs alone)", name, s.logs, n, len(ids), logsOnly)
	began := time.Now()
	// The logs alone are put 64 to a database, as the service puts
	// organizations, in tenant databases of their own, whose audit
	// collections are made first, one at a time: every schema change makes
	// each SQLite connection to the database's file parse its whole schema
	// again, at its next statement (and fails a statement under way on
	// another one, which FerretDB does not retry).
	refs, err := logRefs(ctx, repo, ids)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for k := range logsOnly {
		at := repository.LogRef{DB: model.TenantDatabase(db.Name(), 500+k/64), Org: bson.NewObjectID()}
		if k%64 == 0 {
			if err := repo.Prepare(ctx, at.DB); err != nil {
				return nil, fmt.Errorf("%s: make an audit collection: %w", name, err)
			}
		}
		refs = append(refs, at)
	}
	made := time.Since(began)
	if logsOnly > 0 {
		b.logf("%s: made %d logs in %s", name, logsOnly, made.Round(time.Millisecond))
	}
	var seeded, logsDone atomic.Int64
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(auditSeedWorkers)
	for i, at := range refs {
		g.Go(func() error {
			head := chainHead{0, audit.ZeroHash}
			if i < len(ids) { // its sign-up and login are in it already
				var err error
				if head, err = logHead(gctx, repo, at); err != nil {
					return err
				}
			}
			k, err := seedLog(gctx, client.Database(at.DB), at.Org, head, int64(n))
			seeded.Add(k)
			if done := logsDone.Add(1); done%1000 == 0 {
				b.logf("%s: %d logs seeded, %d events, %s", name, done, seeded.Load(), time.Since(began).Round(time.Second))
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("%s: seed the audit logs: %w", name, err)
	}
	s.seed, s.made, s.total = time.Since(began), made, seeded.Load()
	b.logf("%s: seeded %d events in %d logs in %s (%.0f events/s; making the logs alone took %s)", name, s.total, s.logs, s.seed.Round(time.Millisecond),
		float64(s.total)/s.seed.Seconds(), made.Round(time.Millisecond))

	// The seeded chains hold (checked through the driver, for which the
	// embedded store reads the whole collection: on the side with few
	// logs only), and the listing answers a full page.
	if logsOnly == 0 {
		log := audit.NewLog(repo)
		if got, err := log.Verify(ctx, ids[0]); err != nil || got != int64(n) {
			return nil, fmt.Errorf("%s: the seeded log of %s: %d events, want %d; %v", name, s.orgs[0].Name, got, n, err)
		}
	}
	page, err := s.api.auditPage(ctx, s.orgs[0], 50)
	if err != nil || len(page.Items) != min(50, n) || page.Items[0].Seq != int64(n) {
		return nil, fmt.Errorf("%s: GET /org/audit?limit=50 after seeding: %+v, %v", name, page, err)
	}
	return s, nil
}

// setupAuditList starts the two services of audit-list: one with many
// logs, one with few.
func (b *bench) setupAuditList(ctx context.Context) error {
	if b.svc == nil {
		b.note("audit-list skipped: it starts services of its own, which -target cannot")
		return errSkip
	}
	few, err := b.startListSide(ctx, "audit-few", 0)
	if err != nil {
		return err
	}
	many, err := b.startListSide(ctx, "audit-many", b.sz.auditOrgs-b.sz.auditListed)
	if err != nil {
		return err
	}
	b.audit.list = [2]*listSide{many, few}
	b.note("audit-list: seeding %s events in %s logs (%d events each) through the driver took %s on audit-many (%.0f events/s; of it, making the %s logs of no organization, one at a time, %s), %s for the %s events of audit-few",
		group(int(many.total)), group(many.logs), b.sz.auditEvents, many.seed.Round(time.Second), float64(many.total)/many.seed.Seconds(),
		group(many.logs-len(many.orgs)), many.made.Round(time.Second), few.seed.Round(time.Millisecond), group(int(few.total)))
	return nil
}

// listName names audit-list's results.
func (b *bench) listName(s *listSide) string {
	if s == b.audit.list[0] {
		return fmt.Sprintf("audit-list@%d", s.logs)
	}
	return fmt.Sprintf("audit-list@%d beside @%d", s.logs, b.audit.list[0].logs)
}

// auditList loads GET /org/audit?limit=50 on both services in turns,
// round-robin over each one's signed-up organizations.
func (b *bench) auditList(ctx context.Context) error {
	var ws [2]work
	for i, s := range b.audit.list {
		targets := make([]vegeta.Target, len(s.orgs))
		for j, a := range s.orgs {
			targets[j] = vegeta.Target{Method: http.MethodGet, URL: s.svc.URL + "/org/audit?limit=50", Header: jsonHeader(a.Token)}
		}
		name := b.listName(s)
		tr := roundRobin(targets)
		ws[i] = work{name: name, kind: "scenario", server: s.svc.Name, pid: s.svc.PID(), base: s.svc.URL, organizations: s.logs, concurrency: listClients,
			note: fmt.Sprintf("GET /org/audit?limit=50 by the owners of %d organizations in turn; %s audit logs of %d events present (%d of them of signed-up organizations), seeded through the driver in %s; in turns with %s",
				len(s.orgs), group(s.logs), b.sz.auditEvents, len(s.orgs), s.seed.Round(time.Millisecond), b.listName(b.audit.list[1-i])),
			start: func(c int, d time.Duration) load { return attackHTTP(name, tr, c, d, nil) }}
	}
	res := b.alternate(ctx, ws)
	res[0].SeedSeconds, res[1].SeedSeconds = b.audit.list[0].seed.Seconds(), b.audit.list[1].seed.Seconds()
	pairReference(res[0], res[1])
	return ctx.Err()
}

// auditListTarget: a page of a log with many logs present against the
// same with few.
func auditListTarget(b *bench) []Target {
	many, few := b.sz.auditOrgs, b.sz.auditListed
	t := Target{Goal: fmt.Sprintf("audit page of 50 p50 with %s organizations of %d events ≤ %.1f × with %d", group(many), b.sz.auditEvents, auditListMax, few), Met: "n/a", Measured: "not measured"}
	r := b.find(fmt.Sprintf("audit-list@%d", many))
	if r == nil || r.Reference == "" {
		return []Target{t}
	}
	if ref := b.find(r.Reference); ref != nil && ref.P50 > 0 {
		x := r.P50 / ref.P50
		t.Measured = fmt.Sprintf("%.2f× (%s vs %s, in turns with a service holding %d)", x, fmtMs(r.P50), fmtMs(ref.P50), ref.Organizations)
		t.Met = yesNo(x <= auditListMax)
	}
	return []Target{t}
}

// setupAuditVerify signs up an organization and seeds its log to
// sz.verifyEvents events through the driver. The tool's own runs do so on
// a service of their own, which is stopped once seeded, so that orgsvc
// audit verify opens its DATA_DIR as an operator's run does (the embedded
// store holds the directory's lock while a service runs); with -target,
// on the measured service's store, through MONGO_URI.
func (b *bench) setupAuditVerify(ctx context.Context) error {
	if b.db == nil {
		b.note("audit-verify skipped: seeding the log needs the database address (-mongo)")
		return errSkip
	}
	api, db := b.api, b.db
	var own *service
	if b.bin != "" && b.svc != nil {
		var err error
		if own, err = b.startService(ctx, "audit-verify", seriesCost); err != nil {
			return err
		}
		b.undo = append(b.undo, own.Stop)
		client, odb, _, err := openDB(ctx, own.MongoURI, b.opts.mongoDB)
		if err != nil {
			return err
		}
		defer func() { _ = client.Disconnect(context.Background()) }()
		api, db = newAPIClient(own.URL), odb
	}
	a := newAccount("bench-audit-verify-" + b.runID)
	if err := api.ensure(ctx, a); err != nil {
		return fmt.Errorf("sign up %s: %w", a.Name, err)
	}
	info, err := api.organization(ctx, a.Name)
	if err != nil {
		return err
	}
	org, err := bson.ObjectIDFromHex(info.ID)
	if err != nil {
		return fmt.Errorf("organization %s: id %q: %w", a.Name, info.ID, err)
	}
	n := b.sz.verifyEvents
	b.logf("audit-verify: seeding the log of %s to %d events through the driver", a.Name, n)
	began := time.Now()
	repo := repository.NewAuditRepository(db)
	refs, err := logRefs(ctx, repo, []bson.ObjectID{org})
	if err != nil {
		return err
	}
	head, err := logHead(ctx, repo, refs[0])
	if err != nil {
		return err
	}
	if _, err := seedLog(ctx, db.Client().Database(refs[0].DB), org, head, int64(n)); err != nil {
		return fmt.Errorf("seed the audit log of %s: %w", a.Name, err)
	}
	b.audit.verifyOrg, b.audit.verifySeed = org, time.Since(began)
	b.note("audit-verify: seeding the log of %s events took %s (%.0f events/s)", group(n), b.audit.verifySeed.Round(time.Millisecond), float64(n)/b.audit.verifySeed.Seconds())
	b.auditScanBaselines(ctx, repo, refs[0])
	// With -target, the binary only if -bin names one.
	switch b.audit.verifyBin = cmp.Or(b.bin, b.opts.bin); {
	case b.audit.verifyBin == "":
	case own != nil:
		own.Stop()
		b.audit.verifyDir = own.DataDir
	default:
		b.audit.verifyURI = b.opts.mongoURI
	}
	return ctx.Err()
}

// auditVerify times orgsvc audit verify --org of the seeded log, the built
// binary run on the stopped service's DATA_DIR (or against the measured
// store's MONGO_URI; without a binary, audit.Log's Verify in the tool's
// process), sz.verifyRuns times.
func (b *bench) auditVerify(ctx context.Context) error {
	want := int64(b.sz.verifyEvents)
	var scans []time.Duration // as the CLI reports them
	how := "orgsvc audit verify --org <id>, the built binary, on the stopped service's DATA_DIR (the embedded store in its process, as an operator runs it)"
	switch {
	case b.audit.verifyBin == "":
		how = "audit.NewLog(repository.NewAuditRepository(db)).Verify in the tool's process, over the driver"
	case b.audit.verifyDir == "":
		how = "orgsvc audit verify --org <id>, the built binary, against the measured store (MONGO_URI)"
	}
	w := work{name: "audit-verify", kind: "scenario", server: b.server, times: b.sz.verifyRuns,
		note: fmt.Sprintf("%s; a log of %s events seeded through the driver in %s; each run timed whole", how, group(int(want)), b.audit.verifySeed.Round(time.Millisecond)),
		op: func(ctx context.Context, _ int) error {
			var n int64
			var scan time.Duration
			var err error
			if b.audit.verifyBin == "" {
				start := time.Now()
				n, err = audit.NewLog(repository.NewAuditRepository(b.db)).Verify(ctx, b.audit.verifyOrg)
				scan = time.Since(start)
			} else {
				n, scan, err = b.verifyCLI(ctx, b.audit.verifyOrg)
			}
			if err == nil && n != want {
				err = fmt.Errorf("verified %d events, want %d", n, want)
			}
			if err == nil && scan > 0 {
				scans = append(scans, scan)
			}
			return err
		}}
	r := b.measure(ctx, w)
	r.Events, r.SeedSeconds = want, b.audit.verifySeed.Seconds()
	if r.P50 > 0 {
		r.EventsPerSecond = float64(want) / (r.P50 / 1000)
		b.logf("audit-verify: %s events in %s (median of %d), %.0f events/s", group(int(want)), fmtMs(r.P50), len(scans), r.EventsPerSecond)
	}
	if len(scans) > 0 && b.audit.verifyBin != "" {
		slices.Sort(scans)
		m := median(scans)
		r.Note += fmt.Sprintf("; the scan alone, as the CLI reports it: %s median (%.0f events/s)", fmtMs(ms(m)), float64(want)/m.Seconds())
	}
	return ctx.Err()
}

// auditScanBaselines shows where verifying's time goes, on the seeded log
// at: its events read through the driver, unchecked; then the chain
// checked over those events in memory.
func (b *bench) auditScanBaselines(ctx context.Context, repo *repository.AuditRepository, at repository.LogRef) {
	want := int64(b.sz.verifyEvents)
	var evs []model.Event
	scan := b.measure(ctx, work{name: "driver audit scan", kind: "baseline", times: 1,
		note: fmt.Sprintf("the %s events read through the driver (Find, batches of 1,000, decoded), not checked, while the service runs; once (informational)", group(int(want))),
		op: func(ctx context.Context, _ int) error {
			evs = evs[:0]
			return repo.Scan(ctx, at, repository.AuditFilter{}, func(ev *model.Event) error {
				evs = append(evs, *ev)
				return nil
			})
		}})
	scan.Events = int64(len(evs))
	if scan.P50 > 0 {
		scan.EventsPerSecond = float64(len(evs)) / (scan.P50 / 1000)
	}
	check := b.measure(ctx, work{name: "chain check in memory", kind: "baseline", times: b.sz.verifyRuns,
		note: fmt.Sprintf("audit.Chain over the %s events the scan read, in the tool's process: the hashes and links alone (informational)", group(len(evs))),
		op: func(context.Context, int) error {
			c := &audit.Chain{Org: at.Org.Hex()}
			for i := range evs {
				if err := c.Next(&evs[i]); err != nil {
					return err
				}
			}
			if c.Events != want {
				return fmt.Errorf("checked %d events, want %d", c.Events, want)
			}
			return nil
		}})
	check.Events = int64(len(evs))
	if check.P50 > 0 {
		check.EventsPerSecond = float64(len(evs)) / (check.P50 / 1000)
	}
}

// verifyCLI runs orgsvc audit verify --org org on verifyDir, or against
// the store at verifyURI, and returns what it printed.
func (b *bench) verifyCLI(ctx context.Context, org bson.ObjectID) (int64, time.Duration, error) {
	cmd := exec.CommandContext(ctx, b.audit.verifyBin, "audit", "verify", "--org", org.Hex())
	// The working directory holds no .env.
	cmd.Dir = b.workDir
	cmd.Env = append(inheritedEnv(), "MONGO_DB="+b.opts.mongoDB, "LOG_LEVEL=warn", "DATA_DIR="+b.audit.verifyDir)
	if b.audit.verifyDir == "" {
		// MONGO_URI set wants a JWT_SECRET, which verifying never uses.
		secret := make([]byte, 32)
		_, _ = rand.Read(secret)
		cmd.Env = append(cmd.Env, "MONGO_URI="+b.audit.verifyURI, "JWT_SECRET="+hex.EncodeToString(secret),
			"DATA_DIR="+filepath.Join(b.workDir, "verify-data"))
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, 0, fmt.Errorf("orgsvc audit verify: %w: %s%s", err, out, stderr.Bytes())
	}
	return parseVerify(string(out), org)
}

// parseVerify reads what orgsvc audit verify printed: the events of org's
// log ("ok: organization <id>: N events") and the time of the scan from
// its last line ("1 logs, N events verified in 1.2s (…)"), 0 when it
// says none.
func parseVerify(out string, org bson.ObjectID) (int64, time.Duration, error) {
	events := int64(-1)
	var scan time.Duration
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		var id string
		var n int64
		if _, err := fmt.Sscanf(line, "ok: organization %s %d events", &id, &n); err == nil && strings.TrimSuffix(id, ":") == org.Hex() {
			events = n
		}
		var logs int
		var took string
		if _, err := fmt.Sscanf(line, "%d logs, %d events verified in %s", &logs, &n, &took); err == nil {
			scan, _ = time.ParseDuration(took)
		}
	}
	if events < 0 {
		return 0, 0, fmt.Errorf("orgsvc audit verify did not report the log of %s: %s", org.Hex(), out)
	}
	return events, scan, nil
}

// auditVerifyTarget: the log verifies at 100,000 events in verifyPer100k.
func auditVerifyTarget(b *bench) []Target {
	n := b.sz.verifyEvents
	limit := verifyPer100k * time.Duration(n) / 100_000
	goal := fmt.Sprintf("orgsvc audit verify of %s events < %s", group(n), limit)
	if n != 100_000 {
		goal += fmt.Sprintf(" (%s per 100,000)", verifyPer100k)
	}
	t := Target{Goal: goal, Met: "n/a", Measured: "not measured"}
	if r := b.find("audit-verify"); r != nil && r.P50 > 0 {
		t.Measured = fmt.Sprintf("%s median of %d runs, %.0f events/s", fmtMs(r.P50), r.Requests-r.Errors, r.EventsPerSecond)
		t.Met = yesNo(r.P50 < ms(limit))
	}
	return []Target{t}
}

// seedActions are the actions the seeded events record, in turn (those of
// package service).
var seedActions = []string{"auth.login_succeeded", "member.role_changed", "invitation.created", "auth.switch", "org.renamed", "auth.logout"}

// seedEvent is the seq-th event of org's log, after the event whose hash
// is prev, with its hash.
func seedEvent(org bson.ObjectID, seq int64, prev string, now time.Time) model.Event {
	action := seedActions[int(seq)%len(seedActions)]
	actor := model.Actor{Type: model.ActorAccount, ID: org.Hex(), Email: "admin@bench-seeded.example.com"}
	ev := model.Event{
		Key: model.EventKey(org, seq), Seq: seq, ID: model.EventID(org, seq), OrgID: org.Hex(), Time: audit.Time(now), Action: action, Actor: actor,
		Targets:  []model.Target{{Type: model.TargetOrganization, ID: org.Hex(), Name: "bench-seeded"}},
		Context:  model.EventContext{RequestID: fmt.Sprintf("%032x", seq), ClientAddress: "127.0.0.1", UserAgent: "orgbench"},
		PrevHash: prev,
		Source:   fmt.Sprintf("bench:%s:%d", org.Hex(), seq),
	}
	if action == "member.role_changed" {
		from, to := "member", "admin"
		ev.Changes = map[string]model.Change{"role": {From: &from, To: &to}}
	}
	ev.Hash = audit.Hash(ev)
	return ev
}

// chainHead is the seq and hash of a log's newest event.
type chainHead struct {
	seq  int64
	hash string
}

// logRefs finds the logs of orgs, in their order, wherever the service
// keeps them.
func logRefs(ctx context.Context, repo *repository.AuditRepository, orgs []bson.ObjectID) ([]repository.LogRef, error) {
	all, err := repo.Logs(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the audit logs: %w", err)
	}
	at := map[bson.ObjectID]repository.LogRef{}
	for _, r := range all {
		at[r.Org] = r
	}
	out := make([]repository.LogRef, len(orgs))
	for i, org := range orgs {
		r, ok := at[org]
		if !ok {
			return nil, fmt.Errorf("no audit log of organization %s", org.Hex())
		}
		out[i] = r
	}
	return out, nil
}

// logHead reads the head of the log at; seq 0 and the zero hash when it
// is empty.
func logHead(ctx context.Context, repo *repository.AuditRepository, at repository.LogRef) (chainHead, error) {
	last, err := repo.Last(ctx, at)
	switch {
	case err == nil:
		return chainHead{last.Seq, last.Hash}, nil
	case errors.Is(err, repository.ErrNotFound):
		return chainHead{0, audit.ZeroHash}, nil
	default:
		return chainHead{}, err
	}
}

// seedLog appends events to org's log through the driver, after head, its
// newest event, until it holds n; it returns how many it added. The
// service that keeps the log must not append to it meanwhile.
func seedLog(ctx context.Context, db *mongo.Database, org bson.ObjectID, head chainHead, n int64) (int64, error) {
	seq, prev := head.seq, head.hash
	coll := db.Collection(model.AuditCollection)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Events are made while the batch before is inserted.
	batches := make(chan []any, 1)
	made := make(chan error, 1)
	go func() {
		defer close(batches)
		for seq < n {
			k := min(int64(auditBatch), n-seq)
			batch := make([]any, 0, k)
			now := time.Now()
			for range k {
				seq++
				ev := seedEvent(org, seq, prev, now)
				prev = ev.Hash
				batch = append(batch, ev)
			}
			select {
			case batches <- batch:
			case <-ctx.Done():
				made <- ctx.Err()
				return
			}
		}
		made <- nil
	}()
	var added int64
	for batch := range batches {
		if _, err := coll.InsertMany(ctx, batch); err != nil {
			cancel()
			for range batches { // let the maker end
			}
			return added, err
		}
		added += int64(len(batch))
	}
	return added, <-made
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"golang.org/x/crypto/bcrypt"
)

// scenario is one row of the table: what it seeds, what it measures, what
// that is compared with, and the goal it is held to.
type scenario struct {
	name string
	// setup seeds what run needs; nil when nothing. errSkip leaves the
	// scenario out of this run (setup notes why).
	setup func(*bench, context.Context) error
	// run is the scenario's load.
	run func(*bench) work
	// baseline is what the scenario is compared with, then informational
	// baselines measured alone; nil or empty when there is none this run.
	baseline func(*bench, context.Context) []work
	// inTurns measures the load and its baseline in turns (see alternate).
	inTurns bool
	// oneByOne: run's work is one operation (work.op), timed one at a
	// time, in turns with the oneByOne scenarios beside it in the table.
	oneByOne bool
	// target is the goal the run is held to; nil for none.
	target func(*bench) []Target
}

// scenarios is every scenario, in the order they run.
var scenarios = []scenario{
	{
		name:     "health",
		setup:    (*bench).startFloor,
		run:      func(b *bench) work { return b.httpWork("health", get(b.base+"/health"), nil) },
		baseline: (*bench).floorWork,
		inTurns:  true,
		target:   ratioTarget("health ≥ 0.9 × net/http floor", "health", 0.9),
	},
	{
		name:     "login",
		setup:    (*bench).seedLoginAdmins,
		run:      (*bench).loginWork,
		baseline: (*bench).bcryptCompare,
		target:   ratioTarget("login ≥ 0.95 × bcrypt compare", "login", 0.95),
	},
	{
		name:  "login-one",
		setup: (*bench).seedLoginAdmins,
		run:   func(b *bench) work { return b.oneAccountLogins("login-one", b.loginAdmins[0]) },
	},
	{
		name:   "login-many",
		setup:  (*bench).seedTeam,
		run:    (*bench).loginManyWork,
		target: teamTargets,
	},
	{
		name:  "switch",
		setup: (*bench).seedTeam,
		run:   (*bench).switchWork,
	},
	{
		name:     "org-get",
		setup:    seedBench(noDocs),
		run:      func(b *bench) work { return b.httpWork("org-get", get(b.base+orgGetPath("bench")), nil) },
		baseline: func(b *bench, ctx context.Context) []work { return b.driverOrgGet(ctx, "driver org-get", 0) },
	},
	{
		name:     "doc-read",
		setup:    seedBench(listDocs),
		run:      func(b *bench) work { return b.httpWork("doc-read", b.docReadTargets(), nil) },
		baseline: (*bench).driverDocRead,
		inTurns:  true,
		target:   ratioTarget("doc-read ≥ 0.7 × direct driver", "doc-read", 0.7),
	},
	{
		name:  "doc-read-c64",
		setup: seedBench(listDocs),
		run: func(b *bench) work {
			w := b.httpWork("doc-read-c64", b.docReadTargets(), nil)
			w.concurrency = 64
			return w
		},
		target: rssTarget,
	},
	{
		name:  "doc-list",
		setup: seedBench(listDocs),
		run: func(b *bench) work {
			t := vegeta.Target{Method: http.MethodGet, URL: b.base + "/org/documents?limit=50", Header: jsonHeader(b.benchOrg.Token)}
			return b.httpWork("doc-list", roundRobin([]vegeta.Target{t}), nil)
		},
		baseline: (*bench).driverDocList,
	},
	{
		name:  "doc-create",
		setup: seedBench(noDocs),
		run: func(b *bench) work {
			t := vegeta.Target{Method: http.MethodPost, URL: b.base + "/org/documents", Body: mustJSON(sampleDocument(7)), Header: jsonHeader(b.benchOrg.Token)}
			return b.httpWork("doc-create", roundRobin([]vegeta.Target{t}), nil)
		},
		baseline: (*bench).driverDocCreate,
		inTurns:  true,
		target:   ratioTarget("doc-create ≥ 0.7 × direct driver", "doc-create", 0.7),
	},
	{
		name: "org-create",
		run: func(b *bench) work {
			var issued atomic.Int64
			return b.httpWork("org-create", signUps(b.base, "bench-new-"+b.runID, &issued), nil)
		},
		baseline: (*bench).bcryptHash,
	},
	// The two rename scenarios run in turns: taken one after the other,
	// their medians met different moments of a shared machine (and the
	// second one the store still busy with the inserts).
	{
		name:     "rename-empty",
		setup:    renameSetup("rename-empty", noDocs),
		run:      func(b *bench) work { return b.renameWork("rename-empty") },
		baseline: func(b *bench, ctx context.Context) []work { return b.driverRename(ctx, "rename-empty") },
		oneByOne: true,
	},
	{
		name:     "rename-100k",
		setup:    renameSetup("rename-100k", renameDocs),
		run:      func(b *bench) work { return b.renameWork("rename-100k") },
		baseline: func(b *bench, ctx context.Context) []work { return b.driverRename(ctx, "rename-100k") },
		oneByOne: true,
		target:   renameTarget,
	},
	// The audit log: what an event costs the operations that record one
	// (against a service without the log, in turns), a page of a log with
	// many logs present (against a service with few, in turns), and a
	// chain verified whole.
	{
		name:   "audit-write",
		setup:  (*bench).setupAuditWrite,
		run:    func(b *bench) work { return work{series: b.auditWrite} },
		target: auditWriteTargets,
	},
	{
		name:   "audit-list",
		setup:  (*bench).setupAuditList,
		run:    func(b *bench) work { return work{series: b.auditList} },
		target: auditListTarget,
	},
	{
		name:   "audit-verify",
		setup:  (*bench).setupAuditVerify,
		run:    func(b *bench) work { return work{series: b.auditVerify} },
		target: auditVerifyTarget,
	},
	// Tenant data: an organization's export and import, whole, each in
	// turns with the driver doing the same reads or writes, on a service
	// of their own; and an organization flooding past its rate beside one
	// reading at a steady rate, on a service with the rate limit on.
	{
		name:   exportName,
		setup:  (*bench).setupTenantExport,
		run:    func(b *bench) work { return work{series: b.tenantExport} },
		target: tenantTargets(exportName, fmt.Sprintf("tenant-export ≥ %.1f × driver cursor (documents/s)", exportMin), exportMin),
	},
	{
		name:   importName,
		setup:  (*bench).setupTenantImport,
		run:    func(b *bench) work { return work{series: b.tenantImport} },
		target: tenantTargets(importName, fmt.Sprintf("tenant-import ≥ %.1f × driver InsertMany (documents/s)", importMin), importMin),
	},
	{
		name:   "noisy-neighbour",
		setup:  (*bench).setupNoisy,
		run:    func(b *bench) work { return work{series: b.noisyNeighbour} },
		target: noisyTargets,
	},
	{
		name:   "org-count",
		setup:  (*bench).startSeries,
		run:    func(b *bench) work { return work{series: b.orgCountSeries} },
		target: seriesTargets,
	},
}

// scenarioNames lists every scenario in the order they run.
func scenarioNames() []string {
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.name
	}
	return names
}

// errSkip is a setup's answer for a scenario this run cannot measure.
var errSkip = errors.New("skipped")

// runScenarios seeds and measures the selected scenarios in table order.
func (b *bench) runScenarios(ctx context.Context) error {
	// The oneByOne scenarios set up and not yet run, and their work: run
	// before the next scenario's setup (which may stop the service).
	var oneByOne []scenario
	var ops []work
	flush := func() error {
		if len(oneByOne) == 0 {
			return nil
		}
		b.measureOneByOne(ctx, oneByOne, ops)
		oneByOne, ops = nil, nil
		return b.checkAlive()
	}
	for _, s := range scenarios {
		if !b.opts.wants(s.name) {
			continue
		}
		if !s.oneByOne {
			if err := flush(); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.setup != nil {
			err := s.setup(b, ctx)
			if errors.Is(err, errSkip) {
				continue
			}
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
		}
		w := s.run(b)
		switch {
		case s.oneByOne:
			oneByOne, ops = append(oneByOne, s), append(ops, w)
			continue
		case w.series != nil:
			if err := w.series(ctx); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
		default:
			b.measureScenario(ctx, s, w)
		}
		b.endScenario()
		if err := b.checkAlive(); err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return ctx.Err()
}

// measureScenario measures w, the load of s, and its baselines.
func (b *bench) measureScenario(ctx context.Context, s scenario, w work) {
	var base []work
	if s.baseline != nil {
		base = s.baseline(b, ctx)
	}
	if len(base) == 0 {
		b.measure(ctx, w)
		return
	}
	if s.inTurns {
		r := b.alternate(ctx, [2]work{w, base[0]})
		r[1].Note = base[0].note + "; in turns with " + w.name
		compare(r[0], r[1])
	} else {
		compare(b.measure(ctx, w), b.measure(ctx, base[0]))
	}
	for _, info := range base[1:] {
		b.measure(ctx, info)
	}
}

// measureOneByOne times the operations ws of the scenarios ss in turns:
// the first of each, then the second of each, and so on; then their
// baselines.
func (b *bench) measureOneByOne(ctx context.Context, ss []scenario, ws []work) {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = s.name
	}
	b.logf("%s: one operation at a time, in turns", strings.Join(names, " and "))
	rs := b.timeInTurns(ctx, ws)
	for i, s := range ss {
		if s.baseline == nil {
			continue
		}
		if base := s.baseline(b, ctx); len(base) > 0 {
			compare(rs[i], b.measure(ctx, base[0]))
		}
	}
}

// endScenario runs what the scenario's setup left to undo.
func (b *bench) endScenario() {
	for _, f := range b.undo {
		f()
	}
	b.undo = nil
}

// get is a targeter of GET url.
func get(url string) vegeta.Targeter {
	return roundRobin([]vegeta.Target{{Method: http.MethodGet, URL: url}})
}

// roundRobin cycles through targets.
func roundRobin(targets []vegeta.Target) vegeta.Targeter {
	var n atomic.Uint64
	return func(t *vegeta.Target) error {
		*t = targets[(n.Add(1)-1)%uint64(len(targets))]
		return nil
	}
}

func jsonHeader(token string) http.Header {
	h := http.Header{"Content-Type": {"application/json"}}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return h
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Document counts of the scenarios' organizations.
func noDocs(sizes) int       { return 0 }
func listDocs(s sizes) int   { return s.listDocs }
func renameDocs(s sizes) int { return s.renameDocs }

// seedBench seeds the organization "bench" with the documents size says.
func seedBench(size func(sizes) int) func(*bench, context.Context) error {
	return func(b *bench, ctx context.Context) error { return b.seedBenchOrg(ctx, size(b.sz)) }
}

// startFloor starts the floor server for the health scenario, until the
// scenario ends.
func (b *bench) startFloor(ctx context.Context) error {
	addr, p, err := startFloor(ctx)
	if err != nil {
		return err
	}
	b.floor = floor{addr: addr, pid: p.PID()}
	b.undo = append(b.undo, func() { p.Stop(5 * time.Second) })
	return nil
}

// floorWork loads the floor server as health loads the service.
func (b *bench) floorWork(context.Context) []work {
	w := b.httpWork("net/http floor", get("http://"+b.floor.addr+"/health"), nil)
	w.kind, w.pid, w.base = "baseline", b.floor.pid, ""
	w.note = "constant JSON from a bare net/http server in a process of its own"
	return []work{w}
}

// loginWork: POST /admin/login with valid credentials, cycling through
// many admins.
func (b *bench) loginWork() work {
	targets := make([]vegeta.Target, len(b.loginAdmins))
	for i, a := range b.loginAdmins {
		targets[i] = vegeta.Target{Method: http.MethodPost, URL: b.base + "/admin/login", Body: mustJSON(a.loginBody()), Header: jsonHeader("")}
	}
	return b.httpWork("login", roundRobin(targets), nil)
}

// loginManyWork: POST /admin/login of the account in sz.teamOrgs
// organizations (its answer lists them all).
func (b *bench) loginManyWork() work { return b.oneAccountLogins("login-many", b.team) }

// oneAccountClients is how many clients log one account in at once: the
// per-e-mail login limit (LOGIN_RATE_PER_EMAIL, 10 a minute) reserves a
// slot for every login under way, and gives it back when it succeeds.
const oneAccountClients = 8

// oneAccountLogins: POST /admin/login of one account, from
// oneAccountClients clients.
func (b *bench) oneAccountLogins(name string, a *account) work {
	t := vegeta.Target{Method: http.MethodPost, URL: b.base + "/admin/login", Body: mustJSON(a.loginBody()), Header: jsonHeader("")}
	w := b.httpWork(name, roundRobin([]vegeta.Target{t}), nil)
	w.concurrency = oneAccountClients
	return w
}

// switchWork: POST /admin/switch of that account, to each of its
// organizations in turn.
func (b *bench) switchWork() work {
	targets := make([]vegeta.Target, len(b.teamOrgs))
	for i, name := range b.teamOrgs {
		targets[i] = vegeta.Target{Method: http.MethodPost, URL: b.base + "/admin/switch", Body: mustJSON(map[string]string{"organization_name": name}), Header: jsonHeader(b.team.Token)}
	}
	return b.httpWork("switch", roundRobin(targets), nil)
}

// bcryptCompare checks a password against a hash of the service's cost on
// as many goroutines as cores: the most logins per second the machine
// allows.
func (b *bench) bcryptCompare(context.Context) []work {
	hash, err := bcrypt.GenerateFromPassword([]byte("bench-password-1"), b.cost)
	if err != nil {
		panic(err) // the cost was checked
	}
	w := b.driverWork(fmt.Sprintf("bcrypt compare (cost %d)", b.cost), "bcrypt.CompareHashAndPassword on runtime.NumCPU() goroutines", func(context.Context) error {
		return bcrypt.CompareHashAndPassword(hash, []byte("bench-password-1"))
	})
	w.concurrency = runtime.NumCPU()
	return []work{w}
}

// bcryptHash hashes passwords at the service's cost on as many goroutines
// as cores: the most sign-ups per second the machine allows.
func (b *bench) bcryptHash(context.Context) []work {
	w := b.driverWork(fmt.Sprintf("bcrypt hash (cost %d)", b.cost), "bcrypt.GenerateFromPassword on runtime.NumCPU() goroutines", func(context.Context) error {
		_, err := bcrypt.GenerateFromPassword([]byte("bench-password-1"), b.cost)
		return err
	})
	w.concurrency = runtime.NumCPU()
	return []work{w}
}

// docReadTargets reads the seeded documents of bench in turn.
func (b *bench) docReadTargets() vegeta.Targeter { return b.docReads(b.benchOrg, b.benchDocIDs) }

// signUps is a targeter of sign-ups with unique names prefix-00000,
// prefix-00001, ...; issued counts the requests made.
func signUps(base, prefix string, issued *atomic.Int64) vegeta.Targeter {
	h := jsonHeader("")
	return func(t *vegeta.Target) error {
		i := issued.Add(1) - 1
		a := newAccount(fmt.Sprintf("%s-%05d", prefix, i))
		*t = vegeta.Target{Method: http.MethodPost, URL: base + "/org/create", Body: mustJSON(a.signUpBody()), Header: h}
		return nil
	}
}

// renamed is the organization a rename scenario renames back and forth
// between two names, each rename answering with the token to use next.
type renamed struct {
	a     *account
	docs  int
	names [2]string
}

// other is the name the organization is not named now.
func (r *renamed) other() string {
	if r.a.Name == r.names[0] {
		return r.names[1]
	}
	return r.names[0]
}

// renameSetup signs up the organization of the rename scenario name and
// stores docs documents in it through the tenant repository.
func renameSetup(name string, docs func(sizes) int) func(*bench, context.Context) error {
	return func(b *bench, ctx context.Context) error {
		n := docs(b.sz)
		if n > 0 && b.db == nil {
			b.note("%s skipped: seeding %d documents needs the database address (-mongo)", name, n)
			return errSkip
		}
		a := newAccount(fmt.Sprintf("bench-%s-%s", name, b.runID))
		if err := b.api.ensure(ctx, a); err != nil {
			return fmt.Errorf("sign up %s: %w", a.Name, err)
		}
		if n > 0 {
			if err := b.seedDocuments(ctx, a.Name, n); err != nil {
				return err
			}
		}
		b.renamed[name] = &renamed{a: a, docs: n, names: [2]string{a.Name, a.Name + "-b"}}
		return nil
	}
}

// renameWork renames the scenario's organization (PUT /org/update) back
// and forth, one rename at a time; the count is even, so it ends on the
// name it began with.
func (b *bench) renameWork(name string) work {
	r := b.renamed[name]
	return work{
		name: name, kind: "scenario", pid: b.pid, base: b.base, times: b.sz.renames,
		note: fmt.Sprintf("%d documents; one rename at a time, in turns with the other rename scenario; req/s is 1/median", r.docs),
		op:   func(ctx context.Context, i int) error { return b.api.rename(ctx, r.a, r.names[(i+1)%2]) },
	}
}

// ratioTarget holds the scenario name to at least min times its
// baseline's throughput.
func ratioTarget(goal, name string, min float64) func(*bench) []Target {
	return func(b *bench) []Target {
		r := b.find(name)
		t := Target{Goal: goal, Met: "n/a", Measured: "not measured"}
		if r != nil && r.Baseline != "" {
			t.Measured = fmt.Sprintf("%.2f (%.1f vs %.1f req/s of %s)", r.Ratio, r.RPS, b.find(r.Baseline).RPS, r.Baseline)
			t.Met = yesNo(r.Ratio >= min)
		}
		return []Target{t}
	}
}

// teamTargets: a login of an account in many organizations against one
// in one (the login scenario), and a switch against a login.
func teamTargets(b *bench) []Target {
	many := Target{Goal: fmt.Sprintf("login-many (%d organizations) p50 ≤ 1.2 × login-one p50", b.sz.teamOrgs), Met: "n/a", Measured: "not measured"}
	if m, one := b.find("login-many"), b.find("login-one"); m != nil && one != nil && one.P50 > 0 {
		many.Measured = fmt.Sprintf("%.2f× (%s vs %s)", m.P50/one.P50, fmtMs(m.P50), fmtMs(one.P50))
		many.Met = yesNo(m.P50 <= 1.2*one.P50)
	}
	sw := Target{Goal: "switch p50 ≤ 1/20 × login-many p50", Met: "n/a", Measured: "not measured"}
	if s, m := b.find("switch"), b.find("login-many"); s != nil && m != nil && m.P50 > 0 && s.P50 > 0 {
		sw.Measured = fmt.Sprintf("1/%.0f (%s vs %s)", m.P50/s.P50, fmtMs(s.P50), fmtMs(m.P50))
		sw.Met = yesNo(s.P50*20 <= m.P50)
	}
	return []Target{many, sw}
}

// rssTarget bounds the service's memory at 64 clients.
func rssTarget(b *bench) []Target {
	t := Target{Goal: "service RSS < 200 MiB at 64 clients", Met: "n/a", Measured: "not measured"}
	if r := b.find("doc-read-c64"); r != nil && r.PeakMB > 0 {
		t.Measured = fmt.Sprintf("%.0f MiB peak during doc-read at 64 clients", r.PeakMB)
		t.Met = yesNo(r.PeakMB < 200)
	}
	return []Target{t}
}

// renameTarget: a rename does not grow with the documents.
func renameTarget(b *bench) []Target {
	t := Target{Goal: "rename-100k median ≤ 2 × rename-empty median", Met: "n/a", Measured: "not measured"}
	if e, f := b.find("rename-empty"), b.find("rename-100k"); e != nil && f != nil && e.P50 > 0 && f.P50 > 0 {
		x := f.P50 / e.P50
		t.Measured = fmt.Sprintf("%.2f× (%s vs %s)", x, fmtMs(f.P50), fmtMs(e.P50))
		t.Met = yesNo(x <= 2)
	}
	return []Target{t}
}

// seriesTargets: org-get and org-create at the most organizations against
// the fewest.
func seriesTargets(b *bench) []Target {
	var out []Target
	levels := b.sz.orgLevels
	lo, hi := levels[0], levels[len(levels)-1]
	for _, s := range []string{"org-get", "org-create"} {
		t := Target{Goal: fmt.Sprintf("%s p50 with %s organizations ≤ 1.5 × with %d", s, group(hi), lo), Met: "n/a", Measured: "not measured"}
		a, z := b.find(fmt.Sprintf("%s@%d", s, lo)), b.find(fmt.Sprintf("%s@%d", s, hi))
		how := "measured one after the other"
		if z != nil && z.Reference != "" {
			if ref := b.find(z.Reference); ref != nil {
				a, how = ref, "in turns with a service holding "+group(ref.Organizations)
			}
		}
		if a != nil && z != nil && a.P50 > 0 {
			x := z.P50 / a.P50
			t.Measured = fmt.Sprintf("%.2f× (%s vs %s, %s)", x, fmtMs(z.P50), fmtMs(a.P50), how)
			t.Met = yesNo(x <= 1.5)
		}
		out = append(out, t)
	}
	return out
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

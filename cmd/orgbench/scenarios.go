package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// mainScenarios seeds what the selected scenarios need and runs them, each
// with its baseline, on the main service.
func (b *bench) mainScenarios(ctx context.Context) error {
	o := b.opts
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"health", b.health},
		{"login", b.login},
		{"org-get", b.orgGet},
		{"doc-read", b.docRead},
		{"doc-read-c64", b.docReadC64},
		{"doc-list", b.docList},
		{"doc-create", b.docCreate},
		{"org-create", b.orgCreate},
		{"rename-empty,rename-100k", b.renames},
	}
	for _, s := range steps {
		if !slices.ContainsFunc(strings.Split(s.name, ","), o.wants) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.run(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		if err := b.checkAlive(); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// attack measures one HTTP scenario on the service.
func (b *bench) attack(ctx context.Context, name string, tr vegeta.Targeter, concurrency int, pacer vegeta.Pacer) *Result {
	b.logf("%s: %d clients for %s against %s", name, concurrency, b.opts.duration, b.base)
	cmds := newCmdMeter(b.base)
	cmds.begin()
	r := collect(ctx, b.log, name, "scenario", concurrency, b.opts.duration, attackHTTP(name, tr, concurrency, b.opts.duration, pacer), b.pid)
	cmds.end()
	cmds.fill(r)
	b.add(r)
	return r
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

// health: GET /health, in turns with a bare net/http server answering the
// same JSON (see alternate).
func (b *bench) health(ctx context.Context) error {
	addr, pid, stop, err := startFloor(ctx)
	if err != nil {
		return err
	}
	defer stop()
	r := b.alternate(ctx, [2]turn{
		b.httpTurn("health", "scenario", b.pid, b.base, roundRobin([]vegeta.Target{{Method: http.MethodGet, URL: b.base + "/health"}})),
		b.httpTurn("net/http floor", "baseline", pid, "", roundRobin([]vegeta.Target{{Method: http.MethodGet, URL: "http://" + addr + "/health"}})),
	})
	r[1].Note = "constant JSON from a bare net/http server in a process of its own; in turns with health"
	compare(r[0], r[1])
	return nil
}

// login: POST /admin/login with valid credentials, cycling through many
// admins, next to bcrypt comparisons on every core.
func (b *bench) login(ctx context.Context) error {
	if err := b.seedLoginAdmins(ctx); err != nil {
		return err
	}
	if b.opts.target != "" {
		b.cost = b.serviceCost(ctx, b.opts.bcryptCost)
		b.report.BcryptCost = b.cost
	}
	base := b.bcryptCompare(ctx, b.cost)
	targets := make([]vegeta.Target, len(b.loginAdmins))
	for i, a := range b.loginAdmins {
		targets[i] = vegeta.Target{Method: http.MethodPost, URL: b.base + "/admin/login", Body: mustJSON(a.loginBody()), Header: jsonHeader("")}
	}
	r := b.attack(ctx, "login", roundRobin(targets), b.opts.concurrency, nil)
	compare(r, base)
	return nil
}

// orgGet: GET /org/get?organization_name=bench.
func (b *bench) orgGet(ctx context.Context) error {
	if err := b.seedBenchOrg(ctx, 0); err != nil {
		return err
	}
	r := b.attack(ctx, "org-get", roundRobin([]vegeta.Target{{Method: http.MethodGet, URL: b.base + orgGetPath("bench")}}), b.opts.concurrency, nil)
	if b.db != nil {
		compare(r, b.driverOrgGet(ctx, "driver org-get", "bench"))
	}
	return nil
}

// docReadTargets reads the seeded documents of bench in turn.
func (b *bench) docReadTargets() vegeta.Targeter {
	h := jsonHeader(b.benchOrg.Token)
	targets := make([]vegeta.Target, len(b.benchDocIDs))
	for i, id := range b.benchDocIDs {
		targets[i] = vegeta.Target{Method: http.MethodGet, URL: b.base + "/org/documents/" + id, Header: h}
	}
	return roundRobin(targets)
}

// docRead: GET /org/documents/{id} over the seeded documents.
func (b *bench) docRead(ctx context.Context) error {
	if err := b.seedBenchOrg(ctx, b.sz.listDocs); err != nil {
		return err
	}
	b.withDriver(ctx, "doc-read", b.docReadTargets(), b.driverDocRead, true)
	return nil
}

// docReadC64: doc-read at 64 clients, for the service's peak RSS.
func (b *bench) docReadC64(ctx context.Context) error {
	if err := b.seedBenchOrg(ctx, b.sz.listDocs); err != nil {
		return err
	}
	b.attack(ctx, "doc-read-c64", b.docReadTargets(), 64, nil)
	return nil
}

// docList: GET /org/documents?limit=50, the first page of bench.
func (b *bench) docList(ctx context.Context) error {
	if err := b.seedBenchOrg(ctx, b.sz.listDocs); err != nil {
		return err
	}
	t := vegeta.Target{Method: http.MethodGet, URL: b.base + "/org/documents?limit=50", Header: jsonHeader(b.benchOrg.Token)}
	r := b.attack(ctx, "doc-list", roundRobin([]vegeta.Target{t}), b.opts.concurrency, nil)
	if b.db != nil {
		compare(r, b.driverDocList(ctx))
	}
	return nil
}

// docCreate: POST /org/documents with a small document.
func (b *bench) docCreate(ctx context.Context) error {
	if err := b.seedBenchOrg(ctx, 0); err != nil {
		return err
	}
	t := vegeta.Target{Method: http.MethodPost, URL: b.base + "/org/documents", Body: mustJSON(sampleDocument(7)), Header: jsonHeader(b.benchOrg.Token)}
	b.withDriver(ctx, "doc-create", roundRobin([]vegeta.Target{t}), b.driverDocCreate, true)
	return nil
}

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

// orgCreate: POST /org/create with unique names, next to bcrypt hashing on
// every core.
func (b *bench) orgCreate(ctx context.Context) error {
	base := b.bcryptHash(ctx, b.cost)
	var issued atomic.Int64
	r := b.attack(ctx, "org-create", signUps(b.base, "bench-new-"+b.runID, &issued), b.opts.concurrency, nil)
	compare(r, base)
	return nil
}

// renames times renames of an empty organization (rename-empty) and of
// one holding renameDocs documents (rename-100k), one at a time and
// alternately, back and forth between two names each; each rename answers
// with the token to use next. Taken one after the other, the two medians
// met different moments of a shared machine (and the second one the store
// still busy with the 100,000 inserts): in turns, they meet the same. The
// baselines are renameCollection sent directly, on the same collections,
// between the same names.
func (b *bench) renames(ctx context.Context) error {
	type side struct {
		name  string
		docs  int
		a     *account
		names [2]string
		lat   []time.Duration
		errs  []string
		cmds  *cmdMeter
	}
	var sides []*side
	for _, s := range []struct {
		name string
		docs int
	}{{"rename-empty", 0}, {"rename-100k", b.sz.renameDocs}} {
		if !b.opts.wants(s.name) {
			continue
		}
		a := newAccount(fmt.Sprintf("bench-%s-%s", s.name, b.runID))
		if err := b.api.ensure(ctx, a); err != nil {
			return fmt.Errorf("sign up %s: %w", a.Name, err)
		}
		if s.docs > 0 {
			if b.db == nil {
				b.note("%s skipped: seeding %d documents needs the database address (-mongo)", s.name, s.docs)
				continue
			}
			b.logf("%s: inserting %d documents into %s with InsertMany", s.name, s.docs, repository.CollectionName(model.Slug(a.Name)))
			if err := b.seedDirect(ctx, a, s.docs); err != nil {
				return err
			}
		}
		sides = append(sides, &side{name: s.name, docs: s.docs, a: a, names: [2]string{a.Name, a.Name + "-b"}, cmds: newCmdMeter(b.base)})
	}
	if len(sides) == 0 {
		return nil
	}
	var what []string
	for _, s := range sides {
		what = append(what, fmt.Sprintf("%s (%d documents)", s.a.Name, s.docs))
	}
	b.logf("renames: %d renames (PUT /org/update) each of %s, one at a time, in turns", b.sz.renames, strings.Join(what, " and "))
	rss := watchRSS(b.pid)
	began := time.Now()
	for i := range b.sz.renames {
		for _, s := range sides {
			if ctx.Err() != nil {
				break
			}
			s.cmds.begin()
			start := time.Now()
			err := b.api.rename(ctx, s.a, s.names[(i+1)%2])
			took := time.Since(start)
			s.cmds.end()
			if err != nil {
				s.errs = append(s.errs, err.Error())
				continue
			}
			s.lat = append(s.lat, took)
		}
	}
	seconds, peak := time.Since(began).Seconds(), rss.Peak()
	for _, s := range sides {
		r := timed(s.name, "scenario", s.lat, s.errs, seconds, peak, nil)
		s.cmds.fill(r)
		r.Note = fmt.Sprintf("%d documents; one rename at a time, in turns with the other rename scenario; req/s is 1/median", s.docs)
		b.add(r)
		if b.db != nil {
			compare(r, b.driverRename(ctx, "driver "+s.name, s.names))
		}
	}
	return nil
}

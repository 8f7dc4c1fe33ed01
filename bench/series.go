package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/sync/errgroup"

	"github.com/orgsvc/orgsvc/internal/model"
)

// reference is a second series service that stays at the series' fewest
// organizations while the series service grows. Every level above the
// first is measured in turns with it (see alternate): each level is
// reached minutes after the one before, and on a shared machine load from
// elsewhere moves a sign-up's latency more in that time than the number
// of organizations does. In turns, both services see the same machine.
type reference struct {
	svc           *service
	api           *apiClient
	organizations int
}

// startSeries starts the services of the org-count series: with a
// service of its own, it stops the main one and starts the series service
// and the reference at BCRYPT_COST=seriesCost.
func (b *bench) startSeries(ctx context.Context) error {
	if b.svc == nil {
		b.report.SeriesBcryptCost = b.cost
		return nil
	}
	b.logf("stopping the main service; starting two with BCRYPT_COST=%d for the org-count series: one grows, one stays small", seriesCost)
	b.svc.Stop()
	b.disconnect()
	if _, err := b.start(ctx, "series", seriesCost); err != nil {
		return err
	}
	if err := b.startReference(ctx); err != nil {
		return err
	}
	b.report.SeriesBcryptCost = seriesCost
	return nil
}

// startReference starts the reference service and signs it up to the
// series' first level: the organization "bench" and fillers.
func (b *bench) startReference(ctx context.Context) error {
	lo := b.sz.orgLevels[0]
	svc, err := b.startService(ctx, "reference", seriesCost)
	if err != nil {
		return err
	}
	b.logf("the reference service is kept at %d organizations", lo)
	ref := &reference{svc: svc, api: newAPIClient(svc.URL), organizations: lo}
	if err := ref.api.ensure(ctx, newAccount("bench")); err != nil {
		return fmt.Errorf("seed the reference service: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := range lo - 1 {
		g.Go(func() error {
			return ref.api.signUp(gctx, newAccount(fmt.Sprintf("bench-fill-%s-%05d", b.runID, i)))
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("seed the reference service: %w", err)
	}
	b.ref = ref
	return nil
}

// orgCountSeries measures org-get and org-create with 10, 100, 1,000 and
// 5,000 organizations present (fewer with -short); with a reference
// service, each level above the first in turns with the reference. Each
// level's sign-ups are deleted again before the next level is seeded.
func (b *bench) orgCountSeries(ctx context.Context) error {
	ref := b.ref
	b.benchOrg, b.benchDocIDs = nil, nil
	if err := b.seedBenchOrg(ctx, 0); err != nil {
		return err
	}
	present := 1
	if n, err := b.countOrganizations(ctx); err == nil {
		present = n
	}
	filler := 0
	for _, level := range b.sz.orgLevels {
		if level < present {
			b.note("org-count: level %d skipped, %d organizations are already present", level, present)
			continue
		}
		if add := level - present; add > 0 {
			b.logf("org-count: signing up %d organizations to reach %d (bcrypt cost %d)", add, level, b.cost)
			began := time.Now()
			g, gctx := errgroup.WithContext(ctx)
			g.SetLimit(b.signUpWorkers())
			for i := range add {
				g.Go(func() error {
					return b.api.signUp(gctx, newAccount(fmt.Sprintf("bench-fill-%s-%05d", b.runID, filler+i)))
				})
			}
			if err := g.Wait(); err != nil {
				return fmt.Errorf("seed organizations: %w", err)
			}
			filler += add
			present = level
			b.logf("org-count: %d sign-ups in %s", add, time.Since(began).Round(time.Millisecond))
		}

		beside := ref
		if ref != nil && level <= ref.organizations {
			beside = nil // the reference would measure the same thing
		}
		b.seriesGet(ctx, level, beside)
		present = b.seriesCreate(ctx, level, beside)
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := b.checkAlive(); err != nil {
			return err
		}
		if ref != nil {
			if err := ref.svc.alive(); err != nil {
				return err
			}
		}
	}
	return nil
}

// name names the reference's result of scenario measured beside level.
func (ref *reference) name(scenario string, level int) string {
	return fmt.Sprintf("%s@%d beside @%d", scenario, ref.organizations, level)
}

// seriesGet measures GET /org/get of "bench" with level organizations
// present, in turns with the reference when there is one, and the same
// lookups sent through the driver.
func (b *bench) seriesGet(ctx context.Context, level int, ref *reference) {
	name := fmt.Sprintf("org-get@%d", level)
	targets := func(base string) vegeta.Targeter {
		return roundRobin([]vegeta.Target{{Method: http.MethodGet, URL: base + orgGetPath("bench")}})
	}
	w := b.httpWork(name, targets(b.base), nil)
	w.organizations = level
	var r *Result
	if ref == nil {
		r = b.measure(ctx, w)
	} else {
		other := b.httpWork(ref.name("org-get", level), targets(ref.svc.URL), nil)
		other.server, other.pid, other.base, other.organizations = ref.svc.Name, ref.svc.PID(), ref.svc.URL, ref.organizations
		res := b.alternate(ctx, [2]work{w, other})
		r = res[0]
		pairReference(r, res[1])
	}
	if base := b.driverOrgGet(ctx, fmt.Sprintf("driver org-get@%d", level), level); len(base) > 0 {
		compare(r, b.measure(ctx, base[0]))
	}
}

// seriesCreate measures sign-ups starting from level organizations, in
// turns with the reference when there is one, and deletes them again
// (after each turn in turns, so that neither side drifts from its level).
// It returns how many organizations the series service holds afterwards.
func (b *bench) seriesCreate(ctx context.Context, level int, ref *reference) int {
	name := fmt.Sprintf("org-create@%d", level)
	prefix := fmt.Sprintf("bench-series-%s-%d", b.runID, level)
	var r *Result
	var removed deletions
	if ref == nil {
		var issued atomic.Int64
		w := b.httpWork(name, signUps(b.base, prefix, &issued), maxHits(b.sz.seriesCreates))
		w.note = fmt.Sprintf("at most %d sign-ups, starting from %d organizations; deleted afterwards", b.sz.seriesCreates, level)
		r = b.measure(ctx, w)
		b.deleteSignUps(ctx, b.api, prefix, 0, int(issued.Load()), &removed)
		b.addDeletions(fmt.Sprintf("org-delete@%d", level), b.server, level, &removed)
	} else {
		perTurn := max(1, b.sz.seriesCreates/alternateRounds)
		side := func(name, server, base, prefix string, pid int, api *apiClient, removed *deletions) work {
			var issued atomic.Int64
			from := 0
			return work{name: name, kind: "scenario", server: server, pid: pid, base: base, size: fmt.Sprintf("%d sign-ups", perTurn),
				start: func(c int, _ time.Duration) load {
					return attackHTTP(name, signUps(base, prefix, &issued), c, 0, maxHits(perTurn))
				},
				after: func() {
					to := int(issued.Load())
					b.deleteSignUps(ctx, api, prefix, from, to, removed)
					from = to
				}}
		}
		refName := ref.name("org-create", level)
		var refRemoved deletions
		res := b.alternate(ctx, [2]work{
			side(name, b.server, b.base, prefix, b.pid, b.api, &removed),
			side(refName, ref.svc.Name, ref.svc.URL, prefix+"-ref", ref.svc.PID(), ref.api, &refRemoved),
		})
		r = res[0]
		note := func(from int, other string) string {
			return fmt.Sprintf("%d turns of at most %d sign-ups, each starting from %d organizations (a turn's sign-ups are deleted before the next); in turns with %s",
				alternateRounds, perTurn, from, other)
		}
		r.Note, res[1].Note = note(level, res[1].Name), note(ref.organizations, r.Name)
		res[1].Organizations = ref.organizations
		pairReference(r, res[1])
		if kept := int(res[1].Requests-res[1].Errors) - len(refRemoved.lat); kept > 0 {
			b.note("org-count: the reference service kept %d of the sign-ups measured beside @%d; it no longer holds exactly %d organizations",
				kept, level, ref.organizations)
		}
		del := b.addDeletions(fmt.Sprintf("org-delete@%d", level), b.server, level, &removed)
		refDel := b.addDeletions(ref.name("org-delete", level), ref.svc.Name, ref.organizations, &refRemoved)
		pairReference(del, refDel)
	}
	r.Organizations = level
	present := level + int(r.Requests-r.Errors) - len(removed.lat)
	if n, err := b.countOrganizations(ctx); err == nil {
		present = n
	}
	return present
}

// pairReference records that r was measured in turns with ref, and the
// ratio of their medians.
func pairReference(r, ref *Result) {
	if r == nil || ref == nil || r.Requests == 0 || ref.P50 == 0 {
		return
	}
	r.Reference = ref.Name
	r.ReferenceRatio = r.P50 / ref.P50
}

// deletions gathers the timings of the series' deletions of its sign-ups.
type deletions struct {
	mu   sync.Mutex
	lat  []time.Duration // of each deletion made: log in, then DELETE /org/delete
	errs []string
	busy time.Duration
	cmds *cmdMeter // of the service deleting, over the deletions' windows
}

// deleteWorkers is how many deletions deleteSignUps sends at once.
const deleteWorkers = 4

// deleteSignUps deletes the organizations prefix-<from> .. prefix-<to-1>
// through api (log in, DELETE /org/delete) and records each deletion in
// d; names that were never created are skipped. Those it could not
// delete are noted and stay.
func (b *bench) deleteSignUps(ctx context.Context, api *apiClient, prefix string, from, to int, d *deletions) {
	if d.cmds == nil {
		d.cmds = newCmdMeter(api.base)
	}
	d.cmds.begin()
	defer d.cmds.end()
	began := time.Now()
	var deleted, failed int
	var firstErr error
	var g errgroup.Group
	g.SetLimit(deleteWorkers)
	for i := from; i < to && ctx.Err() == nil; i++ {
		g.Go(func() error {
			start := time.Now()
			ok, err := api.remove(ctx, newAccount(fmt.Sprintf("%s-%05d", prefix, i)))
			took := time.Since(start)
			d.mu.Lock()
			defer d.mu.Unlock()
			switch {
			case err != nil:
				failed++
				firstErr = cmp.Or(firstErr, err)
				d.errs = append(d.errs, err.Error())
			case ok:
				deleted++
				d.lat = append(d.lat, took)
			}
			return nil
		})
	}
	_ = g.Wait()
	d.busy += time.Since(began)
	b.logf("org-count: deleted the %d organizations just signed up", deleted)
	if failed > 0 {
		b.note("org-count: %d of the sign-ups under %s could not be deleted (first error: %v); they stay", failed, prefix, firstErr)
	}
}

// addDeletions records the deletions in d as a result.
func (b *bench) addDeletions(name, server string, level int, d *deletions) *Result {
	r := timed(name, "scenario", d.lat, d.errs, d.busy.Seconds(), 0, nil)
	r.Concurrency, r.Server, r.Organizations = deleteWorkers, server, level
	d.cmds.fill(r)
	if d.busy > 0 {
		r.RPS = float64(len(d.lat)) / d.busy.Seconds()
	}
	r.Note = "the series' sign-ups deleted again: log in, then DELETE /org/delete; timed together"
	b.add(r)
	return r
}

// countOrganizations counts the organizations in the database; an error
// without one.
func (b *bench) countOrganizations(ctx context.Context) (int, error) {
	if b.db == nil {
		return 0, errors.New("no database address")
	}
	n, err := b.db.Collection(model.Organizations).CountDocuments(ctx, bson.D{})
	return int(n), err
}

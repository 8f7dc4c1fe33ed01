package service_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgsvc/orgsvc/internal/audit"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/service"
	"github.com/orgsvc/orgsvc/internal/storetest"
)

// The runner's own tests drive a test kind, "mark", over a collection of
// their own: phase one inserts a thing in two steps (a claim, then the
// thing), phase two marks it done, undo removes both. Its steps pass
// through points where a test may make the driver die (the goroutine
// ends there, as a killed process would) or stall.

const kindMark = "mark"

// markPoints are the points between the test kind's steps, and the
// runner's own, in the order they are reached.
var markPoints = []string{"prepare:after-claim", "prepare:end", "complete:start", "complete:end"}

type markKind struct {
	things *mongo.Collection
	// at, when set, is called at every point.
	at        func(point string)
	completes atomic.Int32
	undos     atomic.Int32
}

func (k *markKind) point(p string) {
	if k.at != nil {
		k.at(p)
	}
}

func (k *markKind) kind() service.Kind {
	return service.Kind{
		Prepare: func(ctx context.Context, r *service.Run) error {
			if _, err := k.things.InsertOne(ctx, bson.D{{Key: "_id", Value: "claim:" + r.Op.OrgID.Hex()}}); err != nil {
				return err
			}
			k.point("prepare:after-claim")
			if _, err := k.things.InsertOne(ctx, bson.D{{Key: "_id", Value: r.Op.OrgID.Hex()}, {Key: "done", Value: false}}); err != nil {
				return err
			}
			k.point("prepare:end")
			return nil
		},
		Complete: func(ctx context.Context, r *service.Run) error {
			k.point("complete:start")
			k.completes.Add(1)
			_, err := k.things.UpdateOne(ctx, bson.D{{Key: "_id", Value: r.Op.OrgID.Hex()}}, bson.D{{Key: "$set", Value: bson.D{{Key: "done", Value: true}}}})
			k.point("complete:end")
			return err
		},
		Undo: func(ctx context.Context, r *service.Run) error {
			k.undos.Add(1)
			for _, id := range []string{r.Op.OrgID.Hex(), "claim:" + r.Op.OrgID.Hex()} {
				if _, err := k.things.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

type runnerEnv struct {
	t    *testing.T
	db   *mongo.Database
	ops  *repository.OperationRepository
	mark *markKind
}

func newRunnerEnv(t *testing.T) *runnerEnv {
	db := storetest.Database(t)
	return &runnerEnv{t: t, db: db, ops: repository.NewOperationRepository(db, true), mark: &markKind{things: db.Collection("things")}}
}

// runner is one instance's runner of the test kind, with the given lease,
// and an audit log of its own (as another process would have).
func (e *runnerEnv) runner(lease time.Duration) *service.Runner {
	rn := service.NewRunner(e.ops, slog.New(slog.NewTextHandler(io.Discard, nil)),
		service.Lifecycle{Lease: lease}, map[string]service.Kind{kindMark: e.mark.kind()})
	rn.SetAudit(e.log())
	return rn
}

// log is an audit log over the test's store that keeps every log in the
// master database (there is no organization to locate).
func (e *runnerEnv) log() *audit.Log {
	l := audit.NewLog(repository.NewAuditRepository(e.db))
	l.SetLocator(func(context.Context, bson.ObjectID) (string, error) { return e.db.Name(), nil })
	return l
}

// markPlan is the test kind's plan: one event, recorded on commit.
func markPlan(orgID bson.ObjectID) model.OperationPlan {
	return model.OperationPlan{Events: []model.PlannedEvent{{
		Org: orgID, Key: "marked", Action: "test.marked", Actor: model.Actor{Type: model.ActorSystem, ID: "test"},
	}}}
}

// events is how many times the test kind's event is in orgID's log, which
// must verify.
func (e *runnerEnv) events(orgID bson.ObjectID) int {
	e.t.Helper()
	l := e.log()
	if _, err := l.Verify(context.Background(), orgID); err != nil {
		e.t.Fatal(err)
	}
	n := 0
	err := l.Scan(context.Background(), orgID, repository.AuditFilter{}, func(ev *model.Event) error {
		if ev.Action == "test.marked" {
			n++
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// thing reports whether the test kind's thing exists, and if it is done.
func (e *runnerEnv) thing(orgID bson.ObjectID) (exists, done bool) {
	e.t.Helper()
	var doc struct {
		Done bool `bson:"done"`
	}
	err := e.mark.things.FindOne(context.Background(), bson.D{{Key: "_id", Value: orgID.Hex()}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, false
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return true, doc.Done
}

// over expects no record of any operation, and once RecoverAll has
// removed the leftovers of finished ones, no lease or outcome either.
func (e *runnerEnv) over() {
	e.t.Helper()
	ctx := context.Background()
	if _, busy, err := e.runner(time.Minute).RecoverAll(ctx, false); err != nil || busy > 0 {
		e.t.Fatalf("RecoverAll: %d busy, %v", busy, err)
	}
	ops, err := e.ops.All(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	leases, err := e.ops.AllLeases(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	outcomes, err := e.ops.AllOutcomes(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(ops)+len(leases)+len(outcomes) > 0 {
		e.t.Fatalf("left over: records %v, leases %v, outcomes %v", ops, leases, outcomes)
	}
}

// driveDying begins an operation on rn and drives it; the driver dies at
// point (the goroutine ends there). It returns once the driver is gone.
func (e *runnerEnv) driveDying(rn *service.Runner, orgID bson.ObjectID, point string) {
	e.t.Helper()
	e.mark.at = func(p string) {
		if p == point {
			runtime.Goexit()
		}
	}
	defer func() { e.mark.at = nil }()
	done := make(chan error, 1)
	go func() {
		defer close(done)
		r, ctx, cancel, err := rn.Begin(context.Background(), kindMark, orgID, markPlan(orgID))
		if err != nil {
			done <- err
			return
		}
		defer cancel()
		_, err = rn.Drive(ctx, r)
		done <- err
	}()
	if err, ok := <-done; ok {
		e.t.Fatalf("the driver did not die at %s: %v", point, err)
	}
}

// TestRunnerCrashAtEveryPoint: a driver that dies at any point of the
// test kind leaves an operation that another instance, once the lease has
// run out, finishes if it was committed and rolls back if not, leaving no
// record behind.
func TestRunnerCrashAtEveryPoint(t *testing.T) {
	for _, point := range markPoints {
		t.Run(point, func(t *testing.T) {
			e := newRunnerEnv(t)
			lease := time.Second
			a, b := e.runner(lease), e.runner(lease)
			orgID := bson.NewObjectID()
			e.driveDying(a, orgID, point)

			if err := b.Recover(context.Background(), orgID, false); !errors.Is(err, service.ErrOrgBusy) {
				t.Fatalf("recover within the lease: %v, want ErrOrgBusy", err)
			}
			committed := point == "complete:start" || point == "complete:end"
			// The marks of an operation under way are not leftovers.
			if _, busy, err := b.RecoverAll(context.Background(), false); err != nil || busy != 1 {
				t.Fatalf("RecoverAll within the lease: %d busy, %v; want 1", busy, err)
			}
			op, err := e.ops.Get(context.Background(), orgID)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.ops.Outcome(context.Background(), op.ID); committed != (err == nil) {
				t.Fatalf("outcome of the operation under way: %v, committed %v", err, committed)
			}
			time.Sleep(lease)
			if err := b.Recover(context.Background(), orgID, false); err != nil {
				t.Fatalf("recover after the lease: %v", err)
			}
			exists, done := e.thing(orgID)
			if committed != (exists && done) || (!committed && exists) {
				t.Fatalf("after recovery: thing exists %v, done %v; committed %v", exists, done, committed)
			}
			if undos := e.mark.undos.Load(); (undos == 1) == committed {
				t.Fatalf("%d undos, committed %v", undos, committed)
			}
			// The event is the taker's to record: once if committed, else never.
			if n := e.events(orgID); (n == 1) != committed || n > 1 {
				t.Fatalf("the operation's event is in the log %d times; committed %v", n, committed)
			}
			e.over()
		})
	}
}

// TestRunnerOneTakerAmongMany: many instances meet the same abandoned,
// committed operation at once; exactly one takes it over and completes it.
func TestRunnerOneTakerAmongMany(t *testing.T) {
	e := newRunnerEnv(t)
	lease := time.Second
	orgID := bson.NewObjectID()
	e.driveDying(e.runner(lease), orgID, "complete:start")
	time.Sleep(lease)

	runners := make([]*service.Runner, 4)
	for i := range runners {
		runners[i] = e.runner(time.Minute)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() { errs <- runners[i%len(runners)].Recover(context.Background(), orgID, false) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, service.ErrOrgBusy) {
			t.Fatalf("recover: %v", err)
		}
	}
	if n := e.mark.completes.Load(); n != 1 {
		t.Fatalf("completed by %d takers, want 1", n)
	}
	if _, done := e.thing(orgID); !done {
		t.Fatal("the operation was not completed")
	}
	if n := e.events(orgID); n != 1 {
		t.Fatalf("the operation's event is in the log %d times, want 1", n)
	}
	e.over()
}

// TestRunnerRollbackWithoutOutcome: a driver that dies before any outcome
// is recorded is rolled back by the taker, which records the abort itself;
// a late commit by the old driver is then refused.
func TestRunnerRollbackWithoutOutcome(t *testing.T) {
	e := newRunnerEnv(t)
	lease := time.Second
	a := e.runner(lease)
	orgID := bson.NewObjectID()
	e.driveDying(a, orgID, "prepare:end")
	op, err := e.ops.Get(context.Background(), orgID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ops.Outcome(context.Background(), op.ID); !errors.Is(err, repository.ErrNotFound) {
		t.Fatalf("outcome before recovery: %v, want none", err)
	}
	time.Sleep(lease)
	if err := e.runner(lease).Recover(context.Background(), orgID, false); err != nil {
		t.Fatal(err)
	}
	if exists, _ := e.thing(orgID); exists || e.mark.undos.Load() != 1 {
		t.Fatalf("after the rollback: thing exists %v, %d undos", exists, e.mark.undos.Load())
	}
	e.over()
}

// TestRunnerSlowOldDriver: a driver that stalls after the commit, while
// another instance takes the operation over, finishes it, and a new
// operation begins on the same organization, then wakes and repeats its
// step and its clean-up: that is harmless. The thing stays done once, and
// the new operation's record is left alone.
func TestRunnerSlowOldDriver(t *testing.T) {
	e := newRunnerEnv(t)
	lease := time.Second // the taker's steps must fit in it under -race on a loaded machine
	a, b := e.runner(lease), e.runner(lease)
	orgID := bson.NewObjectID()

	stalled, wake := make(chan struct{}), make(chan struct{})
	var met atomic.Bool
	e.mark.at = func(p string) {
		if p == "complete:start" && met.CompareAndSwap(false, true) {
			close(stalled)
			<-wake
		}
	}
	done := make(chan error, 1)
	go func() {
		r, _, cancel, err := a.Begin(context.Background(), kindMark, orgID, markPlan(orgID))
		if err != nil {
			done <- err
			return
		}
		defer cancel()
		// Its commands still go out after the lease (as one in flight would).
		_, err = a.Drive(context.Background(), r)
		done <- err
	}()
	<-stalled
	time.Sleep(lease)
	if err := b.Recover(context.Background(), orgID, false); err != nil {
		t.Fatal(err)
	}
	next, _, cancel, err := b.Begin(context.Background(), kindMark, orgID, markPlan(orgID))
	if err != nil {
		t.Fatalf("a new operation after the takeover: %v", err)
	}
	defer cancel()

	close(wake)
	if err := <-done; err != nil {
		t.Fatalf("the old driver: %v", err)
	}
	if n := e.mark.completes.Load(); n != 2 {
		t.Fatalf("%d completions, want 2 (the taker's and the old driver's repeat)", n)
	}
	if _, isDone := e.thing(orgID); !isDone {
		t.Fatal("the thing is not done")
	}
	got, err := e.ops.Get(context.Background(), orgID)
	if err != nil || got.ID != next.Op.ID {
		t.Fatalf("the new operation's record after the old driver's clean-up: %v %v", got, err)
	}
	// The old driver recorded the event again, with a cold head: once.
	if n := e.events(orgID); n != 1 {
		t.Fatalf("the operation's event is in the log %d times, want 1", n)
	}
}

// TestRunnerPastHalfTheLease: a driver whose step is still running at half
// its lease is cut off and answers ErrInterrupted (not the store's
// deadline, which would read as an outage); recovery then rolls the
// operation back before its outcome, and forward after it.
func TestRunnerPastHalfTheLease(t *testing.T) {
	for _, c := range []struct {
		point     string
		committed bool
	}{{"prepare:after-claim", false}, {"complete:start", true}} {
		t.Run(c.point, func(t *testing.T) {
			e := newRunnerEnv(t)
			lease := time.Second
			e.mark.at = func(p string) {
				if p == c.point {
					time.Sleep(lease/2 + 100*time.Millisecond)
				}
			}
			a := e.runner(lease)
			orgID := bson.NewObjectID()
			r, ctx, cancel, err := a.Begin(context.Background(), kindMark, orgID, markPlan(orgID))
			if err != nil {
				t.Fatal(err)
			}
			committed, err := a.Drive(ctx, r)
			cancel()
			if !errors.Is(err, service.ErrInterrupted) || committed != c.committed {
				t.Fatalf("Drive: committed %v, %v; want %v, ErrInterrupted", committed, err, c.committed)
			}
			e.mark.at = nil
			time.Sleep(lease)
			if err := e.runner(lease).Recover(context.Background(), orgID, false); err != nil {
				t.Fatal(err)
			}
			if exists, done := e.thing(orgID); exists != c.committed || done != c.committed {
				t.Fatalf("after recovery: thing exists %v, done %v; want both %v", exists, done, c.committed)
			}
			e.over()
		})
	}
}

package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/audit"
	"github.com/orgsvc/orgsvc/internal/failpoint"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// Lifecycle errors.
var (
	// ErrOrgBusy: another operation is changing the organization; retry.
	ErrOrgBusy = errors.New("organization is being changed")
	// ErrInterrupted: the operation ran out of time and was, or will be,
	// finished or rolled back by another driver; retry.
	ErrInterrupted = errors.New("operation interrupted")
)

// A change of an organization (sign-up, rename, deletion, ...) touches the
// master metadata, the admins and a tenant collection, with no transaction
// to bind them. The Runner therefore runs each as an operation recorded
// first in the operations collection, in two phases:
//
//   - Begin inserts the record, whose _id is the organization's: that
//     insert is the exclusive right to change the organization.
//   - Phase one (the kind's Prepare) takes what can be refused (name and
//     e-mail claims) and marks the organization; the kind's Undo reverses
//     it.
//   - An outcome, inserted once (commit by the driver, abort by whoever
//     finds the operation stale first), decides it.
//   - Phase two (Complete) rolls forward. It may run again from the start,
//     after a takeover, so each step re-checks what it acts on (who holds
//     a slug, which collection is there) before it drops or moves
//     anything. The step reached is not recorded: nothing would read it.
//   - The record goes first; its leases and outcome stay behind, inert
//     (nothing reads the marks of an operation without a record), until
//     RecoverAll removes such leftovers in bulk. Every prefix of the
//     clean-up is a state orgsvc check accepts.
//
// The instance that begins an operation holds its lease for Lease and
// stops acting after half of it; another instance may take over an
// operation whose lease has run out by inserting a lease of the next
// epoch, which only one can do. Operations are recovered at start-up
// (RecoverAll), in the background (Watch), and when a request meets one
// (nudge).

// Lifecycle tuning.
type Lifecycle struct {
	// Lease is how long the driver of an operation holds it.
	Lease time.Duration
	// AllStale says no other instance shares the database, so an operation
	// found at start-up is abandoned whatever its lease says.
	AllStale bool
	// ReceiptTTL is how long the record of a deletion is kept, for retries
	// of it: the lifetime of the deleted admin's tokens.
	ReceiptTTL time.Duration
}

// Kind is one kind of operation: its two phases and how phase one is
// undone. Each step is safe to run again.
type Kind struct {
	// Prepare is phase one: what can be refused, and the marks.
	Prepare func(context.Context, *Run) error
	// Complete is phase two, run once the operation is committed.
	Complete func(context.Context, *Run) error
	// Undo rolls back an operation that was not committed; it touches only
	// what the operation itself made.
	Undo func(context.Context, *Run) error
	// Receipt keeps the record, marked done, for Lifecycle.ReceiptTTL.
	Receipt bool
	// Lease, when set, is this kind's lease instead of Lifecycle.Lease:
	// for operations whose steps take as long as the data they move.
	Lease time.Duration
	// Failpoints is the word this kind's failpoints begin with; the kind's
	// name when empty.
	Failpoints string
	// Unread says no read finds the organization's record while phase two
	// runs (it is new, or gone): its audit log's database is the plan's.
	Unread bool
}

// lease is how long a driver of kind holds its operation.
func (rn *Runner) lease(kind string) time.Duration {
	if l := rn.kinds[kind].Lease; l > 0 {
		return l
	}
	return rn.life.Lease
}

// Runner runs operations of the kinds it was given.
type Runner struct {
	ops        *repository.OperationRepository
	log        *slog.Logger
	life       Lifecycle
	kinds      map[string]Kind
	audit      *audit.Log // nil: no audit log
	recovering sync.Map   // organization id -> recovery running here
}

// NewRunner returns a runner of the given kinds.
func NewRunner(ops *repository.OperationRepository, log *slog.Logger, life Lifecycle, kinds map[string]Kind) *Runner {
	if life.Lease <= 0 {
		life.Lease = 30 * time.Second
	}
	return &Runner{ops: ops, log: log, life: life, kinds: kinds}
}

// Run is one driver's hold on an operation.
type Run struct {
	Op    *model.Operation
	epoch int64
}

// holder names this process in the leases it takes.
var holder = func() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), bson.NewObjectID().Hex()[16:])
}()

// Begin records a new operation on the organization; ErrOrgBusy when one
// is under way. The context returned ends at half the lease and outlives
// the caller's: an operation, once started, is not cut short by a client
// hanging up.
func (rn *Runner) Begin(ctx context.Context, kind string, orgID bson.ObjectID, plan model.OperationPlan) (*Run, context.Context, context.CancelFunc, error) {
	if _, ok := rn.kinds[kind]; !ok {
		return nil, nil, nil, fmt.Errorf("operation kind %q is not registered", kind)
	}
	start := time.Now()
	lease := rn.lease(kind)
	op := &model.Operation{
		OrgID: orgID, ID: bson.NewObjectID(), Kind: kind, Plan: plan,
		ExpiresAt: model.At(start.Add(lease)), Holder: holder, StartedAt: model.At(start),
	}
	if err := rn.ops.Insert(ctx, op); err != nil {
		if errors.Is(err, repository.ErrDuplicate) {
			rn.nudge(orgID)
			return nil, nil, nil, ErrOrgBusy
		}
		return nil, nil, nil, err
	}
	dctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), start.Add(lease/2))
	return &Run{Op: op}, dctx, cancel, nil
}

// GiveUp removes the record of an operation that did nothing yet (before
// Drive), for instance because what it planned on changed meanwhile.
func (rn *Runner) GiveUp(ctx context.Context, r *Run) {
	if err := rn.ops.Delete(ctx, r.Op); err != nil {
		rn.log.Error("give up an operation", "organization_id", r.Op.OrgID.Hex(), "kind", r.Op.Kind, "err", err)
	}
}

// Drive runs an operation begun here: phase one, the outcome, phase two.
// committed says the operation is decided: an error after that is phase
// two's, and whoever meets the operation next finishes it.
func (rn *Runner) Drive(ctx context.Context, r *Run) (committed bool, err error) {
	defer func() {
		if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = ErrInterrupted // past half the lease: recovery settles it
		}
	}()
	k := rn.kinds[r.Op.Kind]
	if err := k.Prepare(ctx, r); err != nil {
		if undo := rn.abandon(ctx, r); undo != nil {
			rn.log.Error("roll back an operation", "organization_id", r.Op.OrgID.Hex(), "kind", r.Op.Kind, "err", undo)
		}
		return false, err
	}
	commit, err := rn.ops.Decide(ctx, r.Op.ID, true)
	if err != nil {
		return false, err
	}
	if !commit {
		return false, ErrInterrupted
	}
	return true, rn.complete(ctx, r)
}

// abandon rolls back an operation whose phase one failed, unless it was
// committed meanwhile (then it is left for recovery to finish).
func (rn *Runner) abandon(ctx context.Context, r *Run) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil // past half the lease: recovery takes it from here
	}
	commit, err := rn.ops.Decide(ctx, r.Op.ID, false)
	if err != nil || commit {
		return err
	}
	return rn.undo(ctx, r)
}

// complete runs phase two. The outcome is decided, so the change will be
// made: its events are written beside phase two, not after it, and the
// record goes once both are done.
func (rn *Runner) complete(ctx context.Context, r *Run) error {
	recorded := make(chan error, 1)
	go func() { recorded <- rn.record(ctx, r) }()
	err := rn.kinds[r.Op.Kind].Complete(ctx, r)
	if rerr := <-recorded; err == nil {
		err = rerr
	}
	if err != nil {
		return err
	}
	return rn.finish(ctx, r)
}

// record writes the operation's planned events to the audit logs, beside
// phase two and before the record goes: a step like the others, run again
// after a takeover, which adds each event once (its source is the
// operation's).
func (rn *Runner) record(ctx context.Context, r *Run) error {
	kind := rn.kinds[r.Op.Kind]
	step := cmp.Or(kind.Failpoints, r.Op.Kind)
	failpoint.Reach(step + ":before-events")
	if rn.audit == nil {
		return nil
	}
	for _, p := range r.Op.Plan.Events {
		if p.Org == r.Op.OrgID && kind.Unread {
			rn.audit.Know(p.Org, r.Op.Plan.TenantDB)
		}
		ev := p.Event(r.Op.ID)
		if err := rn.audit.Append(ctx, p.Org, &ev); err != nil {
			return err
		}
	}
	failpoint.Reach(step + ":after-events")
	return nil
}

// SetAudit makes the runner record operations' events in log.
func (rn *Runner) SetAudit(log *audit.Log) { rn.audit = log }

func (rn *Runner) undo(ctx context.Context, r *Run) error {
	if err := rn.kinds[r.Op.Kind].Undo(ctx, r); err != nil {
		return err
	}
	return rn.ops.Delete(ctx, r.Op)
}

// finish removes a finished operation's record, or keeps it as a receipt.
// Its leases and outcome are inert from then on, and go with the next
// RecoverAll's leftovers, many in one command.
func (rn *Runner) finish(ctx context.Context, r *Run) error {
	if rn.kinds[r.Op.Kind].Receipt {
		return rn.ops.MarkDone(ctx, r.Op)
	}
	return rn.ops.Delete(ctx, r.Op)
}

// Operation returns the record of the organization's operation, under way
// or a receipt; repository.ErrNotFound when there is none.
func (rn *Runner) Operation(ctx context.Context, orgID bson.ObjectID) (*model.Operation, error) {
	return rn.ops.Get(ctx, orgID)
}

// nudge recovers the organization's operation in the background if it is
// stale; a request that meets an operation under way calls it.
func (rn *Runner) nudge(orgID bson.ObjectID) {
	if _, running := rn.recovering.LoadOrStore(orgID, struct{}{}); running {
		return
	}
	go func() {
		defer rn.recovering.Delete(orgID)
		ctx, cancel := context.WithTimeout(context.Background(), rn.life.Lease)
		defer cancel()
		if err := rn.Recover(ctx, orgID, false); err != nil && !errors.Is(err, ErrOrgBusy) {
			rn.log.Warn("recovering an operation", "organization_id", orgID.Hex(), "err", err)
		}
	}()
}

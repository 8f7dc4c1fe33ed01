package mail

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// Options tune an Outbox; a zero field takes its default.
type Options struct {
	// Interval is the time between rounds of delivery.
	Interval time.Duration
	// MaxAttempts is how many attempts an entry gets before it fails.
	MaxAttempts int
	// The wait after failed attempt n is BaseBackoff·2^(n-1), at most
	// MaxBackoff.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// Lease is how long an attempt's mark holds: the attempt gives up
	// after half of it, and another instance may make the next attempt
	// once all of it has passed.
	Lease time.Duration
	// Batch is how many due entries a round takes.
	Batch int
	// Domain is the right side of the Message-IDs Enqueue makes (the
	// From address's domain, SMTP.Domain).
	Domain string
	// Holder names this instance in attempt marks; a new name by default.
	Holder string
	// Exists says whether what a mail is for still exists: an entry whose
	// subject is gone is deleted, not sent. Nil: everything exists.
	Exists func(ctx context.Context, id bson.ObjectID) (bool, error)
}

// Defaults for Options.
var defaults = Options{
	Interval:    30 * time.Second,
	MaxAttempts: 8,
	BaseBackoff: 30 * time.Second,
	MaxBackoff:  time.Hour,
	Lease:       2 * time.Minute,
	Batch:       100,
	Domain:      "localhost",
}

// Outbox delivers the entries of the outbox through a Sender. Any number
// of instances may run one over the same database.
//
// Each attempt at an entry is made by the instance that inserted its mark
// (entry id, attempt number): an insert, atomic on every store, so two
// instances never make the same attempt, and only the mark's holder writes
// the entry while the mark holds. A mark whose holder died expires after
// Lease, and the next instance takes the next attempt number. A mail is
// then sent twice only if its holder died (or lost the store) between the
// server accepting it and the entry being marked sent; both copies carry
// the entry's Message-ID, by which mail servers and clients drop the
// second.
type Outbox struct {
	repo   *repository.OutboxRepository
	sender Sender
	log    *slog.Logger
	opts   Options
	nudge  chan struct{}
}

// NewOutbox returns a worker over repo that sends through sender.
func NewOutbox(repo *repository.OutboxRepository, sender Sender, log *slog.Logger, opts Options) *Outbox {
	orDefault(&opts.Interval, defaults.Interval)
	orDefault(&opts.MaxAttempts, defaults.MaxAttempts)
	orDefault(&opts.BaseBackoff, defaults.BaseBackoff)
	orDefault(&opts.MaxBackoff, defaults.MaxBackoff)
	orDefault(&opts.Lease, defaults.Lease)
	orDefault(&opts.Batch, defaults.Batch)
	orDefault(&opts.Domain, defaults.Domain)
	if opts.Holder == "" {
		host, _ := os.Hostname()
		opts.Holder = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), bson.NewObjectID().Hex()[16:])
	}
	return &Outbox{repo: repo, sender: sender, log: log, opts: opts, nudge: make(chan struct{}, 1)}
}

// orDefault sets *v to def when it is zero or less.
func orDefault[T cmp.Ordered](v *T, def T) {
	var zero T
	if *v <= zero {
		*v = def
	}
}

// Enqueue writes e to the outbox, pending and due now, and wakes the
// worker; ErrDuplicate (repository's) when e's id has a mail already. The
// caller sets ID, OrgID, To, Subject and Text; an empty MessageID is made
// from the id.
func (o *Outbox) Enqueue(ctx context.Context, e *model.OutboxEntry) error {
	now := model.Now()
	if e.MessageID == "" {
		e.MessageID = e.ID.Hex() + "@" + o.opts.Domain
	}
	e.State, e.Attempts, e.NextAt, e.CreatedAt = model.DeliveryPending, 0, now, now
	if err := o.repo.Insert(ctx, e); err != nil {
		return err
	}
	select {
	case o.nudge <- struct{}{}:
	default:
	}
	return nil
}

// Run delivers due entries at once, then every Interval and whenever
// Enqueue wakes it, until ctx ends.
func (o *Outbox) Run(ctx context.Context) {
	t := time.NewTicker(o.opts.Interval)
	defer t.Stop()
	for {
		if _, err := o.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			o.log.Error("outbox: delivery round", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-o.nudge:
		}
	}
}

// DeliverDue makes one round: an attempt at each due entry no other
// instance is on. It returns how many mails went out, and the first error
// of the store met (the round goes on past it); a refused mail is logged
// and recorded for its next attempt, not an error.
func (o *Outbox) DeliverDue(ctx context.Context) (int, error) {
	due, err := o.repo.Due(ctx, model.Now(), o.opts.Batch)
	if err != nil {
		return 0, err
	}
	sent, first := 0, error(nil)
	for i := range due {
		if ctx.Err() != nil {
			return sent, ctx.Err()
		}
		ok, err := o.deliver(ctx, &due[i])
		if ok {
			sent++
		}
		if err != nil {
			o.log.Warn("outbox: delivery", "entry", due[i].ID.Hex(), "error", err)
			if first == nil {
				first = err
			}
		}
	}
	return sent, first
}

// deliver makes one attempt at e, as read by Due, unless another instance
// is on it; it reports whether the mail went out.
func (o *Outbox) deliver(ctx context.Context, seen *model.OutboxEntry) (bool, error) {
	start := time.Now()
	n, err := o.claim(ctx, seen, start)
	if err != nil || n == 0 {
		return false, err
	}
	// The entry as it is now that the mark is ours: a slower instance may
	// have finished the attempt before.
	e, err := o.repo.Get(ctx, seen.ID)
	if errors.Is(err, repository.ErrNotFound) {
		return false, o.repo.ReleaseAttempt(ctx, seen.ID, n)
	}
	if err != nil {
		return false, errors.Join(err, o.repo.ReleaseAttempt(ctx, seen.ID, n))
	}
	if e.State != model.DeliveryPending || e.Attempts >= n || e.NextAt.After(start) {
		return false, o.repo.ReleaseAttempt(ctx, e.ID, n)
	}
	if n > o.opts.MaxAttempts {
		return false, o.repo.Finish(ctx, e.ID, n, model.DeliveryFailed, "no attempt left: "+e.LastError, time.Time{})
	}
	if o.opts.Exists != nil {
		ok, err := o.opts.Exists(ctx, e.ID)
		if err != nil {
			return false, errors.Join(err, o.repo.ReleaseAttempt(ctx, e.ID, n))
		}
		if !ok {
			return false, o.repo.Delete(ctx, e.ID)
		}
	}

	deadline := start.Add(o.opts.Lease / 2)
	sendCtx, cancel := context.WithDeadline(ctx, deadline)
	sendErr := o.sender.Send(sendCtx, Message{ID: e.ID, To: e.To, Subject: e.Subject, Text: e.Text, MessageID: e.MessageID})
	cancel()
	if sendErr == nil {
		// Recorded even when late: it is true whatever another instance
		// did since, and the sooner it is written the less likely a
		// second copy.
		return true, o.repo.Finish(ctx, e.ID, n, model.DeliverySent, "", time.Now())
	}
	if time.Now().After(deadline) {
		// The mark may be another's by now: leave the entry to it.
		o.log.Warn("outbox: attempt outlived its mark", "entry", e.ID.Hex(), "attempt", n, "error", sendErr)
		return false, nil
	}
	if n >= o.opts.MaxAttempts {
		o.log.Error("outbox: mail given up", "entry", e.ID.Hex(), "attempts", n, "error", sendErr)
		return false, o.repo.Finish(ctx, e.ID, n, model.DeliveryFailed, sendErr.Error(), time.Time{})
	}
	o.log.Warn("outbox: attempt failed", "entry", e.ID.Hex(), "attempt", n, "error", sendErr)
	return false, o.repo.Retry(ctx, e.ID, n, time.Now().Add(o.backoff(n)), sendErr.Error())
}

// claim takes the mark of the entry's next attempt and returns its
// number; 0 when a live mark of another instance holds it. A mark that
// expired is stepped over: its holder died, and the attempt counts.
func (o *Outbox) claim(ctx context.Context, e *model.OutboxEntry, now time.Time) (int, error) {
	for n := e.Attempts + 1; ; n++ {
		err := o.repo.ClaimAttempt(ctx, e.ID, n, o.opts.Holder, now.Add(o.opts.Lease))
		if err == nil {
			return n, nil
		}
		if !errors.Is(err, repository.ErrDuplicate) {
			return 0, err
		}
		mark, err := o.repo.Attempt(ctx, e.ID, n)
		if errors.Is(err, repository.ErrNotFound) {
			return 0, nil // released just now; the next round tries again
		}
		if err != nil {
			return 0, err
		}
		if mark.ExpiresAt.After(now) {
			return 0, nil
		}
	}
}

// backoff is the wait after failed attempt n.
func (o *Outbox) backoff(n int) time.Duration {
	d := o.opts.BaseBackoff
	for i := 1; i < n && d < o.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, o.opts.MaxBackoff)
}

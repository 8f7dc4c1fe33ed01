package mail_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgsvc/orgsvc/internal/mail"
	"github.com/orgsvc/orgsvc/internal/mail/mailtest"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/storetest"
)

const wait = 10 * time.Second

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newOutbox is a worker over db sending to srv; quick by default.
func newOutbox(t *testing.T, db *mongo.Database, srv *mailtest.Server, opts mail.Options) (*mail.Outbox, *repository.OutboxRepository) {
	t.Helper()
	s, err := mail.NewSMTP(srv.URL(), from, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Interval == 0 {
		opts.Interval = 10 * time.Millisecond
	}
	if opts.BaseBackoff == 0 {
		opts.BaseBackoff, opts.MaxBackoff = 5*time.Millisecond, 50*time.Millisecond
	}
	if opts.Domain == "" {
		opts.Domain = s.Domain()
	}
	repo := repository.NewOutboxRepository(db)
	return mail.NewOutbox(repo, s, quiet, opts), repo
}

// run runs o until the returned stop is called, which waits for it.
func run(t *testing.T, o *mail.Outbox) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		o.Run(ctx)
	}()
	stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return stop
}

func entry(to string) *model.OutboxEntry {
	id := bson.NewObjectID()
	return &model.OutboxEntry{ID: id, OrgID: bson.NewObjectID(), To: to, Subject: "Invitation to Acme", Text: "Accept: https://example.com/i/" + id.Hex()}
}

// written is e as a killed instance would have left it: stored, pending,
// due, never tried.
func written(t *testing.T, repo *repository.OutboxRepository, e *model.OutboxEntry) *model.OutboxEntry {
	t.Helper()
	now := model.Now()
	e.MessageID, e.State, e.NextAt, e.CreatedAt = e.ID.Hex()+"@example.com", model.DeliveryPending, now, now
	if err := repo.Insert(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	return e
}

// waitState waits until entry id is in state, and returns it.
func waitState(t *testing.T, repo *repository.OutboxRepository, id bson.ObjectID, state string) *model.OutboxEntry {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		e, err := repo.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if e.State == state {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("entry %s: %s after %s, want %s", id.Hex(), e.State, wait, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestEnqueueSendsOnce: an enqueued mail goes out at once (the interval
// is far longer than the wait), once, with its headers and body; then the
// entry is sent and its text erased.
func TestEnqueueSendsOnce(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t)
	o, repo := newOutbox(t, storetest.Database(t), srv, mail.Options{Interval: time.Hour})
	stop := run(t, o)
	e := entry("ada@example.com")
	text := e.Text
	if err := o.Enqueue(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	got := srv.WaitFor(t, e.To, wait)
	if got.Subject != e.Subject || got.MessageID != "<"+e.MessageID+">" || !strings.Contains(got.Body, text) || got.To[0] != e.To {
		t.Fatalf("got to %q, subject %q, Message-ID %q, body %q; want %+v", got.To, got.Subject, got.MessageID, got.Body, e)
	}
	if !strings.HasSuffix(e.MessageID, "@example.com") {
		t.Fatalf("Message-ID %q is not of the sender's domain", e.MessageID)
	}
	done := waitState(t, repo, e.ID, model.DeliverySent)
	stop()
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
	if done.Text != "" || done.Attempts != 1 || done.SentAt.IsZero() || done.MessageID != e.MessageID {
		t.Fatalf("sent entry: %+v", done)
	}
	if err := o.Enqueue(context.Background(), entry(e.To)); err != nil {
		t.Fatal(err)
	}
	dup := entry(e.To)
	dup.ID = e.ID
	if err := o.Enqueue(context.Background(), dup); !errors.Is(err, repository.ErrDuplicate) {
		t.Fatalf("a second mail for one id: %v, want ErrDuplicate", err)
	}
}

// TestRetriesWhileRefused: while the server refuses, each attempt counts
// and waits longer than the one before; then the mail arrives once.
func TestRetriesWhileRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := mailtest.Start(t)
	base := 20 * time.Millisecond
	o, repo := newOutbox(t, storetest.Database(t), srv, mail.Options{BaseBackoff: base, MaxBackoff: time.Second, MaxAttempts: 5})
	e := written(t, repo, entry("ada@example.com"))
	srv.Refuse(3)
	for n := 1; n <= 3; n++ {
		before := time.Now()
		if sent, err := o.DeliverDue(ctx); sent != 0 || err != nil {
			t.Fatalf("attempt %d while refused: %d sent, %v; want none and no error", n, sent, err)
		}
		after := time.Now()
		got, err := repo.Get(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		backoff := base << (n - 1)
		if got.State != model.DeliveryPending || got.Attempts != n || !strings.Contains(got.LastError, "451") || got.Text != e.Text {
			t.Fatalf("after refusal %d: %+v", n, got)
		}
		if got.NextAt.Before(model.At(before.Add(backoff))) || got.NextAt.After(after.Add(backoff)) {
			t.Fatalf("after refusal %d: next at %s, want %s after the attempt (%s..%s)", n, got.NextAt, backoff, before, after)
		}
		time.Sleep(time.Until(got.NextAt))
	}
	if sent, err := o.DeliverDue(ctx); sent != 1 || err != nil {
		t.Fatalf("once accepted: %d sent, %v", sent, err)
	}
	got := srv.WaitFor(t, e.To, wait)
	if got.MessageID != "<"+e.MessageID+">" || len(srv.Messages()) != 1 {
		t.Fatalf("%d messages, Message-ID %q", len(srv.Messages()), got.MessageID)
	}
	if done, err := repo.Get(ctx, e.ID); err != nil || done.State != model.DeliverySent || done.Attempts != 4 || done.Text != "" {
		t.Fatalf("sent entry: %+v, %v", done, err)
	}
}

// TestWaitsForBackoff: after a refusal, rounds make no attempt before the
// entry's next time.
func TestWaitsForBackoff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := mailtest.Start(t)
	o, repo := newOutbox(t, storetest.Database(t), srv, mail.Options{BaseBackoff: time.Hour, MaxBackoff: time.Hour})
	e := written(t, repo, entry("ada@example.com"))
	srv.Refuse(1)
	if sent, err := o.DeliverDue(ctx); sent != 0 || err != nil {
		t.Fatalf("refused: %d sent, %v", sent, err)
	}
	for range 3 {
		if sent, err := o.DeliverDue(ctx); sent != 0 || err != nil {
			t.Fatalf("a round before the entry's time: %d sent, %v", sent, err)
		}
	}
	if got, err := repo.Get(ctx, e.ID); err != nil || got.Attempts != 1 || len(srv.Messages()) != 0 {
		t.Fatalf("attempts %d, %d messages, %v; want the one refused attempt", got.Attempts, len(srv.Messages()), err)
	}
}

// TestGivesUp: after MaxAttempts refusals the entry is failed, its text
// erased, and it is not tried again.
func TestGivesUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := mailtest.Start(t)
	o, repo := newOutbox(t, storetest.Database(t), srv, mail.Options{BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxAttempts: 3})
	e := written(t, repo, entry("ada@example.com"))
	srv.Refuse(-1)
	stop := run(t, o)
	failed := waitState(t, repo, e.ID, model.DeliveryFailed)
	stop()
	if failed.Attempts != 3 || failed.Text != "" || !strings.Contains(failed.LastError, "451") {
		t.Fatalf("failed entry: %+v", failed)
	}
	srv.Refuse(0)
	if sent, err := o.DeliverDue(ctx); sent != 0 || err != nil {
		t.Fatalf("a failed entry was tried again: %d sent, %v", sent, err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages, want none", n)
	}
}

// TestTwoInstances: two workers, each with its own connection to one
// store, race for the same 20 entries; each mail arrives exactly once.
func TestTwoInstances(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t)
	db := storetest.Database(t)
	client, err := mongo.Connect(options.Client().ApplyURI(storetest.URI()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	a, repo := newOutbox(t, db, srv, mail.Options{})
	b, _ := newOutbox(t, client.Database(db.Name()), srv, mail.Options{})

	var entries []*model.OutboxEntry
	for i := range 20 {
		entries = append(entries, written(t, repo, entry(fmt.Sprintf("member%02d@example.com", i))))
	}
	stopA, stopB := run(t, a), run(t, b)
	for _, e := range entries {
		waitState(t, repo, e.ID, model.DeliverySent)
	}
	stopA()
	stopB()
	if n := len(srv.Messages()); n != len(entries) {
		t.Errorf("%d messages for %d entries", n, len(entries))
	}
	for _, e := range entries {
		if got := srv.To(e.To); len(got) != 1 {
			t.Errorf("%s received %d messages, want 1", e.To, len(got))
		}
	}
}

// TestAfterCrash: a worker's first round sends what a killed instance
// wrote; an attempt mark whose holder died does not hold it back, a live
// one does.
func TestAfterCrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("left pending", func(t *testing.T) {
		t.Parallel()
		srv := mailtest.Start(t)
		o, repo := newOutbox(t, storetest.Database(t), srv, mail.Options{Interval: time.Hour})
		e := written(t, repo, entry("ada@example.com"))
		run(t, o)
		srv.WaitFor(t, e.To, wait)
		if done := waitState(t, repo, e.ID, model.DeliverySent); done.Attempts != 1 {
			t.Fatalf("attempts %d, want 1", done.Attempts)
		}
	})
	t.Run("dead holder", func(t *testing.T) {
		t.Parallel()
		srv := mailtest.Start(t)
		o, repo := newOutbox(t, storetest.Database(t), srv, mail.Options{Lease: time.Minute})
		e := written(t, repo, entry("ada@example.com"))
		if err := repo.ClaimAttempt(ctx, e.ID, 1, "dead", time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if sent, err := o.DeliverDue(ctx); sent != 1 || err != nil {
			t.Fatalf("%d sent, %v; want 1", sent, err)
		}
		if got := srv.To(e.To); len(got) != 1 || got[0].MessageID != "<"+e.MessageID+">" {
			t.Fatalf("%d messages, want 1 with the entry's Message-ID", len(got))
		}
		if done, err := repo.Get(ctx, e.ID); err != nil || done.State != model.DeliverySent || done.Attempts != 2 {
			t.Fatalf("entry: %+v, %v; want sent at attempt 2", done, err)
		}
	})
	t.Run("live holder", func(t *testing.T) {
		t.Parallel()
		srv := mailtest.Start(t)
		o, repo := newOutbox(t, storetest.Database(t), srv, mail.Options{Lease: time.Minute})
		e := written(t, repo, entry("ada@example.com"))
		if err := repo.ClaimAttempt(ctx, e.ID, 1, "alive", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if sent, err := o.DeliverDue(ctx); sent != 0 || err != nil {
			t.Fatalf("%d sent, %v; want none", sent, err)
		}
		if n := len(srv.Messages()); n != 0 {
			t.Fatalf("%d messages while another holds the attempt", n)
		}
		if got, err := repo.Get(ctx, e.ID); err != nil || got.State != model.DeliveryPending || got.Attempts != 0 || got.Text != e.Text {
			t.Fatalf("entry: %+v, %v; want it untouched", got, err)
		}
	})
}

// TestSubjectGone: an entry whose subject no longer exists is deleted,
// with its attempt mark, and not sent; the others are.
func TestSubjectGone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := mailtest.Start(t)
	gone, kept := entry("gone@example.com"), entry("kept@example.com")
	o, repo := newOutbox(t, storetest.Database(t), srv, mail.Options{
		Exists: func(_ context.Context, id bson.ObjectID) (bool, error) { return id != gone.ID, nil },
	})
	written(t, repo, gone)
	written(t, repo, kept)
	if sent, err := o.DeliverDue(ctx); sent != 1 || err != nil {
		t.Fatalf("%d sent, %v; want 1", sent, err)
	}
	if _, err := repo.Get(ctx, gone.ID); !errors.Is(err, repository.ErrNotFound) {
		t.Fatalf("entry of a deleted subject: %v, want ErrNotFound", err)
	}
	if _, err := repo.Attempt(ctx, gone.ID, 1); !errors.Is(err, repository.ErrNotFound) {
		t.Fatalf("mark of a deleted entry: %v, want ErrNotFound", err)
	}
	if len(srv.To(gone.To)) != 0 || len(srv.To(kept.To)) != 1 {
		t.Fatalf("messages: %d to the gone subject, %d to the kept one; want 0 and 1", len(srv.To(gone.To)), len(srv.To(kept.To)))
	}
}

package repository_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/storetest"
)

func pendingEntry(org bson.ObjectID, nextAt time.Time) *model.OutboxEntry {
	id := bson.NewObjectID()
	return &model.OutboxEntry{
		ID: id, OrgID: org, To: id.Hex() + "@example.com", Subject: "Invitation", Text: "token " + id.Hex(),
		MessageID: id.Hex() + "@example.com", State: model.DeliveryPending, NextAt: model.At(nextAt), CreatedAt: model.Now(),
	}
}

// TestOutboxInsertGet: an entry reads back as written, and a second mail
// for the same id is refused.
func TestOutboxInsertGet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := repository.NewOutboxRepository(storetest.Database(t))
	e := pendingEntry(bson.NewObjectID(), time.Now())
	if err := r.Insert(ctx, e); err != nil {
		t.Fatal(err)
	}
	got, err := r.Get(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *e {
		t.Fatalf("got %+v, want %+v", got, e)
	}
	if err := r.Insert(ctx, pendingEntry(e.OrgID, time.Now())); err != nil {
		t.Fatal(err)
	}
	again := *e
	again.Text = "another"
	if err := r.Insert(ctx, &again); !errors.Is(err, repository.ErrDuplicate) {
		t.Fatalf("second entry for one id: %v, want ErrDuplicate", err)
	}
	if all, err := r.All(ctx); err != nil || len(all) != 2 {
		t.Fatalf("All: %d entries, %v; want 2", len(all), err)
	}
}

// TestOutboxDue: only pending entries whose time has come, oldest first,
// at most limit.
func TestOutboxDue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := repository.NewOutboxRepository(storetest.Database(t))
	now := model.Now()
	org := bson.NewObjectID()
	older, old, future, sent := pendingEntry(org, now.Add(-2*time.Minute)), pendingEntry(org, now.Add(-time.Minute)),
		pendingEntry(org, now.Add(time.Minute)), pendingEntry(org, now.Add(-3*time.Minute))
	sent.State = model.DeliverySent
	for _, e := range []*model.OutboxEntry{old, future, sent, older} {
		if err := r.Insert(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	due, err := r.Due(ctx, now, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 2 || due[0].ID != older.ID || due[1].ID != old.ID {
		t.Fatalf("due: %v, want the two past pending entries, older first", ids(due))
	}
	if due, err := r.Due(ctx, now, 1); err != nil || len(due) != 1 || due[0].ID != older.ID {
		t.Fatalf("due with limit 1: %v, %v; want the older", ids(due), err)
	}
}

func ids(es []model.OutboxEntry) []bson.ObjectID {
	out := make([]bson.ObjectID, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// TestOutboxClaimAttempt: each attempt number goes to one claimant; a
// released mark can be claimed again.
func TestOutboxClaimAttempt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := repository.NewOutboxRepository(storetest.Database(t))
	id := bson.NewObjectID()
	expires := time.Now().Add(time.Minute)
	if err := r.ClaimAttempt(ctx, id, 1, "a", expires); err != nil {
		t.Fatal(err)
	}
	if err := r.ClaimAttempt(ctx, id, 1, "b", expires); !errors.Is(err, repository.ErrDuplicate) {
		t.Fatalf("second claim of attempt 1: %v, want ErrDuplicate", err)
	}
	if err := r.ClaimAttempt(ctx, id, 2, "b", expires); err != nil {
		t.Fatalf("claim of attempt 2: %v", err)
	}
	m, err := r.Attempt(ctx, id, 1)
	if err != nil || m.Holder != "a" || !m.ExpiresAt.Equal(model.At(expires)) {
		t.Fatalf("mark of attempt 1: %+v, %v; want a's until %v", m, err, model.At(expires))
	}
	if err := r.ReleaseAttempt(ctx, id, 1); err != nil {
		t.Fatal(err)
	}
	if err := r.ClaimAttempt(ctx, id, 1, "b", expires); err != nil {
		t.Fatalf("claim after release: %v", err)
	}
}

// TestOutboxFinishAndRetry: a retry keeps the text and moves the entry's
// time; sent and failed erase the text; nothing else is a final state.
func TestOutboxFinishAndRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := repository.NewOutboxRepository(storetest.Database(t))
	org := bson.NewObjectID()
	a, b := pendingEntry(org, time.Now()), pendingEntry(org, time.Now())
	for _, e := range []*model.OutboxEntry{a, b} {
		if err := r.Insert(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	next := model.Now().Add(time.Minute)
	if err := r.Retry(ctx, a.ID, 1, next, "451 try later"); err != nil {
		t.Fatal(err)
	}
	got, err := r.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != model.DeliveryPending || got.Attempts != 1 || !got.NextAt.Equal(next) || got.LastError != "451 try later" || got.Text != a.Text {
		t.Fatalf("after retry: %+v", got)
	}
	if err := r.Finish(ctx, a.ID, 2, model.DeliveryPending, "", time.Time{}); err == nil {
		t.Fatal("Finish accepted the pending state")
	}
	at := model.Now()
	if err := r.Finish(ctx, a.ID, 2, model.DeliverySent, "", at); err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(ctx, b.ID, 3, model.DeliveryFailed, "550 no such user", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Get(ctx, a.ID); err != nil || got.State != model.DeliverySent || got.Text != "" || got.Attempts != 2 || !got.SentAt.Equal(at) || got.LastError != "" {
		t.Fatalf("after sent: %+v, %v", got, err)
	}
	if got, err := r.Get(ctx, b.ID); err != nil || got.State != model.DeliveryFailed || got.Text != "" || got.Attempts != 3 || !got.SentAt.IsZero() {
		t.Fatalf("after failed: %+v, %v", got, err)
	}
	if err := r.Retry(ctx, bson.NewObjectID(), 1, next, ""); !errors.Is(err, repository.ErrNotFound) {
		t.Fatalf("retry of no entry: %v, want ErrNotFound", err)
	}
}

// TestOutboxDelete: deleting an entry, or an organization's, takes its
// attempt marks with it and leaves the others.
func TestOutboxDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := repository.NewOutboxRepository(storetest.Database(t))
	org, other := bson.NewObjectID(), bson.NewObjectID()
	one, two, three, kept := pendingEntry(org, time.Now()), pendingEntry(org, time.Now()), pendingEntry(org, time.Now()), pendingEntry(other, time.Now())
	expires := time.Now().Add(time.Hour)
	for _, e := range []*model.OutboxEntry{one, two, three, kept} {
		if err := r.Insert(ctx, e); err != nil {
			t.Fatal(err)
		}
		for n := 1; n <= 2; n++ {
			if err := r.ClaimAttempt(ctx, e.ID, n, "h", expires); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := r.Delete(ctx, one.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(ctx, one.ID); !errors.Is(err, repository.ErrNotFound) {
		t.Fatalf("deleted entry: %v, want ErrNotFound", err)
	}
	if err := r.DeleteForOrg(ctx, org); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*model.OutboxEntry{one, two, three} {
		if _, err := r.Get(ctx, e.ID); !errors.Is(err, repository.ErrNotFound) {
			t.Fatalf("entry of the deleted organization: %v, want ErrNotFound", err)
		}
		for n := 1; n <= 2; n++ {
			if _, err := r.Attempt(ctx, e.ID, n); !errors.Is(err, repository.ErrNotFound) {
				t.Fatalf("mark %d of a deleted entry: %v, want ErrNotFound", n, err)
			}
		}
	}
	if _, err := r.Get(ctx, kept.ID); err != nil {
		t.Fatalf("another organization's entry: %v", err)
	}
	if err := r.ClaimAttempt(ctx, kept.ID, 2, "h", expires); !errors.Is(err, repository.ErrDuplicate) {
		t.Fatalf("another organization's mark: claim gave %v, want ErrDuplicate", err)
	}
	if err := r.DeleteForOrg(ctx, bson.NewObjectID()); err != nil {
		t.Fatalf("organization without mail: %v", err)
	}
}

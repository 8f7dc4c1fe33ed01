package service_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/jsondoc"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/service"
)

// count is how many documents t's collection holds, as stored.
func (s *services) count(t model.Tenant) int64 {
	s.t.Helper()
	n, err := s.db.Collection(repository.CollectionName(t.Slug)).CountDocuments(context.Background(), bson.D{})
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

func parse(t *testing.T, data string) jsondoc.Doc {
	t.Helper()
	doc, problems := jsondoc.Parse([]byte(data))
	if len(problems) > 0 {
		t.Fatal(problems[0].Msg)
	}
	return doc
}

// TestTimedOutCreateIsWithdrawn: a create whose request runs out of time
// after its insert was stored answers an error and leaves nothing behind,
// so the client's retry makes the only copy.
func TestTimedOutCreateIsWithdrawn(t *testing.T) {
	s := newServices(t)
	p := s.signUp("Timeout")
	service.SetAfterInsert(s.docs, func(ctx context.Context) { <-ctx.Done() })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if d, err := s.docs.Create(ctx, p, parse(t, `{"n":1}`)); err == nil {
		t.Fatalf("Create answered %v past its deadline", d.ID)
	} else if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, repository.ErrUnavailable) {
		t.Fatalf("Create: %v, want a timeout", err)
	}
	if n := s.count(p.Tenant); n != 0 {
		t.Fatalf("%d documents stored after the timed-out create, want 0", n)
	}
	service.SetAfterInsert(s.docs, nil)
	s.create(p, `{"n":1}`)
	if n := s.count(p.Tenant); n != 1 {
		t.Fatalf("%d documents after the retry, want 1", n)
	}
}

// TestIdempotencyKey: the same key and body answer the first create,
// whatever happened in between; another body is refused; keys are the
// organization's own.
func TestIdempotencyKey(t *testing.T) {
	s := newServices(t)
	s.docs.KeepKeys(repository.NewKeyRepository(s.db))
	p := s.signUp("Keyed")
	ctx := context.Background()

	first, err := s.docs.CreateOnce(ctx, p, "key-1", parse(t, `{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.docs.CreateOnce(ctx, p, "key-1", parse(t, `{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID || !again.CreatedAt.Equal(first.CreatedAt) || !again.UpdatedAt.Equal(first.UpdatedAt) || again.JSON != first.JSON {
		t.Fatalf("retry answered %+v, want the first answer %+v", again, first)
	}
	var invalid *service.InvalidError
	if _, err := s.docs.CreateOnce(ctx, p, "key-1", parse(t, `{"n":2}`)); !errors.As(err, &invalid) || invalid.Type != "value_error.idempotency_key.reused" {
		t.Fatalf("same key, other body: %v, want the reuse refusal", err)
	}
	for _, bad := range []string{"", "with space", string(make([]byte, 256))} {
		if _, err := s.docs.CreateOnce(ctx, p, bad, parse(t, `{"n":1}`)); !errors.As(err, &invalid) || invalid.Type != "value_error.idempotency_key" {
			t.Fatalf("key %q: %v, want refused", bad, err)
		}
	}
	if n := s.count(p.Tenant); n != 1 {
		t.Fatalf("%d documents, want 1", n)
	}

	// Deleted since: the retry still answers the first result and makes
	// nothing again.
	if err := s.docs.Delete(ctx, p, first.ID.Hex()); err != nil {
		t.Fatal(err)
	}
	if d, err := s.docs.CreateOnce(ctx, p, "key-1", parse(t, `{"n":1}`)); err != nil || d.ID != first.ID {
		t.Fatalf("retry after a delete: %v %v", d, err)
	}
	if n := s.count(p.Tenant); n != 0 {
		t.Fatalf("the retry made the deleted document again (%d)", n)
	}

	// Another organization's key of the same name is its own.
	q := s.signUp("Other Keyed")
	if d, err := s.docs.CreateOnce(ctx, q, "key-1", parse(t, `{"n":2}`)); err != nil || d.ID == first.ID {
		t.Fatalf("another organization's key-1: %v %v", d, err)
	}

	// Timed out after the insert: the retry writes the same document once.
	service.SetAfterInsert(s.docs, func(ctx context.Context) { <-ctx.Done() })
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := s.docs.CreateOnce(short, p, "key-2", parse(t, `{"n":3}`)); err == nil {
		t.Fatal("CreateOnce answered past its deadline")
	}
	service.SetAfterInsert(s.docs, nil)
	var wg sync.WaitGroup
	ids := make([]bson.ObjectID, 8)
	errs := make([]error, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := s.docs.CreateOnce(ctx, p, "key-2", parse(t, `{"n":3}`))
			if err == nil {
				ids[i] = d.ID
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("concurrent retry %d: %v %v, want %v", i, ids[i], errs[i], ids[0])
		}
	}
	if n := s.count(p.Tenant); n != 1 {
		t.Fatalf("%d documents after the retries of key-2, want 1", n)
	}
}

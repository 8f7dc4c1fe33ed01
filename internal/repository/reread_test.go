package repository_test

import (
	"context"
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgsvc/orgsvc/internal/repository"
)

// interrupted is the embedded store's answer to a read whose SQLite query
// another command's cancellation interrupted. The race that makes it
// cannot be provoked on demand, so the answer is made here.
var interrupted = mongo.CommandError{Code: 1, Name: "InternalError", Message: "[collection.go:94 sqlite.(*collection).Query] interrupted (9)"}

// TestRereadSendsInterruptedReadsAgain: a read interrupted under a live
// context is sent again until it succeeds, at most ReadAttempts times in
// all; other errors, and interruptions of a cancelled context, are not.
func TestRereadSendsInterruptedReadsAgain(t *testing.T) {
	t.Parallel()
	failing := func(fails int, err error) (func() error, *int) {
		calls := 0
		return func() error {
			calls++
			if calls <= fails {
				return err
			}
			return nil
		}, &calls
	}
	ctx := context.Background()

	read, calls := failing(repository.ReadAttempts-1, interrupted)
	if err := repository.Reread(ctx, read); err != nil || *calls != repository.ReadAttempts {
		t.Errorf("interrupted %d times: err %v after %d calls, want nil after %d", repository.ReadAttempts-1, err, *calls, repository.ReadAttempts)
	}
	read, calls = failing(repository.ReadAttempts, interrupted)
	if err := repository.Reread(ctx, read); !errors.As(err, new(mongo.CommandError)) || *calls != repository.ReadAttempts {
		t.Errorf("interrupted every time: err %v after %d calls, want the interruption after %d", err, *calls, repository.ReadAttempts)
	}
	other := mongo.CommandError{Code: 2, Name: "BadValue", Message: "bad value"}
	read, calls = failing(1, other)
	if err := repository.Reread(ctx, read); err == nil || *calls != 1 {
		t.Errorf("another error: err %v after %d calls, want it after 1", err, *calls)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	read, calls = failing(1, interrupted)
	if err := repository.Reread(cancelled, read); err == nil || *calls != 1 {
		t.Errorf("cancelled context: err %v after %d calls, want the interruption after 1", err, *calls)
	}
}

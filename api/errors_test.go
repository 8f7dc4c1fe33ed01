package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/orgsvc/orgsvc/internal/service"
)

// answer is what writeError says of err: status, and detail or, for a
// 422, the first problem's type.
func answer(t *testing.T, ctx context.Context, err error) (int, string) {
	t.Helper()
	s := &server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rec := httptest.NewRecorder()
	s.writeError(rec, httptest.NewRequest("GET", "/", nil).WithContext(ctx), err)
	var body struct{ Detail json.RawMessage }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%v: %s", err, rec.Body)
	}
	var detail string
	if json.Unmarshal(body.Detail, &detail) != nil {
		var fields []FieldError
		if err := json.Unmarshal(body.Detail, &fields); err != nil || len(fields) == 0 {
			t.Fatalf("%v: detail %s", err, body.Detail)
		}
		detail = fields[0].Type
	}
	return rec.Code, detail
}

// TestFirstRowWins: an error wrapping two rows' targets, in either order,
// answers as the earlier row of the table.
func TestFirstRowWins(t *testing.T) {
	ctx := context.Background()
	for i, a := range problems {
		if a.target == nil {
			continue
		}
		want, wantDetail := answer(t, ctx, a.target)
		for _, b := range problems[i+1:] {
			if b.target == nil {
				continue
			}
			for _, err := range []error{fmt.Errorf("%w, %w", a.target, b.target), fmt.Errorf("%w, %w", b.target, a.target)} {
				if got, detail := answer(t, ctx, err); got != want || detail != wantDetail {
					t.Fatalf("%v: %d %q, want %d %q", err, got, detail, want, wantDetail)
				}
			}
		}
	}
	// Two cases where the order is the point.
	for _, c := range []struct {
		err    error
		status int
		detail string
	}{
		// The database was what the request waited on.
		{fmt.Errorf("%w, %w", context.DeadlineExceeded, service.ErrUnavailable), http.StatusServiceUnavailable, "database unavailable"},
		// A body the service refuses outranks what a lookup found.
		{fmt.Errorf("%w, %w", service.ErrOrgNotFound, &service.InvalidError{Field: "organization_name", Message: "m", Type: "value_error.t"}), http.StatusUnprocessableEntity, "value_error.t"},
	} {
		if got, detail := answer(t, ctx, c.err); got != c.status || detail != c.detail {
			t.Fatalf("%v: %d %q, want %d %q", c.err, got, detail, c.status, c.detail)
		}
	}
}

// TestHungUpIsClientClosed: whatever the error, a request whose client hung
// up is answered 499, and a live one is not.
func TestHungUpIsClientClosed(t *testing.T) {
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	for _, err := range []error{service.ErrUnavailable, context.Canceled, service.ErrOrgNotFound} {
		if got, _ := answer(t, gone, err); got != statusClientClosed {
			t.Fatalf("%v after the client hung up: %d", err, got)
		}
	}
	// A read shared with a request that hung up fails with its
	// cancellation: for this live one it is a failure.
	if got, _ := answer(t, context.Background(), context.Canceled); got != http.StatusInternalServerError {
		t.Fatalf("context.Canceled of a live request: %d", got)
	}
	timedOut, stop := context.WithTimeout(context.Background(), 0)
	defer stop()
	if got, detail := answer(t, timedOut, service.ErrUnavailable); got != http.StatusServiceUnavailable || detail != "database unavailable" {
		t.Fatalf("at REQUEST_TIMEOUT: %d %q", got, detail)
	}
}

package audit

import (
	"context"

	"github.com/orgsvc/orgsvc/internal/model"
)

type requestKey struct{}

// WithRequest returns ctx carrying the request an event comes from.
func WithRequest(ctx context.Context, c model.EventContext) context.Context {
	return context.WithValue(ctx, requestKey{}, c)
}

// Request is the request ctx carries; empty for the system.
func Request(ctx context.Context) model.EventContext {
	c, _ := ctx.Value(requestKey{}).(model.EventContext)
	return c
}

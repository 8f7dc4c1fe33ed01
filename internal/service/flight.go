package service

import (
	"context"
	"sync"
)

// flights lets concurrent cache misses of one key share one database
// read: when an entry expires under load, one read refills it instead of
// one per request. Keys carry the generation the caller read first, so a
// miss that began after a forget never joins a read from before it.
type flights[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]*flight[V]
}

type flight[V any] struct {
	done    chan struct{}
	v       V
	err     error
	waiters int // callers sharing it, for tests
}

// do returns what fn returns, calling it once for all callers of k at a
// time. fn runs on a context the first caller's cancellation does not end
// (its deadline is kept); a waiter stops waiting when its own ctx ends.
func (f *flights[K, V]) do(ctx context.Context, k K, fn func(context.Context) (V, error)) (V, error) {
	f.mu.Lock()
	if f.m == nil {
		f.m = map[K]*flight[V]{}
	}
	if c, ok := f.m[k]; ok {
		c.waiters++
		f.mu.Unlock()
		select {
		case <-c.done:
			return c.v, c.err
		case <-ctx.Done():
			var zero V
			return zero, ctx.Err()
		}
	}
	c := &flight[V]{done: make(chan struct{})}
	f.m[k] = c
	f.mu.Unlock()
	shared := context.WithoutCancel(ctx)
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		shared, cancel = context.WithDeadline(shared, deadline)
		defer cancel()
	}
	c.v, c.err = fn(shared)
	f.mu.Lock()
	delete(f.m, k)
	f.mu.Unlock()
	close(c.done)
	return c.v, c.err
}

package service

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// Callers of one key while its read runs share it; another key (a later
// generation) reads on its own.
func TestFlightsShareOneRead(t *testing.T) {
	var f flights[orgReadKey, int]
	var calls atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{})
	read := func(context.Context) (int, error) {
		if calls.Add(1) == 1 {
			close(started)
		}
		<-release
		return 7, nil
	}
	k := orgReadKey{key: "sx", gen: orgGen{1, 0}}
	var wg sync.WaitGroup
	got := make([]int, 8)
	wg.Go(func() { got[0], _ = f.do(context.Background(), k, read) })
	<-started
	for i := 1; i < len(got); i++ {
		wg.Go(func() { got[i], _ = f.do(context.Background(), k, read) })
	}
	for { // until the others wait on the first read
		f.mu.Lock()
		n := f.m[k].waiters
		f.mu.Unlock()
		if n == len(got)-1 {
			break
		}
		runtime.Gosched()
	}
	later := make(chan int)
	go func() {
		v, _ := f.do(context.Background(), orgReadKey{key: "sx", gen: orgGen{2, 0}}, func(context.Context) (int, error) { return 9, nil })
		later <- v
	}()
	if v := <-later; v != 9 {
		t.Fatalf("a later generation got %d, want its own read's 9", v)
	}
	close(release)
	wg.Wait()
	for i, v := range got {
		if v != 7 {
			t.Fatalf("caller %d got %d, want 7", i, v)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d reads for %d callers of one key, want 1", n, len(got))
	}
}

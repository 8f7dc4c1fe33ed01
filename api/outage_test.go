package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orgsvc/orgsvc/internal/config"
	"github.com/orgsvc/orgsvc/internal/store"
)

// ownStore starts an embedded store of the test's own, which it may stop,
// and opens database name on it; restart starts it again where it was.
func ownStore(t *testing.T, name string) (*store.Embedded, *store.Store, func()) {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	start := func() *store.Embedded {
		db, err := store.StartEmbedded(dir, addr, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	db := start()
	st, err := store.Open(context.Background(), store.Options{URI: db.URI(), Database: name, ConnectTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	return db, st, func() { t.Cleanup(start().Stop) }
}

// TestDatabaseOutageAndRecovery stops the database under a running server:
// requests fail fast with 503, readiness says so, and when the database is
// back the service recovers by itself, with every acknowledged write there.
func TestDatabaseOutageAndRecovery(t *testing.T) {
	db, st, restart := ownStore(t, "outage")
	e := startEnv(t, st.DB, st.Ping)
	o := e.signUp("alpha")
	id := e.postDoc(o, `{"kept":true}`)

	db.Stop()
	for _, c := range []struct{ method, path, token string }{
		{"GET", "/ready", ""},
		{"GET", "/org/get?organization_name=alpha", ""},
		{"GET", "/org/documents/" + id, o.token},
		{"POST", "/org/documents", o.token},
	} {
		start := time.Now()
		r := e.call(c.method, c.path, c.token, map[string]any{"late": true})
		expect(t, r, http.StatusServiceUnavailable, "database unavailable")
		if r.header.Get("Retry-After") == "" {
			t.Fatalf("%s %s: 503 without Retry-After", c.method, c.path)
		}
		t.Logf("%s %s answered 503 in %s", c.method, c.path, time.Since(start).Round(time.Millisecond))
	}
	r := e.call("POST", "/admin/login", "", map[string]any{"email": o.email, "password": o.password})
	expect(t, r, http.StatusServiceUnavailable, "database unavailable")

	restart()
	deadline := time.Now().Add(30 * time.Second)
	for e.call("GET", "/ready", "", nil).status != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the service did not recover within 30 s of the database's return")
		}
		time.Sleep(100 * time.Millisecond)
	}
	r = e.call("GET", "/org/documents/"+id, o.token, nil)
	expect(t, r, http.StatusOK, "")
	if rawData(t, r.raw) != `{"kept":true}` {
		t.Fatalf("after recovery: %s", r.raw)
	}
	e.login(o.email, o.password)
	e.postDoc(o, `{"after":true}`)
}

// hangUp sends a request as id and hangs up once ready says the server
// holds it; it returns the server's log line for the request.
func (e *env) hangUp(id, method, path string, body []byte, ready func() bool) map[string]any {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, strings.NewReader(string(body)))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-ID", id)
	done := make(chan error, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
			err = errors.New("answered " + res.Status)
		}
		done <- err
	}()
	waitFor(e.t, "the server to hold "+id, ready)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		e.t.Fatalf("%s: %v, want the client's own cancellation", id, err)
	}
	var line map[string]any
	waitFor(e.t, "the log line of "+id, func() bool { line = e.findLine(id); return line != nil })
	if strings.Contains(e.logs.String(), "database unavailable") {
		e.t.Fatalf("a cancelled request is logged as database unavailable: %s", e.logs.String())
	}
	return line
}

// findLine is the log line of request id, or nil.
func (e *env) findLine(id string) map[string]any {
	for _, line := range strings.Split(e.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "request" && rec["request_id"] == id {
			return rec
		}
	}
	return nil
}

// waitFor polls cond for up to 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// expectCancelled checks that the request of line was logged and counted
// as cancelled (499, nginx's "client closed request"), not as a failure.
func (e *env) expectCancelled(line map[string]any, route, method string) {
	e.t.Helper()
	if line["status"] != 499.0 || line["level"] != "INFO" {
		e.t.Fatalf("a cancelled request is logged as %v", line)
	}
	counted := string(e.call("GET", "/metrics", "", nil).raw)
	series := `orgsvc_http_requests_total{method="` + method + `",route="` + route + `",status="`
	for _, status := range []string{"500", "503"} {
		if strings.Contains(counted, series+status+`"}`) {
			e.t.Fatalf("%s %s counted as %s:\n%s", method, route, status, counted)
		}
	}
	if !strings.Contains(counted, series+`499"} 1`+"\n") {
		e.t.Fatalf("%s %s not counted once as 499:\n%s", method, route, counted)
	}
}

// TestCancelledWhileWaitingForBcrypt: a login whose client hangs up while
// it waits for the one bcrypt worker is logged and counted as cancelled.
func TestCancelledWhileWaitingForBcrypt(t *testing.T) {
	// Time for the hashes under the race detector too.
	e := newEnv(t, func(c *config.Config) { c.BcryptWorkers, c.BcryptCost, c.RequestTimeout = 1, 10, 2*time.Minute })
	o := e.signUp("alpha")
	body, _ := json.Marshal(map[string]string{"email": o.email, "password": o.password})
	// Five logins keep the worker busy for a while (the pool is FIFO).
	const holding = 5
	var holders sync.WaitGroup
	var done atomic.Int64
	for range holding {
		holders.Go(func() {
			if status, raw, err := e.send("POST", "/admin/login", "", body); err != nil || status != http.StatusOK {
				t.Errorf("holder login: %d %s %v", status, raw, err)
			}
			done.Add(1)
		})
	}
	waitFor(t, "logins waiting for the worker", func() bool { return e.passwords.Waiting() >= 2 })
	// The pool holds one more than the holders not done: the cancelled
	// login waits (a holder leaves the pool before it counts as done).
	onPool := func() int64 { return int64(e.passwords.Running() + e.passwords.Waiting()) }
	line := e.hangUp("cancelled-login", "POST", "/admin/login", body, func() bool {
		return onPool() == holding+1-done.Load() && e.passwords.Waiting() > 0
	})
	holders.Wait()
	e.expectCancelled(line, "/admin/login", "POST")
	if strings.Contains(e.logs.String(), `"request failed"`) {
		t.Fatalf("a cancelled login is logged as a failure: %s", e.logs.String())
	}
}

// TestCancelledWhileTheDatabaseIsDown: with the database stopped, a
// request waits for it; one whose client hangs up meanwhile is cancelled,
// not "database unavailable".
func TestCancelledWhileTheDatabaseIsDown(t *testing.T) {
	db, st, _ := ownStore(t, "cancel")
	e := startEnv(t, st.DB, st.Ping)
	e.signUp("alpha")
	db.Stop()
	// The first request after the stop finds the connection broken; the
	// next ones wait for the database to be selectable again.
	for st.Ping(context.Background()) == nil {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	line := e.hangUp("cancelled-get", "GET", "/org/get?organization_name=alpha", nil, func() bool { return time.Since(start) > 300*time.Millisecond })
	e.expectCancelled(line, "/org/get", "GET")
}

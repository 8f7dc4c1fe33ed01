package api_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/orgsvc/orgsvc/internal/store"
)

// TestDatabaseOutageAndRecovery stops the database under a running server:
// requests fail fast with 503, readiness says so, and when the database is
// back the service recovers by itself, with every acknowledged write there.
func TestDatabaseOutageAndRecovery(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := store.StartEmbedded(dir, addr, quiet)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), store.Options{URI: db.URI(), Database: "outage", ConnectTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
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

	db, err = store.StartEmbedded(dir, addr, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Stop)
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

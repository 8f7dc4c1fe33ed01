package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orgsvc/orgsvc/internal/app"
)

// TestShutdownFinishesRequestsInFlight stops the service (as SIGTERM does:
// main turns the signal into Run's context ending) while logins and
// document writes are in flight. Every request that was accepted gets its
// answer, and every acknowledged write is there after a restart.
func TestShutdownFinishesRequestsInFlight(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "state")
	run := func() (*process, string) {
		addr := freeAddr(t)
		return start(t, "http://"+addr, environ(t, map[string]string{
			"DATA_DIR":               dataDir,
			"BCRYPT_COST":            "12", // logins take a while: they are the slow requests
			"LOGIN_RATE_PER_ADDRESS": "0",
			"LOGIN_RATE_PER_EMAIL":   "0",
			"HTTP_ADDR":              addr,
		})), addr
	}
	p, addr := run()

	res := p.call(t, "POST", "/org/create", "", map[string]any{"organization_name": "acme", "email": "a@acme.example.com", "password": "correct-horse-1"})
	if res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.raw)
	}
	token := p.call(t, "POST", "/admin/login", "", map[string]any{"email": "a@acme.example.com", "password": "correct-horse-1"}).body["access_token"].(string)

	type result struct {
		status int
		id     string
		err    error
	}
	results := make(chan result, 64)
	var wg sync.WaitGroup
	send := func(path, token, body string) {
		defer wg.Done()
		req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			results <- result{err: err}
			return
		}
		defer res.Body.Close()
		var out struct{ ID string }
		raw, _ := io.ReadAll(res.Body)
		_ = json.Unmarshal(raw, &out)
		results <- result{status: res.StatusCode, id: out.ID}
	}
	for i := range 8 {
		wg.Add(2)
		go send("/admin/login", "", `{"email":"a@acme.example.com","password":"correct-horse-1"}`)
		go send("/org/documents", token, `{"n":`+string(rune('0'+i))+`}`)
	}
	time.Sleep(100 * time.Millisecond) // let them in
	code := p.stop(t)
	wg.Wait()
	close(results)
	if code != 0 {
		t.Fatalf("exit status %d\n%s", code, p.stderr.String())
	}
	var acked []string
	var answered, refused int
	for r := range results {
		switch {
		case r.err != nil:
			refused++ // never accepted: the listener had closed
		case r.status == http.StatusOK || r.status == http.StatusCreated:
			answered++
			if r.id != "" {
				acked = append(acked, r.id)
			}
		default:
			t.Fatalf("a request in flight got %d", r.status)
		}
	}
	if answered == 0 {
		t.Fatal("no request was in flight at shutdown")
	}
	t.Logf("%d requests answered during shutdown, %d refused at the door", answered, refused)
	if !strings.Contains(p.stderr.String(), "database closed") {
		t.Fatalf("the database was not closed cleanly:\n%s", p.stderr.String())
	}

	p, _ = run()
	token = p.call(t, "POST", "/admin/login", "", map[string]any{"email": "a@acme.example.com", "password": "correct-horse-1"}).body["access_token"].(string)
	for _, id := range acked {
		if r := p.call(t, "GET", "/org/documents/"+id, token, nil); r.status != http.StatusOK {
			t.Fatalf("acknowledged document %s lost: %d", id, r.status)
		}
	}
}

// TestStartupGivesUpOnAnUnreachableDatabase: with MONGO_URI pointing at
// nothing, start-up retries with backoff for DB_CONNECT_TIMEOUT, then exits
// non-zero with a clear message.
func TestStartupGivesUpOnAnUnreachableDatabase(t *testing.T) {
	t.Parallel()
	env := environ(t, map[string]string{"MONGO_URI": "mongodb://" + freeAddr(t) + "/", "JWT_SECRET": strings.Repeat("s", 32),
		"DB_CONNECT_TIMEOUT": "3s", "HTTP_ADDR": freeAddr(t)})
	var stderr bytes.Buffer
	start := time.Now()
	code := app.Run(context.Background(), []string{"orgsvc"}, env, io.Discard, &stderr)
	if code == 0 {
		t.Fatal("Run succeeded without a database")
	}
	if !strings.Contains(stderr.String(), "database unreachable after 3s") {
		t.Fatalf("stderr: %s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "retrying") {
		t.Fatalf("no retries logged: %s", stderr.String())
	}
	t.Logf("gave up after %s", time.Since(start).Round(time.Millisecond))
}

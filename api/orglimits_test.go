package api_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/orgsvc/orgsvc/api"
	"github.com/orgsvc/orgsvc/internal/config"
	"github.com/orgsvc/orgsvc/internal/model"
)

// TestOrgRateLimit: past its burst, an organization's requests get 429
// with Retry-After, whichever member sends them; another organization is
// not affected.
func TestOrgRateLimit(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.OrgRatePerSecond, c.OrgRateBurst = 0.5, 3 })
	busy, quiet := e.signUp("Busy Rate"), e.signUp("Quiet Rate")
	statuses := map[int]int{}
	var limited response
	for range 6 {
		start := time.Now()
		r := e.call("GET", "/org/documents", busy.token, nil)
		statuses[r.status]++
		if r.status == http.StatusTooManyRequests {
			limited = r
			// A refusal is held before it is answered.
			if held := time.Since(start); held < api.RefusalHold {
				t.Fatalf("a refusal answered after %s, want at least %s", held, api.RefusalHold)
			}
		}
	}
	if statuses[http.StatusOK] != 3 || statuses[http.StatusTooManyRequests] != 3 {
		t.Fatalf("statuses %v, want 3 answered and 3 refused", statuses)
	}
	if ra, err := strconv.Atoi(limited.header.Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
		t.Fatalf("Retry-After %q", limited.header.Get("Retry-After"))
	}
	expect(t, limited, http.StatusTooManyRequests, "Too many requests; retry later")
	expect(t, e.call("GET", "/org/documents", quiet.token, nil), http.StatusOK, "")
	// The usage counts the organization's requests.
	u := e.call("GET", "/org/usage", quiet.token, nil)
	expect(t, u, http.StatusOK, "")
	if rps, _ := u.obj()["requests_per_second"].(float64); rps <= 0 {
		t.Fatalf("usage: %s", u.raw)
	}
}

// TestOrgRateQueues: a request just past the bucket waits for its turn
// (up to api.QueueMax) instead of being refused, so one client in a loop
// is spread out to the rate; many at once are refused past that wait.
func TestOrgRateQueues(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.OrgRatePerSecond, c.OrgRateBurst = 20, 1 })
	o := e.signUp("Queued Rate")
	start := time.Now()
	for i := range 5 {
		if r := e.call("GET", "/org/documents", o.token, nil); r.status != http.StatusOK {
			t.Fatalf("request %d in a loop: %d %s, want 200 after a wait", i, r.status, r.raw)
		}
	}
	// One token every 50 ms: the last four waited for theirs.
	if took := time.Since(start); took < 4*50*time.Millisecond-10*time.Millisecond {
		t.Fatalf("five requests at 20/s with a burst of 1 took %s: not spread out", took)
	}
	statuses := make(chan int, 8)
	for range 8 {
		go func() { statuses <- e.call("GET", "/org/documents", o.token, nil).status }()
	}
	got := map[int]int{}
	for range 8 {
		got[<-statuses]++
	}
	// At most QueueMax of turns (two or three) are handed out ahead.
	if got[http.StatusOK] < 1 || got[http.StatusOK] > 4 || got[http.StatusTooManyRequests] != 8-got[http.StatusOK] {
		t.Fatalf("eight at once: %v, want a few answered and the rest 429", got)
	}
}

// TestOrgStorageQuota: a create past TENANT_MAX_DOCUMENTS, or a write past
// an organization's own byte quota, is refused with 403 and writes
// nothing; deleting makes room again.
func TestOrgStorageQuota(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.TenantMaxDocuments = 2 })
	o := e.signUp("Quota Docs")
	var ids []string
	for range 2 {
		r := e.call("POST", "/org/documents", o.token, map[string]any{"n": 1})
		expect(t, r, http.StatusCreated, "")
		ids = append(ids, r.obj()["id"].(string))
	}
	expect(t, e.call("POST", "/org/documents", o.token, map[string]any{"n": 3}), http.StatusForbidden, "Organization storage quota exceeded")
	list := e.call("GET", "/org/documents", o.token, nil)
	if items, _ := list.obj()["items"].([]any); len(items) != 2 {
		t.Fatalf("after the refusal: %s", list.raw)
	}
	u := e.call("GET", "/org/usage", o.token, nil)
	if lim, _ := u.obj()["limits"].(map[string]any); lim["max_documents"] != float64(2) {
		t.Fatalf("usage: %s", u.raw)
	}
	expect(t, e.call("DELETE", "/org/documents/"+ids[0], o.token, nil), http.StatusNoContent, "")
	expect(t, e.call("POST", "/org/documents", o.token, map[string]any{"n": 4}), http.StatusCreated, "")

	// An organization's own limit: no documents quota, a byte quota below
	// what it stores.
	zero, one := int64(0), int64(1)
	org, err := e.orgs.Lookup(context.Background(), o.name)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.orgs.SetOrgLimits(context.Background(), org, &model.OrgLimits{MaxDocuments: &zero, MaxBytes: &one}, "test"); err != nil {
		t.Fatal(err)
	}
	tok := e.login(o.email, o.password) // a fresh check of the organization
	expect(t, e.call("POST", "/org/documents", tok, map[string]any{"n": 5}), http.StatusForbidden, "Organization storage quota exceeded")
	// A write that does not grow the data passes.
	expect(t, e.call("PUT", "/org/documents/"+ids[1], tok, map[string]any{"n": 0}), http.StatusOK, "")
}

// TestOrgSuspended: a suspended organization answers 403 to its members'
// requests and logins, keeps its data, and works again once resumed.
func TestOrgSuspended(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("Suspended Co")
	other := e.signUp("Running Co")
	expect(t, e.call("POST", "/org/documents", o.token, map[string]any{"keep": true}), http.StatusCreated, "")
	ctx := context.Background()
	org, err := e.orgs.Lookup(ctx, o.name)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.orgs.Suspend(ctx, org, true, "test"); err != nil {
		t.Fatal(err)
	}
	expect(t, e.call("GET", "/org/documents", o.token, nil), http.StatusForbidden, "Organization suspended")
	expect(t, e.call("POST", "/admin/login", "", map[string]any{"email": o.email, "password": o.password}), http.StatusForbidden, "Organization suspended")
	expect(t, e.call("GET", "/org/documents", other.token, nil), http.StatusOK, "")
	org, _ = e.orgs.Lookup(ctx, o.name)
	if err := e.orgs.Suspend(ctx, org, false, "test"); err != nil {
		t.Fatal(err)
	}
	list := e.call("GET", "/org/documents", e.login(o.email, o.password), nil)
	if items, _ := list.obj()["items"].([]any); len(items) != 1 {
		t.Fatalf("after the suspension: %s", list.raw)
	}
}

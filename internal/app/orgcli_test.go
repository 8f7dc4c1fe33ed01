package app_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestOrgCommands runs orgsvc org list, suspend, resume and limits as an
// operator would, on a stopped server's data, and checks what the server
// then answers.
func TestOrgCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := baseEnv("DATA_DIR="+filepath.Join(dir, "data"), "BCRYPT_COST=4", "LOGIN_RATE_PER_EMAIL=0", "CREATE_RATE_PER_ADDRESS=0")
	addr := freeAddr(t)
	s := runServer(t, dir, addr, env)
	for _, name := range []string{"Alpha Ops", "Beta Ops", "Gamma Ops"} {
		mustStatus(t, s.call(t, "POST", "/org/create", "", map[string]any{"organization_name": name, "email": "admin@" + strings.ToLower(strings.Fields(name)[0]) + ".example.com", "password": "ops-pass-1"}), http.StatusCreated)
	}
	tok := login(t, s, "admin@alpha.example.com", "ops-pass-1")
	for range 2 {
		mustStatus(t, s.call(t, "POST", "/org/documents", tok, map[string]any{"n": 1}), http.StatusCreated)
	}
	s.stop(t)

	run := func(want int, args ...string) string {
		t.Helper()
		code, out, errOut := runOrgsvc(t, dir, env, args...)
		if code != want {
			t.Fatalf("orgsvc %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, errOut)
		}
		return out + errOut
	}
	var page struct {
		Items []struct {
			Name      string `json:"organization_name"`
			Documents int64  `json:"documents"`
			Suspended bool   `json:"suspended"`
		} `json:"items"`
		Next *string `json:"next"`
	}
	if err := json.Unmarshal([]byte(run(0, "org", "list", "--limit", "2", "--json")), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 || page.Items[0].Name != "Alpha Ops" || page.Items[0].Documents != 2 || page.Next == nil || *page.Next != "Beta Ops" {
		t.Fatalf("first page: %+v", page)
	}
	page.Items, page.Next = nil, nil
	if err := json.Unmarshal([]byte(run(0, "org", "list", "--after", "Beta Ops", "--json")), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].Name != "Gamma Ops" || page.Next != nil {
		t.Fatalf("second page: %+v", page)
	}
	if out := run(0, "org", "list", "--prefix", "beta"); !strings.Contains(out, "Beta Ops") || strings.Contains(out, "Alpha Ops") {
		t.Fatalf("list --prefix beta:\n%s", out)
	}

	run(0, "org", "suspend", "--name", "Alpha Ops")
	run(0, "org", "limits", "--name", "Beta Ops", "--max-documents", "1")
	var limits struct {
		Limits struct {
			MaxDocuments int64 `json:"max_documents"`
		} `json:"limits"`
	}
	if err := json.Unmarshal([]byte(run(0, "org", "limits", "--name", "Beta Ops", "--json")), &limits); err != nil || limits.Limits.MaxDocuments != 1 {
		t.Fatalf("limits --json: %+v %v", limits, err)
	}
	s = runServer(t, dir, addr, env)
	r := s.call(t, "POST", "/admin/login", "", map[string]any{"email": "admin@alpha.example.com", "password": "ops-pass-1"})
	if r.status != http.StatusForbidden || r.body["detail"] != "Organization suspended" {
		t.Fatalf("login to the suspended organization: %d %s", r.status, r.raw)
	}
	beta := login(t, s, "admin@beta.example.com", "ops-pass-1")
	mustStatus(t, s.call(t, "POST", "/org/documents", beta, map[string]any{"n": 1}), http.StatusCreated)
	mustStatus(t, s.call(t, "POST", "/org/documents", beta, map[string]any{"n": 2}), http.StatusForbidden)
	s.stop(t)

	run(0, "org", "resume", "--name", "Alpha Ops")
	run(0, "org", "limits", "--name", "Beta Ops", "--reset")
	s = runServer(t, dir, addr, env)
	login(t, s, "admin@alpha.example.com", "ops-pass-1")
	mustStatus(t, s.call(t, "POST", "/org/documents", login(t, s, "admin@beta.example.com", "ops-pass-1"), map[string]any{"n": 2}), http.StatusCreated)
	s.stop(t)

	// Errors: usage is 2, a missing organization 1; --help is 0.
	run(2, "org")
	run(2, "org", "nope")
	run(2, "org", "suspend")
	run(2, "org", "list", "--limit", "0")
	if out := run(1, "org", "suspend", "--name", "No Such Org"); !strings.Contains(out, "organization not found") {
		t.Fatalf("suspend of a missing organization:\n%s", out)
	}
	if out := run(0, "org", "--help"); !strings.Contains(out, "orgsvc org limits") {
		t.Fatalf("org --help:\n%s", out)
	}
	run(0, "org", "list", "--help")
	// The audit log has the operators' changes, by the system.
	got := actions(auditLogs(t, dir, env))
	if got["org.suspended"] != 1 || got["org.resumed"] != 1 || got["org.limits_changed"] != 2 {
		t.Fatalf("audit events: %v", got)
	}
}

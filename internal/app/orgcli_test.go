package app_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
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
		return runWant(t, dir, env, want, args...)
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

// TestOrgDeletedAndRestore runs orgsvc org deleted and restore on a
// stopped server's data: a restore under a new name when the old one was
// taken meanwhile, its documents and members back, and the refusals.
func TestOrgDeletedAndRestore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := baseEnv("DATA_DIR="+filepath.Join(dir, "data"), "BCRYPT_COST=4", "LOGIN_RATE_PER_EMAIL=0", "CREATE_RATE_PER_ADDRESS=0")
	addr := freeAddr(t)
	s := runServer(t, dir, addr, env)
	create := func(name, email string) {
		t.Helper()
		mustStatus(t, s.call(t, "POST", "/org/create", "", map[string]any{"organization_name": name, "email": email, "password": "ops-pass-1"}), http.StatusCreated)
	}
	create("Binned Ops", "admin@binned.example.com")
	tok := login(t, s, "admin@binned.example.com", "ops-pass-1")
	for n := range 2 {
		mustStatus(t, s.call(t, "POST", "/org/documents", tok, map[string]any{"n": n}), http.StatusCreated)
	}
	docs := listIDs(t, s, tok)
	inv := s.call(t, "POST", "/org/invitations", tok, map[string]any{"email": "ana@binned.example.com", "role": "member"})
	mustStatus(t, inv, http.StatusCreated)
	mustStatus(t, s.call(t, "POST", "/invitations/accept", "", map[string]any{"token": inv.body["token"], "password": "ana-pass-1"}), http.StatusOK)
	mustStatus(t, s.call(t, "DELETE", "/org/delete", tok, map[string]any{"organization_name": "Binned Ops"}), http.StatusOK)
	mustStatus(t, s.call(t, "GET", "/org/get?organization_name=Binned+Ops", "", nil), http.StatusNotFound)
	create("Binned Ops", "new@binned.example.com") // the name is free at once, and taken
	create("Lonely Ops", "admin@lonely.example.com")
	lonely := login(t, s, "admin@lonely.example.com", "ops-pass-1")
	mustStatus(t, s.call(t, "DELETE", "/org/delete", lonely, map[string]any{"organization_name": "Lonely Ops"}), http.StatusOK)
	create("Taker Ops", "admin@lonely.example.com") // its only owner's e-mail
	s.stop(t)

	run := func(want int, args ...string) string {
		t.Helper()
		return runWant(t, dir, env, want, args...)
	}
	var deleted struct {
		Items []struct {
			ID        string    `json:"id"`
			Name      string    `json:"organization_name"`
			DeletedAt time.Time `json:"deleted_at"`
			Deadline  time.Time `json:"deadline"`
			Documents int64     `json:"documents"`
			Members   int       `json:"members"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(run(0, "org", "deleted", "--json")), &deleted); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, d := range deleted.Items {
		ids[d.Name] = d.ID
	}
	if len(deleted.Items) != 2 || deleted.Items[1].Name != "Binned Ops" || deleted.Items[1].Documents != 2 || deleted.Items[1].Members != 2 ||
		deleted.Items[1].Deadline.Sub(deleted.Items[1].DeletedAt) != 168*time.Hour {
		t.Fatalf("org deleted: %+v", deleted)
	}
	if out := run(0, "org", "deleted"); !strings.Contains(out, "Binned Ops") || !strings.Contains(out, "DEADLINE") {
		t.Fatalf("org deleted:\n%s", out)
	}

	// Refusals: usage is 2; a taken name, a missing owner, an unknown id 1.
	run(2, "org", "restore")
	run(2, "org", "restore", "--id", "nope")
	if out := run(1, "org", "restore", "--id", "6b0f311c592c883f6445616e"); !strings.Contains(out, "no restorable deleted organization") {
		t.Fatalf("restore of an unknown id:\n%s", out)
	}
	if out := run(1, "org", "restore", "--id", ids["Binned Ops"]); !strings.Contains(out, "--name") {
		t.Fatalf("restore under a taken name:\n%s", out)
	}
	if out := run(1, "org", "restore", "--id", ids["Lonely Ops"]); !strings.Contains(out, "--owner") {
		t.Fatalf("restore with no owner:\n%s", out)
	}
	if out := run(1, "org", "restore", "--id", ids["Lonely Ops"], "--owner", "nobody@lonely.example.com"); !strings.Contains(out, "no account") {
		t.Fatalf("restore with an unknown owner:\n%s", out)
	}
	run(0, "org", "restore", "--help")

	var restored struct {
		ID        string `json:"id"`
		Name      string `json:"organization_name"`
		Documents int64  `json:"documents"`
		Members   []struct {
			Email     string `json:"email"`
			Role      string `json:"role"`
			Recreated bool   `json:"recreated"`
		} `json:"members"`
		LeftOut []struct{} `json:"left_out"`
	}
	if err := json.Unmarshal([]byte(run(0, "org", "restore", "--id", ids["Binned Ops"], "--name", "Binned Again", "--json")), &restored); err != nil {
		t.Fatal(err)
	}
	if restored.ID != ids["Binned Ops"] || restored.Name != "Binned Again" || restored.Documents != 2 || len(restored.Members) != 2 || !restored.Members[0].Recreated || len(restored.LeftOut) != 0 {
		t.Fatalf("org restore --json: %+v", restored)
	}
	if out := run(0, "org", "restore", "--id", ids["Lonely Ops"], "--owner", "admin@lonely.example.com"); !strings.Contains(out, `restored "Lonely Ops"`) {
		t.Fatalf("restore with --owner:\n%s", out)
	}
	if out := run(0, "org", "deleted"); strings.Contains(out, "Ops") {
		t.Fatalf("org deleted after the restores:\n%s", out)
	}
	if code, out := runCheck(t, dir, env); code != 0 {
		t.Fatalf("check after the restores: exit %d\n%s", code, out)
	}

	// The restored organization works through the API, with its documents.
	s = runServer(t, dir, addr, env)
	got := s.call(t, "GET", "/org/get?organization_name=Binned+Again", "", nil)
	mustStatus(t, got, http.StatusOK)
	if got.body["_id"] != ids["Binned Ops"] || got.body["collection_name"] != "org_binned_again" {
		t.Fatalf("the restored organization: %s", got.raw)
	}
	tok = login(t, s, "admin@binned.example.com", "ops-pass-1")
	if ids := listIDs(t, s, tok); !slices.Equal(ids, docs) {
		t.Fatalf("documents after the restore: %v, want %v", ids, docs)
	}
	mustStatus(t, s.call(t, "POST", "/org/documents", login(t, s, "ana@binned.example.com", "ana-pass-1"), map[string]any{"n": 9}), http.StatusCreated)
	s.stop(t)
	if got := actions(auditLogs(t, dir, env)); got["org.restored"] != 2 {
		t.Fatalf("audit events: %v, want org.restored twice", got)
	}
}

// runWant runs the binary with args, fails unless it exits want, and
// returns what it wrote to stdout and stderr.
func runWant(t *testing.T, dir string, env []string, want int, args ...string) string {
	t.Helper()
	code, out, errOut := runOrgsvc(t, dir, env, args...)
	if code != want {
		t.Fatalf("orgsvc %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, errOut)
	}
	return out + errOut
}

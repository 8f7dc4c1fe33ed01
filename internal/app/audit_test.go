package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/store"
)

// auditEvent is an exported event, as much as the tests read.
type auditEvent struct {
	Seq     int64  `json:"seq"`
	OrgID   string `json:"org_id"`
	Action  string `json:"action"`
	Changes map[string]struct {
		From *string `json:"from"`
		To   *string `json:"to"`
	} `json:"changes"`
}

var verifiedLog = regexp.MustCompile(`(?m)^ok: organization ([0-9a-f]{24}): (\d+) events$`)

// auditLogs verifies every audit log with `orgsvc audit verify` (failing
// the test at a broken link) and exports each with `orgsvc audit export`.
func auditLogs(t *testing.T, dir string, env []string) map[string][]auditEvent {
	t.Helper()
	code, out, errOut := runOrgsvc(t, dir, env, "audit", "verify")
	if code != 0 {
		t.Fatalf("orgsvc audit verify: exit %d\n%s%s", code, out, errOut)
	}
	logs := map[string][]auditEvent{}
	for _, m := range verifiedLog.FindAllStringSubmatch(out, -1) {
		code, export, errOut := runOrgsvc(t, dir, env, "audit", "export", "--org", m[1])
		if code != 0 {
			t.Fatalf("orgsvc audit export --org %s: exit %d\n%s", m[1], code, errOut)
		}
		var evs []auditEvent
		for line := range strings.Lines(export) {
			var ev auditEvent
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("export line %q: %v", line, err)
			}
			evs = append(evs, ev)
		}
		if fmt.Sprint(len(evs)) != m[2] {
			t.Fatalf("log %s: verified %s events, exported %d", m[1], m[2], len(evs))
		}
		logs[m[1]] = evs
	}
	return logs
}

// actions counts the events of every log by action.
func actions(logs map[string][]auditEvent) map[string]int {
	n := map[string]int{}
	for _, evs := range logs {
		for _, ev := range evs {
			n[ev.Action]++
		}
	}
	return n
}

// signedUp runs the program on a data directory of its own and signs up
// one organization; it returns the directory, the environment and the
// server.
func signedUp(t *testing.T, name, email, password string) (string, []string, *server) {
	t.Helper()
	dir := t.TempDir()
	env := baseEnv("DATA_DIR="+filepath.Join(dir, "data"), "BCRYPT_COST=4", "LOGIN_RATE_PER_EMAIL=0")
	s := runServer(t, dir, freeAddr(t), env)
	mustStatus(t, s.call(t, "POST", "/org/create", "", map[string]any{"organization_name": name, "email": email, "password": password}), http.StatusCreated)
	return dir, env, s
}

// TestAuditVerifyFindsAnEdit: one field of one event edited by hand in
// the database is what `orgsvc audit verify` reports, with exit status 1,
// and `orgsvc check` reports it too.
func TestAuditVerifyFindsAnEdit(t *testing.T) {
	t.Parallel()
	dir, env, s := signedUp(t, "Edited", "admin@edited.example.com", "edited-pass-1")
	for range 3 {
		login(t, s, "admin@edited.example.com", "edited-pass-1")
	}
	s.stop(t)
	logs := auditLogs(t, dir, env)
	if len(logs) != 1 {
		t.Fatalf("%d logs, want 1", len(logs))
	}
	var org string
	for org = range logs {
	}
	if got := actions(logs); got["org.created"] != 1 || got["auth.login_succeeded"] != 3 {
		t.Fatalf("events: %v", got)
	}

	// The edit, through the store itself.
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{Database: "org_master", DataDir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := bson.ObjectIDFromHex(org)
	// The log is in the organization's tenant database, the first one.
	res, err := st.Client.Database(model.TenantDatabase("org_master", 0)).Collection(model.AuditCollection).UpdateOne(ctx, bson.D{{Key: "_id", Value: model.EventKey(id, 3)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "context.client_address", Value: "198.51.100.1"}}}})
	if err != nil || res.ModifiedCount != 1 {
		t.Fatalf("edit: %+v %v", res, err)
	}
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}

	code, out, _ := runOrgsvc(t, dir, env, "audit", "verify")
	if code != 1 || !strings.Contains(out, "broken: organization "+org+": event 3: hash is") {
		t.Fatalf("verify after the edit: exit %d\n%s", code, out)
	}
	code, out, _ = runOrgsvc(t, dir, env, "audit", "verify", "--org", "Edited")
	if code != 1 || !strings.Contains(out, "event 3") {
		t.Fatalf("verify --org after the edit: exit %d\n%s", code, out)
	}
	if code, out := runCheck(t, dir, env); code != 1 || !strings.Contains(out, "broken-audit-chain") {
		t.Fatalf("check after the edit: exit %d\n%s", code, out)
	}
}

// TestAuditTwoProcesses: two processes on one store writing events for
// one organization at once (logins, each an event) give one gapless chain
// holding every one of them.
func TestAuditTwoProcesses(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	mongoAddr := freeAddr(t)
	common := []string{"JWT_SECRET=" + twoProcSecret, "BCRYPT_COST=4", "LOGIN_RATE_PER_ADDRESS=0", "LOGIN_RATE_PER_EMAIL=0"}
	envA := baseEnv(append([]string{"DATA_DIR=" + dataDir, "EMBEDDED_MONGO_ADDR=" + mongoAddr}, common...)...)
	a := runServer(t, t.TempDir(), freeAddr(t), envA)
	b := runServer(t, t.TempDir(), freeAddr(t), baseEnv(append([]string{"MONGO_URI=mongodb://" + mongoAddr + "/"}, common...)...))
	mustStatus(t, a.call(t, "POST", "/org/create", "", map[string]any{"organization_name": "Busy", "email": "admin@busy.example.com", "password": "busy-pass-1"}), http.StatusCreated)

	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := range 8 {
		s := []*server{a, b}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				r, err := try(s.base, "POST", "/admin/login", "", map[string]any{"email": "admin@busy.example.com", "password": "busy-pass-1"})
				if err == nil && r.status == http.StatusOK {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	b.stop(t)
	a.stop(t)
	if ok != 80 {
		t.Fatalf("%d of 80 logins succeeded", ok)
	}
	env := baseEnv("DATA_DIR="+dataDir, "BCRYPT_COST=4")
	logs := auditLogs(t, t.TempDir(), env) // verifies the chain
	if got := actions(logs); got["auth.login_succeeded"] != 80 || got["org.created"] != 1 {
		t.Fatalf("events: %v, want 80 logins and the sign-up", got)
	}
}

// TestAuditOfADeletedOrganization: a deleted organization's log stays,
// ending with org.deleted, and is exported by the organization's id.
func TestAuditOfADeletedOrganization(t *testing.T) {
	t.Parallel()
	dir, env, s := signedUp(t, "Gone", "admin@gone.example.com", "gone-pass-1")
	token := login(t, s, "admin@gone.example.com", "gone-pass-1")
	mustStatus(t, s.call(t, "DELETE", "/org/delete", token, map[string]any{"organization_name": "Gone"}), http.StatusOK)
	s.stop(t)

	logs := auditLogs(t, dir, env)
	if len(logs) != 1 {
		t.Fatalf("%d logs, want the deleted organization's", len(logs))
	}
	for _, evs := range logs {
		if len(evs) != 3 || evs[0].Action != "org.created" || evs[2].Action != "org.deleted" {
			t.Fatalf("the deleted organization's log: %+v", evs)
		}
	}
	if code, _, errOut := runOrgsvc(t, dir, env, "audit", "export", "--org", "Gone"); code != 1 || !strings.Contains(errOut, "no organization") {
		t.Fatalf("export by the deleted name: exit %d %s", code, errOut)
	}
	if code, _, errOut := runOrgsvc(t, dir, env, "audit", "export"); code != 2 || !strings.Contains(errOut, "--org is required") {
		t.Fatalf("export without --org: exit %d %s", code, errOut)
	}
	if code, _, errOut := runOrgsvc(t, dir, env, "audit", "export", "--org", "Gone", "--since", "yesterday"); code != 2 || !strings.Contains(errOut, "RFC 3339") {
		t.Fatalf("export with a bad --since: exit %d %s", code, errOut)
	}
}

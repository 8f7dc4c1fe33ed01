package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orgsvc/orgsvc/internal/failpoint"
)

// TestCrashMatrix kills the service at every failpoint of the organization
// lifecycle, in the middle of the operation a client asked for, and starts
// it again. After the restart the database is consistent (orgsvc check is
// clean), nothing acknowledged before the crash is lost, and the client's
// retry of its request succeeds. Every other case settles the interrupted
// operation with `orgsvc check --repair` before the restart instead.
func TestCrashMatrix(t *testing.T) {
	t.Parallel()
	for i, fp := range failpoint.Names {
		if strings.HasPrefix(fp, "keyed-create:") {
			t.Run(fp, func(t *testing.T) { crashKeyedCreate(t, fp) })
			continue
		}
		if strings.HasPrefix(fp, "purge:") || strings.HasPrefix(fp, "restore:") {
			t.Run(fp, func(t *testing.T) { t.Parallel(); crashTrash(t, fp, i%2 == 1) })
			continue
		}
		t.Run(fp, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			env := baseEnv("DATA_DIR="+filepath.Join(dir, "data"), "BCRYPT_COST=4",
				"CREATE_RATE_PER_ADDRESS=0", "LOGIN_RATE_PER_ADDRESS=0", "LOGIN_RATE_PER_EMAIL=0")
			if fp == "delete:before-drop" || fp == "delete:after-drop" {
				env = append(env, "ORG_DELETE_RETENTION=0") // dropped at once; the others keep a restore window
			}
			addr := freeAddr(t)
			kind, _, _ := strings.Cut(fp, ":")
			create := map[string]any{"organization_name": "Alpha Co", "email": "admin@alpha.example.com", "password": "alpha-pass-1"}

			// What the operation acts on, made before the crash.
			var token, invitation, second string
			var docs []string
			var export []byte // the organization's, for an import
			if kind != "create" {
				s := runServer(t, dir, addr, env)
				mustStatus(t, s.call(t, "POST", "/org/create", "", create), http.StatusCreated)
				token = login(t, s, "admin@alpha.example.com", "alpha-pass-1")
				for n := range 3 {
					r := s.call(t, "POST", "/org/documents", token, map[string]any{"n": n})
					mustStatus(t, r, http.StatusCreated)
					docs = append(docs, r.body["id"].(string))
				}
				// A second owner (member), or an invitation to accept.
				if kind == "member" || kind == "accept" {
					inv := s.call(t, "POST", "/org/invitations", token, map[string]any{"email": "second@alpha.example.com", "role": "owner"})
					mustStatus(t, inv, http.StatusCreated)
					invitation = inv.body["token"].(string)
				}
				if kind == "member" {
					mustStatus(t, s.call(t, "POST", "/invitations/accept", "", map[string]any{"token": invitation, "password": "second-pass-1"}), http.StatusOK)
					me := s.call(t, "GET", "/me", login(t, s, "second@alpha.example.com", "second-pass-1"), nil)
					second = me.body["id"].(string)
				}
				if kind == "import" {
					export = exportAt(t, s, token)
				}
				s.stop(t)
			}

			var method, path string
			var body map[string]any
			var raw []byte // an NDJSON body, sent instead of body
			var ok int
			// For an import, the documents it leaves: the first changed,
			// and a new one.
			var imported []string
			switch kind {
			case "create":
				method, path, body, ok = "POST", "/org/create", create, http.StatusCreated
				if fp == "create:after-events" {
					ok = http.StatusBadRequest // committed: the sign-up stands, and a second one is the original's 400
				}
			case "rename":
				method, path, ok = "PUT", "/org/update", http.StatusOK
				body = map[string]any{"organization_name": "Alpha Co", "new_organization_name": "Beta Co"}
			case "delete":
				method, path, ok = "DELETE", "/org/delete", http.StatusOK
				body = map[string]any{"organization_name": "Alpha Co"}
			case "member":
				method, path, ok = "PATCH", "/org/members/"+second, http.StatusOK
				body = map[string]any{"role": "viewer"}
			case "accept":
				method, path, ok = "POST", "/invitations/accept", http.StatusOK
				body = map[string]any{"token": invitation, "password": "second-pass-1"}
				if fp == "accept:before-settle" {
					ok = http.StatusGone // committed: the restart finished it, and a second accept is refused
				}
			case "import":
				// Every failpoint is after the commit: the import rolls
				// forward, and its retry is a second one, to the same end.
				mode := "replace"
				if strings.Contains(fp, "merge") {
					mode = "merge"
				}
				method, path, ok = "POST", "/org/import?mode="+mode, http.StatusOK
				var added string
				raw, added = crashImport(t, export)
				imported = []string{docs[0], added}
				if mode == "merge" {
					imported = append(slices.Clone(docs), added)
				}
				slices.Sort(imported) // id order
			}
			if method == "" {
				t.Fatalf("no request for the failpoints of kind %q: add one to this switch", kind)
			}
			sendOp := func(s *server) (response, error) {
				if raw != nil {
					return tryNDJSON(s.base, method, path, token, raw)
				}
				return try(s.base, method, path, token, body)
			}
			// The documents after the import, and the first one's data.
			checkImported := func(s *server, when string) {
				t.Helper()
				if ids := listIDs(t, s, token); !slices.Equal(ids, imported) {
					t.Fatalf("documents %s: %v, want %v", when, ids, imported)
				}
				if got := documentData(t, s, token, docs[0]); got != crashImported {
					t.Fatalf("the imported document %s: %s, want %s", when, got, crashImported)
				}
			}

			// The crash.
			s := runServer(t, dir, addr, append(slices.Clone(env), "ORGSVC_FAILPOINT="+fp))
			if r, err := sendOp(s); err == nil {
				t.Fatalf("%s %s answered %d %s: the process should have died at %s", method, path, r.status, r.raw, fp)
			}
			if code := s.wait(t, 30*time.Second); code != failpoint.ExitCode {
				t.Fatalf("exit status %d, want %d\nstderr:\n%s", code, failpoint.ExitCode, s.stderr.String())
			}
			settleCrash(t, dir, addr, env, i%2 == 1)

			// The client's retry succeeds, and the state is the one asked for.
			s = runServer(t, dir, addr, env)
			if kind == "import" {
				checkImported(s, "after the restart, before the retry")
			}
			r, err := sendOp(s)
			if err != nil {
				t.Fatalf("retry %s %s: %v", method, path, err)
			}
			if r.status != ok {
				t.Fatalf("retry %s %s: %d %s, want %d", method, path, r.status, r.raw, ok)
			}
			switch kind {
			case "create":
				mustStatus(t, s.call(t, "GET", "/org/get?organization_name=Alpha+Co", "", nil), http.StatusOK)
				token = login(t, s, "admin@alpha.example.com", "alpha-pass-1")
				mustStatus(t, s.call(t, "GET", "/org/documents", token, nil), http.StatusOK)
			case "rename":
				mustStatus(t, s.call(t, "GET", "/org/get?organization_name=Alpha+Co", "", nil), http.StatusNotFound)
				got := s.call(t, "GET", "/org/get?organization_name=Beta+Co", "", nil)
				mustStatus(t, got, http.StatusOK)
				if got.body["collection_name"] != "org_beta_co" {
					t.Fatalf("renamed organization: %s", got.raw)
				}
				if ids := listIDs(t, s, token); !slices.Equal(ids, docs) {
					t.Fatalf("documents after the rename: %v, want %v", ids, docs)
				}
			case "member":
				tok := login(t, s, "second@alpha.example.com", "second-pass-1")
				mustStatus(t, s.call(t, "POST", "/org/documents", tok, map[string]any{"n": 9}), http.StatusForbidden) // a viewer now
				mustStatus(t, s.call(t, "PATCH", "/org/members/"+second, token, map[string]any{"role": "owner"}), http.StatusOK)
			case "accept":
				tok := login(t, s, "second@alpha.example.com", "second-pass-1")
				if ids := listIDs(t, s, tok); !slices.Equal(ids, docs) {
					t.Fatalf("the new member's documents: %v, want %v", ids, docs)
				}
			case "delete":
				mustStatus(t, s.call(t, "GET", "/org/get?organization_name=Alpha+Co", "", nil), http.StatusNotFound)
				mustStatus(t, s.call(t, "POST", "/admin/login", "", map[string]any{"email": "admin@alpha.example.com", "password": "alpha-pass-1"}), http.StatusUnauthorized)
				// The name is free again, and its new collection starts empty.
				mustStatus(t, s.call(t, "POST", "/org/create", "", create), http.StatusCreated)
				if ids := listIDs(t, s, login(t, s, "admin@alpha.example.com", "alpha-pass-1")); len(ids) != 0 {
					t.Fatalf("a new organization of the deleted one's name holds %v", ids)
				}

			case "import":
				if r.body["documents"] != 2.0 {
					t.Fatalf("the retried import: %s", r.raw)
				}
				checkImported(s, "after the retry")
			}
			s.stop(t)
			if code, out := runCheck(t, dir, env); code != 0 || strings.TrimSpace(out) != "consistent" {
				t.Fatalf("check after the retry: exit %d:\n%s", code, out)
			}
			if kind == "delete" {
				// With a restore window, the documents wait, whole, in the trash.
				want := 1
				if fp == "delete:before-drop" || fp == "delete:after-drop" {
					want = 0
				}
				if got := deletedOrgs(t, dir, env); len(got) != want || (want == 1 && got[0].Documents != int64(len(docs))) {
					t.Fatalf("restorable organizations after the deletion: %+v, want %d with %d documents", got, want, len(docs))
				}
			}

			// The audit logs verify, and hold the operation's event once.
			want := map[string]int{
				"create": 1, "rename": 1, "delete": 1, // the deletion's, in the deleted organization's log
				"member": 2, // the change asked for, and the test's own change back to owner
				"accept": 1,
				"import": 2, // the crashed import, rolled forward, and its retry
			}[kind]
			action := map[string]string{
				"create": "org.created", "rename": "org.renamed", "delete": "org.deleted",
				"member": "member.role_changed", "accept": "invitation.accepted",
				"import": "tenant.imported",
			}[kind]
			if got := actions(auditLogs(t, dir, env)); got[action] != want {
				t.Fatalf("audit events after the crash at %s: %v, want %s %d times", fp, got, action, want)
			}
		})
	}
	// A removal (DELETE /org/members/{id}) and a leave (the same with one's
	// own id) reach the failpoints of a role change, and delete:after-account
	// when the account is in no other organization.
	for i, c := range []struct {
		fp    string
		leave bool
	}{
		{"member:before-change", false},
		{"member:after-change", false},
		{"delete:after-account", false},
		{"member:after-change", true},
	} {
		name := "removal at " + c.fp
		if c.leave {
			name = "leave at " + c.fp
		}
		t.Run(name, func(t *testing.T) { t.Parallel(); crashRemoval(t, c.fp, c.leave, i%2 == 1) })
	}
}

// crashRemoval kills a removal of the second owner by the first or, with
// leave, the first owner's leave, at fp. Every failpoint of a removal is
// after its commit, so the restart (or, with repair, orgsvc check
// --repair) rolls it forward: the request ends as it would have. The
// removed account, in no other organization, is deleted and its e-mail
// free to sign up again; the organization keeps its other owner, which
// its admin_id follows; the retry is answered 404 (the member is gone), or
// 401 for a leave (its token's account is gone); the check is clean and
// the event is in the log once.
func crashRemoval(t *testing.T, fp string, leave, repair bool) {
	dir := t.TempDir()
	env := baseEnv("DATA_DIR="+filepath.Join(dir, "data"), "BCRYPT_COST=4",
		"CREATE_RATE_PER_ADDRESS=0", "LOGIN_RATE_PER_ADDRESS=0", "LOGIN_RATE_PER_EMAIL=0")
	addr := freeAddr(t)
	s := runServer(t, dir, addr, env)
	created := s.call(t, "POST", "/org/create", "", map[string]any{"organization_name": "Alpha Co", "email": "admin@alpha.example.com", "password": "alpha-pass-1"})
	mustStatus(t, created, http.StatusCreated)
	first := created.body["admin_id"].(string)
	token := login(t, s, "admin@alpha.example.com", "alpha-pass-1")
	inv := s.call(t, "POST", "/org/invitations", token, map[string]any{"email": "second@alpha.example.com", "role": "owner"})
	mustStatus(t, inv, http.StatusCreated)
	mustStatus(t, s.call(t, "POST", "/invitations/accept", "", map[string]any{"token": inv.body["token"], "password": "second-pass-1"}), http.StatusOK)
	secondToken := login(t, s, "second@alpha.example.com", "second-pass-1")
	second := s.call(t, "GET", "/me", secondToken, nil).body["id"].(string)
	s.stop(t)

	// Who asks, whom it removes, and who stays.
	asker, gone, stays := token, second, first
	goneEmail, goneCreds, staysCreds := "second@alpha.example.com", "second-pass-1", [2]string{"admin@alpha.example.com", "alpha-pass-1"}
	retry, action := http.StatusNotFound, "member.removed"
	if leave {
		asker, gone, stays = token, first, second
		goneEmail, goneCreds, staysCreds = "admin@alpha.example.com", "alpha-pass-1", [2]string{"second@alpha.example.com", "second-pass-1"}
		retry, action = http.StatusUnauthorized, "member.left"
	}

	// The crash.
	s = runServer(t, dir, addr, append(slices.Clone(env), "ORGSVC_FAILPOINT="+fp))
	if r, err := try(s.base, "DELETE", "/org/members/"+gone, asker, nil); err == nil {
		t.Fatalf("DELETE /org/members/%s answered %d %s: the process should have died at %s", gone, r.status, r.raw, fp)
	}
	if code := s.wait(t, 30*time.Second); code != failpoint.ExitCode {
		t.Fatalf("exit status %d, want %d\nstderr:\n%s", code, failpoint.ExitCode, s.stderr.String())
	}
	settleCrash(t, dir, addr, env, repair)

	// Rolled forward: the retry finds the member gone.
	s = runServer(t, dir, addr, env)
	mustStatus(t, s.call(t, "DELETE", "/org/members/"+gone, asker, nil), retry)
	mustStatus(t, s.call(t, "POST", "/admin/login", "", map[string]any{"email": goneEmail, "password": goneCreds}), http.StatusUnauthorized)
	tok := login(t, s, staysCreds[0], staysCreds[1])
	members := s.call(t, "GET", "/org/members", tok, nil)
	mustStatus(t, members, http.StatusOK)
	items, _ := members.body["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["id"] != stays || items[0].(map[string]any)["role"] != "owner" {
		t.Fatalf("members after the removal: %s, want %s alone, an owner", members.raw, stays)
	}
	got := s.call(t, "GET", "/org/get?organization_name=Alpha+Co", "", nil)
	mustStatus(t, got, http.StatusOK)
	if got.body["admin_id"] != stays {
		t.Fatalf("the organization after the removal: %s, want admin_id %s", got.raw, stays)
	}
	// The last owner stays.
	mustStatus(t, s.call(t, "DELETE", "/org/members/"+stays, tok, nil), http.StatusConflict)
	// The deleted account's e-mail signs up again.
	mustStatus(t, s.call(t, "POST", "/org/create", "", map[string]any{"organization_name": "Gamma Co", "email": goneEmail, "password": "gamma-pass-1"}), http.StatusCreated)
	s.stop(t)
	if code, out := runCheck(t, dir, env); code != 0 || strings.TrimSpace(out) != "consistent" {
		t.Fatalf("check after the retry: exit %d:\n%s", code, out)
	}
	if got := actions(auditLogs(t, dir, env)); got[action] != 1 {
		t.Fatalf("audit events after the crash at %s: %v, want %s once", fp, got, action)
	}
}

// settleCrash follows a crash: the check finds the operation unfinished; with
// repair, orgsvc check --repair settles it; a restart settles what is
// left, and then the check is clean.
func settleCrash(t *testing.T, dir, addr string, env []string, repair bool) {
	t.Helper()
	code, out := runCheck(t, dir, env)
	if code != 1 || !strings.Contains(out, "unfinished-operation") {
		t.Fatalf("check after the crash: exit %d, want 1 and an unfinished operation:\n%s", code, out)
	}
	if repair {
		code, out := runCheck(t, dir, env, "--repair")
		if code != 0 || !strings.Contains(out, "repaired unfinished-operation") || !strings.HasSuffix(strings.TrimSpace(out), "consistent") {
			t.Fatalf("check --repair: exit %d, want 0, the operation repaired and then consistent:\n%s", code, out)
		}
	}
	runServer(t, dir, addr, env).stop(t)
	if code, out := runCheck(t, dir, env); code != 0 || strings.TrimSpace(out) != "consistent" {
		t.Fatalf("check after the restart: exit %d:\n%s", code, out)
	}
}

// deletedOrg is a line of orgsvc org deleted --json.
type deletedOrg struct {
	ID        string    `json:"id"`
	Name      string    `json:"organization_name"`
	Deadline  time.Time `json:"deadline"`
	Documents int64     `json:"documents"`
	Members   int       `json:"members"`
}

// deletedOrgs runs orgsvc org deleted.
func deletedOrgs(t *testing.T, dir string, env []string) []deletedOrg {
	t.Helper()
	code, out, errOut := runOrgsvc(t, dir, env, "org", "deleted", "--json")
	if code != 0 {
		t.Fatalf("orgsvc org deleted: exit %d\n%s%s", code, out, errOut)
	}
	var list struct{ Items []deletedOrg }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// crashTrash kills a purge (started by the service's sweeper once the
// restore window of a deleted organization has passed) or a restore (an
// operator's orgsvc org restore) at fp, then settles it by a restart or,
// with repair, by orgsvc check --repair. Nothing is left half-done: a
// purge leaves neither the trash nor the archive, and the deletion's retry
// is still answered 200; a restore brings the organization back whole, is
// answered again when retried, and its event is in the log once.
func crashTrash(t *testing.T, fp string, repair bool) {
	dir := t.TempDir()
	kind, _, _ := strings.Cut(fp, ":")
	env := baseEnv("DATA_DIR="+filepath.Join(dir, "data"), "BCRYPT_COST=4", "CREATE_RATE_PER_ADDRESS=0", "LOGIN_RATE_PER_ADDRESS=0", "LOGIN_RATE_PER_EMAIL=0")
	if kind == "purge" {
		env = append(env, "ORG_DELETE_RETENTION=3s")
	}
	addr := freeAddr(t)
	create := map[string]any{"organization_name": "Alpha Co", "email": "admin@alpha.example.com", "password": "alpha-pass-1"}
	del := map[string]any{"organization_name": "Alpha Co"}
	s := runServer(t, dir, addr, env)
	mustStatus(t, s.call(t, "POST", "/org/create", "", create), http.StatusCreated)
	token := login(t, s, "admin@alpha.example.com", "alpha-pass-1")
	for n := range 3 {
		mustStatus(t, s.call(t, "POST", "/org/documents", token, map[string]any{"n": n}), http.StatusCreated)
	}
	docs := listIDs(t, s, token)
	mustStatus(t, s.call(t, "DELETE", "/org/delete", token, del), http.StatusOK)
	s.stop(t)
	list := deletedOrgs(t, dir, env)
	if len(list) != 1 {
		t.Fatalf("restorable organizations: %+v", list)
	}
	id := list[0].ID

	// The crash.
	crashEnv := append(slices.Clone(env), "ORGSVC_FAILPOINT="+fp)
	if kind == "purge" {
		time.Sleep(time.Until(list[0].Deadline)) // the restore window's end, not a measure of speed
		s = runServer(t, dir, addr, crashEnv)
		if code := s.wait(t, 30*time.Second); code != failpoint.ExitCode {
			t.Fatalf("exit status %d, want %d\nstderr:\n%s", code, failpoint.ExitCode, s.stderr.String())
		}
	} else if code, out, errOut := runOrgsvc(t, dir, crashEnv, "org", "restore", "--id", id); code != failpoint.ExitCode {
		t.Fatalf("orgsvc org restore: exit %d, want %d\n%s%s", code, failpoint.ExitCode, out, errOut)
	}
	settleCrash(t, dir, addr, env, repair)
	if got := deletedOrgs(t, dir, env); len(got) != 0 {
		t.Fatalf("restorable organizations after the %s: %+v", kind, got)
	}

	s = runServer(t, dir, addr, env)
	switch kind {
	case "purge":
		// The deletion's retry is answered as the first one was.
		mustStatus(t, s.call(t, "DELETE", "/org/delete", token, del), http.StatusOK)
		mustStatus(t, s.call(t, "GET", "/org/get?organization_name=Alpha+Co", "", nil), http.StatusNotFound)
		s.stop(t)
		if code, out, errOut := runOrgsvc(t, dir, env, "org", "restore", "--id", id); code != 1 || !strings.Contains(errOut, "no restorable") {
			t.Fatalf("restore after the purge: exit %d\n%s%s", code, out, errOut)
		}
	case "restore":
		tok := login(t, s, "admin@alpha.example.com", "alpha-pass-1")
		if ids := listIDs(t, s, tok); !slices.Equal(ids, docs) {
			t.Fatalf("documents after the restore: %v, want %v", ids, docs)
		}
		s.stop(t)
		if code, out, errOut := runOrgsvc(t, dir, env, "org", "restore", "--id", id); code != 0 || !strings.Contains(out, "restored already, with 3 documents") {
			t.Fatalf("the retried restore: exit %d\n%s%s", code, out, errOut)
		}
	}
	if code, out := runCheck(t, dir, env); code != 0 || strings.TrimSpace(out) != "consistent" {
		t.Fatalf("check after the retry: exit %d:\n%s", code, out)
	}
	want := map[string]int{"purge": 0, "restore": 1}[kind]
	if got := actions(auditLogs(t, dir, env)); got["org.deleted"] != 1 || got["org.restored"] != want {
		t.Fatalf("audit events after the crash at %s: %v, want org.deleted once and org.restored %d times", fp, got, want)
	}
}

// crashKeyedCreate kills the service in the middle of a document create
// with an Idempotency-Key. Such a create is no operation of the runner
// (see CreateOnce): its claim fixes the document's id, so nothing is left
// for check to settle, and the client's retry with the key, after the
// restart, makes the one document and is answered the same again.
func crashKeyedCreate(t *testing.T, fp string) {
	dir := t.TempDir()
	env := baseEnv("DATA_DIR="+filepath.Join(dir, "data"), "BCRYPT_COST=4", "CREATE_RATE_PER_ADDRESS=0", "LOGIN_RATE_PER_ADDRESS=0")
	addr := freeAddr(t)
	s := runServer(t, dir, addr, env)
	mustStatus(t, s.call(t, "POST", "/org/create", "", map[string]any{"organization_name": "Keyed", "email": "admin@keyed.example.com", "password": "keyed-pass-1"}), http.StatusCreated)
	token := login(t, s, "admin@keyed.example.com", "keyed-pass-1")
	s.stop(t)

	body := `{"invoice":7}`
	s = runServer(t, dir, addr, append(slices.Clone(env), "ORGSVC_FAILPOINT="+fp))
	if status, raw, err := postKeyed(s.base, token, "key-1", body); err == nil {
		t.Fatalf("answered %d %s: the process should have died at %s", status, raw, fp)
	}
	if code := s.wait(t, 30*time.Second); code != failpoint.ExitCode {
		t.Fatalf("exit status %d, want %d\nstderr:\n%s", code, failpoint.ExitCode, s.stderr.String())
	}
	if code, out := runCheck(t, dir, env); code != 0 || strings.TrimSpace(out) != "consistent" {
		t.Fatalf("check after the crash: exit %d:\n%s", code, out)
	}

	s = runServer(t, dir, addr, env)
	var ids []string
	for range 2 {
		status, raw, err := postKeyed(s.base, token, "key-1", body)
		if err != nil || status != http.StatusCreated {
			t.Fatalf("retry with the key: %d %s %v", status, raw, err)
		}
		var got struct{ ID string }
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got.ID)
	}
	if listed := listIDs(t, s, token); ids[0] != ids[1] || !slices.Equal(listed, ids[:1]) {
		t.Fatalf("answered ids %v, stored %v: want one document, answered the same twice", ids, listed)
	}
	s.stop(t)
	if code, out := runCheck(t, dir, env); code != 0 || strings.TrimSpace(out) != "consistent" {
		t.Fatalf("check after the retry: exit %d:\n%s", code, out)
	}
}

// postKeyed creates a document with an Idempotency-Key.
func postKeyed(base, token, key, body string) (int, []byte, error) {
	req, err := http.NewRequest("POST", base+"/org/documents", strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Idempotency-Key", key)
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return res.StatusCode, raw, err
}

func mustStatus(t *testing.T, r response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d: %s", r.status, want, r.raw)
	}
}

// login logs the admin in and returns its token.
func login(t *testing.T, s interface {
	call(t *testing.T, method, path, token string, body any) response
}, email, password string) string {
	t.Helper()
	r := s.call(t, "POST", "/admin/login", "", map[string]any{"email": email, "password": password})
	mustStatus(t, r, http.StatusOK)
	token, _ := r.body["access_token"].(string)
	if token == "" {
		t.Fatalf("no access_token in %s", r.raw)
	}
	return token
}

// listIDs lists every document id of the token's organization, in order.
func listIDs(t *testing.T, s *server, token string) []string {
	t.Helper()
	var ids []string
	after := ""
	for {
		path := "/org/documents?limit=100"
		if after != "" {
			path += "&after=" + after
		}
		r := s.call(t, "GET", path, token, nil)
		mustStatus(t, r, http.StatusOK)
		for _, it := range r.body["items"].([]any) {
			ids = append(ids, it.(map[string]any)["id"].(string))
		}
		next, _ := r.body["next"].(string)
		if next == "" {
			return ids
		}
		after = next
	}
}

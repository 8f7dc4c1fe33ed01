package app_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// tryNDJSON is try for a raw NDJSON body (POST /org/import's).
func tryNDJSON(base, method, path, token string, body []byte) (response, error) {
	return tryRaw(base, method, path, token, map[string]string{"Content-Type": "application/x-ndjson"}, body, 60*time.Second)
}

// exportAt reads the token's organization's export from the server.
func exportAt(t *testing.T, s *server, token string) []byte {
	t.Helper()
	r, err := tryRaw(s.base, "GET", "/org/export", token, map[string]string{}, nil, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("GET /org/export: %d %s %s", r.status, r.header.Get("Content-Type"), r.raw)
	}
	return r.raw
}

// exportDocs splits an export into its header and its document lines,
// checking the header.
func exportDocs(t *testing.T, raw []byte) (header map[string]any, docs []string) {
	t.Helper()
	if !bytes.HasSuffix(raw, []byte("\n")) {
		t.Fatalf("export does not end with a newline: %q", raw)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if err := json.Unmarshal([]byte(lines[0]), &header); err != nil || header["format"] != "orgsvc-export" || header["version"] != 1.0 {
		t.Fatalf("export header %q (%v)", lines[0], err)
	}
	return header, lines[1:]
}

// docLineIDs are the ids of an export's document lines.
func docLineIDs(t *testing.T, docs []string) []string {
	t.Helper()
	var ids []string
	for _, l := range docs {
		var d struct{ ID string }
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatalf("export line %q: %v", l, err)
		}
		ids = append(ids, d.ID)
	}
	return ids
}

// documentData is a document's data, as the API answers it.
func documentData(t *testing.T, s *server, token, id string) string {
	t.Helper()
	r := s.call(t, "GET", "/org/documents/"+id, token, nil)
	mustStatus(t, r, http.StatusOK)
	var env struct{ Data json.RawMessage }
	if err := json.Unmarshal(r.raw, &env); err != nil {
		t.Fatal(err)
	}
	return string(env.Data)
}

// TestTenantDataCLI: orgsvc export and orgsvc import on a stopped
// server's DATA_DIR: the export is the API's, an import of it (replace)
// undoes later changes, a bad file changes nothing, usage errors are exit
// status 2, and without a terminal there is no progress bar.
func TestTenantDataCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := baseEnv("DATA_DIR="+filepath.Join(dir, "data"), "BCRYPT_COST=4",
		"CREATE_RATE_PER_ADDRESS=0", "LOGIN_RATE_PER_ADDRESS=0", "LOGIN_RATE_PER_EMAIL=0")
	addr := freeAddr(t)
	file := func(name string) string { return filepath.Join(dir, name) }

	s := runServer(t, dir, addr, env)
	mustStatus(t, s.call(t, "POST", "/org/create", "", map[string]any{"organization_name": "Alpha Co", "email": "admin@alpha.example.com", "password": "alpha-pass-1"}), http.StatusCreated)
	org := s.call(t, "GET", "/org/get?organization_name=Alpha+Co", "", nil)
	mustStatus(t, org, http.StatusOK)
	orgID := org.body["_id"].(string)
	token := login(t, s, "admin@alpha.example.com", "alpha-pass-1")
	var ids []string
	for _, d := range []string{`{"price":1.50,"big":12345678901234567890123,"z":-0}`, `{"b":1,"a":2,"nested":[[1,2],[3]]}`, `{"s":"<&> \u00e9 é \"q\""}`} {
		status, raw, err := send(s.base, "POST", "/org/documents", token, []byte(d))
		if err != nil || status != http.StatusCreated {
			t.Fatalf("create %s: %d %s %v", d, status, raw, err)
		}
		var got struct{ ID string }
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got.ID)
	}
	_, apiDocs := exportDocs(t, exportAt(t, s, token))
	s.stop(t)

	// The commands' export is the API's, by name or by id, to a file or
	// to stdout.
	code, out, errOut := runOrgsvc(t, dir, env, "export", "--org", "Alpha Co", "--out", file("first.ndjson"))
	if code != 0 || out != "" || !strings.Contains(errOut, `exported 3 documents of "Alpha Co"`) {
		t.Fatalf("orgsvc export --out: exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	noProgressBar(t, "orgsvc export", errOut)
	first, err := os.ReadFile(file("first.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	header, firstDocs := exportDocs(t, first)
	if header["organization_name"] != "Alpha Co" || !slices.Equal(firstDocs, apiDocs) {
		t.Fatalf("orgsvc export wrote\n%s\nthe API's export is\n%s", first, strings.Join(apiDocs, "\n"))
	}
	code, out, errOut = runOrgsvc(t, dir, env, "export", "--org", orgID)
	if code != 0 {
		t.Fatalf("orgsvc export --org ID: exit %d: %s", code, errOut)
	}
	if _, docs := exportDocs(t, []byte(out)); !slices.Equal(docs, apiDocs) {
		t.Fatalf("orgsvc export to stdout:\n%s", out)
	}

	// Later changes, which an import of the first export undoes.
	s = runServer(t, dir, addr, env)
	token = login(t, s, "admin@alpha.example.com", "alpha-pass-1")
	mustStatus(t, s.call(t, "DELETE", "/org/documents/"+ids[0], token, nil), http.StatusNoContent)
	mustStatus(t, s.call(t, "PUT", "/org/documents/"+ids[1], token, map[string]any{"changed": true}), http.StatusOK)
	mustStatus(t, s.call(t, "POST", "/org/documents", token, map[string]any{"later": 1}), http.StatusCreated)
	s.stop(t)

	code, out, errOut = runOrgsvc(t, dir, env, "import", "--org", "Alpha Co", "--mode", "replace", file("first.ndjson"))
	if code != 0 || !strings.Contains(out, `imported 3 documents into "Alpha Co" (replace)`) {
		t.Fatalf("orgsvc import --mode replace: exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	noProgressBar(t, "orgsvc import", errOut)
	exportFile := func(name string) []string {
		t.Helper()
		code, _, errOut := runOrgsvc(t, dir, env, "export", "--org", "Alpha Co", "--out", file(name))
		if code != 0 {
			t.Fatalf("orgsvc export: exit %d: %s", code, errOut)
		}
		raw, err := os.ReadFile(file(name))
		if err != nil {
			t.Fatal(err)
		}
		_, docs := exportDocs(t, raw)
		return docs
	}
	if docs := exportFile("second.ndjson"); !slices.Equal(docs, firstDocs) {
		t.Fatalf("after the import, the export is\n%s\nwant\n%s", strings.Join(docs, "\n"), strings.Join(firstDocs, "\n"))
	}
	// The same file merged (the default mode): nothing changes.
	code, out, errOut = runOrgsvc(t, dir, env, "import", "--org", orgID, file("first.ndjson"))
	if code != 0 || !strings.Contains(out, "(merge)") {
		t.Fatalf("orgsvc import (merge): exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}

	// A bad file: exit 1, its problems listed, nothing changed.
	bad := append(slices.Clone(first), []byte(`{"id":"nope","data":{"$x":1},"created_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00Z"}`+"\nnot json\n")...)
	if err := os.WriteFile(file("bad.ndjson"), bad, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"replace", "merge"} {
		code, out, errOut = runOrgsvc(t, dir, env, "import", "--org", "Alpha Co", "--mode", mode, file("bad.ndjson"))
		if code != 1 || out != "" || !strings.Contains(errOut, "line 5: [id]: ") || !strings.Contains(errOut, "line 5: [data $x]: ") ||
			!strings.Contains(errOut, "line 6: [") || !strings.Contains(errOut, "3 problems; nothing was changed") {
			t.Fatalf("orgsvc import --mode %s of a bad file: exit %d\nstdout %q\nstderr %q", mode, code, out, errOut)
		}
		noProgressBar(t, "orgsvc import", errOut)
	}
	if docs := exportFile("third.ndjson"); !slices.Equal(docs, firstDocs) {
		t.Fatalf("a refused import changed the export:\n%s", strings.Join(docs, "\n"))
	}
	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{"import", "--org", "Alpha Co", file("missing.ndjson")}, "no such file"},
		{[]string{"import", "--org", "Nobody Co", file("first.ndjson")}, "Nobody Co"},
		{[]string{"export", "--org", "Nobody Co"}, "Nobody Co"},
		{[]string{"export", "--org", "Alpha Co", "--out", file("no-such-dir/x.ndjson")}, "no such file"},
	} {
		if code, out, errOut := runOrgsvc(t, dir, env, c.args...); code != 1 || !strings.Contains(errOut, c.err) {
			t.Errorf("orgsvc %q: exit %d, want 1 and %q\nstdout %q\nstderr %q", c.args, code, c.err, out, errOut)
		}
	}

	// Usage errors, and help.
	for _, args := range [][]string{
		{"export"},
		{"export", "--org", "Alpha Co", "extra"},
		{"export", "--bogus"},
		{"import", "--org", "Alpha Co"},
		{"import", file("first.ndjson")},
		{"import", "--org", "Alpha Co", "--mode", "other", file("first.ndjson")},
		{"import", "--org", "Alpha Co", file("first.ndjson"), file("second.ndjson")},
		{"import", "--org"},
	} {
		code, out, errOut := runOrgsvc(t, dir, env, args...)
		if code != 2 || !strings.Contains(errOut, "Usage:") || !strings.Contains(errOut, "orgsvc "+args[0]+" --org") {
			t.Errorf("orgsvc %q: exit %d, want 2 and the usage\nstdout %q\nstderr %q", args, code, out, errOut)
		}
	}
	for _, args := range [][]string{{"export", "--help"}, {"import", "--help"}, {"export", "-h"}, {"import", "-help"}} {
		code, out, errOut := runOrgsvc(t, dir, env, args...)
		if code != 0 || !strings.Contains(out+errOut, "Usage:\n  orgsvc "+args[0]+" --org") {
			t.Errorf("orgsvc %q: exit %d, want 0 and the usage\nstdout %q\nstderr %q", args, code, out, errOut)
		}
	}

	// The server serves what was imported; the commands are in the audit
	// log as the system, and only the imports that changed something.
	s = runServer(t, dir, addr, env)
	token = login(t, s, "admin@alpha.example.com", "alpha-pass-1")
	if got := listIDs(t, s, token); !slices.Equal(got, docLineIDs(t, firstDocs)) {
		t.Fatalf("documents after the import: %v", got)
	}
	if got := documentData(t, s, token, ids[0]); got != `{"price":1.50,"big":12345678901234567890123,"z":-0}` {
		t.Fatalf("a document deleted, then imported: %s", got)
	}
	s.stop(t)
	if code, out := runCheck(t, dir, env); code != 0 || strings.TrimSpace(out) != "consistent" {
		t.Fatalf("check: exit %d:\n%s", code, out)
	}
	code, out, errOut = runOrgsvc(t, dir, env, "audit", "export", "--org", orgID)
	if code != 0 {
		t.Fatalf("orgsvc audit export: exit %d: %s", code, errOut)
	}
	var exports, imports []string
	for line := range strings.Lines(out) {
		var ev struct {
			Action string
			Actor  struct{ Type, ID string }
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		who := ev.Actor.Type + ":" + ev.Actor.ID
		switch ev.Action {
		case "tenant.exported":
			exports = append(exports, who)
		case "tenant.imported":
			imports = append(imports, who)
		}
	}
	cli := "system:orgsvc export"
	if want := []string{"account:" + org.body["admin_id"].(string), cli, cli, cli, cli}; !slices.Equal(exports, want) {
		t.Errorf("tenant.exported events by %v, want the admin's then 4 of orgsvc export", exports)
	}
	if !slices.Equal(imports, []string{"system:orgsvc import", "system:orgsvc import"}) {
		t.Errorf("tenant.imported events by %v, want 2 of orgsvc import", imports)
	}
}

// noProgressBar fails the test if a command's stderr, not a terminal,
// shows a progress bar.
func noProgressBar(t *testing.T, what, stderr string) {
	t.Helper()
	if strings.ContainsAny(stderr, "\r\x1b") {
		t.Fatalf("%s drew a progress bar on a stderr that is no terminal: %q", what, stderr)
	}
}

// crashImport is the import of a crash test's row, made from the
// organization's export: its first document changed, its others left out,
// and one new document. It returns the body and the new document's id.
func crashImport(t *testing.T, export []byte) ([]byte, string) {
	t.Helper()
	_, docs := exportDocs(t, export)
	var first struct {
		ID        string `json:"id"`
		CreatedAt string `json:"created_at"`
		UpdatedAt string `json:"updated_at"`
	}
	if err := json.Unmarshal([]byte(docs[0]), &first); err != nil {
		t.Fatal(err)
	}
	header, _, _ := bytes.Cut(export, []byte("\n"))
	added := bson.NewObjectID().Hex()
	body := string(header) + "\n" +
		`{"id":"` + first.ID + `","data":` + crashImported + `,"created_at":"` + first.CreatedAt + `","updated_at":"` + first.UpdatedAt + `"}` + "\n" +
		`{"id":"` + added + `","data":{"n":3,"imported":true},"created_at":"2025-01-02T03:04:05.678Z","updated_at":"2025-01-02T03:04:05.678Z"}` + "\n"
	return []byte(body), added
}

// crashImported is the changed data of the first document in crashImport.
const crashImported = `{"n":0,"imported":true}`

package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/api"
	"github.com/orgsvc/orgsvc/internal/config"
	"github.com/orgsvc/orgsvc/internal/proc"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// exportOf reads the token's organization's export and returns its header
// and its document lines (without their newlines), checking the framing:
// NDJSON, one header, every line ending with a newline.
func (e *env) exportOf(token string) (api.ExportHeader, []string) {
	e.t.Helper()
	h, lines, _ := e.exportRaw(token)
	return h, lines
}

// exportRaw is exportOf with the body as it came.
func (e *env) exportRaw(token string) (api.ExportHeader, []string, []byte) {
	e.t.Helper()
	req, res, raw, err := proc.Fetch(noRedirect, "GET", e.srv.URL+"/org/export", map[string]string{"Authorization": "Bearer " + token}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	r := response{status: res.StatusCode, header: res.Header, raw: raw}
	// The spec's schema is of the document lines (ExportLine); the header
	// line is in its description only.
	docs := r
	if i := bytes.IndexByte(raw, '\n'); i >= 0 && r.status == http.StatusOK {
		docs.raw = raw[i+1:]
	}
	e.checkSpec(req, nil, docs)
	expect(e.t, r, http.StatusOK, "")
	if ct := r.header.Get("Content-Type"); ct != "application/x-ndjson" {
		e.t.Fatalf("export Content-Type %q, want application/x-ndjson", ct)
	}
	if cd := r.header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="`) || !strings.HasSuffix(cd, `.ndjson"`) {
		e.t.Fatalf("export Content-Disposition %q", cd)
	}
	if !bytes.HasSuffix(r.raw, []byte("\n")) {
		e.t.Fatalf("export does not end with a newline: %q", r.raw)
	}
	all := strings.Split(strings.TrimSuffix(string(r.raw), "\n"), "\n")
	var h api.ExportHeader
	dec := json.NewDecoder(strings.NewReader(all[0]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		e.t.Fatalf("export header %q: %v", all[0], err)
	}
	if h.Format != "orgsvc-export" || h.Version != 1 {
		e.t.Fatalf("export header %q", all[0])
	}
	if _, err := time.Parse(time.RFC3339Nano, h.ExportedAt); err != nil {
		e.t.Fatalf("export header exported_at %q: %v", h.ExportedAt, err)
	}
	return h, all[1:], r.raw
}

// importNDJSON posts body to /org/import with mode ("" for none).
func (e *env) importNDJSON(token, mode string, body []byte) response {
	e.t.Helper()
	path := "/org/import"
	if mode != "" {
		path += "?mode=" + url.QueryEscape(mode)
	}
	return e.request("POST", path, body, map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/x-ndjson"})
}

// mustImport imports body and expects a 200 answering mode and n documents.
func (e *env) mustImport(token, mode string, body []byte, n int) {
	e.t.Helper()
	r := e.importNDJSON(token, mode, body)
	expect(e.t, r, http.StatusOK, "")
	want := mode
	if want == "" {
		want = "merge"
	}
	if r.obj()["mode"] != want || r.obj()["documents"] != float64(n) {
		e.t.Fatalf("import answered %s, want mode %s and %d documents", r.raw, want, n)
	}
}

// stagings lists the staging and parked collections left in any database.
func (e *env) stagings() [][2]string {
	e.t.Helper()
	got, err := repository.NewTenantRepository(e.db, 0).Stagings(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

// ndjson is lines, each ended with a newline.
func ndjson(lines ...string) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// headerLine is a valid export header.
const headerLine = `{"format":"orgsvc-export","version":1,"organization_name":"Anyone","exported_at":"2026-01-02T03:04:05.006Z"}`

// docLine is a document line of an export.
func docLine(id, data, created, updated string) string {
	return `{"id":"` + id + `","data":` + data + `,"created_at":"` + created + `","updated_at":"` + updated + `"}`
}

// exportLine is one decoded document line.
type exportLine struct {
	ID        string          `json:"id"`
	Data      json.RawMessage `json:"data"`
	CreatedAt string          `json:"created_at"`
	UpdatedAt string          `json:"updated_at"`
}

func parseLine(t testing.TB, line string) exportLine {
	t.Helper()
	var l exportLine
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		t.Fatalf("export line %q: %v", line, err)
	}
	return l
}

// lineIDs are the ids of document lines, in order.
func lineIDs(t testing.TB, lines []string) []string {
	t.Helper()
	ids := make([]string, 0, len(lines))
	for _, l := range lines {
		ids = append(ids, parseLine(t, l).ID)
	}
	return ids
}

// compact is data without insignificant spaces, everything else as it is.
func compact(t testing.TB, data string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(data)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

const t0 = "2025-03-04T05:06:07.089Z"

// TestTenantDataRoundTrip is the acceptance test: documents with data the
// JSON libraries like to change are exported, the organization is deleted
// and signed up again under its name, the export is imported (replace),
// and the new export's document lines are the old ones byte for byte: ids,
// data, created_at and updated_at.
func TestTenantDataRoundTrip(t *testing.T) {
	e := newEnv(t)
	const name = "Round Trip Co"
	o := e.signUp(name)
	datas := []string{
		`{"price":1.50,"zero":0.0,"negzero":-0,"huge":1e400,"tiny":5e-324,"exp":1E+2,"big":12345678901234567890123,"neg":-12345678901234567890123.000}`,
		`{"b":1,"a":2,"c":{"z":1,"y":2,"x":3}}`,
		`{"nested":[[1,2],[3]],"empty":[[],{},[[]]],"deep":{"x":{"y":[{"z":[null,true,false]}]}}}`,
		`{"text":"héllo wörld ✓ 日本語 🎉","escaped":"\u00e9\u65e5\ud83c\udf89","html":"<&>","sep":"\u2028\u2029","raw_sep":"` + "\u2028\u2029" + `"}`,
		`{"quotes":"a \" b \\ c \/ d","ctl":"\n\t\r\b\f\u0001\u001f","":"empty key","uni\u00e9key":1}`,
		"{ \"spaced\" :\t[ 1 , 2 ] ,\n \"s\" : \"a  b\" }",
		`{}`,
	}
	ids := make([]string, len(datas))
	for i, d := range datas {
		ids[i] = e.postDoc(o, d)
	}
	// One document changed later: its updated_at is not its created_at.
	time.Sleep(5 * time.Millisecond)
	const replaced = `{"version":2,"price":1.50}`
	expect(t, e.call("PUT", "/org/documents/"+ids[1], o.token, json.RawMessage(replaced)), http.StatusOK, "")
	datas[1] = replaced

	// What the document API answers, to be answered the same afterwards.
	got := map[string][]byte{}
	for _, id := range ids {
		r := e.call("GET", "/org/documents/"+id, o.token, nil)
		expect(t, r, http.StatusOK, "")
		got[id] = r.raw
	}

	h, before, raw := e.exportRaw(o.token)
	if h.OrganizationName != name {
		t.Fatalf("export header names %q, want %q", h.OrganizationName, name)
	}
	if len(before) != len(datas) {
		t.Fatalf("export of %d documents has %d lines:\n%s", len(datas), len(before), raw)
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	if got := lineIDs(t, before); !slices.Equal(got, sorted) {
		t.Fatalf("export ids %v, want %v (id order)", got, sorted)
	}
	// Each line is exactly the document: its data as stored (compacted,
	// nothing else changed), its times as the document API gives them.
	for _, id := range sorted {
		i := slices.Index(ids, id)
		var env api.DocumentResponse
		if err := json.Unmarshal(got[id], &env); err != nil {
			t.Fatal(err)
		}
		if env.CreatedAt == env.UpdatedAt && i == 1 {
			t.Fatalf("the replaced document's times are equal: %s", got[id])
		}
		want := docLine(id, compact(t, datas[i]), env.CreatedAt, env.UpdatedAt)
		if line := before[slices.Index(sorted, id)]; line != want {
			t.Errorf("export line of document %d:\n got %s\nwant %s", i, line, want)
		}
	}

	// The organization goes, and comes back empty under its name.
	expect(t, e.call("DELETE", "/org/delete", o.token, map[string]any{"organization_name": name}), http.StatusOK, "")
	expect(t, e.call("GET", "/org/get?organization_name="+url.QueryEscape(name), "", nil), http.StatusNotFound, "")
	o = e.signUp(name)
	if _, lines := e.exportOf(o.token); len(lines) != 0 {
		t.Fatalf("the new organization exports %v", lines)
	}

	e.mustImport(o.token, "replace", raw, len(datas))
	h2, after, _ := e.exportRaw(o.token)
	if h2.OrganizationName != name {
		t.Fatalf("export header after the import names %q", h2.OrganizationName)
	}
	if !slices.Equal(after, before) {
		t.Fatalf("export after the round trip differs:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
	// The document API answers every document as before, and its
	// listing's filters work on the imported documents' fields.
	for _, id := range ids {
		r := e.call("GET", "/org/documents/"+id, o.token, nil)
		expect(t, r, http.StatusOK, "")
		if !bytes.Equal(r.raw, got[id]) {
			t.Errorf("GET %s after the round trip:\n got %s\nwant %s", id, r.raw, got[id])
		}
	}
	if got := e.listAll(o, "&filter="+url.QueryEscape(`{"price":1.5}`), 10); !slices.Equal(got, []string{ids[0], ids[1]}) {
		t.Errorf("filter price=1.5 after the import: %v, want %v", got, ids[:2])
	}
	if got := e.listAll(o, "&filter="+url.QueryEscape(`{"b":1}`), 10); len(got) != 0 {
		t.Errorf("filter b=1 (the replaced data's) after the import: %v", got)
	}
	if got := e.listAll(o, "", 3); !slices.Equal(got, sorted) {
		t.Errorf("listing after the import: %v, want %v", got, sorted)
	}
	// The imported documents are the organization's like any other.
	expect(t, e.call("PATCH", "/org/documents/"+ids[0], o.token, map[string]any{"price": 2}), http.StatusOK, "")
	expect(t, e.call("DELETE", "/org/documents/"+ids[2], o.token, nil), http.StatusNoContent, "")
	if _, lines := e.exportOf(o.token); len(lines) != len(datas)-1 {
		t.Fatalf("after a delete, the export has %d lines", len(lines))
	}
	if s := e.stagings(); len(s) != 0 {
		t.Fatalf("staging collections left: %v", s)
	}
}

// TestTenantDataReplaceAndMerge: replace leaves exactly the import's
// documents; merge keeps the others and upserts by id, and merging the
// same export twice gives the same export.
func TestTenantDataReplaceAndMerge(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("Merge Co")
	a := e.postDoc(o, `{"v":"a"}`)
	b := e.postDoc(o, `{"v":"b"}`)
	c := e.postDoc(o, `{"v":"c"}`)
	_, orig := e.exportOf(o.token)
	origRaw := ndjson(append([]string{headerLine}, orig...)...)

	// A changed, D new, and E new with an id older than every other.
	d := bson.NewObjectID().Hex()
	old := bson.NewObjectIDFromTimestamp(time.Now().Add(-24 * time.Hour)).Hex()
	lineA := docLine(a, `{"v":"a2","n":1.0}`, t0, "2025-03-05T00:00:00Z")
	lineD := docLine(d, `{"v":"d"}`, t0, t0)
	lineE := docLine(old, `{"v":"e"}`, "2024-01-01T00:00:00.5+02:00", "2024-01-01T00:00:00.123456789Z")
	body := ndjson(headerLine, lineA, lineD, lineE)
	// The times as the export writes them: UTC, milliseconds.
	wantA := docLine(a, `{"v":"a2","n":1.0}`, t0, "2025-03-05T00:00:00.000Z")
	wantE := docLine(old, `{"v":"e"}`, "2023-12-31T22:00:00.500Z", "2024-01-01T00:00:00.123Z")

	e.mustImport(o.token, "merge", body, 3)
	_, merged := e.exportOf(o.token)
	if want := []string{wantE, wantA, orig[1], orig[2], lineD}; !slices.Equal(merged, want) {
		t.Fatalf("after a merge:\n%s\nwant\n%s", strings.Join(merged, "\n"), strings.Join(want, "\n"))
	}
	if got, want := e.listAll(o, "", 2), []string{old, a, b, c, d}; !slices.Equal(got, want) {
		t.Fatalf("listing after a merge: %v, want %v", got, want)
	}
	r := e.call("GET", "/org/documents/"+a, o.token, nil)
	expect(t, r, http.StatusOK, "")
	if rawData(t, r.raw) != `{"v":"a2","n":1.0}` {
		t.Fatalf("merged document: %s", r.raw)
	}

	// The same merge again: the same state. The default mode is merge.
	e.mustImport(o.token, "", body, 3)
	if _, again := e.exportOf(o.token); !slices.Equal(again, merged) {
		t.Fatalf("a second merge of the same export changed it:\n%s\nwas\n%s", strings.Join(again, "\n"), strings.Join(merged, "\n"))
	}
	// An export merged into its own organization changes nothing.
	_, exported, raw := e.exportRaw(o.token)
	e.mustImport(o.token, "merge", raw, len(exported))
	if _, again := e.exportOf(o.token); !slices.Equal(again, merged) {
		t.Fatalf("merging the organization's own export changed it")
	}
	// Merging the original export puts a back, and keeps d and e.
	e.mustImport(o.token, "merge", origRaw, 3)
	if _, got := e.exportOf(o.token); !slices.Equal(got, []string{wantE, orig[0], orig[1], orig[2], lineD}) {
		t.Fatalf("after merging the original export:\n%s", strings.Join(got, "\n"))
	}

	// Replace: exactly the import's documents.
	e.mustImport(o.token, "replace", body, 3)
	_, replaced := e.exportOf(o.token)
	if want := []string{wantE, wantA, lineD}; !slices.Equal(replaced, want) {
		t.Fatalf("after a replace:\n%s\nwant\n%s", strings.Join(replaced, "\n"), strings.Join(want, "\n"))
	}
	for _, id := range []string{b, c} {
		expect(t, e.call("GET", "/org/documents/"+id, o.token, nil), http.StatusNotFound, "")
	}
	// The same replace again: the same state.
	e.mustImport(o.token, "replace", body, 3)
	if _, again := e.exportOf(o.token); !slices.Equal(again, replaced) {
		t.Fatalf("a second replace of the same export changed it")
	}
	// A merge of nothing changes nothing; a replace with nothing empties.
	e.mustImport(o.token, "merge", ndjson(headerLine), 0)
	if _, got := e.exportOf(o.token); !slices.Equal(got, replaced) {
		t.Fatalf("an empty merge changed the export")
	}
	e.mustImport(o.token, "replace", ndjson(headerLine), 0)
	if _, got := e.exportOf(o.token); len(got) != 0 {
		t.Fatalf("after an empty replace: %v", got)
	}
	if got := e.listAll(o, "", 10); len(got) != 0 {
		t.Fatalf("listing after an empty replace: %v", got)
	}
	// New documents go on as usual after a replace.
	n := e.postDoc(o, `{"v":"new"}`)
	if _, got := e.exportOf(o.token); len(got) != 1 || parseLine(t, got[0]).ID != n {
		t.Fatalf("after a create: %v", got)
	}
	// Blank lines between documents, and CRLF endings, are read.
	crlf := []byte(headerLine + "\r\n\r\n" + lineD + "\r\n\n" + lineA)
	e.mustImport(o.token, "replace", crlf, 2)
	if _, got := e.exportOf(o.token); !slices.Equal(got, []string{wantA, lineD}) {
		t.Fatalf("after a CRLF import:\n%s", strings.Join(got, "\n"))
	}
	if s := e.stagings(); len(s) != 0 {
		t.Fatalf("staging collections left: %v", s)
	}
}

// TestImportManyDocuments: imports and exports of more documents than
// one batch of staging, merging or exporting holds.
func TestImportManyDocuments(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("Many Co")
	const n = 2500
	lines := []string{headerLine}
	var want []string
	for i := range n {
		id := bson.NewObjectID().Hex()
		lines = append(lines, docLine(id, fmt.Sprintf(`{"i":%d,"pad":"%s"}`, i, strings.Repeat("p", i%50)), t0, t0))
		want = append(want, lines[len(lines)-1])
	}
	e.mustImport(o.token, "replace", ndjson(lines...), n)
	if _, got := e.exportOf(o.token); !slices.Equal(got, want) {
		t.Fatalf("export of %d imported documents: %d lines", n, len(got))
	}
	// Every other one changed, by a merge, in reverse order.
	merge := []string{headerLine}
	for i := n - 1; i >= 0; i -= 2 {
		l := parseLine(t, want[i])
		want[i] = docLine(l.ID, fmt.Sprintf(`{"i":%d,"merged":true}`, i), t0, "2025-06-01T00:00:00.000Z")
		merge = append(merge, want[i])
	}
	e.mustImport(o.token, "merge", ndjson(merge...), n/2)
	if _, got := e.exportOf(o.token); !slices.Equal(got, want) {
		t.Fatalf("export after merging %d documents differs", n/2)
	}
	if got := e.listAll(o, "&filter="+url.QueryEscape(`{"merged":true}`), 500); len(got) != n/2 {
		t.Fatalf("%d merged documents listed, want %d", len(got), n/2)
	}
}

// TestImportBadLines: every kind of bad line is a 422 naming its line
// (the header is line 1) and where in it, and nothing changes, in either
// mode.
func TestImportBadLines(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("Bad Lines Co")
	for i := range 3 {
		e.postDoc(o, fmt.Sprintf(`{"n":%d}`, i))
	}
	_, before := e.exportOf(o.token)
	existing := parseLine(t, before[0]).ID
	id := func() string { return bson.NewObjectID().Hex() }
	good := func() string { return docLine(id(), `{"ok":true}`, t0, t0) }
	deep := strings.Repeat(`{"a":`, 33) + "1" + strings.Repeat("}", 33)
	dup := id()

	type problem struct {
		line int
		loc  []any // after "body", "line", n
		typ  string
	}
	cases := []struct {
		name  string
		lines []string
		want  []problem
	}{
		{"wrong format", []string{`{"format":"other-export","version":1}`, good()}, []problem{{1, nil, "value_error.import.header"}}},
		{"wrong version", []string{`{"format":"orgsvc-export","version":2}`, good()}, []problem{{1, nil, "value_error.import.header"}}},
		{"header not JSON", []string{`orgsvc-export v1`, good()}, []problem{{1, nil, "value_error.import.header"}}},
		{"no header", []string{good(), good()}, []problem{{1, nil, "value_error.import.header"}}},
		{"empty body", nil, []problem{{1, nil, "value_error.import.header"}}},
		{"blank first line", []string{"", good()}, []problem{{1, nil, "value_error.import.header"}}},
		{"bad id", []string{headerLine, good(), docLine("xyz", `{}`, t0, t0)}, []problem{{3, []any{"id"}, "value_error.document_id"}}},
		{"id of 25 digits", []string{headerLine, docLine(id()+"0", `{}`, t0, t0)}, []problem{{2, []any{"id"}, "value_error.document_id"}}},
		{"no id", []string{headerLine, `{"data":{},"created_at":"` + t0 + `","updated_at":"` + t0 + `"}`}, []problem{{2, []any{"id"}, "value_error.missing"}}},
		{"id not a string", []string{headerLine, `{"id":12,"data":{},"created_at":"` + t0 + `","updated_at":"` + t0 + `"}`}, []problem{{2, nil, "value_error.import.line"}}},
		{"bad created_at", []string{headerLine, docLine(id(), `{}`, "yesterday", t0)}, []problem{{2, []any{"created_at"}, "value_error.datetime"}}},
		{"bad updated_at", []string{headerLine, good(), good(), docLine(id(), `{}`, t0, "2025-13-01T00:00:00Z")}, []problem{{4, []any{"updated_at"}, "value_error.datetime"}}},
		{"time without zone", []string{headerLine, docLine(id(), `{}`, "2025-01-01T00:00:00", t0)}, []problem{{2, []any{"created_at"}, "value_error.datetime"}}},
		{"no times", []string{headerLine, `{"id":"` + id() + `","data":{}}`}, []problem{{2, []any{"created_at"}, "value_error.missing"}, {2, []any{"updated_at"}, "value_error.missing"}}},
		{"dollar key", []string{headerLine, docLine(id(), `{"ok":1,"$set":{"a":1}}`, t0, t0)}, []problem{{2, []any{"data", "$set"}, "value_error.key.dollar"}}},
		{"nested dollar key", []string{headerLine, docLine(id(), `{"a":[{"$where":1}]}`, t0, t0)}, []problem{{2, []any{"data", "a", 0.0, "$where"}, "value_error.key.dollar"}}},
		{"NUL in a key", []string{headerLine, docLine(id(), `{"a\u0000b":1}`, t0, t0)}, []problem{{2, []any{"data", "a\x00b"}, "value_error.key.nul"}}},
		{"dotted key", []string{headerLine, docLine(id(), `{"a.b":1}`, t0, t0)}, []problem{{2, []any{"data", "a.b"}, "value_error.key.dot"}}},
		{"duplicate key", []string{headerLine, docLine(id(), `{"a":1,"a":2}`, t0, t0)}, []problem{{2, []any{"data", "a"}, "value_error.key.duplicate"}}},
		{"too deep", []string{headerLine, docLine(id(), deep, t0, t0)}, []problem{{2, nil, "value_error.depth"}}},
		{"data not an object", []string{headerLine, docLine(id(), `[1,2]`, t0, t0)}, []problem{{2, []any{"data"}, "type_error.dict"}}},
		{"no data", []string{headerLine, `{"id":"` + id() + `","created_at":"` + t0 + `","updated_at":"` + t0 + `"}`}, []problem{{2, []any{"data"}, "value_error.missing"}}},
		{"null data", []string{headerLine, docLine(id(), `null`, t0, t0)}, []problem{{2, []any{"data"}, "value_error.missing"}}},
		{"not JSON", []string{headerLine, good(), `{"id":"` + id() + `","data":`}, []problem{{3, nil, "value_error.jsondecode"}}},
		{"not an object", []string{headerLine, `[1]`}, []problem{{2, nil, "value_error.import.line"}}},
		{"unknown field", []string{headerLine, `{"id":"` + id() + `","data":{},"created_at":"` + t0 + `","updated_at":"` + t0 + `","extra":1}`}, []problem{{2, nil, "value_error.import.line"}}},
		{"duplicate id", []string{headerLine, docLine(dup, `{"n":1}`, t0, t0), good(), docLine(dup, `{"n":2}`, t0, t0)}, []problem{{4, []any{"id"}, "value_error.import.duplicate_id"}}},
		{"id three times", []string{headerLine, docLine(existing, `{}`, t0, t0), docLine(existing, `{}`, t0, t0), good(), docLine(existing, `{}`, t0, t0)}, []problem{{3, []any{"id"}, "value_error.import.duplicate_id"}, {5, []any{"id"}, "value_error.import.duplicate_id"}}},
		{"several", []string{`{}`, good(), docLine("nope", `{"$x":1}`, t0, t0), good(), `not json`, docLine(dup, `{}`, t0, "soon")}, []problem{
			{1, nil, "value_error.import.header"},
			{3, []any{"id"}, "value_error.document_id"},
			{3, []any{"data", "$x"}, "value_error.key.dollar"},
			{5, nil, "value_error.jsondecode"},
			{6, []any{"updated_at"}, "value_error.datetime"},
		}},
	}
	for _, c := range cases {
		for _, mode := range []string{"replace", "merge"} {
			t.Run(c.name+"/"+mode, func(t *testing.T) {
				defer func(parent testing.TB) { e.t = parent }(e.t)
				e.t = t
				r := e.importNDJSON(o.token, mode, ndjson(c.lines...))
				expect(t, r, http.StatusUnprocessableEntity, "")
				got := r.problems()
				if len(got) != len(c.want) {
					t.Fatalf("%d problems, want %d: %s", len(got), len(c.want), r.raw)
				}
				for i, w := range c.want {
					loc, _ := got[i]["loc"].([]any)
					if len(loc) < 3 || loc[0] != "body" || loc[1] != "line" || loc[2] != float64(w.line) {
						t.Errorf("problem %d: loc %v, want [body line %d ...]: %s", i, loc, w.line, r.raw)
						continue
					}
					if w.loc != nil && fmt.Sprint(loc[3:]) != fmt.Sprint(w.loc) {
						t.Errorf("problem %d: loc %v, want [body line %d %v]", i, loc, w.line, w.loc)
					}
					if got[i]["type"] != w.typ {
						t.Errorf("problem %d: type %v, want %s: %s", i, got[i]["type"], w.typ, r.raw)
					}
					if msg, _ := got[i]["msg"].(string); msg == "" {
						t.Errorf("problem %d has no msg", i)
					}
				}
				if _, after := e.exportOf(o.token); !slices.Equal(after, before) {
					t.Fatalf("a refused import changed the export:\n%s", strings.Join(after, "\n"))
				}
				if s := e.stagings(); len(s) != 0 {
					t.Fatalf("staging collections left: %v", s)
				}
			})
		}
	}

	// More than 100 problems: the first 100, by line, and how many more.
	lines := []string{headerLine}
	for i := range 150 {
		if i%2 == 0 {
			lines = append(lines, good())
		}
		lines = append(lines, docLine("bad", `{}`, t0, t0))
	}
	lines = append(lines, docLine(dup, `{}`, t0, t0), docLine(dup, `{}`, t0, t0))
	r := e.importNDJSON(o.token, "replace", ndjson(lines...))
	expect(t, r, http.StatusUnprocessableEntity, "")
	got := r.problems()
	if len(got) != 101 {
		t.Fatalf("%d items for 151 problems, want 100 and one more", len(got))
	}
	prev := 0
	for i, p := range got[:100] {
		loc := p["loc"].([]any)
		n := int(loc[2].(float64))
		if n <= prev || lines[n-1] != docLine("bad", `{}`, t0, t0) {
			t.Fatalf("problem %d at line %d (after %d): %v", i, n, prev, p)
		}
		prev = n
	}
	last := got[100]
	if fmt.Sprint(last["loc"]) != "[body]" || last["msg"] != "and 51 more problems" || last["type"] != "value_error.import.more" {
		t.Fatalf("last item: %v", last)
	}
	if _, after := e.exportOf(o.token); !slices.Equal(after, before) {
		t.Fatal("a refused import changed the export")
	}
	// An id repeated after more lines than a staging batch holds.
	lines = []string{headerLine}
	for range 1200 {
		lines = append(lines, good())
	}
	lines = append(lines, lines[1])
	r = e.importNDJSON(o.token, "merge", ndjson(lines...))
	expect(t, r, http.StatusUnprocessableEntity, "")
	if p := r.problems(); len(p) != 1 || fmt.Sprint(p[0]["loc"]) != "[body line 1202 id]" || p[0]["type"] != "value_error.import.duplicate_id" {
		t.Fatalf("an id on lines 2 and 1202: %s", r.raw)
	}
	// Data larger than a document may be, in a line the reader takes.
	large := docLine(id(), `{"s":"`+strings.Repeat("x", int(e.cfg.MaxDocumentBytes))+`"}`, t0, t0)
	r = e.importNDJSON(o.token, "replace", ndjson(headerLine, large))
	expect(t, r, http.StatusUnprocessableEntity, "")
	if p := r.problems(); len(p) != 1 || fmt.Sprint(p[0]["loc"]) != "[body line 2 data]" || p[0]["type"] != "value_error.document.too_large" {
		t.Fatalf("data over MAX_DOCUMENT_BYTES: %s", r.raw)
	}
	// A line longer than a document may be is a problem, too.
	long := docLine(id(), `{"s":"`+strings.Repeat("x", int(e.cfg.MaxDocumentBytes)+5000)+`"}`, t0, t0)
	r = e.importNDJSON(o.token, "replace", ndjson(headerLine, good(), long, good()))
	expect(t, r, http.StatusUnprocessableEntity, "")
	if p := r.problems(); len(p) != 1 || fmt.Sprint(p[0]["loc"]) != "[body line 3]" || p[0]["type"] != "value_error.import.line_too_long" {
		t.Fatalf("a line too long: %s", r.raw)
	}
	if _, after := e.exportOf(o.token); !slices.Equal(after, before) {
		t.Fatal("a refused import changed the export")
	}
	if s := e.stagings(); len(s) != 0 {
		t.Fatalf("staging collections left: %v", s)
	}
}

// TestImportRefusals: a body over IMPORT_MAX_BYTES is a 413 and writes
// nothing; another media type is a 415; another mode is a 422.
func TestImportRefusals(t *testing.T) {
	const limit = 4 << 10
	e := newEnv(t, func(c *config.Config) { c.ImportMaxBytes = limit })
	o := e.signUp("Limits Co")
	e.postDoc(o, `{"kept":true}`)
	_, before := e.exportOf(o.token)

	small := ndjson(headerLine, docLine(bson.NewObjectID().Hex(), `{"n":1}`, t0, t0))
	lines := []string{headerLine}
	for len(strings.Join(lines, "\n")) < 2*limit {
		lines = append(lines, docLine(bson.NewObjectID().Hex(), `{"filler":"`+strings.Repeat("f", 100)+`"}`, t0, t0))
	}
	big := ndjson(lines...)
	for _, mode := range []string{"replace", "merge"} {
		expect(t, e.importNDJSON(o.token, mode, big), http.StatusRequestEntityTooLarge, "Request body too large")
		if _, after := e.exportOf(o.token); !slices.Equal(after, before) {
			t.Fatalf("a %s over the limit changed the export: %v", mode, after)
		}
	}
	// One bad line, then over the limit: 413, not 422.
	bad := append(ndjson(headerLine, `not json`), big[len(headerLine)+1:]...)
	expect(t, e.importNDJSON(o.token, "replace", bad), http.StatusRequestEntityTooLarge, "")

	for _, ct := range []string{"application/json", "text/plain", ""} {
		headers := map[string]string{"Authorization": "Bearer " + o.token}
		if ct != "" {
			headers["Content-Type"] = ct
		}
		r := e.request("POST", "/org/import?mode=replace", small, headers)
		expect(t, r, http.StatusUnsupportedMediaType, "Unsupported Media Type: send application/x-ndjson")
	}
	for _, mode := range []string{"other", "REPLACE", "merge,replace"} {
		r := e.importNDJSON(o.token, mode, small)
		expect(t, r, http.StatusUnprocessableEntity, "")
		if p := r.problems(); len(p) != 1 || fmt.Sprint(p[0]["loc"]) != "[query mode]" {
			t.Fatalf("mode=%s: %s", mode, r.raw)
		}
	}
	if _, after := e.exportOf(o.token); !slices.Equal(after, before) {
		t.Fatalf("a refused import changed the export: %v", after)
	}
	if s := e.stagings(); len(s) != 0 {
		t.Fatalf("staging collections left: %v", s)
	}

	// Within the limit, with parameters on the media type, it goes in.
	r := e.request("POST", "/org/import?mode=replace", small, map[string]string{"Authorization": "Bearer " + o.token, "Content-Type": "application/x-ndjson; charset=utf-8"})
	expect(t, r, http.StatusOK, "")
	if _, after := e.exportOf(o.token); len(after) != 1 || slices.Equal(after, before) {
		t.Fatalf("after an import of one document: %v", after)
	}
}

// TestTenantDataRights: owners export and import; admins export only;
// members and viewers neither; without a token, 401.
func TestTenantDataRights(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("Rights Data")
	e.postDoc(o, `{"n":1}`)
	admin := e.join(o, "adm@rights-data.example.com", "admin")
	memb := e.join(o, "member@rights-data.example.com", "member")
	viewer := e.join(o, "viewer@rights-data.example.com", "viewer")
	_, before, raw := e.exportRaw(o.token)
	e.mustImport(o.token, "merge", raw, 1)
	if _, lines := e.exportOf(admin.token); !slices.Equal(lines, before) {
		t.Fatalf("the admin's export: %v, want %v", lines, before)
	}
	body := ndjson(headerLine)
	for who, token := range map[string]string{"admin": admin.token, "member": memb.token, "viewer": viewer.token} {
		if who != "admin" {
			expect(t, e.call("GET", "/org/export", token, nil), http.StatusForbidden, "")
		}
		expect(t, e.importNDJSON(token, "replace", body), http.StatusForbidden, "")
		// Forbidden before the body is judged: a bad one is 403 too.
		expect(t, e.importNDJSON(token, "replace", []byte("garbage\n")), http.StatusForbidden, "")
	}
	for _, r := range []response{
		e.call("GET", "/org/export", "", nil),
		e.request("POST", "/org/import?mode=replace", body, map[string]string{"Content-Type": "application/x-ndjson"}),
		e.request("POST", "/org/import", body, map[string]string{"Content-Type": "application/x-ndjson", "Authorization": "Bearer not-a-token"}),
	} {
		expect(t, r, http.StatusUnauthorized, "")
		if r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate: %s", r.raw)
		}
	}
	if _, after := e.exportOf(o.token); !slices.Equal(after, before) {
		t.Fatalf("refused imports changed the export: %v", after)
	}
}

// TestTenantDataAudit: every export and every import is in the audit log,
// with its actor, and an import with its mode and count; refused ones are
// not.
func TestTenantDataAudit(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("Audit Data Co")
	orgID := e.orgID(o).Hex()
	for i := range 2 {
		e.postDoc(o, fmt.Sprintf(`{"n":%d}`, i))
	}
	admin := e.join(o, "adm@audit-data.example.com", "admin")
	_, _, raw := e.exportRaw(o.token)
	e.exportOf(admin.token)
	e.mustImport(o.token, "replace", raw, 2)
	e.mustImport(o.token, "", ndjson(headerLine), 0)
	// Refused: none of these is recorded.
	expect(t, e.importNDJSON(o.token, "replace", ndjson(headerLine, "bad")), http.StatusUnprocessableEntity, "")
	expect(t, e.importNDJSON(admin.token, "replace", raw), http.StatusForbidden, "")

	r := e.call("GET", "/org/audit?limit=500", o.token, nil)
	expect(t, r, http.StatusOK, "")
	var page api.AuditPage
	if err := json.Unmarshal(r.raw, &page); err != nil {
		t.Fatal(err)
	}
	var exported, imported []api.AuditEvent
	for _, ev := range page.Items { // newest first
		switch ev.Action {
		case "tenant.exported":
			exported = append([]api.AuditEvent{ev}, exported...)
		case "tenant.imported":
			imported = append([]api.AuditEvent{ev}, imported...)
		}
	}
	if len(exported) != 2 || len(imported) != 2 {
		t.Fatalf("%d tenant.exported and %d tenant.imported events, want 2 and 2: %s", len(exported), len(imported), r.raw)
	}
	for i, who := range []struct{ id, email string }{{o.adminID, o.email}, {admin.id, admin.email}} {
		ev := exported[i]
		if ev.Actor.Type != "account" || ev.Actor.ID != who.id || ev.Actor.Email != who.email {
			t.Errorf("export %d by %+v, want %s", i, ev.Actor, who.email)
		}
		if len(ev.Targets) != 1 || ev.Targets[0].Type != "organization" || ev.Targets[0].ID != orgID || ev.Targets[0].Name != o.name {
			t.Errorf("export %d targets %+v", i, ev.Targets)
		}
	}
	for i, want := range []struct{ mode, n string }{{"replace", "2"}, {"merge", "0"}} {
		ev := imported[i]
		if ev.Actor.Type != "account" || ev.Actor.ID != o.adminID {
			t.Errorf("import %d by %+v, want the owner", i, ev.Actor)
		}
		if len(ev.Targets) != 1 || ev.Targets[0].ID != orgID {
			t.Errorf("import %d targets %+v", i, ev.Targets)
		}
		mode, n := ev.Changes["mode"], ev.Changes["documents"]
		if mode.From != nil || mode.To == nil || *mode.To != want.mode || n.From != nil || n.To == nil || *n.To != want.n || len(ev.Changes) != 2 {
			t.Errorf("import %d changes %s, want mode %s and %s documents", i, mustJSON(t, ev.Changes), want.mode, want.n)
		}
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// swapSets makes an organization of 20 documents and a replace import of
// 30 others and the first of the 20, changed: the old ids, the new ids and
// the import's body.
func swapSets(e *env, o *org) (oldIDs, newIDs []string, body []byte) {
	e.t.Helper()
	for i := range 20 {
		oldIDs = append(oldIDs, e.postDoc(o, fmt.Sprintf(`{"set":"old","n":%d}`, i)))
	}
	lines := []string{headerLine, docLine(oldIDs[0], `{"set":"new","n":-1}`, t0, t0)}
	newIDs = []string{oldIDs[0]}
	for i := range 30 {
		id := bson.NewObjectID().Hex()
		newIDs = append(newIDs, id)
		lines = append(lines, docLine(id, fmt.Sprintf(`{"set":"new","n":%d}`, i), t0, t0))
	}
	return oldIDs, newIDs, ndjson(lines...)
}

// TestImportDocumentRequests: once a replace import is answered, every
// document request works on the new set, and only on it.
func TestImportDocumentRequests(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("After Swap Co")
	oldIDs, newIDs, body := swapSets(e, o)
	if got := e.listAll(o, "", 7); !slices.Equal(got, oldIDs) {
		t.Fatalf("listing before the import: %v", got)
	}
	e.mustImport(o.token, "replace", body, len(newIDs))

	if got := e.listAll(o, "", 7); !slices.Equal(got, newIDs) {
		t.Fatalf("listing after the import: %v, want %v", got, newIDs)
	}
	if got := e.listAll(o, "&filter="+url.QueryEscape(`{"set":"old"}`), 7); len(got) != 0 {
		t.Fatalf("old documents listed after the import: %v", got)
	}
	if got := e.listAll(o, "&filter="+url.QueryEscape(`{"set":"new"}`), 7); !slices.Equal(got, newIDs) {
		t.Fatalf("new documents listed by filter after the import: %v", got)
	}
	for _, id := range oldIDs[1:4] {
		expect(t, e.call("GET", "/org/documents/"+id, o.token, nil), http.StatusNotFound, "")
		expect(t, e.call("PUT", "/org/documents/"+id, o.token, map[string]any{"set": "revived"}), http.StatusNotFound, "")
		expect(t, e.call("PATCH", "/org/documents/"+id, o.token, map[string]any{"set": "revived"}), http.StatusNotFound, "")
		expect(t, e.call("DELETE", "/org/documents/"+id, o.token, nil), http.StatusNotFound, "")
	}
	r := e.call("GET", "/org/documents/"+oldIDs[0], o.token, nil)
	expect(t, r, http.StatusOK, "")
	if rawData(t, r.raw) != `{"set":"new","n":-1}` || r.obj()["created_at"] != t0 || r.obj()["updated_at"] != t0 {
		t.Fatalf("the document in both sets: %s", r.raw)
	}
	r = e.call("GET", "/org/documents/"+newIDs[5], o.token, nil)
	expect(t, r, http.StatusOK, "")
	if rawData(t, r.raw) != `{"set":"new","n":4}` {
		t.Fatalf("an imported document: %s", r.raw)
	}
	expect(t, e.call("PATCH", "/org/documents/"+newIDs[1], o.token, map[string]any{"patched": true}), http.StatusOK, "")
	expect(t, e.call("PUT", "/org/documents/"+newIDs[2], o.token, map[string]any{"put": true}), http.StatusOK, "")
	expect(t, e.call("DELETE", "/org/documents/"+newIDs[3], o.token, nil), http.StatusNoContent, "")
	created := e.postDoc(o, `{"set":"after"}`)
	want := append(append(slices.Clone(newIDs[:3]), newIDs[4:]...), created)
	if got := e.listAll(o, "", 50); !slices.Equal(got, want) {
		t.Fatalf("listing after changes: %v, want %v", got, want)
	}
	_, lines := e.exportOf(o.token)
	if !slices.Equal(lineIDs(t, lines), want) {
		t.Fatalf("export after changes: %v, want %v", lineIDs(t, lines), want)
	}
	if l := parseLine(t, lines[1]); string(l.Data) != `{"set":"new","n":0,"patched":true}` || l.CreatedAt != t0 || l.UpdatedAt == t0 {
		t.Fatalf("a patched imported document: %+v", l)
	}
	if l := parseLine(t, lines[2]); string(l.Data) != `{"put":true}` || l.CreatedAt != t0 {
		t.Fatalf("a replaced imported document: %+v", l)
	}
}

// TestImportReadersSeeOneSet: while a replace import is swapped in,
// readers see the old set or the new one, never a mix, an empty set or a
// missing document.
func TestImportReadersSeeOneSet(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("Swap Co")
	oldIDs, newIDs, body := swapSets(e, o)

	type seen struct {
		what   string // "list" or "get"
		status int
		ids    []string
		data   string
	}
	get := func(path string) (int, []byte, error) { return e.send("GET", path, o.token, nil) }
	var stop atomic.Bool
	var wg sync.WaitGroup
	results := make(chan seen, 100000)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				s := seen{what: "list"}
				path := "/org/documents?limit=100"
				if i%2 == 1 {
					s.what, path = "get", "/org/documents/"+oldIDs[0]
				}
				status, raw, err := get(path)
				if err != nil {
					results <- seen{what: s.what + ": " + err.Error(), status: -1}
					return
				}
				s.status = status
				var page struct {
					Items []struct {
						ID string `json:"id"`
					} `json:"items"`
					Data json.RawMessage `json:"data"`
				}
				if json.Unmarshal(raw, &page) == nil {
					for _, it := range page.Items {
						s.ids = append(s.ids, it.ID)
					}
					s.data = string(page.Data)
				}
				select {
				case results <- s:
				default:
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	for range 3 {
		e.mustImport(o.token, "replace", body, len(newIDs))
		time.Sleep(50 * time.Millisecond)
		lines := []string{headerLine}
		for i, id := range oldIDs {
			lines = append(lines, docLine(id, fmt.Sprintf(`{"set":"old","n":%d}`, i), t0, t0))
		}
		e.mustImport(o.token, "replace", ndjson(lines...), len(oldIDs))
		time.Sleep(50 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	close(results)
	counts := map[string]int{}
	for s := range results {
		switch {
		case s.status == http.StatusOK && s.what == "list" && slices.Equal(s.ids, oldIDs):
			counts["old list"]++
		case s.status == http.StatusOK && s.what == "list" && slices.Equal(s.ids, newIDs):
			counts["new list"]++
		case s.status == http.StatusOK && s.what == "get" && s.data == `{"set":"old","n":0}`:
			counts["old get"]++
		case s.status == http.StatusOK && s.what == "get" && s.data == `{"set":"new","n":-1}`:
			counts["new get"]++
		case s.status == http.StatusConflict:
			counts["busy"]++ // the swap took longer than a request waits: allowed
		default:
			counts["wrong"]++
			if counts["wrong"] <= 5 {
				nOld := len(slices.DeleteFunc(slices.Clone(s.ids), func(id string) bool { return !slices.Contains(oldIDs, id) }))
				nNew := len(slices.DeleteFunc(slices.Clone(s.ids), func(id string) bool { return !slices.Contains(newIDs, id) }))
				t.Errorf("a %s during the imports: %d, %d ids (%d of the %d old, %d of the %d new), data %q: a read that overlapped the swap was answered as it was",
					s.what, s.status, len(s.ids), nOld, len(oldIDs), nNew, len(newIDs), s.data)
			}
		}
	}
	t.Logf("answers during the imports: %v", counts)
	if counts["new list"]+counts["new get"] == 0 {
		t.Errorf("no reader saw the new set: %v", counts)
	}
}

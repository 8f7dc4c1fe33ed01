package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// postDoc stores data (raw JSON) for o and returns the new id.
func (e *env) postDoc(o *org, data string) string {
	e.t.Helper()
	r := e.request("POST", "/org/documents", []byte(data), map[string]string{"Authorization": "Bearer " + o.token, "Content-Type": "application/json"})
	if r.status != http.StatusCreated {
		e.t.Fatalf("post document: %d %s", r.status, r.raw)
	}
	return r.obj()["id"].(string)
}

// rawData returns the "data" member of an envelope exactly as sent.
func rawData(t *testing.T, raw []byte) string {
	t.Helper()
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	return string(env.Data)
}

// jsonEqual compares two JSON texts as values (key order aside).
func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// listAll walks every page of o's listing and returns the ids in order.
func (e *env) listAll(o *org, query string, limit int) []string {
	e.t.Helper()
	var ids []string
	after := ""
	for range 10000 {
		path := fmt.Sprintf("/org/documents?limit=%d%s", limit, query)
		if after != "" {
			path += "&after=" + after
		}
		r := e.call("GET", path, o.token, nil)
		expect(e.t, r, http.StatusOK, "")
		for _, it := range r.obj()["items"].([]any) {
			ids = append(ids, it.(map[string]any)["id"].(string))
		}
		next, _ := r.obj()["next"].(string)
		if next == "" {
			return ids
		}
		after = next
	}
	e.t.Fatal("listing never ended")
	return nil
}

func TestDocumentLifecycle(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("alpha")
	id := e.postDoc(o, `{"kind":"invoice","total":12,"tags":["a"]}`)
	if !hex24.MatchString(id) {
		t.Fatalf("id %q", id)
	}
	r := e.call("GET", "/org/documents/"+id, o.token, nil)
	expect(t, r, http.StatusOK, "")
	created := r.obj()["created_at"]
	if rawData(t, r.raw) != `{"kind":"invoice","total":12,"tags":["a"]}` || created != r.obj()["updated_at"] {
		t.Fatalf("got %s", r.raw)
	}

	r = e.call("PUT", "/org/documents/"+id, o.token, map[string]any{"kind": "receipt"})
	expect(t, r, http.StatusOK, "")
	if rawData(t, r.raw) != `{"kind":"receipt"}` || r.obj()["created_at"] != created || r.obj()["updated_at"] == created {
		t.Fatalf("after PUT: %s", r.raw)
	}

	r = e.request("PATCH", "/org/documents/"+id, []byte(`{"kind":null,"paid":true,"meta":{"by":"x"}}`), map[string]string{"Authorization": "Bearer " + o.token, "Content-Type": "application/merge-patch+json"})
	expect(t, r, http.StatusOK, "")
	if !jsonEqual(rawData(t, r.raw), `{"paid":true,"meta":{"by":"x"}}`) {
		t.Fatalf("after PATCH: %s", r.raw)
	}
	r = e.call("PATCH", "/org/documents/"+id, o.token, map[string]any{"meta": map[string]any{"by": nil, "at": 1}})
	if !jsonEqual(rawData(t, r.raw), `{"paid":true,"meta":{"at":1}}`) {
		t.Fatalf("after nested PATCH: %s", r.raw)
	}

	r = e.call("DELETE", "/org/documents/"+id, o.token, nil)
	if r.status != http.StatusNoContent || len(r.raw) != 0 {
		t.Fatalf("DELETE: %d %s", r.status, r.raw)
	}
	for _, m := range []string{"GET", "PUT", "PATCH", "DELETE"} {
		expect(t, e.call(m, "/org/documents/"+id, o.token, map[string]any{"a": 1}), http.StatusNotFound, "Document not found")
	}
	for _, bad := range []string{"nope", "123", strings.Repeat("z", 24), bson.NewObjectID().Hex()} {
		expect(t, e.call("GET", "/org/documents/"+bad, o.token, nil), http.StatusNotFound, "Document not found")
	}
	// Every document route needs a token.
	for _, m := range [][2]string{{"POST", "/org/documents"}, {"GET", "/org/documents"}, {"GET", "/org/documents/" + id}, {"PUT", "/org/documents/" + id}, {"PATCH", "/org/documents/" + id}, {"DELETE", "/org/documents/" + id}} {
		expect(t, e.call(m[0], m[1], "", nil), http.StatusUnauthorized, "Not authenticated")
	}
}

func TestDocumentRoundTrip(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("alpha")
	cases := []string{
		`{"big":9007199254740993}`,
		`{"bigger":123456789012345678901234567890}`,
		`{"negzero":-0,"negzerof":-0.0}`,
		`{"f":1.10,"e":1e400,"small":5e-324}`,
		`{"s":"日本語 ✓ \u00e9 \ud83d\ude00 \"quoted\" \\ back"}`,
		`{"empty":{},"list":[],"str":""}`,
		`{"nested":[[1,2],[[3,[4]]],[]],"mixed":[1,"a",null,true,{"k":[[]]}]}`,
		`{"t":true,"f":false,"n":null}`,
		`{"z":1,"a":2,"m":3}`,
		`{"":"empty key"}`,
	}
	for _, data := range cases {
		id := e.postDoc(o, data)
		r := e.call("GET", "/org/documents/"+id, o.token, nil)
		if got := rawData(t, r.raw); got != data {
			t.Errorf("round trip:\n sent %s\n got  %s", data, got)
		}
	}
	// Whitespace is compacted, nothing else changes.
	id := e.postDoc(o, "{ \"a\" : [ 1 , 2 ] ,\n \"b\" : { } }")
	if got := rawData(t, e.call("GET", "/org/documents/"+id, o.token, nil).raw); got != `{"a":[1,2],"b":{}}` {
		t.Errorf("compacted: %s", got)
	}
}

func TestDocumentIsolationMatrix(t *testing.T) {
	e := newEnv(t)
	orgs := []*org{e.signUp("alpha"), e.signUp("beta"), e.signUp("gamma")}
	ids := map[*org][]string{}
	for _, o := range orgs {
		for i := range 3 {
			ids[o] = append(ids[o], e.postDoc(o, fmt.Sprintf(`{"owner":%q,"seq":%d,"shared":"same"}`, o.name, i)))
		}
	}
	for _, caller := range orgs {
		for _, owner := range orgs {
			if caller == owner {
				continue
			}
			for _, id := range ids[owner] {
				path := "/org/documents/" + id
				expect(t, e.call("GET", path, caller.token, nil), http.StatusNotFound, "Document not found")
				expect(t, e.call("PUT", path, caller.token, map[string]any{"owner": caller.name}), http.StatusNotFound, "Document not found")
				expect(t, e.call("PATCH", path, caller.token, map[string]any{"owner": caller.name}), http.StatusNotFound, "Document not found")
				expect(t, e.call("DELETE", path, caller.token, nil), http.StatusNotFound, "Document not found")
				// after= another organization's id still lists only the caller's.
				for _, got := range e.listAll(caller, "&after="+id, 50) {
					if !slices.Contains(ids[caller], got) {
						t.Fatalf("%s listed %s's document %s", caller.name, owner.name, got)
					}
				}
			}
			// Filters on another organization's values find nothing.
			q := "&filter=" + url.QueryEscape(fmt.Sprintf(`{"owner":%q}`, owner.name))
			if got := e.listAll(caller, q, 50); len(got) != 0 {
				t.Fatalf("%s found %s's documents by filter: %v", caller.name, owner.name, got)
			}
		}
		// A filter every organization's documents match lists only the caller's.
		got := e.listAll(caller, "&filter="+url.QueryEscape(`{"shared":"same"}`), 2)
		if !slices.Equal(got, ids[caller]) {
			t.Fatalf("%s: got %v, want %v", caller.name, got, ids[caller])
		}
	}
	// Every document is untouched, in its own collection.
	for _, o := range orgs {
		for i, id := range ids[o] {
			r := e.call("GET", "/org/documents/"+id, o.token, nil)
			if want := fmt.Sprintf(`{"owner":%q,"seq":%d,"shared":"same"}`, o.name, i); rawData(t, r.raw) != want {
				t.Fatalf("document %s changed: %s", id, r.raw)
			}
		}
		n, _ := e.tenant("org_"+o.name).CountDocuments(context.Background(), bson.D{})
		if n != 3 {
			t.Fatalf("org_%s holds %d documents, want 3", o.name, n)
		}
	}
}

func TestDocumentListing(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("alpha")
	var ids []string
	for i := range 23 {
		ids = append(ids, e.postDoc(o, fmt.Sprintf(`{"i":%d,"even":%t,"mod3":%d,"name":"n%d","maybe":%s}`, i, i%2 == 0, i%3, i, map[bool]string{true: "null", false: `"x"`}[i%5 == 0])))
	}
	for _, limit := range []int{1, 5, 23, 50} {
		if got := e.listAll(o, "", limit); !slices.Equal(got, ids) {
			t.Fatalf("limit %d: got %d ids, want %d in order", limit, len(got), len(ids))
		}
	}
	r := e.call("GET", "/org/documents", o.token, nil)
	if items := r.obj()["items"].([]any); len(items) != 23 || r.obj()["next"] != nil {
		t.Fatalf("default page: %d items, next %v", len(items), r.obj()["next"])
	}
	filters := map[string]int{
		`{"even":true}`:             12,
		`{"even":true,"mod3":0}`:    4,
		`{"mod3":1.0}`:              8,
		`{"name":"n7"}`:             1,
		`{"maybe":null}`:            5,
		`{"missing":null}`:          0,
		`{"i":"3"}`:                 0,
		`{}`:                        23,
		`{"name":"n7","even":true}`: 0,
	}
	for f, want := range filters {
		if got := e.listAll(o, "&filter="+url.QueryEscape(f), 3); len(got) != want {
			t.Errorf("filter %s: %d documents, want %d", f, len(got), want)
		}
	}
	for _, q := range []string{"limit=0", "limit=501", "limit=x", "after=nope", "filter=nope", "filter=[1]"} {
		expect(t, e.call("GET", "/org/documents?"+q, o.token, nil), http.StatusUnprocessableEntity, "")
	}
	expect(t, e.call("GET", "/org/documents?limit=500", o.token, nil), http.StatusOK, "")
}

func TestDocumentPaginationWhileInserting(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("alpha")
	var before []string
	for i := range 60 {
		before = append(before, e.postDoc(o, fmt.Sprintf(`{"i":%d}`, i)))
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var added []string
	var mu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load() && i < 200; i++ {
			req, _ := http.NewRequest("POST", e.srv.URL+"/org/documents", bytes.NewReader([]byte(`{"late":true}`)))
			req.Header.Set("Authorization", "Bearer "+o.token)
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			var env struct{ ID string }
			_ = json.NewDecoder(res.Body).Decode(&env)
			res.Body.Close()
			mu.Lock()
			added = append(added, env.ID)
			mu.Unlock()
		}
	}()
	got := e.listAll(o, "", 7)
	stop.Store(true)
	wg.Wait()

	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("document %s listed %d times", id, n)
		}
	}
	for _, id := range before {
		if seen[id] != 1 {
			t.Fatalf("document %s, present before the walk, was missed", id)
		}
	}
	if !slices.IsSorted(got) {
		t.Fatal("listing is not in id order")
	}
	t.Logf("walk saw %d documents; %d were inserted during it", len(got), len(added))
}

func TestDocumentInjectionRefused(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("alpha")
	keep := e.postDoc(o, `{"secret":"kept","n":1}`)
	deep := strings.Repeat(`{"a":`, 32) + "1" + strings.Repeat("}", 32)
	tooDeep := strings.Repeat(`{"a":`, 33) + "1" + strings.Repeat("}", 33)
	tooDeepArr := `{"a":` + strings.Repeat("[", 32) + strings.Repeat("]", 32) + "}"
	bodies := map[string]string{
		"$where":          `{"$where":"sleep(1000)"}`,
		"$gt nested":      `{"n":{"$gt":0}}`,
		"$ne in array":    `{"list":[{"$ne":null}]}`,
		"dotted key":      `{"a.b":1}`,
		"dotted nested":   `{"a":{"b.c":1}}`,
		"nul key":         `{"a\u0000b":1}`,
		"too deep":        tooDeep,
		"too deep arrays": tooDeepArr,
		"duplicate key":   `{"a":1,"a":2}`,
		"not an object":   `[{"a":1}]`,
		"a string":        `"x"`,
		"malformed":       `{"a":`,
		"trailing":        `{"a":1} {"b":2}`,
	}
	count := func() int64 {
		n, err := e.tenant("org_alpha").CountDocuments(context.Background(), bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	h := map[string]string{"Authorization": "Bearer " + o.token, "Content-Type": "application/json"}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			expect(t, e.request("POST", "/org/documents", []byte(body), h), http.StatusUnprocessableEntity, "")
			expect(t, e.request("PUT", "/org/documents/"+keep, []byte(body), h), http.StatusUnprocessableEntity, "")
			expect(t, e.request("PATCH", "/org/documents/"+keep, []byte(body), h), http.StatusUnprocessableEntity, "")
		})
	}
	// 32 levels is allowed; a patch that would push past 32 is refused.
	deepID := e.postDoc(o, deep)
	expect(t, e.request("PATCH", "/org/documents/"+deepID, []byte(strings.Repeat(`{"a":`, 32)+`{"b":1}`+strings.Repeat("}", 32)), h), http.StatusUnprocessableEntity, "")

	// Bodies over MAX_DOCUMENT_BYTES: 413, nothing written.
	huge := `{"pad":"` + strings.Repeat("x", 1<<20) + `"}`
	expect(t, e.request("POST", "/org/documents", []byte(huge), h), http.StatusRequestEntityTooLarge, "")
	expect(t, e.request("PUT", "/org/documents/"+keep, []byte(huge), h), http.StatusRequestEntityTooLarge, "")

	// Filters with operators or nested values are refused too.
	for _, f := range []string{`{"n":{"$gt":0}}`, `{"$where":"1"}`, `{"$or":[{"n":1}]}`, `{"n":{"$ne":null}}`, `{"a.b":1}`, `{"n":[1]}`, `{"":1}`, `{"n":1e400}`} {
		r := e.call("GET", "/org/documents?filter="+url.QueryEscape(f), o.token, nil)
		expect(t, r, http.StatusUnprocessableEntity, "")
		if loc, _ := r.problems()[0]["loc"].([]any); len(loc) < 2 || loc[0] != "query" || loc[1] != "filter" {
			t.Fatalf("filter %s: loc %v", f, r.problems()[0]["loc"])
		}
	}

	if got := count(); got != before+1 {
		t.Fatalf("org_alpha holds %d documents, want %d", got, before+1)
	}
	r := e.call("GET", "/org/documents/"+keep, o.token, nil)
	if rawData(t, r.raw) != `{"secret":"kept","n":1}` {
		t.Fatalf("kept document changed: %s", r.raw)
	}
	if cs := e.collections(); slices.ContainsFunc(cs, func(c string) bool { return strings.HasPrefix(c, "org_") && c != "org_alpha" }) {
		t.Fatalf("unexpected collections: %v", cs)
	}
}

func TestDocumentsFollowRenameAndDelete(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("alpha")
	var ids []string
	for i := range 5 {
		ids = append(ids, e.postDoc(o, fmt.Sprintf(`{"i":%d}`, i)))
	}
	r := e.call("PUT", "/org/update", o.token, map[string]any{"organization_name": "alpha", "new_organization_name": "Alpha Renamed"})
	expect(t, r, http.StatusOK, "")
	old := o.token
	o.token = r.obj()["access_token"].(string)
	// The earlier token still works, on the organization's new collection.
	expect(t, e.call("GET", "/org/documents/"+ids[0], old, nil), http.StatusOK, "")
	r = e.call("POST", "/org/documents", old, map[string]any{"late": true})
	expect(t, r, http.StatusCreated, "")
	ids = append(ids, r.obj()["id"].(string))
	if got := e.listAll(o, "", 2); !slices.Equal(got, ids) {
		t.Fatalf("after rename: %v, want %v", got, ids)
	}
	if e.hasCollection("org_alpha") {
		t.Fatal("a stale token re-created org_alpha")
	}

	expect(t, e.call("DELETE", "/org/delete", o.token, map[string]any{"organization_name": "Alpha Renamed"}), http.StatusOK, "")
	expect(t, e.call("GET", "/org/documents/"+ids[0], o.token, nil), http.StatusUnauthorized, "")
	expect(t, e.call("POST", "/org/documents", o.token, map[string]any{"late": true}), http.StatusUnauthorized, "")
	// A new organization of the same name starts empty.
	n := e.signUp("Alpha Renamed")
	if got := e.listAll(n, "", 50); len(got) != 0 {
		t.Fatalf("new organization sees %d old documents", len(got))
	}
	for _, c := range e.collections() {
		if c == "org_alpha" {
			t.Fatal("org_alpha came back")
		}
	}
}

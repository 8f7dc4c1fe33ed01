package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgsvc/orgsvc/internal/config"
	"github.com/orgsvc/orgsvc/internal/proc"
	"github.com/orgsvc/orgsvc/internal/store"
	"github.com/orgsvc/orgsvc/internal/storetest"
)

// send makes one request with a raw JSON body outside the spec check (the
// floods below run it from many goroutines) and returns the answer.
func (e *env) send(method, path, token string, body []byte) (int, []byte, error) {
	headers := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + token}
	_, res, raw, err := proc.Fetch(http.DefaultClient, method, e.srv.URL+path, headers, body)
	if res == nil {
		return 0, nil, err
	}
	return res.StatusCode, raw, err
}

// megabyteDoc is a document of about size bytes of data.
func megabyteDoc(i, size int) []byte {
	return []byte(fmt.Sprintf(`{"i":%d,"pad":%q}`, i, strings.Repeat("x", size-40)))
}

// keysDoc is a document of n top-level keys, each value a string of pad
// bytes.
func keysDoc(n, pad int) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	value := strings.Repeat("v", pad)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%05d":%q`, i, value)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// listPage is a listing's answer, its items kept raw.
type listPage struct {
	Items []struct {
		ID   string          `json:"id"`
		Data json.RawMessage `json:"data"`
	} `json:"items"`
	Next *string `json:"next"`
}

// TestPageByteBudget: with MAX_PAGE_BYTES at 3 MiB, a limit=100 listing of
// 1 MB documents gives pages of at most 3, each with next until the last,
// and lists every document exactly once, in order. A document larger than
// the budget still gets a page of its own.
func TestPageByteBudget(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.MaxPageBytes = 3 << 20 })
	o := e.signUp("alpha")
	var want []string
	for i := range 8 {
		want = append(want, e.postDoc(o, string(megabyteDoc(i, 1_000_000))))
	}
	var got []string
	after, pages := "", 0
	for {
		path := "/org/documents?limit=100"
		if after != "" {
			path += "&after=" + after
		}
		r := e.call("GET", path, o.token, nil)
		expect(t, r, http.StatusOK, "")
		var p listPage
		if err := json.Unmarshal(r.raw, &p); err != nil {
			t.Fatal(err)
		}
		size := 0
		for _, it := range p.Items {
			got = append(got, it.ID)
			size += len(it.Data)
		}
		pages++
		if len(p.Items) == 0 || len(p.Items) > 3 || size > 3<<20 {
			t.Fatalf("page %d: %d documents, %d bytes of data; want 1 to 3 within 3 MiB", pages, len(p.Items), size)
		}
		if p.Next == nil {
			break
		}
		if *p.Next != p.Items[len(p.Items)-1].ID {
			t.Fatalf("page %d: next %s is not its last document", pages, *p.Next)
		}
		after = *p.Next
	}
	if !slices.Equal(got, want) || pages != 3 {
		t.Fatalf("listed %v in %d pages, want %v in 3", got, pages, want)
	}

	small := newEnv(t, func(c *config.Config) { c.MaxPageBytes = 1000 })
	b := small.signUp("beta")
	ids := []string{small.postDoc(b, string(megabyteDoc(0, 3000))), small.postDoc(b, string(megabyteDoc(1, 3000)))}
	if got := small.listAll(b, "", 50); !slices.Equal(got, ids) {
		t.Fatalf("documents over the budget: listed %v, want %v", got, ids)
	}
	r := small.call("GET", "/org/documents?limit=50", b.token, nil)
	if items := r.obj()["items"].([]any); len(items) != 1 || r.obj()["next"] != ids[0] {
		t.Fatalf("first page over the budget: %d items, next %v", len(items), r.obj()["next"])
	}
}

// TestListingAnswerAsEncoded: a listing writes each document's data as a
// single read answers it, characters json.Marshal escapes included.
func TestListingAnswerAsEncoded(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("alpha")
	ids := []string{
		e.postDoc(o, `{"html":"<a href=\"x\">&amp;</a>","sep":"\u2028\u2029","n":1.50,"big":12345678901234567890}`),
		e.postDoc(o, `{"plain":"text","nested":{"a":[[1],[]]}}`),
	}
	r := e.call("GET", "/org/documents", o.token, nil)
	expect(t, r, http.StatusOK, "")
	var p listPage
	if err := json.Unmarshal(r.raw, &p); err != nil || len(p.Items) != 2 || p.Next != nil {
		t.Fatalf("listing: %s, %v", r.raw, err)
	}
	for i, id := range ids {
		one := e.call("GET", "/org/documents/"+id, o.token, nil)
		if want := rawData(t, one.raw); string(p.Items[i].Data) != want {
			t.Errorf("listed data %s, read %s", p.Items[i].Data, want)
		}
	}
	if bytes.Contains(r.raw, []byte("<a")) || !bytes.Contains(r.raw, []byte(`\u003ca`)) {
		t.Errorf("listing not escaped as json.Marshal escapes: %s", r.raw)
	}
}

// TestDocumentKeyCap: a document, replacement or merge patch of more keys
// than MAX_DOCUMENT_KEYS (nested ones counted), or a patch whose result
// would be, is 422 in the validation shape, naming the limit; at the
// limit it is stored.
func TestDocumentKeyCap(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.MaxDocumentKeys = 6 })
	o := e.signUp("alpha")
	atCap := `{"a":1,"b":{"c":2,"d":[{"e":3}]},"f":null}`
	id := e.postDoc(o, atCap)
	over := `{"a":1,"b":{"c":2,"d":[{"e":3},{"g":4}]},"f":null}`
	h := map[string]string{"Authorization": "Bearer " + o.token, "Content-Type": "application/json"}
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/org/documents", over},
		{"PUT", "/org/documents/" + id, over},
		{"PATCH", "/org/documents/" + id, `{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7}`},
		{"PATCH", "/org/documents/" + id, `{"x":1}`},
	} {
		r := e.request(c.method, c.path, []byte(c.body), h)
		expect(t, r, http.StatusUnprocessableEntity, "")
		p := r.problems()
		if len(p) != 1 || p[0]["type"] != "value_error.document.max_keys" || fmt.Sprint(p[0]["loc"]) != "[body]" ||
			fmt.Sprint(p[0]["ctx"]) != "map[limit_value:6]" {
			t.Fatalf("%s %s: %s", c.method, c.path, r.raw)
		}
	}
	r := e.call("GET", "/org/documents/"+id, o.token, nil)
	if got := rawData(t, r.raw); got != atCap {
		t.Fatalf("after the refusals: %s, want %s", got, atCap)
	}
	r = e.request("PATCH", "/org/documents/"+id, []byte(`{"f":null,"x":1}`), h)
	expect(t, r, http.StatusOK, "")
}

// TestHeavyRequestsLeaveOtherOrganizationsServed: while one organization
// loops over big-page listings of 1 MB documents, documents of 40,000 keys
// (refused by the key cap) and the largest documents allowed (10,000 keys,
// nearly 1 MiB), another organization's reads and listings all answer 200.
//
// The service reaches the store through a client made as the server makes
// it: a few connections, each held by a listing for as long as it reads.
func TestHeavyRequestsLeaveOtherOrganizationsServed(t *testing.T) {
	client, err := mongo.Connect(options.Client().ApplyURI(storetest.URI()).
		SetMaxPoolSize(store.EmbeddedPoolSize()).SetServerSelectionTimeout(store.ServerSelectionTimeout))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	db := client.Database(storetest.Database(t).Name())
	e := startEnv(t, db, func(ctx context.Context) error { return client.Ping(ctx, nil) })
	heavy, victim := e.signUp("heavy"), e.signUp("victim")
	mine := e.postDoc(victim, `{"kind":"mine"}`)
	var seeding sync.WaitGroup
	for w := range 2 {
		seeding.Add(1)
		go func() {
			defer seeding.Done()
			for i := w; i < 30; i += 2 {
				if status, raw, err := e.send("POST", "/org/documents", heavy.token, megabyteDoc(i, 1_000_000)); err != nil || status != http.StatusCreated {
					t.Errorf("seeding: %d %.200s %v", status, raw, err)
					return
				}
			}
		}()
	}
	seeding.Wait()
	if t.Failed() {
		t.FailNow()
	}
	tooMany := keysDoc(40000, 1)
	largest := keysDoc(10000, 90)
	if len(tooMany) > 1<<20 || len(largest) > 1<<20 || len(largest) < 1_000_000 {
		t.Fatalf("test documents of %d and %d bytes", len(tooMany), len(largest))
	}

	var mu sync.Mutex
	statuses := map[string]map[int]int{}
	count := func(kind string, status int) {
		mu.Lock()
		defer mu.Unlock()
		if statuses[kind] == nil {
			statuses[kind] = map[int]int{}
		}
		statuses[kind][status]++
	}
	var failures []string
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, fmt.Sprintf(format, args...))
	}
	var floods sync.WaitGroup
	for c := range 4 {
		floods.Add(1)
		go func() {
			defer floods.Done()
			after := ""
			for range 3 {
				path := "/org/documents?limit=100"
				if after != "" {
					path += "&after=" + after
				}
				status, raw, err := e.send("GET", path, heavy.token, nil)
				if err != nil {
					fail("listing %d: %v", c, err)
					return
				}
				count("heavy listing", status)
				if status != http.StatusOK {
					continue // it may wait for a slot until its deadline; others must not
				}
				var p listPage
				size := 0
				if err := json.Unmarshal(raw, &p); err != nil {
					fail("listing %d: %v", c, err)
					return
				}
				for _, it := range p.Items {
					size += len(it.Data)
				}
				if len(p.Items) == 0 || size > 4<<20 {
					fail("listing %d: %d items, %d bytes", c, len(p.Items), size)
				}
				after = ""
				if p.Next != nil {
					after = *p.Next
				}
			}
		}()
	}
	for c := range 4 {
		body, want, kind := tooMany, http.StatusUnprocessableEntity, "40,000 keys"
		if c%2 == 1 {
			body, want, kind = largest, http.StatusCreated, "largest allowed"
		}
		floods.Add(1)
		go func() {
			defer floods.Done()
			for range 4 {
				status, raw, err := e.send("POST", "/org/documents", heavy.token, body)
				// Under the race detector a write may reach its deadline.
				late := raceDetector && status == http.StatusServiceUnavailable
				if err != nil || (status != want && !late) {
					fail("%s: %d %.200s %v, want %d", kind, status, raw, err, want)
				}
				count(kind, status)
			}
		}()
	}
	done := make(chan struct{})
	go func() { floods.Wait(); close(done) }()

	reads := 0
	for running := true; running; reads++ {
		select {
		case <-done:
			running = false
		default:
		}
		path := "/org/documents/" + mine
		if reads%2 == 1 {
			path = "/org/documents"
		}
		start := time.Now()
		status, raw, err := e.send("GET", path, victim.token, nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("the other organization's GET %s: %d %s %v after %s, %d reads in\nerrors logged:\n%s", path, status, raw, err, time.Since(start), reads, errorLines(e.logs.String()))
		}
		count("other organization", status)
	}
	<-done
	for _, f := range failures {
		t.Error(f)
	}
	t.Logf("statuses: %v", statuses)
	// The heavy listings must have been answered, in time (200) or at their
	// deadline (503, as under the race detector), to have loaded the store.
	answered := statuses["heavy listing"][http.StatusOK] + statuses["heavy listing"][http.StatusServiceUnavailable]
	accepted := statuses["largest allowed"][201]
	if raceDetector {
		accepted += statuses["largest allowed"][http.StatusServiceUnavailable]
	}
	if reads < 5 || answered == 0 || statuses["40,000 keys"][422] != 8 || accepted != 8 || statuses["largest allowed"][201] == 0 {
		t.Fatalf("the floods did not run as planned: %d reads, statuses %v", reads, statuses)
	}
}

// errorLines is the lines of a log at level ERROR.
func errorLines(log string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, `"level":"ERROR"`) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

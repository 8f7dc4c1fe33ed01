package app_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The secret both processes sign and verify tokens with, so that a token
// from one is good on the other.
const twoProcSecret = "concurrency-test-secret-0123456789abcdef"

const twoProcPassword = "password-123"

// TestTwoProcesses runs two server processes on one database (the first
// one's embedded store, exposed with EMBEDDED_MONGO_ADDR, is the second
// one's MONGO_URI) and races lifecycle operations across them, many times
// with random timing:
//
//   - simultaneous sign-ups of one name, or of names with one slug, give
//     exactly one 201;
//   - simultaneous renames of several organizations to one name give
//     exactly one success;
//   - a rename racing a deletion of the same organization ends in one
//     consistent state: deleted under both names, or renamed with its data.
//
// Afterwards `orgsvc check` finds the database consistent.
func TestTwoProcesses(t *testing.T) {
	t.Parallel()
	seed := time.Now().UnixNano()
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(seed>>1)))

	dataDir := filepath.Join(t.TempDir(), "data")
	mongoAddr := freeAddr(t)
	common := []string{
		"JWT_SECRET=" + twoProcSecret, "BCRYPT_COST=4",
		"CREATE_RATE_PER_ADDRESS=0", "LOGIN_RATE_PER_ADDRESS=0", "LOGIN_RATE_PER_EMAIL=0",
	}
	a := runServer(t, t.TempDir(), freeAddr(t), baseEnv(append([]string{
		"DATA_DIR=" + dataDir, "EMBEDDED_MONGO_ADDR=" + mongoAddr}, common...)...))
	b := runServer(t, t.TempDir(), freeAddr(t), baseEnv(append([]string{
		"MONGO_URI=mongodb://" + mongoAddr + "/"}, common...)...))
	servers := []*server{a, b}
	h := &twoProcs{a: a, b: b, rng: rng, counts: map[string]int{}}

	started := time.Now()
	t.Run("SameName", func(t *testing.T) {
		for round := range 15 {
			name := fmt.Sprintf("Same Name Org %d", round)
			names := make([]string, 8)
			for i := range names {
				names[i] = name
			}
			h.createRace(t, "same-name", round, names)
		}
	})
	t.Run("SameSlug", func(t *testing.T) {
		variants := []string{"Acme Inc %d", "acme inc %d", "ACME-inc %d", "acme_inc %d",
			"Acme  INC %d", "acme--inc %d", "ACME inc %d", "Acme_Inc %d"}
		for round := range 15 {
			names := make([]string, len(variants))
			for i, v := range variants {
				names[i] = fmt.Sprintf(v, round)
			}
			h.createRace(t, "same-slug", round, names)
		}
	})
	t.Run("RenamesToOneTarget", func(t *testing.T) {
		for round := range 12 {
			h.renameRace(t, round)
		}
	})
	t.Run("RenameRacingDelete", func(t *testing.T) {
		outcomes := map[string]int{}
		for round := range 20 {
			outcomes[h.renameDeleteRace(t, round)]++
		}
		t.Logf("outcomes: %v", outcomes)
	})
	t.Logf("the races took %s", time.Since(started).Round(time.Millisecond))

	h.logCounts(t)
	for _, s := range servers {
		if lines := logLines(s, `"level":"ERROR"`, 20); lines != "" {
			t.Logf("%s logged errors:\n%s", s.base, lines)
		}
	}

	t.Run("Check", func(t *testing.T) {
		// The check opens the embedded database's files: both servers stop
		// first, the one using the other's database before it.
		for _, s := range []*server{b, a} {
			if code := s.stop(t); code != 0 {
				t.Errorf("%s exited with %d, want 0\n%s", s.base, code, logLines(s, "", 40))
			}
		}
		code, out := runCheck(t, t.TempDir(), baseEnv("DATA_DIR="+dataDir, "JWT_SECRET="+twoProcSecret))
		if code != 0 || !slices.Contains(strings.Split(out, "\n"), "consistent") {
			t.Errorf("orgsvc check: exit %d, want 0 and \"consistent\"; output:\n%s", code, out)
		}
	})
}

// twoProcs is the state shared by TestTwoProcesses's sub-tests; only the
// test goroutine touches it.
type twoProcs struct {
	a, b   *server
	rng    *rand.Rand
	counts map[string]int // "kind status detail" -> answers seen in races
}

// pick alternates between the two servers.
func (h *twoProcs) pick(i int) *server {
	if i%2 == 0 {
		return h.a
	}
	return h.b
}

// raceCall is one request of a race.
type raceCall struct {
	s      *server
	method string
	path   string
	token  string
	body   any
}

type raceResult struct {
	r   response
	err error
}

// race sends all calls at once, each after a random delay of 0-5 ms, and
// returns their answers in order.
func (h *twoProcs) race(calls []raceCall) []raceResult {
	delays := make([]time.Duration, len(calls))
	for i := range delays {
		delays[i] = time.Duration(h.rng.IntN(5001)) * time.Microsecond
	}
	results := make([]raceResult, len(calls))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			time.Sleep(delays[i])
			r, err := try(c.s.base, c.method, c.path, c.token, c.body)
			results[i] = raceResult{r, err}
		}()
	}
	close(start)
	wg.Wait()
	return results
}

// count records an answer of a race under kind.
func (h *twoProcs) count(kind string, r response) {
	h.counts[fmt.Sprintf("%s %d %s", kind, r.status, detail(r))]++
}

func (h *twoProcs) logCounts(t *testing.T) {
	t.Helper()
	keys := make([]string, 0, len(h.counts))
	for k := range h.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "\n  %5d  %s", h.counts[k], k)
	}
	t.Logf("answers seen in the races:%s", sb.String())
}

// detail is the "detail" of an error answer, when it is a string.
func detail(r response) string {
	d, _ := r.body["detail"].(string)
	return d
}

// describe prints an answer for a failure message.
func describe(r raceResult) string {
	if r.err != nil {
		return "no answer: " + r.err.Error()
	}
	return fmt.Sprintf("%d %s (Retry-After %q)", r.r.status, strings.TrimSpace(string(r.r.raw)), r.r.header.Get("Retry-After"))
}

// isBusy reports whether r is the 409 of an operation under way, with its
// Retry-After.
func isBusy(r response) bool {
	return r.status == http.StatusConflict && detail(r) == "Organization is being changed; retry" && r.header.Get("Retry-After") != ""
}

// logLines returns the last limit lines of the server's stderr that contain
// substr (every line when substr is empty).
func logLines(s *server, substr string, limit int) string {
	var keep []string
	for line := range strings.Lines(s.stderr.String()) {
		if strings.Contains(line, substr) {
			keep = append(keep, strings.TrimRight(line, "\n"))
		}
	}
	if len(keep) > limit {
		keep = keep[len(keep)-limit:]
	}
	return strings.Join(keep, "\n")
}

// serverLogs is what both servers logged at WARN and ERROR, for a failure
// message.
func (h *twoProcs) serverLogs() string {
	var sb strings.Builder
	for _, s := range []*server{h.a, h.b} {
		lines := logLines(s, `"level":"WARN"`, 15) + "\n" + logLines(s, `"level":"ERROR"`, 15)
		fmt.Fprintf(&sb, "\n--- %s warnings and errors:\n%s", s.base, strings.TrimSpace(lines))
	}
	return sb.String()
}

func getPath(name string) string {
	return "/org/get?organization_name=" + url.QueryEscape(name)
}

// createOrg signs an organization up (outside any race) and returns its
// admin_id.
func (h *twoProcs) createOrg(t *testing.T, s *server, name, email string) string {
	t.Helper()
	r := s.call(t, "POST", "/org/create", "", map[string]any{"organization_name": name, "email": email, "password": twoProcPassword})
	if r.status != http.StatusCreated {
		t.Fatalf("POST /org/create %q on %s: got %d %s, want 201", name, s.base, r.status, r.raw)
	}
	id, _ := r.body["admin_id"].(string)
	if id == "" {
		t.Fatalf("POST /org/create %q: no admin_id in %s", name, r.raw)
	}
	return id
}

func (h *twoProcs) login(t *testing.T, s *server, email string) string {
	t.Helper()
	r := s.call(t, "POST", "/admin/login", "", map[string]any{"email": email, "password": twoProcPassword})
	token, _ := r.body["access_token"].(string)
	if r.status != http.StatusOK || token == "" {
		t.Fatalf("POST /admin/login %s on %s: got %d %s, want 200 with an access_token", email, s.base, r.status, r.raw)
	}
	return token
}

func (h *twoProcs) postDocument(t *testing.T, s *server, token string, doc map[string]any) string {
	t.Helper()
	r := s.call(t, "POST", "/org/documents", token, doc)
	id, _ := r.body["id"].(string)
	if r.status != http.StatusCreated || id == "" {
		t.Fatalf("POST /org/documents on %s: got %d %s, want 201 with an id", s.base, r.status, r.raw)
	}
	return id
}

// expectOrg checks that GET /org/get of name answers 200 on both servers,
// with that name and admin.
func (h *twoProcs) expectOrg(t *testing.T, name, adminID, why string) {
	t.Helper()
	for _, s := range []*server{h.a, h.b} {
		r := s.call(t, "GET", getPath(name), "", nil)
		if r.status != http.StatusOK || r.body["organization_name"] != name || r.body["admin_id"] != adminID {
			t.Errorf("%s: GET /org/get %q on %s: got %d %s, want 200 naming it with admin_id %s%s",
				why, name, s.base, r.status, r.raw, adminID, h.serverLogs())
		}
	}
}

// expectNoOrg checks that GET /org/get of name answers 404 on both servers.
func (h *twoProcs) expectNoOrg(t *testing.T, name, why string) {
	t.Helper()
	for _, s := range []*server{h.a, h.b} {
		r := s.call(t, "GET", getPath(name), "", nil)
		if r.status != http.StatusNotFound {
			t.Errorf("%s: GET /org/get %q on %s: got %d %s, want 404%s", why, name, s.base, r.status, r.raw, h.serverLogs())
		}
	}
}

// expectDocument checks that the token's organization lists document id,
// on both servers.
func (h *twoProcs) expectDocument(t *testing.T, token, id, why string) {
	t.Helper()
	for _, s := range []*server{h.a, h.b} {
		r := s.call(t, "GET", "/org/documents?limit=100", token, nil)
		items, _ := r.body["items"].([]any)
		found := false
		for _, it := range items {
			if m, ok := it.(map[string]any); ok && m["id"] == id {
				found = true
			}
		}
		if r.status != http.StatusOK || !found {
			t.Errorf("%s: GET /org/documents on %s: got %d %s, want 200 listing document %s%s",
				why, s.base, r.status, r.raw, id, h.serverLogs())
		}
	}
}

// createRace signs up all names at once, with distinct e-mails, half on
// each server. The names share one slug: exactly one sign-up wins, and the
// organization is then found under the winner's name with its admin.
func (h *twoProcs) createRace(t *testing.T, kind string, round int, names []string) {
	t.Helper()
	calls := make([]raceCall, len(names))
	for i, name := range names {
		calls[i] = raceCall{s: h.pick(i), method: "POST", path: "/org/create", body: map[string]any{
			"organization_name": name,
			"email":             fmt.Sprintf("%s-r%d-g%d@example.com", kind, round, i),
			"password":          twoProcPassword,
		}}
	}
	results := h.race(calls)

	winner := -1
	for i, res := range results {
		if res.err != nil {
			t.Fatalf("round %d: POST /org/create %q on %s: %s%s", round, names[i], calls[i].s.base, describe(res), h.serverLogs())
		}
		h.count("create", res.r)
		switch {
		case res.r.status == http.StatusCreated:
			if winner >= 0 {
				t.Errorf("round %d: two sign-ups of one slug got 201: %q (goroutine %d on %s): %s, and %q (goroutine %d on %s): %s%s",
					round, names[winner], winner, calls[winner].s.base, describe(results[winner]),
					names[i], i, calls[i].s.base, describe(res), h.serverLogs())
				continue
			}
			winner = i
		case res.r.status == http.StatusBadRequest && detail(res.r) == "Organization already exists":
		case isBusy(res.r):
		default:
			t.Errorf("round %d: POST /org/create %q on %s: got %s, want 201, 400 \"Organization already exists\" or 409 busy with Retry-After%s",
				round, names[i], calls[i].s.base, describe(res), h.serverLogs())
		}
	}
	if winner < 0 {
		var got []string
		for _, res := range results {
			got = append(got, describe(res))
		}
		t.Fatalf("round %d: %d sign-ups of one slug, none got 201; answers:\n%s%s", round, len(names), strings.Join(got, "\n"), h.serverLogs())
	}

	w := results[winner].r
	if w.body["organization_name"] != names[winner] {
		t.Errorf("round %d: the 201 names %v, want %q", round, w.body["organization_name"], names[winner])
	}
	adminID, _ := w.body["admin_id"].(string)
	h.expectOrg(t, names[winner], adminID, fmt.Sprintf("round %d: the winner of the sign-up race", round))
	for i, name := range names {
		if name != names[winner] {
			h.expectNoOrg(t, name, fmt.Sprintf("round %d: a losing spelling (goroutine %d)", round, i))
		}
	}
	// The winner's admin can log in on the other server than it signed up on.
	h.login(t, h.pick(winner+1), calls[winner].body.(map[string]any)["email"].(string))
}

// renameRace makes four organizations (each with one document) and
// renames them all at once, half on each server, to one new name: exactly
// one rename wins; the losers keep their names, and the winner its
// documents under the new name.
func (h *twoProcs) renameRace(t *testing.T, round int) {
	t.Helper()
	const n = 4
	target := fmt.Sprintf("Rename Target %d", round)
	type org struct{ name, email, adminID, token, doc string }
	orgs := make([]org, n)
	for i := range orgs {
		o := &orgs[i]
		o.name = fmt.Sprintf("Renamer %d-%d", round, i)
		o.email = fmt.Sprintf("renamer-r%d-o%d@example.com", round, i)
		o.adminID = h.createOrg(t, h.pick(i), o.name, o.email)
		o.token = h.login(t, h.pick(i+1), o.email)
		o.doc = h.postDocument(t, h.pick(i), o.token, map[string]any{"round": round, "org": i})
	}

	calls := make([]raceCall, n)
	for i, o := range orgs {
		calls[i] = raceCall{s: h.pick(i), method: "PUT", path: "/org/update", token: o.token,
			body: map[string]any{"organization_name": o.name, "new_organization_name": target}}
	}
	results := h.race(calls)

	winner := -1
	for i, res := range results {
		if res.err != nil {
			t.Fatalf("round %d: PUT /org/update %q -> %q on %s: %s%s", round, orgs[i].name, target, calls[i].s.base, describe(res), h.serverLogs())
		}
		h.count("rename-to-one-target", res.r)
		switch res.r.status {
		case http.StatusOK:
			if winner >= 0 {
				t.Errorf("round %d: two renames to %q got 200: %q on %s and %q on %s%s",
					round, target, orgs[winner].name, calls[winner].s.base, orgs[i].name, calls[i].s.base, h.serverLogs())
				continue
			}
			winner = i
		case http.StatusConflict:
		default:
			t.Errorf("round %d: PUT /org/update %q -> %q on %s: got %s, want 200 or 409%s",
				round, orgs[i].name, target, calls[i].s.base, describe(res), h.serverLogs())
		}
	}
	if winner < 0 {
		var got []string
		for _, res := range results {
			got = append(got, describe(res))
		}
		t.Fatalf("round %d: %d renames to %q, none got 200; answers:\n%s%s", round, n, target, strings.Join(got, "\n"), h.serverLogs())
	}

	h.expectOrg(t, target, orgs[winner].adminID, fmt.Sprintf("round %d: the rename's target", round))
	h.expectNoOrg(t, orgs[winner].name, fmt.Sprintf("round %d: the winner's former name", round))
	h.expectDocument(t, orgs[winner].token, orgs[winner].doc, fmt.Sprintf("round %d: the winner's document, with its token from before the rename", round))
	for i, o := range orgs {
		if i == winner {
			continue
		}
		h.expectOrg(t, o.name, o.adminID, fmt.Sprintf("round %d: a losing rename's organization", round))
		h.expectDocument(t, o.token, o.doc, fmt.Sprintf("round %d: a losing rename's document", round))
	}
}

// renameDeleteRace makes an organization with one document and sends at
// once a rename of it (to A) and a deletion of it by its old name (to B).
// It returns the outcome: "deleted" or "renamed".
func (h *twoProcs) renameDeleteRace(t *testing.T, round int) string {
	t.Helper()
	oldName := fmt.Sprintf("Doomed %d", round)
	newName := fmt.Sprintf("Renamed Doomed %d", round)
	email := fmt.Sprintf("doomed-r%d@example.com", round)
	adminID := h.createOrg(t, h.pick(round), oldName, email)
	token := h.login(t, h.pick(round+1), email)
	doc := h.postDocument(t, h.pick(round), token, map[string]any{"round": round})

	results := h.race([]raceCall{
		{s: h.a, method: "PUT", path: "/org/update", token: token,
			body: map[string]any{"organization_name": oldName, "new_organization_name": newName}},
		{s: h.b, method: "DELETE", path: "/org/delete", token: token,
			body: map[string]any{"organization_name": oldName}},
	})
	ren, del := results[0], results[1]
	for what, res := range map[string]raceResult{"rename": ren, "delete": del} {
		if res.err != nil {
			t.Fatalf("round %d: the %s got no answer: %v%s", round, what, res.err, h.serverLogs())
		}
	}
	h.count("race-rename", ren.r)
	h.count("race-delete", del.r)
	got := fmt.Sprintf("rename (on %s) %s; delete (on %s) %s", h.a.base, describe(ren), h.b.base, describe(del))

	switch {
	case del.r.status == http.StatusOK && ren.r.status != http.StatusOK:
		// Deleted: the rename was refused (busy, or the admin or the name
		// was already gone).
		if s := ren.r.status; s != http.StatusConflict && s != http.StatusNotFound && s != http.StatusUnauthorized {
			t.Errorf("round %d: the organization was deleted, and the rename got %d, want 401, 404 or 409\n%s%s", round, s, got, h.serverLogs())
		} else if s == http.StatusConflict && !isBusy(ren.r) {
			t.Errorf("round %d: the organization was deleted, and the rename got a 409 that is not \"busy\" with Retry-After\n%s", round, got)
		}
		h.expectNoOrg(t, oldName, fmt.Sprintf("round %d: deleted (%s); its old name", round, got))
		h.expectNoOrg(t, newName, fmt.Sprintf("round %d: deleted (%s); the rename's new name", round, got))
		// Both names are free again: nothing of the organization holds them.
		for i, name := range []string{oldName, newName} {
			h.createOrg(t, h.pick(i), name, fmt.Sprintf("doomed-again-r%d-%d@example.com", round, i))
		}
		return "deleted"
	case ren.r.status == http.StatusOK && del.r.status != http.StatusOK:
		// Renamed: the deletion was refused (busy, or its name was gone).
		if s := del.r.status; s == http.StatusConflict && !isBusy(del.r) || s != http.StatusConflict && s != http.StatusNotFound {
			t.Errorf("round %d: the organization was renamed, and the delete got %d, want 404, or 409 busy with Retry-After\n%s%s", round, s, got, h.serverLogs())
		}
		h.expectOrg(t, newName, adminID, fmt.Sprintf("round %d: renamed (%s); the new name", round, got))
		h.expectNoOrg(t, oldName, fmt.Sprintf("round %d: renamed (%s); the old name", round, got))
		h.expectDocument(t, token, doc, fmt.Sprintf("round %d: renamed (%s); its document", round, got))
		return "renamed"
	default:
		t.Errorf("round %d: a rename racing a delete must end with exactly one of them succeeding; got %s", round, got)
		for _, name := range []string{oldName, newName} {
			r := h.a.call(t, "GET", getPath(name), "", nil)
			t.Logf("round %d: afterwards GET /org/get %q: %d %s", round, name, r.status, r.raw)
		}
		t.Logf("server logs:%s", h.serverLogs())
		return fmt.Sprintf("rename %d, delete %d", ren.r.status, del.r.status)
	}
}

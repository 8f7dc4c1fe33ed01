package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// isolationTTL is the second instance's AUTH_CACHE_TTL: long enough that
// every attack of a round falls within it.
const isolationTTL = 5 * time.Second

// TestStaleTenantCannotReachAnotherOrganization: two processes on one
// store. X's principal is cached on Q with X's collection; on P, X renames
// itself away and V renames itself into that collection's name, so V's
// collection now has the name Q still holds for X. Within the TTL, X's
// token on Q reads, replaces, patches and deletes V's document by its id:
// every request is 404, and V's document is unchanged afterwards. X's own
// document is still found on Q, followed to its new collection. Not
// parallel: each round must finish within the TTL.
func TestStaleTenantCannotReachAnotherOrganization(t *testing.T) {
	mongoAddr := freeAddr(t)
	common := []string{
		"JWT_SECRET=" + twoProcSecret, "BCRYPT_COST=4",
		"CREATE_RATE_PER_ADDRESS=0", "LOGIN_RATE_PER_ADDRESS=0", "LOGIN_RATE_PER_EMAIL=0",
	}
	p := runServer(t, t.TempDir(), freeAddr(t), baseEnv(append([]string{
		"DATA_DIR=" + filepath.Join(t.TempDir(), "data"), "EMBEDDED_MONGO_ADDR=" + mongoAddr}, common...)...))
	q := runServer(t, t.TempDir(), freeAddr(t), baseEnv(append([]string{
		"MONGO_URI=mongodb://" + mongoAddr + "/", "AUTH_CACHE_TTL=" + isolationTTL.String()}, common...)...))
	h := &twoProcs{a: p, b: q}

	for round := range 5 {
		shared := fmt.Sprintf("Shared %d", round)
		xEmail := fmt.Sprintf("x%d@x.example.com", round)
		vEmail := fmt.Sprintf("v%d@v.example.com", round)
		h.createOrg(t, p, shared, xEmail)
		h.createOrg(t, p, fmt.Sprintf("Victim %d", round), vEmail)
		x, v := h.login(t, p, xEmail), h.login(t, p, vEmail)
		victimDoc := map[string]any{"owner": "victim", "round": round}
		vid := h.postDocument(t, p, v, victimDoc)
		xid := h.postDocument(t, p, x, map[string]any{"owner": "x"})

		// Q caches X's principal, naming org_shared_<round>.
		cached := time.Now()
		mustStatus(t, q.call(t, "GET", "/org/documents", x, nil), http.StatusOK)

		// On P: X leaves the name, V takes it.
		mustStatus(t, p.call(t, "PUT", "/org/update", x, map[string]any{
			"organization_name": shared, "new_organization_name": fmt.Sprintf("Elsewhere %d", round)}), http.StatusOK)
		mustStatus(t, p.call(t, "PUT", "/org/update", v, map[string]any{
			"organization_name": fmt.Sprintf("Victim %d", round), "new_organization_name": shared}), http.StatusOK)

		// On Q, within the TTL, X's token goes after V's document.
		path := "/org/documents/" + vid
		attacks := []struct {
			method string
			body   any
		}{
			{"GET", nil},
			{"PUT", map[string]any{"owner": "x", "stolen": true}},
			{"PATCH", map[string]any{"stolen": true}},
			{"DELETE", nil},
		}
		for _, a := range attacks {
			r := q.call(t, a.method, path, x, a.body)
			if r.status != http.StatusNotFound {
				t.Errorf("round %d: X's %s %s on Q: got %d %s, want 404", round, a.method, path, r.status, r.raw)
			}
			expectIntact(t, p, v, vid, victimDoc, fmt.Sprintf("round %d, after X's %s", round, a.method))
		}
		// X's own document is found, in X's collection's new place.
		if r := q.call(t, "GET", "/org/documents/"+xid, x, nil); r.status != http.StatusOK {
			t.Errorf("round %d: X's own document on Q: got %d %s, want 200", round, r.status, r.raw)
		}
		if took := time.Since(cached); took >= isolationTTL {
			t.Fatalf("round %d took %s, not within the TTL of %s: the cache was not stale throughout", round, took, isolationTTL)
		}
		expectIntact(t, q, v, vid, victimDoc, fmt.Sprintf("round %d, on Q", round))
	}
}

// expectIntact checks that the token's document id answers 200 on s with
// exactly want as its data.
func expectIntact(t *testing.T, s *server, token, id string, want map[string]any, why string) {
	t.Helper()
	r := s.call(t, "GET", "/org/documents/"+id, token, nil)
	got, _ := json.Marshal(r.body["data"])
	if w, _ := json.Marshal(want); r.status != http.StatusOK || string(got) != string(w) {
		t.Errorf("%s: V's document: got %d %s, want 200 with data %s", why, r.status, r.raw, w)
	}
}

package app_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// orgCacheTTL is both instances' ORG_CACHE_TTL.
const orgCacheTTL = time.Second

// TestOrgCacheAcrossInstances: two processes on one store, both caching
// organizations. A rename or deletion on A shows on A at once, and on B by
// ORG_CACHE_TTL + 100 ms after it was answered; a deleted organization
// never shows again after that. Not parallel: it times the cache to
// 100 ms.
func TestOrgCacheAcrossInstances(t *testing.T) {
	mongoAddr := freeAddr(t)
	common := []string{
		"JWT_SECRET=" + twoProcSecret, "BCRYPT_COST=4", "ORG_CACHE_TTL=" + orgCacheTTL.String(),
		"CREATE_RATE_PER_ADDRESS=0", "LOGIN_RATE_PER_ADDRESS=0", "LOGIN_RATE_PER_EMAIL=0",
	}
	a := runServer(t, t.TempDir(), freeAddr(t), baseEnv(append([]string{
		"DATA_DIR=" + filepath.Join(t.TempDir(), "data"), "EMBEDDED_MONGO_ADDR=" + mongoAddr}, common...)...))
	b := runServer(t, t.TempDir(), freeAddr(t), baseEnv(append([]string{
		"MONGO_URI=mongodb://" + mongoAddr + "/"}, common...)...))
	h := &twoProcs{a: a, b: b}

	for round := range 3 {
		name, renamed := "Cached "+strconv.Itoa(round), "Renamed "+strconv.Itoa(round)
		email := "cached" + strconv.Itoa(round) + "@cache.example.com"
		adminID := h.createOrg(t, a, name, email)
		token := h.login(t, a, email)

		// Both instances hold the organization under its first name.
		hits := cacheHits(t, b)
		for _, s := range []*server{a, b, a, b} {
			expectGet(t, s, name, http.StatusOK, adminID, "before the rename")
		}
		if cacheHits(t, b) <= hits {
			t.Fatalf("round %d: B's second /org/get was not a cache hit", round)
		}

		r := a.call(t, "PUT", "/org/update", token, map[string]any{"organization_name": name, "new_organization_name": renamed})
		mustStatus(t, r, http.StatusOK)
		renamedAt := time.Now()
		token, _ = r.body["access_token"].(string)
		// A forgot at once.
		expectGet(t, a, renamed, http.StatusOK, adminID, "on A right after the rename")
		expectGet(t, a, name, http.StatusNotFound, "", "on A right after the rename")
		// B follows within the TTL.
		settle(renamedAt.Add(orgCacheTTL+100*time.Millisecond), func() bool {
			return b.call(t, "GET", getPath(renamed), "", nil).status == http.StatusOK &&
				b.call(t, "GET", getPath(name), "", nil).status == http.StatusNotFound
		})
		expectGet(t, b, renamed, http.StatusOK, adminID, "on B by TTL + 100ms after the rename")
		expectGet(t, b, name, http.StatusNotFound, "", "on B by TTL + 100ms after the rename")

		// Both hold it under its new name; then it is deleted on A.
		expectGet(t, b, renamed, http.StatusOK, adminID, "before the deletion")
		mustStatus(t, a.call(t, "DELETE", "/org/delete", token, map[string]any{"organization_name": renamed}), http.StatusOK)
		deletedAt := time.Now()
		expectGet(t, a, renamed, http.StatusNotFound, "", "on A right after the deletion")
		deadline := deletedAt.Add(orgCacheTTL + 100*time.Millisecond)
		settle(deadline, func() bool { return b.call(t, "GET", getPath(renamed), "", nil).status == http.StatusNotFound })
		// From then on, never again.
		for range 5 {
			for _, s := range []*server{a, b} {
				expectGet(t, s, renamed, http.StatusNotFound, "", "after the deletion + TTL + 100ms")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// settle polls done until it holds or deadline has passed.
func settle(deadline time.Time, done func() bool) {
	for !done() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Until(deadline)) // the state is checked by then, not sooner
}

// expectGet checks GET /org/get of name on s: the status, and with 200 the
// name and admin.
func expectGet(t *testing.T, s *server, name string, status int, adminID, why string) {
	t.Helper()
	r := s.call(t, "GET", getPath(name), "", nil)
	if r.status != status || (status == http.StatusOK && (r.body["organization_name"] != name || r.body["admin_id"] != adminID)) {
		t.Fatalf("%s: GET /org/get %q on %s: got %d %s, want %d", why, name, s.base, r.status, r.raw, status)
	}
}

// cacheHits reads s's orgsvc_org_cache_lookups_total{result="hit"}.
func cacheHits(t *testing.T, s *server) float64 {
	t.Helper()
	res, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), `orgsvc_org_cache_lookups_total{result="hit"} `); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

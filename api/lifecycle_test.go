package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orgsvc/orgsvc/internal/config"
	"github.com/orgsvc/orgsvc/internal/service"
)

// post sends a JSON body with a token and returns the status and the "id"
// of the answer; safe to call from any goroutine.
func post(base, path, token string, body any) (int, string, error) {
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", base+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	var out struct{ ID string }
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &out)
	if res.StatusCode == http.StatusConflict && res.Header.Get("Retry-After") == "" {
		return res.StatusCode, "", fmt.Errorf("409 without Retry-After: %s", b)
	}
	return res.StatusCode, out.ID, nil
}

// TestWritesRacingRenamesAreNeverLost keeps writers inserting documents
// through one instance while the organization is renamed, again and again,
// through another. The writers' instance trusts its cached check of the
// token for AUTH_CACHE_TTL, so its writes keep naming the old collection
// for a while after each move. Every acknowledged write is readable under
// the final name afterwards, every answer is a success or retryable, and
// no collection is left behind under a former name.
func TestWritesRacingRenamesAreNeverLost(t *testing.T) {
	withCache := func(c *config.Config) { c.AuthCacheTTL = time.Second }
	a := newEnv(t, withCache)
	b := startEnv(t, a.db, func(ctx context.Context) error { return a.db.Client().Ping(ctx, nil) }, withCache)
	o := a.signUp("move-0")
	first := a.postDoc(o, `{"first":true}`)

	var (
		mu       sync.Mutex
		acked    []string
		statuses = map[int]int{}
		problems []string
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	note := func(status int, err error) {
		mu.Lock()
		defer mu.Unlock()
		statuses[status]++
		if err != nil {
			problems = append(problems, err.Error())
		}
	}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				status, id, err := post(a.srv.URL, "/org/documents", o.token, map[string]any{"writer": w, "i": i})
				switch {
				case err != nil:
				case status == http.StatusCreated:
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				case status == http.StatusConflict || status == http.StatusServiceUnavailable:
				default:
					err = fmt.Errorf("write answered %d", status)
				}
				note(status, err)
			}
		}()
	}
	// A reader of a document made before: found, or told to retry.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			req, _ := http.NewRequest("GET", a.srv.URL+"/org/documents/"+first, nil)
			req.Header.Set("Authorization", "Bearer "+o.token)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				note(0, err)
				continue
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusConflict {
				note(res.StatusCode, fmt.Errorf("read of an existing document answered %d", res.StatusCode))
			}
		}
	}()

	const renames = 6
	name := "move-0"
	for n := 1; n <= renames; n++ {
		time.Sleep(150 * time.Millisecond)
		next := fmt.Sprintf("move-%d", n)
		r := b.call("PUT", "/org/update", o.token, map[string]any{"organization_name": name, "new_organization_name": next})
		expect(t, r, http.StatusOK, "")
		name = next
	}
	time.Sleep(1500 * time.Millisecond) // past the writers' cache TTL
	stop.Store(true)
	wg.Wait()

	if len(problems) > 0 {
		var failed []string
		for _, line := range strings.Split(a.logs.String()+b.logs.String(), "\n") {
			if strings.Contains(line, `"level":"ERROR"`) {
				failed = append(failed, line)
			}
		}
		t.Fatalf("%d bad answers, first: %s (statuses %v)\nerrors logged:\n%s", len(problems), problems[0], statuses, strings.Join(failed, "\n"))
	}
	listed := a.listAll(o, "", 500)
	missing := 0
	for _, id := range acked {
		if !slices.Contains(listed, id) {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged writes are not under %q", missing, len(acked), name)
	}
	if extra := len(listed) - 1 - len(acked); extra < 0 || extra > statuses[http.StatusConflict]+statuses[http.StatusServiceUnavailable] {
		t.Fatalf("%d documents listed for %d acknowledged writes and %v", len(listed), len(acked), statuses)
	}
	for _, c := range a.collections() {
		if strings.HasPrefix(c, "org_move_") && c != "org_move_6" {
			t.Fatalf("collection %s was left behind (all: %v)", c, a.collections())
		}
	}
	findings, err := service.NewChecker(a.orgs).Check(context.Background())
	if err != nil || len(findings) > 0 {
		t.Fatalf("check: %v %v", findings, err)
	}
	t.Logf("%d renames, %d acknowledged writes, statuses %v", renames, len(acked), statuses)
}

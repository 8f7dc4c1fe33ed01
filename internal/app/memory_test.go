package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// listingFloodRSS bounds the server's peak resident memory while six
// clients list 100 documents of 1 MB at once. A listing holds a page of at
// most MAX_PAGE_BYTES (4 MiB) plus the one document read past it, and the
// embedded store one decoded document at a time; at most one listing per
// core reads at once (half of them per organization). On 8 cores that is
// under 120 MiB of live data, which the Go collector lets grow to twice
// that, over a server that idles near 100 MiB (measured: README, "Requests
// and rules").
const listingFloodRSS = 400 << 20

// TestListingFloodMemory: the built server, 100 documents of 1 MB in one
// organization, six clients listing them at once with limit=100: every
// page is 200 with the 4 documents that fit in 4 MiB and a next, and the
// process's peak resident memory (VmHWM) stays under listingFloodRSS.
// Not parallel: its listings take the machine's cores to themselves.
func TestListingFloodMemory(t *testing.T) {
	s := runServer(t, t.TempDir(), freeAddr(t), baseEnv(
		"DATA_DIR="+filepath.Join(t.TempDir(), "data"), "BCRYPT_COST=4", "LOG_LEVEL=warn",
		// Each page reads all 100 MB on the embedded store, and this
		// organization's listings take turns: time enough for six.
		"REQUEST_TIMEOUT=120s"))
	mustStatus(t, s.call(t, "POST", "/org/create", "", map[string]any{
		"organization_name": "Heavy", "email": "admin@heavy.example.com", "password": "heavy-pass-1"}), http.StatusCreated)
	token := login(t, s, "admin@heavy.example.com", "heavy-pass-1")

	const docs, docBytes = 100, 1_000_000
	var wg sync.WaitGroup
	errs := make(chan error, docs)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < docs; i += 2 {
				pad := strings.Repeat("x", docBytes-40)
				body := fmt.Sprintf(`{"i":%d,"pad":%q}`, i, pad)
				if status, raw, err := send(s.base, "POST", "/org/documents", token, []byte(body)); err != nil || status != http.StatusCreated {
					errs <- fmt.Errorf("document %d: %d %.200s %v", i, status, raw, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	const clients, pages = 6, 1
	var mu sync.Mutex
	listed := 0
	failures := make(chan string, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			after := ""
			for range pages {
				path := "/org/documents?limit=100"
				if after != "" {
					path += "&after=" + after
				}
				status, raw, err := send(s.base, "GET", path, token, nil)
				var page struct {
					Items []json.RawMessage `json:"items"`
					Next  *string           `json:"next"`
				}
				if err == nil {
					err = json.Unmarshal(raw, &page)
				}
				if err != nil || status != http.StatusOK || len(page.Items) == 0 || len(page.Items) > 4 || page.Next == nil {
					failures <- fmt.Sprintf("client %d: %d, %d items, next %v, %v %.200s", c, status, len(page.Items), page.Next, err, raw)
					return
				}
				mu.Lock()
				listed += len(page.Items)
				mu.Unlock()
				after = *page.Next
			}
		}()
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	peak := vmHWM(t, s.cmd.Process.Pid)
	t.Logf("peak RSS %d MiB after %d documents listed by %d clients", peak>>20, listed, clients)
	if want := clients * pages * 4; listed != want {
		t.Errorf("listed %d documents, want %d", listed, want)
	}
	if peak >= listingFloodRSS {
		t.Fatalf("peak RSS %d MiB, want under %d MiB", peak>>20, listingFloodRSS>>20)
	}
}

// send makes one request with a raw JSON body and returns the answer.
func send(base, method, path, token string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	// As long as the server's REQUEST_TIMEOUT: the test judges memory, and
	// a loaded machine may take that long to read 1 MB documents.
	res, err := (&http.Client{Timeout: 120 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return res.StatusCode, raw, err
}

// vmHWM is the peak resident memory of process pid, in bytes.
func vmHWM(t *testing.T, pid int) int {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/<pid>/status")
	return 0
}

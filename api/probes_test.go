package api_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/orgsvc/orgsvc/internal/storetest"
)

// TestHeadProbes: HEAD /health and HEAD /ready answer as GET does, status
// and headers, without a body; /ready also while the database is down.
func TestHeadProbes(t *testing.T) {
	up := newEnv(t)
	db := storetest.Database(t)
	down := startEnv(t, db, func(context.Context) error { return errors.New("down") })
	send := func(e *env, method, path string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, e.srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, body
	}
	for _, c := range []struct {
		name   string
		e      *env
		path   string
		status int
	}{
		{"health", up, "/health", http.StatusOK},
		{"ready", up, "/ready", http.StatusOK},
		{"ready, database down", down, "/ready", http.StatusServiceUnavailable},
	} {
		t.Run(c.name, func(t *testing.T) {
			get, getBody := send(c.e, "GET", c.path)
			head, headBody := send(c.e, "HEAD", c.path)
			if get.StatusCode != c.status || head.StatusCode != c.status {
				t.Fatalf("status: GET %d, HEAD %d, want %d", get.StatusCode, head.StatusCode, c.status)
			}
			if len(getBody) == 0 || len(headBody) != 0 {
				t.Fatalf("bodies: GET %q, HEAD %q", getBody, headBody)
			}
			for k := range get.Header {
				if k == "Date" || k == "X-Request-Id" {
					continue
				}
				if g, h := get.Header.Values(k), head.Header.Values(k); len(g) != len(h) || g[0] != h[0] {
					t.Errorf("%s: GET %q, HEAD %q", k, g, h)
				}
			}
			if len(head.Header) != len(get.Header) {
				t.Errorf("headers: GET %v, HEAD %v", get.Header, head.Header)
			}
		})
	}
}

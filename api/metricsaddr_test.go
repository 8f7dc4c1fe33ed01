package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/orgsvc/orgsvc/api"
	"github.com/orgsvc/orgsvc/internal/app"
	"github.com/orgsvc/orgsvc/internal/config"
	"github.com/orgsvc/orgsvc/internal/proc"
)

// TestMetricsApart: with METRICS_ADDR set, the API's handler answers 404
// for /metrics, and the metrics handler serves /metrics (counting the API's
// requests) and nothing else. Without it, /metrics stays on the API.
func TestMetricsApart(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.MetricsAddr = "127.0.0.1:0" })
	e.signUp("alpha")
	get := func(base, path string) (int, string) {
		t.Helper()
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	// Not through e.call: the spec documents /metrics as it is by default.
	if status, body := get(e.srv.URL, "/metrics"); status != http.StatusNotFound || !strings.Contains(body, `"Not Found"`) {
		t.Fatalf("API handler /metrics with METRICS_ADDR set: %d %s, want 404", status, body)
	}

	logs := &proc.Buffer{}
	ms := httptest.NewServer(api.NewMetricsServer(api.Deps{Metrics: e.metrics, Logger: app.NewLogger(logs, "debug", "json")}))
	t.Cleanup(ms.Close)
	status, body := get(ms.URL, "/metrics")
	if status != http.StatusOK {
		t.Fatalf("metrics listener /metrics: %d %s", status, body)
	}
	for _, want := range []string{
		`orgsvc_http_requests_total{method="POST",route="/org/create",status="201"} 1`,
		`orgsvc_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`orgsvc_build_info{commit=`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, path := range []string{"/health", "/org/get?organization_name=alpha", "/docs/index.html"} {
		if status, body := get(ms.URL, path); status != http.StatusNotFound || !strings.Contains(body, `"Not Found"`) {
			t.Errorf("metrics listener %s: %d %s, want 404", path, status, body)
		}
	}
	// Its requests are logged and counted as the API's are.
	if !strings.Contains(logs.String(), `"route":"/metrics"`) {
		t.Errorf("metrics request not logged: %s", logs.String())
	}
	if _, body := get(ms.URL, "/metrics"); !strings.Contains(body, `orgsvc_http_requests_total{method="GET",route="/metrics",status="200"} 1`) {
		t.Error("metrics requests are not counted")
	}

	plain := newEnv(t)
	if r := plain.call("GET", "/metrics", "", nil); r.status != http.StatusOK || !strings.Contains(string(r.raw), "orgsvc_build_info") {
		t.Fatalf("without METRICS_ADDR, /metrics: %d", r.status)
	}
}

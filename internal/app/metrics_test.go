package app_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orgsvc/orgsvc/internal/app"
	"github.com/orgsvc/orgsvc/internal/proc"
)

// TestMetricsAddr: with METRICS_ADDR set, the program serves /metrics on
// that listener alone, the main port answers 404 for it, and the listener
// closes with the server.
func TestMetricsAddr(t *testing.T) {
	addr, metricsAddr := freeAddr(t), freeAddr(t)
	p := start(t, "http://"+addr, environ(t, map[string]string{"DATA_DIR": filepath.Join(t.TempDir(), "data"), "BCRYPT_COST": "4",
		"HTTP_ADDR": addr, "METRICS_ADDR": metricsAddr}))

	get := func(url string) (int, string) {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	status, body := get("http://" + metricsAddr + "/metrics")
	if status != http.StatusOK || !strings.Contains(body, `orgsvc_http_requests_total{method="GET",route="/health",status="200"}`) {
		t.Fatalf("METRICS_ADDR /metrics: %d, want 200 counting the main port's /health:\n%.2000s", status, body)
	}
	if status, body := get("http://" + addr + "/metrics"); status != http.StatusNotFound {
		t.Fatalf("HTTP_ADDR /metrics: %d %s, want 404", status, body)
	}
	if status, body := get("http://" + metricsAddr + "/health"); status != http.StatusNotFound {
		t.Fatalf("METRICS_ADDR /health: %d %s, want 404", status, body)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit status %d\nstderr:\n%s", code, p.stderr.String())
	}
	if c, err := net.DialTimeout("tcp", metricsAddr, time.Second); err == nil {
		c.Close()
		t.Fatal("METRICS_ADDR still accepts after shutdown")
	}
}

// TestMetricsAddrInUse: a METRICS_ADDR that cannot be bound stops start-up
// with a message naming it, before the store is opened.
func TestMetricsAddrInUse(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dataDir := filepath.Join(t.TempDir(), "data")
	env := environ(t, map[string]string{"DATA_DIR": dataDir, "HTTP_ADDR": freeAddr(t), "METRICS_ADDR": taken.Addr().String()})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stderr proc.Buffer
	if code := app.Run(ctx, []string{"orgsvc"}, env, io.Discard, &stderr); code != 1 || !strings.Contains(stderr.String(), "METRICS_ADDR:") {
		t.Fatalf("exit status %d, want 1 naming METRICS_ADDR:\n%s", code, stderr.String())
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Fatalf("DATA_DIR was made (%v): the store was opened before METRICS_ADDR was bound", err)
	}
}

package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/orgsvc/orgsvc/internal/config"
)

// health asks the service configured here (HTTP_ADDR or PORT, on this
// machine) for /health: the probe of images that have no curl. Exit status
// 0 when it answers 200, 1 otherwise.
func health(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "orgsvc: configuration: %v\n", err)
		return 2
	}
	url := "http://" + localAddr(cfg.HTTPAddr) + "/health"
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "orgsvc: health: %v\n", err)
		return 2
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "orgsvc: health: %v\n", err)
		return 1
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
	fmt.Fprintf(stdout, "%s %s %s\n", url, res.Status, body)
	if res.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}

// localAddr is where a process on this machine reaches a server listening
// on addr: a wildcard host becomes loopback.
func localAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

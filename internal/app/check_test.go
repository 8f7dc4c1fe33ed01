package app_test

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orgsvc/orgsvc/internal/app"
)

// TestCheckCommand: `orgsvc check` with the server's configuration, after
// the server made some organizations and stopped, finds nothing.
func TestCheckCommand(t *testing.T) {
	addr := freeAddr(t)
	env := environ(t, map[string]string{"DATA_DIR": filepath.Join(t.TempDir(), "state"), "BCRYPT_COST": "4", "HTTP_ADDR": addr})
	p := start(t, "http://"+addr, env)
	for _, name := range []string{"alpha", "beta"} {
		r := p.call(t, "POST", "/org/create", "", map[string]any{"organization_name": name, "email": "a@" + name + ".example.com", "password": "password-123"})
		if r.status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", name, r.status, r.raw)
		}
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("server exit %d", code)
	}
	var out, errb bytes.Buffer
	code := app.Run(context.Background(), []string{"orgsvc", "check"}, env, &out, &errb)
	if code != 0 || strings.TrimSpace(out.String()) != "consistent" {
		t.Fatalf("check: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	if code := app.Run(context.Background(), []string{"orgsvc", "check", "--bogus"}, env, &out, &errb); code != 2 {
		t.Fatalf("check --bogus: exit %d", code)
	}
}

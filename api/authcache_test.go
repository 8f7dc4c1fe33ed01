package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/orgsvc/orgsvc/internal/config"
)

// TestAuthCacheRevocation runs two instances over one database with a
// token cache: a revocation is immediate on the instance that made it, and
// reaches the other within AUTH_CACHE_TTL.
func TestAuthCacheRevocation(t *testing.T) {
	const ttl = 3 * time.Second
	withCache := func(c *config.Config) { c.AuthCacheTTL = ttl }
	a := newEnv(t, withCache)
	b := startEnv(t, a.db, func(ctx context.Context) error { return a.db.Client().Ping(ctx, nil) }, withCache)

	for i, change := range []struct {
		name string
		do   func(e *env, o *org)
	}{
		{"logout", func(e *env, o *org) {
			expect(t, e.call("POST", "/admin/logout", o.token, nil), http.StatusOK, "")
		}},
		{"password change", func(e *env, o *org) {
			expect(t, e.call("PUT", "/org/update", o.token, map[string]any{"organization_name": o.name, "password": "another-pass-9"}), http.StatusOK, "")
		}},
	} {
		t.Run(change.name, func(t *testing.T) {
			o := a.signUp("cache-" + string(rune('a'+i)))
			// Both instances have checked (and cached) the token.
			expect(t, a.call("GET", "/org/documents", o.token, nil), http.StatusOK, "")
			expect(t, b.call("GET", "/org/documents", o.token, nil), http.StatusOK, "")

			changed := time.Now()
			change.do(a, o)
			// Immediate on the instance that made the change.
			expect(t, a.call("GET", "/org/documents", o.token, nil), http.StatusUnauthorized, "")
			// The other instance still trusts its cached check for now...
			if r := b.call("GET", "/org/documents", o.token, nil); r.status != http.StatusOK && time.Since(changed) < ttl/2 {
				t.Fatalf("instance b did not use its cache: %d", r.status)
			}
			// ... and refuses the token within the TTL.
			for b.call("GET", "/org/documents", o.token, nil).status != http.StatusUnauthorized {
				if time.Since(changed) > ttl+2*time.Second {
					t.Fatalf("instance b still accepts the token %s after the change", time.Since(changed))
				}
				time.Sleep(50 * time.Millisecond)
			}
			t.Logf("b refused the token %s after the change", time.Since(changed).Round(time.Millisecond))
		})
	}

	// Deletion reaches the other instance too.
	o := a.signUp("cache-delete")
	expect(t, b.call("GET", "/org/documents", o.token, nil), http.StatusOK, "")
	expect(t, a.call("DELETE", "/org/delete", o.token, map[string]any{"organization_name": o.name}), http.StatusOK, "")
	expect(t, a.call("GET", "/org/documents", o.token, nil), http.StatusUnauthorized, "")
	deadline := time.Now().Add(ttl + 2*time.Second)
	for b.call("GET", "/org/documents", o.token, nil).status != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("instance b still accepts a deleted organization's token")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

package api_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/orgsvc/orgsvc/internal/config"
	"github.com/orgsvc/orgsvc/internal/model"
)

// refusedWithin polls e with token until it is refused (401), and fails
// the test if e still accepts it bound after since.
func refusedWithin(t *testing.T, e *env, what, token string, since time.Time, bound time.Duration) {
	t.Helper()
	for {
		r := e.call("GET", "/org/documents", token, nil)
		if r.status == http.StatusUnauthorized {
			t.Logf("%s refused %s after the change", what, time.Since(since).Round(time.Millisecond))
			return
		}
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s, want 200 until it is refused, then 401", what, r.status, r.raw)
		}
		if time.Since(since) > bound {
			t.Fatalf("%s still accepted %s after the change, past AUTH_CACHE_TTL and a margin (%s)", what, time.Since(since).Round(time.Millisecond), bound)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTeamChangesEndTokensAcrossInstances: two instances on one database,
// both trusting a token they checked for AUTH_CACHE_TTL. A role change, a
// removal and a change of one's own password (PATCH /me) each end the
// affected tokens at once on the instance that made the change, and on
// the other within AUTH_CACHE_TTL; the tokens issued afterwards carry the
// new state on both.
func TestTeamChangesEndTokensAcrossInstances(t *testing.T) {
	const ttl, margin = time.Second, time.Second
	withCache := func(c *config.Config) { c.AuthCacheTTL, c.OrgCacheTTL = ttl, ttl }
	a := newEnv(t, withCache)
	b := startEnv(t, a.db, func(ctx context.Context) error { return a.db.Client().Ping(ctx, nil) }, withCache)
	o := a.signUp("Revoking")
	other := a.signUp("Revoking Elsewhere")
	// patched is the token the answer to PATCH /me gives.
	var patched string

	for i, c := range []struct {
		name string
		// account: the change is of the account itself, and ends its
		// tokens in every organization.
		account bool
		// change makes the change on a to m's membership or account.
		change func(m *member)
		// after checks the account on b once its old tokens are refused.
		after func(m *member)
	}{
		{"role change", false, func(m *member) {
			expect(t, a.call("PATCH", "/org/members/"+m.id, o.token, map[string]any{"role": model.RoleViewer}), http.StatusOK, "")
		}, func(m *member) {
			expect(t, b.call("POST", "/org/documents", a.login(m.email, m.password), map[string]any{"as": "viewer"}), http.StatusForbidden, "")
		}},
		{"removal", false, func(m *member) {
			expect(t, a.call("DELETE", "/org/members/"+m.id, o.token, nil), http.StatusNoContent, "")
		}, func(m *member) {
			// Still in the other organization, the account stays, but not
			// in this one.
			expect(t, b.call("POST", "/admin/login", "", map[string]any{"email": m.email, "password": m.password, "organization_name": o.name}), http.StatusUnauthorized, "")
		}},
		{"PATCH /me", true, func(m *member) {
			r := a.call("PATCH", "/me", m.token, map[string]any{"password": "changed-" + m.password, "current_password": m.password})
			expect(t, r, http.StatusOK, "")
			m.password, patched = "changed-"+m.password, accessToken(t, r)
		}, func(m *member) {
			expect(t, b.call("GET", "/org/documents", patched, nil), http.StatusOK, "")
			expect(t, b.call("POST", "/admin/login", "", creds(m.email, m.password)), http.StatusOK, "")
		}},
	} {
		m := a.join(o, fmt.Sprintf("affected-%d@revoking.example.com", i), model.RoleMember)
		elsewhere := a.joinAs(other, m.email, m.password, model.RoleMember)
		// The tokens the change must end: the member's in o, and, for a
		// change of the account, its token in the other organization too.
		affected, kept := []string{m.token}, []string{elsewhere.token}
		if c.account {
			affected, kept = append(affected, elsewhere.token), nil
		}
		// Both instances have checked, and cached, both tokens.
		for _, e := range []*env{a, b} {
			for _, tok := range []string{m.token, elsewhere.token} {
				expect(t, e.call("GET", "/org/documents", tok, nil), http.StatusOK, "")
			}
		}
		changed := time.Now()
		c.change(m)
		for _, tok := range affected {
			expect(t, a.call("GET", "/org/documents", tok, nil), http.StatusUnauthorized, "")
		}
		for j, tok := range affected {
			refusedWithin(t, b, fmt.Sprintf("%s: the other instance, affected token %d", c.name, j+1), tok, changed, ttl+margin)
		}
		for _, e := range []*env{a, b} {
			for _, tok := range kept {
				expect(t, e.call("GET", "/org/documents", tok, nil), http.StatusOK, "")
			}
		}
		c.after(m)
	}
}

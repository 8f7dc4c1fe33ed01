package api_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/orgsvc/orgsvc/internal/config"
	"github.com/orgsvc/orgsvc/internal/model"
)

// usageOf is GET /org/usage with token, which must answer 200 with
// exactly the documented fields; it returns the body.
func (e *env) usageOf(token string) map[string]any {
	e.t.Helper()
	r := e.call("GET", "/org/usage", token, nil)
	expect(e.t, r, http.StatusOK, "")
	u := r.obj()
	keys := sortedKeys(u)
	if !slices.Equal(keys, []string{"bytes", "documents", "limits", "requests_per_second"}) {
		e.t.Fatalf("usage fields %v: %s", keys, r.raw)
	}
	lim, _ := u["limits"].(map[string]any)
	if keys := sortedKeys(lim); !slices.Equal(keys, []string{"max_bytes", "max_documents", "rate_burst", "rate_per_second"}) {
		e.t.Fatalf("usage limits fields %v: %s", keys, r.raw)
	}
	for _, v := range []any{u["documents"], u["bytes"], u["requests_per_second"], lim["max_documents"], lim["max_bytes"], lim["rate_per_second"], lim["rate_burst"]} {
		if _, ok := v.(float64); !ok {
			e.t.Fatalf("usage with a field not a number: %s", r.raw)
		}
	}
	return u
}

// suspend suspends the organization name, as orgsvc org suspend does, or
// resumes it.
func (e *env) suspend(name string, suspended bool) {
	e.t.Helper()
	ctx := context.Background()
	org, err := e.orgs.Lookup(ctx, name)
	if err == nil {
		err = e.orgs.Suspend(ctx, org, suspended, "test")
	}
	if err != nil {
		e.t.Fatal(err)
	}
}

// TestUsageForEveryRole: GET /org/usage answers every role of an
// organization with its own documents, bytes, request rate and limits;
// no token is 401; a token of another organization, or of the same
// account switched to another organization, shows that organization's
// usage only; a suspended organization's members get 403.
func TestUsageForEveryRole(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.TenantMaxDocuments, c.TenantMaxBytes, c.OrgRatePerSecond, c.OrgRateBurst = 1000, 1<<30, 100, 500
	})
	o := e.signUp("Usage Co")
	roles := []string{model.RoleOwner, model.RoleAdmin, model.RoleMember, model.RoleViewer}
	callers := map[string]string{model.RoleOwner: o.token}
	for _, role := range roles[1:] {
		callers[role] = e.join(o, role+"@usage.example.com", role).token
	}
	for _, data := range []string{`{"n":1}`, `{"n":2}`, `{"n":3}`} {
		e.postDoc(o, data)
	}
	other := e.signUp("Usage Other")
	// The other organization stores more, and larger, documents.
	for i := range 5 {
		e.postDoc(other, fmt.Sprintf(`{"n":%d,"pad":%q}`, i, strings.Repeat("x", 64<<10)))
	}

	for _, role := range roles {
		u := e.usageOf(callers[role])
		if u["documents"] != float64(3) {
			t.Errorf("usage as %s: %v documents, want 3", role, u["documents"])
		}
		if b, _ := u["bytes"].(float64); b <= 0 {
			t.Errorf("usage as %s: %v bytes, want some", role, u["bytes"])
		}
		if rps, _ := u["requests_per_second"].(float64); rps <= 0 {
			t.Errorf("usage as %s: %v requests per second after its requests", role, u["requests_per_second"])
		}
		lim := u["limits"].(map[string]any)
		if lim["max_documents"] != float64(1000) || lim["max_bytes"] != float64(1<<30) || lim["rate_per_second"] != float64(100) || lim["rate_burst"] != float64(500) {
			t.Errorf("usage limits as %s: %v", role, lim)
		}
	}
	// A viewer's refused write counts nothing; a member's delete does.
	expect(t, e.call("POST", "/org/documents", callers[model.RoleViewer], map[string]any{"n": 9}), http.StatusForbidden, "")
	id := e.postDoc(o, `{"n":4}`)
	expect(t, e.call("DELETE", "/org/documents/"+id, callers[model.RoleMember], nil), http.StatusNoContent, "")
	expect(t, e.call("DELETE", "/org/documents/"+e.postDoc(o, `{"n":5}`), callers[model.RoleMember], nil), http.StatusNoContent, "")
	if u := e.usageOf(callers[model.RoleViewer]); u["documents"] != float64(3) {
		t.Fatalf("usage after a refused create and two creates deleted: %v documents, want 3", u["documents"])
	}

	// No token, or a bad one: 401.
	expect(t, e.call("GET", "/org/usage", "", nil), http.StatusUnauthorized, "")
	expect(t, e.call("GET", "/org/usage", o.token+"x", nil), http.StatusUnauthorized, "")

	// Another organization's token shows its own usage, whatever the query
	// names.
	for _, path := range []string{"/org/usage", "/org/usage?organization_name=Usage+Co"} {
		r := e.call("GET", path, other.token, nil)
		expect(t, r, http.StatusOK, "")
		if own := e.usageOf(o.token); r.obj()["documents"] != float64(5) || r.obj()["bytes"].(float64) <= own["bytes"].(float64) {
			t.Fatalf("GET %s by the other organization: %s, want its own 5 larger documents (Usage Co: %v)", path, r.raw, own)
		}
	}
	// One account in both: each token shows its own organization.
	both := e.joinAs(other, "member@usage.example.com", "member-pass-1", model.RoleViewer)
	if u := e.usageOf(both.token); u["documents"] != float64(5) {
		t.Fatalf("usage of the member's token for Usage Other: %v documents, want 5", u["documents"])
	}
	sw := e.call("POST", "/admin/switch", both.token, map[string]any{"organization_name": "Usage Co"})
	expect(t, sw, http.StatusOK, "")
	if u := e.usageOf(accessToken(t, sw)); u["documents"] != float64(3) {
		t.Fatalf("usage after switching to Usage Co: %v documents, want 3", u["documents"])
	}

	// Suspended: 403 for every role; the other organization is unaffected;
	// resumed, 200 again.
	e.suspend(o.name, true)
	for _, role := range roles {
		expect(t, e.call("GET", "/org/usage", callers[role], nil), http.StatusForbidden, "Organization suspended")
	}
	e.usageOf(other.token)
	e.suspend(o.name, false)
	for _, role := range roles {
		if u := e.usageOf(callers[role]); u["documents"] != float64(3) {
			t.Fatalf("usage as %s after the resumption: %v documents", role, u["documents"])
		}
	}
}

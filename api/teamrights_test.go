package api_test

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/orgsvc/orgsvc/internal/model"
)

// effectCell is one cell of the rights table for a request that changes
// something.
type effectCell struct {
	name string
	// want is the status per role: owner, admin, member, viewer.
	want [4]int
	// do sends the request as an account of role made for the cell, and
	// returns the answer and the check of its effect: an error unless the
	// change happened when it was allowed, and nothing changed when it
	// was refused.
	do func(role string) (response, func(allowed bool) error)
}

// either is yes when allowed, else no.
func either[T any](allowed bool, yes, no T) T {
	if allowed {
		return yes
	}
	return no
}

// statusCheck is one request made after a cell's request, with the
// status it got and the status the cell's effect calls for.
type statusCheck struct {
	what      string
	got, want int
}

// firstWrong is the first check whose status is not the wanted one.
func firstWrong(checks ...statusCheck) error {
	for _, c := range checks {
		if c.got != c.want {
			return fmt.Errorf("%s: %d, want %d", c.what, c.got, c.want)
		}
	}
	return nil
}

// roleIn is the role of account id in o as o's members list shows it; ""
// when it is not a member.
func (e *env) roleIn(o *org, id string) string {
	e.t.Helper()
	for after := ""; ; {
		r := e.call("GET", "/org/members?limit=500&after="+after, o.token, nil)
		expect(e.t, r, 200, "")
		items, _ := r.obj()["items"].([]any)
		for _, it := range items {
			if m, _ := it.(map[string]any); m["id"] == id {
				role, _ := m["role"].(string)
				return role
			}
		}
		if after, _ = r.obj()["next"].(string); after == "" {
			return ""
		}
	}
}

// loginStatus is the status of a login with the credentials.
func (e *env) loginStatus(email, password string) int {
	e.t.Helper()
	return e.call("POST", "/admin/login", "", creds(email, password)).status
}

// TestRightsTableEffects is the rights table for the requests that change
// members, credentials or the organization: each cell is one request by
// an account of each role made for that cell (on a target made for it),
// its status, and a check of its effect afterwards, so that no cell passes
// on a request that would change nothing anyway.
func TestRightsTableEffects(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("Effects")
	n := 0
	// fresh is a new account with role in in, its only organization.
	fresh := func(in *org, role string) *member {
		n++
		return e.join(in, fmt.Sprintf("%s-%d@effects.example.com", role, n), role)
	}
	// own is a new organization, for a cell that renames or deletes it.
	own := func() *org {
		n++
		return e.signUp(fmt.Sprintf("Effects %d", n))
	}
	exists := func(name string) int {
		return e.call("GET", "/org/get?organization_name="+url.QueryEscape(name), "", nil).status
	}

	byOwner, byAdmin, byAnyone := [4]int{200, 403, 403, 403}, [4]int{200, 200, 403, 403}, [4]int{200, 200, 200, 200}
	removedByOwner, removedByAdmin := [4]int{204, 403, 403, 403}, [4]int{204, 204, 403, 403}

	// change gives a member of role from the role to.
	change := func(from, to string, want [4]int) effectCell {
		return effectCell{"PATCH /org/members/{id} " + from + " to " + to, want, func(role string) (response, func(bool) error) {
			caller, target := fresh(o, role), fresh(o, from)
			r := e.call("PATCH", "/org/members/"+target.id, caller.token, map[string]any{"role": to})
			return r, func(allowed bool) error {
				if got, want := e.roleIn(o, target.id), either(allowed, to, from); got != want {
					return fmt.Errorf("the target's role is %q, want %q", got, want)
				}
				if allowed && r.obj()["role"] != to {
					return fmt.Errorf("answer %s, want role %q", r.raw, to)
				}
				return firstWrong(statusCheck{"the target's earlier token", e.call("GET", "/me", target.token, nil).status, either(allowed, 401, 200)})
			}
		}}
	}
	// remove removes a member of role from.
	remove := func(from string, want [4]int) effectCell {
		return effectCell{"DELETE /org/members/{id} of " + from, want, func(role string) (response, func(bool) error) {
			caller, target := fresh(o, role), fresh(o, from)
			r := e.call("DELETE", "/org/members/"+target.id, caller.token, nil)
			return r, func(allowed bool) error {
				if got, want := e.roleIn(o, target.id), either(allowed, "", from); got != want {
					return fmt.Errorf("the target's role is %q, want %q", got, want)
				}
				return firstWrong(statusCheck{"the target's token", e.call("GET", "/me", target.token, nil).status, either(allowed, 401, 200)})
			}
		}}
	}
	// rename renames an organization of the caller's own.
	rename := func(method string) effectCell {
		return effectCell{method + " /org/update new_organization_name", byOwner, func(role string) (response, func(bool) error) {
			in := own()
			caller, next := fresh(in, role), in.name+" Next"
			r := e.call(method, "/org/update", caller.token, map[string]any{"organization_name": in.name, "new_organization_name": next})
			return r, func(allowed bool) error {
				return firstWrong(
					statusCheck{"GET /org/get of the new name", exists(next), either(allowed, 200, 404)},
					statusCheck{"GET /org/get of the old name", exists(in.name), either(allowed, 404, 200)},
					// A rename ends no token.
					statusCheck{"the caller's token", e.call("GET", "/org/documents", caller.token, nil).status, 200},
				)
			}
		}}
	}
	// deletion deletes an organization of the caller's own.
	deletion := func(method string) effectCell {
		return effectCell{method + " /org/delete", byOwner, func(role string) (response, func(bool) error) {
			in := own()
			caller := fresh(in, role)
			r := e.call(method, "/org/delete", caller.token, map[string]any{"organization_name": in.name})
			return r, func(allowed bool) error {
				checks := []statusCheck{
					{"GET /org/get of it", exists(in.name), either(allowed, 404, 200)},
					{"its signing owner's token", e.call("GET", "/me", in.token, nil).status, either(allowed, 401, 200)},
					// Both accounts were in it alone: they went with it.
					{"a login of the caller", e.loginStatus(caller.email, caller.password), either(allowed, 401, 200)},
					{"a login of its signing owner", e.loginStatus(in.email, in.password), either(allowed, 401, 200)},
				}
				if allowed {
					checks = append(checks, statusCheck{"a sign-up with the caller's e-mail", e.call("POST", "/org/create", "", map[string]any{
						"organization_name": in.name + " Again", "email": caller.email, "password": "again-pass-1",
					}).status, 201})
				}
				return firstWrong(checks...)
			}
		}}
	}
	// credentials changes the caller's own e-mail (newEmail) or password
	// (newPassword) with the request made by send.
	credentials := func(name string, want [4]int, newEmail, newPassword bool, send func(caller *member, body map[string]any) response) effectCell {
		return effectCell{name, want, func(role string) (response, func(bool) error) {
			caller := fresh(o, role)
			email, password := caller.email, caller.password
			body := map[string]any{}
			if newEmail {
				email = "renamed-" + caller.email
				body["email"] = email
			}
			if newPassword {
				password = "changed-" + caller.password
				body["password"] = password
			}
			r := send(caller, body)
			return r, func(allowed bool) error {
				return firstWrong(
					statusCheck{"a login with the new credentials", e.loginStatus(email, password), either(allowed, 200, 401)},
					statusCheck{"a login with the old credentials", e.loginStatus(caller.email, caller.password), either(allowed, 401, 200)},
					statusCheck{"the caller's earlier token", e.call("GET", "/me", caller.token, nil).status, either(allowed, 401, 200)},
				)
			}
		}}
	}
	update := func(method string) func(caller *member, body map[string]any) response {
		return func(caller *member, body map[string]any) response {
			body["organization_name"] = o.name
			return e.call(method, "/org/update", caller.token, body)
		}
	}
	patchMe := func(caller *member, body map[string]any) response {
		body["current_password"] = caller.password
		return e.call("PATCH", "/me", caller.token, body)
	}

	cells := []effectCell{
		change(model.RoleAdmin, model.RoleMember, byAdmin),
		change(model.RoleAdmin, model.RoleViewer, byAdmin),
		change(model.RoleMember, model.RoleViewer, byAdmin),
		change(model.RoleViewer, model.RoleAdmin, byAdmin),
		change(model.RoleMember, model.RoleOwner, byOwner),
		change(model.RoleOwner, model.RoleAdmin, byOwner),
		change(model.RoleOwner, model.RoleMember, byOwner),
		remove(model.RoleAdmin, removedByAdmin),
		remove(model.RoleMember, removedByAdmin),
		remove(model.RoleViewer, removedByAdmin),
		remove(model.RoleOwner, removedByOwner),
		// Leaving, any role: the organization keeps its signing owner.
		{"DELETE /org/members/{own id}", [4]int{204, 204, 204, 204}, func(role string) (response, func(bool) error) {
			caller := fresh(o, role)
			r := e.call("DELETE", "/org/members/"+caller.id, caller.token, nil)
			return r, func(allowed bool) error {
				if got, want := e.roleIn(o, caller.id), either(allowed, "", role); got != want {
					return fmt.Errorf("the caller's role is %q, want %q", got, want)
				}
				return firstWrong(
					statusCheck{"the caller's token", e.call("GET", "/me", caller.token, nil).status, either(allowed, 401, 200)},
					// In no organization any more, the account is gone.
					statusCheck{"a login of the caller", e.loginStatus(caller.email, caller.password), either(allowed, 401, 200)},
				)
			}
		}},
		rename("PUT"),
		rename("POST"),
		credentials("PUT /org/update password", byOwner, false, true, update("PUT")),
		credentials("POST /org/update email", byOwner, true, false, update("POST")),
		deletion("DELETE"),
		deletion("POST"),
		credentials("PATCH /me email", byAnyone, true, false, patchMe),
		credentials("PATCH /me password", byAnyone, false, true, patchMe),
	}
	roles := []string{model.RoleOwner, model.RoleAdmin, model.RoleMember, model.RoleViewer}
	for _, c := range cells {
		for i, role := range roles {
			r, effect := c.do(role)
			if r.status != c.want[i] {
				t.Errorf("%s as %s: %d %s, want %d", c.name, role, r.status, r.raw, c.want[i])
				continue
			}
			if err := effect(r.status < 300); err != nil {
				t.Errorf("%s as %s, answered %d: %v", c.name, role, r.status, err)
			}
		}
	}
}

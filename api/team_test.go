package api_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// member is an account a test made a member of an organization.
type member struct {
	id, email, password, token string
}

// join makes a new account a member of o with role, as an accepted
// invitation does, and logs it in to o.
func (e *env) join(o *org, email, role string) *member {
	e.t.Helper()
	return e.joinAs(o, email, "member-pass-1", role)
}

// joinAs is join for the account of email, made with password unless it
// exists: o's owner invites it, and it accepts.
func (e *env) joinAs(o *org, email, password, role string) *member {
	e.t.Helper()
	inv := e.call("POST", "/org/invitations", o.token, map[string]any{"email": email, "role": role})
	expect(e.t, inv, http.StatusCreated, "")
	r := e.call("POST", "/invitations/accept", "", map[string]any{"token": inv.obj()["token"], "password": password})
	expect(e.t, r, http.StatusOK, "")
	m := &member{email: email, password: password}
	m.token, _ = r.obj()["access_token"].(string)
	me := e.call("GET", "/me", m.token, nil)
	expect(e.t, me, http.StatusOK, "")
	m.id, _ = me.obj()["id"].(string)
	return m
}

// orgID is o's id.
func (e *env) orgID(o *org) bson.ObjectID {
	e.t.Helper()
	got, err := repository.NewMasterRepository(e.db, e.idFiltersOnly).OrganizationBySlug(context.Background(), model.Slug(model.CanonicalName(o.name)))
	if err != nil {
		e.t.Fatal(err)
	}
	return got.ID
}

// TestRightsTable asserts every role against every route of the rights
// table: each cell is one request and its status.
func TestRightsTable(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("Rights")
	owner := &member{id: o.adminID, email: o.email, password: o.password, token: o.token}
	callers := map[string]*member{
		model.RoleOwner:  owner,
		model.RoleAdmin:  e.join(o, "adm@rights.example.com", model.RoleAdmin),
		model.RoleMember: e.join(o, "member@rights.example.com", model.RoleMember),
		model.RoleViewer: e.join(o, "viewer@rights.example.com", model.RoleViewer),
	}
	doc := e.postDoc(o, `{"n":1}`)
	type cell struct {
		method, path string
		body         func(role string) any
		// want is the status per role: owner, admin, member, viewer.
		want [4]int
	}
	none := func(string) any { return nil }
	// Every mutation of members targets an account made for that cell,
	// so that one cell's change does not decide the next one's.
	target := func(role string) string {
		return e.join(o, fmt.Sprintf("target-%s-%d@rights.example.com", role, time.Now().UnixNano()), model.RoleMember).id
	}
	// The requests that change members, credentials or the organization
	// itself are TestRightsTableEffects' cells, each checked for its effect.
	cells := []cell{
		{"GET", "/org/documents", none, [4]int{200, 200, 200, 200}},
		{"GET", "/org/documents/" + doc, none, [4]int{200, 200, 200, 200}},
		{"GET", "/org/members", none, [4]int{200, 200, 200, 200}},
		{"GET", "/me", none, [4]int{200, 200, 200, 200}},
		{"POST", "/org/documents", func(string) any { return map[string]any{"k": 1} }, [4]int{201, 201, 201, 403}},
		{"PUT", "/org/documents/" + doc, func(string) any { return map[string]any{"k": 2} }, [4]int{200, 200, 200, 403}},
		{"PATCH", "/org/documents/" + doc, func(string) any { return map[string]any{"k": 3} }, [4]int{200, 200, 200, 403}},
		{"GET", "/org/invitations", none, [4]int{200, 200, 403, 403}},
		{"POST", "/org/invitations", func(role string) any {
			return map[string]any{"email": fmt.Sprintf("invitee-%s@rights.example.com", role), "role": "viewer"}
		}, [4]int{201, 201, 403, 403}},
		{"POST", "/admin/switch", func(string) any { return map[string]any{"organization_name": o.name} }, [4]int{200, 200, 200, 200}},
	}
	roles := []string{model.RoleOwner, model.RoleAdmin, model.RoleMember, model.RoleViewer}
	// A document and a pending invitation of its own for each role's
	// DELETE and resend.
	docOf, invitationOf := map[string]string{}, map[string]string{}
	for _, role := range roles {
		docOf[role] = e.postDoc(o, `{"for":"`+role+`"}`)
		r := e.call("POST", "/org/invitations", o.token, map[string]any{"email": "pending-" + role + "@rights.example.com", "role": "viewer"})
		expect(t, r, 201, "")
		invitationOf[role] = r.obj()["id"].(string)
	}
	for i, role := range roles {
		p := callers[role]
		del := e.call("DELETE", "/org/documents/"+docOf[role], p.token, nil)
		resend := e.call("POST", "/org/invitations/"+invitationOf[role]+"/resend", p.token, nil)
		revoke := e.call("DELETE", "/org/invitations/"+invitationOf[role], p.token, nil)
		want := [][3]int{{204, 200, 204}, {204, 200, 204}, {204, 403, 403}, {403, 403, 403}}[i]
		if got := [3]int{del.status, resend.status, revoke.status}; got != want {
			t.Errorf("as %s: delete document %d, resend %d, revoke %d; want %v", role, got[0], got[1], got[2], want)
		}
	}
	for _, c := range cells {
		for i, role := range roles {
			r := e.call(c.method, c.path, callers[role].token, c.body(role))
			if r.status != c.want[i] {
				t.Errorf("%s %s as %s: %d %s, want %d", c.method, c.path, role, r.status, r.raw, c.want[i])
			}
		}
	}
	// /org/delete of its own organization by a non-owner is 403.
	for _, role := range roles[1:] {
		expect(t, e.call("DELETE", "/org/delete", callers[role].token, map[string]any{"organization_name": o.name}), 403, "Not authorized to delete")
	}
	// Member management: a change of a member's role, to member and to
	// owner, and a removal.
	for i, role := range roles {
		p := callers[role]
		toAdmin := e.call("PATCH", "/org/members/"+target(role), p.token, map[string]any{"role": "admin"})
		toOwner := e.call("PATCH", "/org/members/"+target(role), p.token, map[string]any{"role": "owner"})
		remove := e.call("DELETE", "/org/members/"+target(role), p.token, nil)
		want := [][3]int{{200, 200, 204}, {200, 403, 204}, {403, 403, 403}, {403, 403, 403}}[i]
		if got := [3]int{toAdmin.status, toOwner.status, remove.status}; got != want {
			t.Errorf("as %s: to admin %d, to owner %d, remove %d; want %v (%s %s %s)", role, got[0], got[1], got[2], want, toAdmin.raw, toOwner.raw, remove.raw)
		}
	}
	// An admin cannot demote or remove an owner.
	expect(t, e.call("PATCH", "/org/members/"+owner.id, callers[model.RoleAdmin].token, map[string]any{"role": "member"}), 403, "Your role in this organization does not allow this")
	expect(t, e.call("DELETE", "/org/members/"+owner.id, callers[model.RoleAdmin].token, nil), 403, "")
	// Every role may leave; the viewer does, and its token ends.
	viewer := callers[model.RoleViewer]
	expect(t, e.call("DELETE", "/org/members/"+viewer.id, viewer.token, nil), 204, "")
	expect(t, e.call("GET", "/org/documents", viewer.token, nil), 401, "")
	// Its account was in no other organization: it is gone, and its
	// address may sign up.
	expect(t, e.call("POST", "/admin/login", "", map[string]any{"email": viewer.email, "password": viewer.password}), 401, "Invalid credentials")
	expect(t, e.call("POST", "/org/create", "", map[string]any{"organization_name": "Viewer Co", "email": viewer.email, "password": "viewer-pass-1"}), 201, "")
	// Bad input changes nothing.
	admin := callers[model.RoleAdmin]
	r := e.call("PATCH", "/org/members/"+callers[model.RoleMember].id, owner.token, map[string]any{"role": "emperor"})
	expect(t, r, 422, "")
	expect(t, e.call("GET", "/org/members/"+admin.id, owner.token, nil), 405, "")
	expect(t, e.call("PATCH", "/org/members/not-an-id", owner.token, map[string]any{"role": "viewer"}), 404, "Member not found")
	expect(t, e.call("PATCH", "/org/members/"+bson.NewObjectID().Hex(), owner.token, map[string]any{"role": "viewer"}), 404, "Member not found")
	me := e.call("GET", "/me", callers[model.RoleMember].token, nil)
	orgs, _ := me.obj()["organizations"].([]any)
	if len(orgs) != 1 || orgs[0].(map[string]any)["role"] != "member" {
		t.Fatalf("GET /me of the member: %s", me.raw)
	}
}

// TestLastOwner: the last owner cannot be demoted, removed or leave; with
// two owners demoting each other at once through two instances, one
// change wins and one owner is left.
func TestLastOwner(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("Owned")
	const detail = "An organization needs at least one owner"
	expect(t, e.call("PATCH", "/org/members/"+o.adminID, o.token, map[string]any{"role": "admin"}), 409, detail)
	expect(t, e.call("DELETE", "/org/members/"+o.adminID, o.token, nil), 409, detail)

	other := startEnv(t, e.db, func(ctx context.Context) error { return e.db.Client().Ping(ctx, nil) })
	for round := range 5 {
		second := e.join(o, fmt.Sprintf("second%d@owned.example.com", round), model.RoleOwner)
		var wg sync.WaitGroup
		statuses := make([]int, 2)
		for i, c := range []struct {
			env         *env
			token, whom string
		}{{e, o.token, second.id}, {other, second.token, o.adminID}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i] = c.env.call("PATCH", "/org/members/"+c.whom, c.token, map[string]any{"role": "admin"}).status
			}()
		}
		wg.Wait()
		owners, err := repository.NewMasterRepository(e.db, e.idFiltersOnly).Owners(context.Background(), e.orgID(o))
		if err != nil {
			t.Fatal(err)
		}
		if len(owners) != 1 {
			t.Fatalf("round %d: statuses %v left %d owners", round, statuses, len(owners))
		}
		// The loser gets 409, or 401 when the winner's demotion of it
		// ended its token first.
		ok := 0
		for _, s := range statuses {
			if s == 200 {
				ok++
			} else if s != 409 && s != 401 {
				t.Fatalf("round %d: statuses %v", round, statuses)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: statuses %v, want one 200", round, statuses)
		}
		// The demoted owner's token ended. Whoever is left owner makes the
		// signing account the owner again.
		if owners[0].AccountID.Hex() != o.adminID {
			expect(t, e.call("GET", "/me", o.token, nil), 401, "Token has been revoked")
			expect(t, e.call("PATCH", "/org/members/"+o.adminID, second.token, map[string]any{"role": "owner"}), 200, "")
		} else {
			expect(t, e.call("GET", "/me", second.token, nil), 401, "Token has been revoked")
		}
		o.token = e.login(o.email, o.password)
		expect(t, e.call("DELETE", "/org/members/"+second.id, o.token, nil), 204, "")
	}
}

// TestSeveralOrganizations: an account in two organizations logs in to
// the one it joined first and is told of both, picks one by name, switches
// without a password, and sees both in GET /me.
func TestSeveralOrganizations(t *testing.T) {
	e := newEnv(t)
	first := e.signUp("First Co")
	second := e.signUp("Second Co")
	m := e.joinAs(second, first.email, first.password, model.RoleViewer)

	r := e.call("POST", "/admin/login", "", map[string]any{"email": first.email, "password": first.password})
	expect(t, r, 200, "")
	listed, _ := r.obj()["organizations"].([]any)
	if len(listed) != 2 || listed[0].(map[string]any)["organization_name"] != "First Co" || listed[1].(map[string]any)["role"] != "viewer" {
		t.Fatalf("login of an account in two organizations: %s", r.raw)
	}
	tok := r.obj()["access_token"].(string)
	expect(t, e.call("POST", "/org/documents", tok, map[string]any{"in": "first"}), 201, "")

	r = e.call("POST", "/admin/login", "", map[string]any{"email": first.email, "password": first.password, "organization_name": "Second Co"})
	expect(t, r, 200, "")
	expect(t, e.call("POST", "/org/documents", r.obj()["access_token"].(string), map[string]any{"in": "second"}), 403, "")
	expect(t, e.call("POST", "/admin/login", "", map[string]any{"email": first.email, "password": first.password, "organization_name": "Third Co"}), 401, "Invalid credentials")
	expect(t, e.call("POST", "/admin/login", "", map[string]any{"email": second.email, "password": second.password, "organization_name": "First Co"}), 401, "Invalid credentials")

	sw := e.call("POST", "/admin/switch", tok, map[string]any{"organization_name": "Second Co"})
	expect(t, sw, 200, "")
	switched := sw.obj()["access_token"].(string)
	docs := e.call("GET", "/org/documents", switched, nil)
	expect(t, docs, 200, "")
	if items, _ := docs.obj()["items"].([]any); len(items) != 0 {
		t.Fatalf("the switched token reads another organization's documents: %s", docs.raw)
	}
	expect(t, e.call("POST", "/admin/switch", second.token, map[string]any{"organization_name": "First Co"}), 403, "Not a member of that organization")
	expect(t, e.call("POST", "/admin/switch", tok, map[string]any{"organization_name": "Nowhere Co"}), 404, "Organization not found")

	me := e.call("GET", "/me", switched, nil)
	expect(t, me, 200, "")
	if orgs, _ := me.obj()["organizations"].([]any); len(orgs) != 2 || me.obj()["id"] != m.id {
		t.Fatalf("GET /me: %s", me.raw)
	}
	// Removed from the second, the account stays, in the first.
	expect(t, e.call("DELETE", "/org/members/"+m.id, second.token, nil), 204, "")
	expect(t, e.call("GET", "/org/documents", switched, nil), 401, "")
	r = e.call("POST", "/admin/login", "", map[string]any{"email": first.email, "password": first.password})
	expect(t, r, 200, "")
	if _, listed := r.obj()["organizations"]; listed {
		t.Fatalf("an account in one organization again is answered as before teams: %s", r.raw)
	}
	// Deleting the first organization deletes the account with it.
	expect(t, e.call("DELETE", "/org/delete", r.obj()["access_token"].(string), map[string]any{"organization_name": "First Co"}), 200, "")
	if n, err := e.db.Collection(model.Admins).CountDocuments(context.Background(), bson.D{{Key: "email", Value: first.email}}); err != nil || n != 0 {
		t.Fatalf("accounts of %s after its only organization went: %d %v", first.email, n, err)
	}
}

// TestRoleChangeEndsTokens: a member's token ends when its role changes;
// a new login carries the new rights.
func TestRoleChangeEndsTokens(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("Roles")
	m := e.join(o, "ana@roles.example.com", model.RoleMember)
	expect(t, e.call("POST", "/org/documents", m.token, map[string]any{"a": 1}), 201, "")
	r := e.call("PATCH", "/org/members/"+m.id, o.token, map[string]any{"role": "viewer"})
	expect(t, r, 200, "")
	if r.obj()["role"] != "viewer" || r.obj()["email"] != m.email {
		t.Fatalf("answer to a role change: %s", r.raw)
	}
	expect(t, e.call("GET", "/org/documents", m.token, nil), 401, "Token has been revoked")
	tok := e.login(m.email, m.password)
	expect(t, e.call("POST", "/org/documents", tok, map[string]any{"a": 2}), 403, "")
	list := e.call("GET", "/org/members?limit=1", tok, nil)
	expect(t, list, 200, "")
	next, _ := list.obj()["next"].(string)
	rest := e.call("GET", "/org/members?after="+next, tok, nil)
	items, _ := rest.obj()["items"].([]any)
	if next == "" || len(items) != 1 {
		t.Fatalf("two members in pages of one: %s then %s", list.raw, rest.raw)
	}
}

// TestChangeOwnAccount: any role changes its own e-mail or password with
// its current password (a wrong one is 403 and changes nothing), and every
// token of the account ends, in each of its organizations.
func TestChangeOwnAccount(t *testing.T) {
	e := newEnv(t)
	first := e.signUp("Own One")
	second := e.signUp("Own Two")
	v := e.join(first, "vic@own.example.com", model.RoleViewer)
	elsewhere := e.joinAs(second, v.email, v.password, model.RoleMember)

	expect(t, e.call("PATCH", "/me", v.token, map[string]any{"password": "new-pass-1234", "current_password": "wrong-one"}), 403, "Current password is incorrect")
	expect(t, e.call("GET", "/me", v.token, nil), 200, "")
	expect(t, e.call("PATCH", "/me", v.token, map[string]any{"email": second.email, "current_password": v.password}), 400, "Email already registered")
	expect(t, e.call("PATCH", "/me", v.token, map[string]any{"password": "short", "current_password": v.password}), 422, "")

	r := e.call("PATCH", "/me", v.token, map[string]any{"email": "victor@own.example.com", "password": "new-pass-1234", "current_password": v.password})
	expect(t, r, 200, "")
	fresh := r.obj()["access_token"].(string)
	expect(t, e.call("GET", "/org/documents", v.token, nil), 401, "Token has been revoked")
	expect(t, e.call("GET", "/org/documents", elsewhere.token, nil), 401, "Token has been revoked")
	me := e.call("GET", "/me", fresh, nil)
	expect(t, me, 200, "")
	if me.obj()["email"] != "victor@own.example.com" {
		t.Fatalf("GET /me after the change: %s", me.raw)
	}
	expect(t, e.call("POST", "/admin/login", "", map[string]any{"email": v.email, "password": v.password}), 401, "")
	e.login("victor@own.example.com", "new-pass-1234")
	// The old address is free again.
	expect(t, e.call("POST", "/org/create", "", map[string]any{"organization_name": "Own Three", "email": v.email, "password": "vic-pass-1234"}), 201, "")
}

// TestRemovalRacesOwnRequests: a member writing documents through one
// instance while an owner removes it through the other. Once the removal
// is answered, the member's token is refused on the removing instance at
// once and on the other within AUTH_CACHE_TTL, and every write it was
// answered 201 for is there.
func TestRemovalRacesOwnRequests(t *testing.T) {
	e := newEnv(t)
	other := startEnv(t, e.db, func(ctx context.Context) error { return e.db.Client().Ping(ctx, nil) })
	o := e.signUp("Racing Removal")
	m := e.join(o, "leaver@racing.example.com", model.RoleMember)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r := other.call("POST", "/org/documents", m.token, map[string]any{"i": i})
			if r.status == http.StatusCreated {
				mu.Lock()
				acked = append(acked, r.obj()["id"].(string))
				mu.Unlock()
			} else if r.status != http.StatusUnauthorized {
				t.Errorf("write %d by the member being removed: %d %s", i, r.status, r.raw)
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	expect(t, e.call("DELETE", "/org/members/"+m.id, o.token, nil), 204, "")
	expect(t, e.call("GET", "/org/documents", m.token, nil), 401, "")
	time.Sleep(e.cfg.AuthCacheTTL + e.cfg.OrgCacheTTL + 100*time.Millisecond)
	close(stop)
	wg.Wait()
	expect(t, other.call("GET", "/org/documents", m.token, nil), 401, "")
	mu.Lock()
	defer mu.Unlock()
	if len(acked) == 0 {
		t.Fatal("no write of the member went through before its removal")
	}
	for _, id := range acked {
		expect(t, e.call("GET", "/org/documents/"+id, o.token, nil), 200, "")
	}
}

// TestRemovedAccountDeleted: an account removed by an owner or an admin
// (not leaving, not with its organization) that is in no other
// organization is deleted with its membership, and its e-mail can sign up
// again.
func TestRemovedAccountDeleted(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("Removing")
	admin := e.join(o, "adm@removing.example.com", model.RoleAdmin)
	for i, remover := range []*member{{id: o.adminID, token: o.token}, admin} {
		m := e.join(o, fmt.Sprintf("gone-%d@removing.example.com", i), model.RoleMember)
		expect(t, e.call("DELETE", "/org/members/"+m.id, remover.token, nil), http.StatusNoContent, "")
		if n := e.accounts(m.email); n != 0 {
			t.Fatalf("removal %d: %d accounts of %s, in no organization, want 0", i, n, m.email)
		}
		expect(t, e.call("POST", "/admin/login", "", creds(m.email, m.password)), http.StatusUnauthorized, "Invalid credentials")
		expect(t, e.call("POST", "/org/create", "", map[string]any{
			"organization_name": fmt.Sprintf("Removed Again %d", i), "email": m.email, "password": "again-pass-1",
		}), http.StatusCreated, "")
		e.login(m.email, "again-pass-1")
	}
}

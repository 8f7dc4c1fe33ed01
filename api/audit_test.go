package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/api"
	"github.com/orgsvc/orgsvc/internal/audit"
	"github.com/orgsvc/orgsvc/internal/config"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// An NDJSON answer whose schema is an array (the audit export's, of
// AuditEvent) is held to it one line an element; any other schema gets the
// body as a string.
func init() {
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", func(body io.Reader, h http.Header, s *openapi3.SchemaRef, enc openapi3filter.EncodingFn) (any, error) {
		raw, err := io.ReadAll(body)
		if err != nil {
			return nil, err
		}
		if s == nil || s.Value == nil || !s.Value.Type.Is("array") {
			return string(raw), nil
		}
		items := []any{}
		for _, line := range bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			v, err := openapi3filter.JSONBodyDecoder(bytes.NewReader(line), h, s, enc)
			if err != nil {
				return nil, err
			}
			items = append(items, v)
		}
		return items, nil
	})
}

// auditUA is the User-Agent of the requests whose events are checked.
const auditUA = "orgsvc-audit-test/1.0"

// act sends body as JSON with its own X-Request-ID and User-Agent.
func (e *env) act(reqID, method, path, token string, body any) response {
	e.t.Helper()
	r := e.callWith(method, path, token, body, map[string]string{"X-Request-ID": reqID, "User-Agent": auditUA})
	if got := r.header.Get("X-Request-ID"); got != reqID {
		e.t.Fatalf("%s %s: X-Request-ID %q echoed as %q", method, path, reqID, got)
	}
	return r
}

func accessToken(t testing.TB, r response) string {
	t.Helper()
	tok, _ := r.obj()["access_token"].(string)
	if tok == "" {
		t.Fatalf("no access_token: %d %s", r.status, r.raw)
	}
	return tok
}

func creds(email, password string) map[string]any {
	return map[string]any{"email": email, "password": password}
}

// auditPage reads one page of the listing.
func (e *env) auditPage(token, query string) api.AuditPage {
	e.t.Helper()
	r := e.call("GET", "/org/audit"+query, token, nil)
	expect(e.t, r, http.StatusOK, "")
	var page api.AuditPage
	if err := json.Unmarshal(r.raw, &page); err != nil {
		e.t.Fatalf("audit page: %v: %s", err, r.raw)
	}
	return page
}

// auditWalk reads every page of the listing with the filters in q, limit
// events a page, newest first, checking each page's size and cursor.
func (e *env) auditWalk(token string, q url.Values, limit int) []api.AuditEvent {
	e.t.Helper()
	var all []api.AuditEvent
	q = cloneQuery(q)
	q.Set("limit", strconv.Itoa(limit))
	for pages := 0; ; pages++ {
		if pages > 10_000 {
			e.t.Fatal("the listing never ends")
		}
		page := e.auditPage(token, "?"+q.Encode())
		all = append(all, page.Items...)
		if page.Next == nil {
			if len(page.Items) > limit {
				e.t.Fatalf("last page of %d items, limit %d", len(page.Items), limit)
			}
			return all
		}
		if len(page.Items) != limit {
			e.t.Fatalf("a page with a next holds %d items, want %d", len(page.Items), limit)
		}
		if want := strconv.FormatInt(page.Items[len(page.Items)-1].Seq, 10); *page.Next != want {
			e.t.Fatalf("next %q, want the last item's seq %s", *page.Next, want)
		}
		q.Set("after", *page.Next)
	}
}

func cloneQuery(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	return out
}

// auditLog is the token's organization's whole log, oldest first.
func (e *env) auditLog(token string) []api.AuditEvent {
	e.t.Helper()
	all := e.auditWalk(token, nil, 500)
	slices.Reverse(all)
	return all
}

// export reads the token's organization's export (query: "" or "?...").
func (e *env) export(reqID, token, query string) ([]api.AuditEvent, []byte) {
	e.t.Helper()
	r := e.act(reqID, "GET", "/org/audit/export"+query, token, nil)
	expect(e.t, r, http.StatusOK, "")
	if ct := r.header.Get("Content-Type"); ct != "application/x-ndjson" {
		e.t.Fatalf("export Content-Type %q", ct)
	}
	return parseNDJSON(e.t, r.raw), r.raw
}

// eventKeys are the members of an event as clients see it.
var eventKeys = []string{"action", "actor", "changes", "context", "hash", "id", "org_id", "prev_hash", "seq", "targets", "time"}

func parseNDJSON(t testing.TB, raw []byte) []api.AuditEvent {
	t.Helper()
	if len(raw) == 0 {
		return nil
	}
	if !bytes.HasSuffix(raw, []byte("\n")) {
		t.Fatalf("export does not end with a newline: %q", raw[max(0, len(raw)-80):])
	}
	var out []api.AuditEvent
	for i, line := range bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n")) {
		var members map[string]json.RawMessage
		if err := json.Unmarshal(line, &members); err != nil {
			t.Fatalf("line %d is not a JSON object: %v: %s", i+1, err, line)
		}
		if keys := slices.Sorted(maps.Keys(members)); !slices.Equal(keys, eventKeys) {
			t.Fatalf("line %d has members %v, want %v", i+1, keys, eventKeys)
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		var ev api.AuditEvent
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("line %d: %v: %s", i+1, err, line)
		}
		out = append(out, ev)
	}
	return out
}

// storedEvents is an organization's log as the store holds it, oldest
// first (a deleted organization's log is not served by the API).
func (e *env) storedEvents(org bson.ObjectID) []api.AuditEvent {
	e.t.Helper()
	ctx := context.Background()
	// Through the driver, wherever the log is kept.
	var evs []model.Event
	err := audit.NewLog(repository.NewAuditRepository(e.db)).Scan(ctx, org, repository.AuditFilter{}, func(ev *model.Event) error {
		evs = append(evs, *ev)
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]api.AuditEvent, 0, len(evs))
	for _, ev := range evs {
		raw, err := json.Marshal(audit.Normal(ev))
		if err != nil {
			e.t.Fatal(err)
		}
		var a api.AuditEvent
		if err := json.Unmarshal(raw, &a); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// allStoredEvents is every event of every organization's log.
func (e *env) allStoredEvents() []api.AuditEvent {
	e.t.Helper()
	orgs, err := audit.NewLog(repository.NewAuditRepository(e.db)).Logs(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	var all []api.AuditEvent
	for _, org := range orgs {
		all = append(all, e.storedEvents(org)...)
	}
	return all
}

func auActor(id, email string) api.AuditActor {
	return api.AuditActor{Type: "account", ID: id, Email: email}
}

func auOrg(id, name string) api.AuditTarget {
	return api.AuditTarget{Type: "organization", ID: id, Name: name}
}

func auAccount(id, email string) api.AuditTarget {
	return api.AuditTarget{Type: "account", ID: id, Name: email}
}

func auInvitation(id, email string) api.AuditTarget {
	return api.AuditTarget{Type: "invitation", ID: id, Name: email}
}

func auDocument(id string) api.AuditTarget { return api.AuditTarget{Type: "document", ID: id} }

func auStr(s string) *string { return &s }

func auTo(to string) api.AuditChange { return api.AuditChange{To: auStr(to)} }

func auFrom(from string) api.AuditChange { return api.AuditChange{From: auStr(from)} }

func auChange(from, to string) api.AuditChange {
	return api.AuditChange{From: auStr(from), To: auStr(to)}
}

// wantEvent is an event a request should have recorded.
type wantEvent struct {
	req, action string
	actor       api.AuditActor
	targets     []api.AuditTarget
	changes     map[string]api.AuditChange
	// system: no request (the context is empty).
	system bool
}

// matching lists the events of log with that request id and action.
func matching(log []api.AuditEvent, req, action string) []api.AuditEvent {
	var out []api.AuditEvent
	for _, ev := range log {
		if ev.Context.RequestID == req && (action == "" || ev.Action == action) {
			out = append(out, ev)
		}
	}
	return out
}

func ofAction(log []api.AuditEvent, action string) []api.AuditEvent {
	var out []api.AuditEvent
	for _, ev := range log {
		if ev.Action == action {
			out = append(out, ev)
		}
	}
	return out
}

// summary lists a log one event a line, for failure messages.
func summary(log []api.AuditEvent) string {
	var b strings.Builder
	for _, ev := range log {
		fmt.Fprintf(&b, "\n  %d %s by %s (%s) req %s", ev.Seq, ev.Action, ev.Actor.Email, ev.Actor.ID, ev.Context.RequestID)
	}
	return b.String()
}

// checkEvent asserts that log holds exactly one event of w's request and
// action, as w describes it, with the request's context.
func checkEvent(t testing.TB, log []api.AuditEvent, w wantEvent) {
	t.Helper()
	var got []api.AuditEvent
	if w.system {
		got = ofAction(log, w.action)
	} else {
		got = matching(log, w.req, w.action)
	}
	if len(got) != 1 {
		t.Errorf("request %s: %d %s events, want 1; log:%s", w.req, len(got), w.action, summary(log))
		return
	}
	ev := got[0]
	if ev.Actor != w.actor {
		t.Errorf("request %s, %s: actor %+v, want %+v", w.req, w.action, ev.Actor, w.actor)
	}
	targets := w.targets
	if targets == nil {
		targets = []api.AuditTarget{}
	}
	if !reflect.DeepEqual(ev.Targets, targets) {
		t.Errorf("request %s, %s: targets %+v, want %+v", w.req, w.action, ev.Targets, targets)
	}
	changes := w.changes
	if changes == nil {
		changes = map[string]api.AuditChange{}
	}
	if !reflect.DeepEqual(ev.Changes, changes) {
		gotJSON, _ := json.Marshal(ev.Changes)
		wantJSON, _ := json.Marshal(changes)
		t.Errorf("request %s, %s: changes %s, want %s", w.req, w.action, gotJSON, wantJSON)
	}
	wantCtx := api.AuditContext{RequestID: w.req, ClientAddress: "127.0.0.1", UserAgent: auditUA}
	if w.system {
		wantCtx = api.AuditContext{}
	}
	if ev.Context != wantCtx {
		t.Errorf("request %s, %s: context %+v, want %+v", w.req, w.action, ev.Context, wantCtx)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", ev.Time); err != nil || time.Since(mustTime(t, ev.Time)) > time.Hour {
		t.Errorf("request %s, %s: time %q", w.req, w.action, ev.Time)
	}
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return tm
}

// checkOwnOrg asserts that every event of log is org's, in order.
func checkOwnOrg(t testing.TB, log []api.AuditEvent, org string) {
	t.Helper()
	for _, ev := range log {
		if ev.OrgID != org || ev.ID != fmt.Sprintf("%s:%d", org, ev.Seq) {
			t.Errorf("event %s (org_id %s, %s) in the log of %s", ev.ID, ev.OrgID, ev.Action, org)
		}
	}
}

// auditMember is an account that joined through an invitation whose
// requests are named after it.
type auditMember struct {
	member
	invitation string
}

// joinAudited invites email to the token's organization with role
// (request "invite-NAME") and accepts as a new account ("accept-NAME").
func (e *env) joinAudited(name, token, email, role string) auditMember {
	e.t.Helper()
	inv := e.act("invite-"+name, "POST", "/org/invitations", token, map[string]any{"email": email, "role": role})
	expect(e.t, inv, http.StatusCreated, "")
	m := auditMember{member: member{email: email, password: name + "-pass-123"}, invitation: inv.obj()["id"].(string)}
	r := e.act("accept-"+name, "POST", "/invitations/accept", "", map[string]any{"token": inv.obj()["token"], "password": m.password})
	expect(e.t, r, http.StatusOK, "")
	m.token = accessToken(e.t, r)
	me := e.call("GET", "/me", m.token, nil)
	expect(e.t, me, http.StatusOK, "")
	m.id, _ = me.obj()["id"].(string)
	return m
}

// TestAuditEventsOfEveryKind: every request kind records its event, with
// actor, targets, changes and context, in the right organization's log.
func TestAuditEventsOfEveryKind(t *testing.T) {
	e := newEnv(t)
	aliceEmail, alicePass := "alice@alpha.example.com", "alpha-pass-1"
	r := e.act("signup", "POST", "/org/create", "", map[string]any{"organization_name": "Audit Alpha", "email": aliceEmail, "password": alicePass})
	expect(t, r, http.StatusCreated, "")
	aliceID := r.obj()["admin_id"].(string)
	alphaID := e.orgID(&org{name: "Audit Alpha"}).Hex()

	r = e.act("login-ok", "POST", "/admin/login", "", creds(aliceEmail, alicePass))
	expect(t, r, http.StatusOK, "")
	alice := accessToken(t, r)
	expect(t, e.act("login-wrong", "POST", "/admin/login", "", creds(aliceEmail, "not-alpha-pass")), http.StatusUnauthorized, "Invalid credentials")
	expect(t, e.act("login-unknown", "POST", "/admin/login", "", creds("nobody@alpha.example.com", alicePass)), http.StatusUnauthorized, "Invalid credentials")

	// Beta's owner invites Alice, who accepts with her account and
	// switches to Beta.
	beta := e.signUp("Audit Beta")
	betaID := e.orgID(beta).Hex()
	r = e.act("invite-alice", "POST", "/org/invitations", beta.token, map[string]any{"email": aliceEmail, "role": "admin"})
	expect(t, r, http.StatusCreated, "")
	aliceInv := r.obj()["id"].(string)
	expect(t, e.act("accept-existing", "POST", "/invitations/accept", "", map[string]any{"token": r.obj()["token"], "password": alicePass}), http.StatusOK, "")
	expect(t, e.act("switch", "POST", "/admin/switch", alice, map[string]any{"organization_name": "Audit Beta"}), http.StatusOK, "")

	// Alpha's invitations: one resent and revoked, three accepted.
	r = e.act("invite-carol", "POST", "/org/invitations", alice, map[string]any{"email": "carol@alpha.example.com", "role": "viewer"})
	expect(t, r, http.StatusCreated, "")
	carolInv := r.obj()["id"].(string)
	expect(t, e.act("resend-carol", "POST", "/org/invitations/"+carolInv+"/resend", alice, nil), http.StatusOK, "")
	expect(t, e.act("revoke-carol", "DELETE", "/org/invitations/"+carolInv, alice, nil), http.StatusNoContent, "")
	dave := e.joinAudited("dave", alice, "dave@alpha.example.com", "member")
	erin := e.joinAudited("erin", alice, "erin@alpha.example.com", "admin")
	frank := e.joinAudited("frank", alice, "frank@alpha.example.com", "member")

	// Members: a role change, a removal by an admin, a member leaving; a
	// login to an organization the account is not in.
	expect(t, e.act("role", "PATCH", "/org/members/"+frank.id, alice, map[string]any{"role": "viewer"}), http.StatusOK, "")
	expect(t, e.act("remove", "DELETE", "/org/members/"+dave.id, erin.token, nil), http.StatusNoContent, "")
	r = e.act("login-frank", "POST", "/admin/login", "", creds(frank.email, frank.password))
	expect(t, r, http.StatusOK, "")
	expect(t, e.act("leave", "DELETE", "/org/members/"+frank.id, accessToken(t, r), nil), http.StatusNoContent, "")
	expect(t, e.act("login-not-member", "POST", "/admin/login", "", map[string]any{"email": erin.email, "password": erin.password, "organization_name": "Audit Beta"}),
		http.StatusUnauthorized, "Invalid credentials")

	// A rename; Beta's owner changes e-mail and password by /org/update.
	expect(t, e.act("rename", "PUT", "/org/update", alice, map[string]any{"organization_name": "Audit Alpha", "new_organization_name": "Audit Alpha Two"}), http.StatusOK, "")
	bobEmail2 := "bob@beta-two.example.com"
	r = e.act("update-email", "PUT", "/org/update", beta.token, map[string]any{"organization_name": "Audit Beta", "email": bobEmail2})
	expect(t, r, http.StatusOK, "")
	r = e.act("update-password", "PUT", "/org/update", accessToken(t, r), map[string]any{"organization_name": "Audit Beta", "password": "beta-pass-2"})
	expect(t, r, http.StatusOK, "")
	bob := accessToken(t, r)

	// Alice, in both organizations, changes her own e-mail and password,
	// then logs out.
	aliceEmail2 := "alice@alpha-two.example.com"
	r = e.act("me-email", "PATCH", "/me", alice, map[string]any{"email": aliceEmail2, "current_password": alicePass})
	expect(t, r, http.StatusOK, "")
	r = e.act("me-password", "PATCH", "/me", accessToken(t, r), map[string]any{"password": "alpha-pass-2", "current_password": alicePass})
	expect(t, r, http.StatusOK, "")
	expect(t, e.act("logout", "POST", "/admin/logout", accessToken(t, r), nil), http.StatusOK, "")
	alice = e.login(aliceEmail2, "alpha-pass-2")

	alphaLog, betaLog := e.auditLog(alice), e.auditLog(bob)
	checkOwnOrg(t, alphaLog, alphaID)
	checkOwnOrg(t, betaLog, betaID)
	a1, a2 := auActor(aliceID, aliceEmail), auActor(aliceID, aliceEmail2)
	alpha1, alpha2 := auOrg(alphaID, "Audit Alpha"), auOrg(alphaID, "Audit Alpha Two")
	bob1, bob2 := auActor(beta.adminID, beta.email), auActor(beta.adminID, bobEmail2)
	for _, w := range []wantEvent{
		{req: "signup", action: "org.created", actor: a1, targets: []api.AuditTarget{alpha1}},
		{req: "login-ok", action: "auth.login_succeeded", actor: a1, targets: []api.AuditTarget{alpha1}},
		{req: "login-wrong", action: "auth.login_failed", actor: a1, targets: []api.AuditTarget{alpha1},
			changes: map[string]api.AuditChange{"reason": auTo("invalid_password")}},
		{req: "invite-carol", action: "invitation.created", actor: a1, targets: []api.AuditTarget{auInvitation(carolInv, "carol@alpha.example.com")},
			changes: map[string]api.AuditChange{"role": auTo("viewer")}},
		{req: "resend-carol", action: "invitation.resent", actor: a1, targets: []api.AuditTarget{auInvitation(carolInv, "carol@alpha.example.com")},
			changes: map[string]api.AuditChange{"role": auTo("viewer")}},
		{req: "revoke-carol", action: "invitation.revoked", actor: a1, targets: []api.AuditTarget{auInvitation(carolInv, "carol@alpha.example.com")},
			changes: map[string]api.AuditChange{"role": auTo("viewer")}},
		{req: "role", action: "member.role_changed", actor: a1, targets: []api.AuditTarget{auAccount(frank.id, frank.email)},
			changes: map[string]api.AuditChange{"role": auChange("member", "viewer")}},
		{req: "remove", action: "member.removed", actor: auActor(erin.id, erin.email), targets: []api.AuditTarget{auAccount(dave.id, dave.email)},
			changes: map[string]api.AuditChange{"role": auFrom("member")}},
		{req: "login-frank", action: "auth.login_succeeded", actor: auActor(frank.id, frank.email), targets: []api.AuditTarget{alpha1}},
		{req: "leave", action: "member.left", actor: auActor(frank.id, frank.email), targets: []api.AuditTarget{auAccount(frank.id, frank.email)},
			changes: map[string]api.AuditChange{"role": auFrom("viewer")}},
		{req: "login-not-member", action: "auth.login_failed", actor: auActor(erin.id, erin.email), targets: []api.AuditTarget{alpha1},
			changes: map[string]api.AuditChange{"reason": auTo("not_a_member")}},
		{req: "rename", action: "org.renamed", actor: a1, targets: []api.AuditTarget{alpha2},
			changes: map[string]api.AuditChange{"organization_name": auChange("Audit Alpha", "Audit Alpha Two")}},
		{req: "logout", action: "auth.logout", actor: a2, targets: []api.AuditTarget{auOrg(alphaID, "")}},
	} {
		checkEvent(t, alphaLog, w)
	}
	for _, m := range []auditMember{dave, erin, frank} {
		name := strings.TrimSuffix(m.email, "@alpha.example.com")
		role := map[string]string{"dave": "member", "erin": "admin", "frank": "member"}[name]
		inv := auInvitation(m.invitation, m.email)
		checkEvent(t, alphaLog, wantEvent{req: "invite-" + name, action: "invitation.created", actor: a1, targets: []api.AuditTarget{inv},
			changes: map[string]api.AuditChange{"role": auTo(role)}})
		checkEvent(t, alphaLog, wantEvent{req: "accept-" + name, action: "invitation.accepted", actor: auActor(m.id, m.email),
			targets: []api.AuditTarget{inv, auAccount(m.id, m.email)}, changes: map[string]api.AuditChange{"role": auTo(role)}})
	}
	for _, w := range []wantEvent{
		{req: "invite-alice", action: "invitation.created", actor: bob1, targets: []api.AuditTarget{auInvitation(aliceInv, aliceEmail)},
			changes: map[string]api.AuditChange{"role": auTo("admin")}},
		{req: "accept-existing", action: "invitation.accepted", actor: a1,
			targets: []api.AuditTarget{auInvitation(aliceInv, aliceEmail), auAccount(aliceID, aliceEmail)}, changes: map[string]api.AuditChange{"role": auTo("admin")}},
		{req: "switch", action: "auth.switch", actor: a1, targets: []api.AuditTarget{auOrg(betaID, "Audit Beta"), auOrg(alphaID, "")}},
		{req: "update-email", action: "org.email_changed", actor: bob1,
			targets: []api.AuditTarget{auOrg(betaID, "Audit Beta"), auAccount(beta.adminID, bobEmail2)},
			changes: map[string]api.AuditChange{"email": auChange(beta.email, bobEmail2)}},
		{req: "update-password", action: "org.password_changed", actor: bob2,
			targets: []api.AuditTarget{auOrg(betaID, "Audit Beta"), auAccount(beta.adminID, bobEmail2)}},
	} {
		checkEvent(t, betaLog, w)
	}
	// PATCH /me: in each of the account's organizations; the one of the
	// token by its name, the others by id alone.
	for org, log := range map[string][]api.AuditEvent{alphaID: alphaLog, betaID: betaLog} {
		target := auOrg(org, "")
		if org == alphaID {
			target = alpha2
		}
		checkEvent(t, log, wantEvent{req: "me-email", action: "org.email_changed", actor: a1,
			targets: []api.AuditTarget{target, auAccount(aliceID, aliceEmail2)},
			changes: map[string]api.AuditChange{"email": auChange(aliceEmail, aliceEmail2)}})
		checkEvent(t, log, wantEvent{req: "me-password", action: "org.password_changed", actor: a2,
			targets: []api.AuditTarget{target, auAccount(aliceID, aliceEmail2)}})
	}
	// Each request's events are in its organization's log only.
	for _, req := range []string{"invite-alice", "accept-existing", "switch", "update-email", "update-password"} {
		if got := matching(alphaLog, req, ""); len(got) != 0 {
			t.Errorf("Beta's request %s in Alpha's log:%s", req, summary(got))
		}
	}
	for _, req := range []string{"signup", "login-ok", "login-wrong", "login-not-member", "rename", "logout", "role", "remove", "leave"} {
		if got := matching(betaLog, req, ""); len(got) != 0 {
			t.Errorf("Alpha's request %s in Beta's log:%s", req, summary(got))
		}
	}
	// A login of an unknown address records nothing, anywhere.
	if got := matching(e.allStoredEvents(), "login-unknown", ""); len(got) != 0 {
		t.Errorf("a login of an unknown address was recorded:%s", summary(got))
	}

	// A deletion: tokens end, so the event is read from the store.
	gamma := e.signUp("Audit Gamma")
	gammaOID := e.orgID(gamma)
	expect(t, e.act("delete", "DELETE", "/org/delete", gamma.token, map[string]any{"organization_name": "Audit Gamma"}), http.StatusOK, "")
	expect(t, e.call("GET", "/org/audit", gamma.token, nil), http.StatusUnauthorized, "")
	gammaLog := e.storedEvents(gammaOID)
	checkOwnOrg(t, gammaLog, gammaOID.Hex())
	checkEvent(t, gammaLog, wantEvent{req: "delete", action: "org.deleted", actor: auActor(gamma.adminID, gamma.email),
		targets: []api.AuditTarget{auOrg(gammaOID.Hex(), "Audit Gamma")}})
	if last := gammaLog[len(gammaLog)-1]; last.Action != "org.deleted" {
		t.Errorf("the deleted organization's last event is %s", last.Action)
	}
}

// TestAuditLoginRateLimited: a login refused by the e-mail limit is an
// auth.login_failed with reason rate_limited, recorded once for a flood;
// an unknown address's refusals record nothing.
func TestAuditLoginRateLimited(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.LoginRatePerEmail = 2 })
	o := e.signUp("Limited")
	orgID := e.orgID(o).Hex()
	for i := range 2 {
		expect(t, e.act(fmt.Sprint("wrong-", i), "POST", "/admin/login", "", creds(o.email, "wrong-pass")), http.StatusUnauthorized, "")
	}
	for i := range 4 {
		password := "wrong-pass"
		if i%2 == 1 {
			password = o.password // refused too: the limit comes first
		}
		expect(t, e.act(fmt.Sprint("refused-", i), "POST", "/admin/login", "", creds(o.email, password)), http.StatusTooManyRequests, "")
	}
	for i := range 4 {
		want := http.StatusUnauthorized
		if i >= 2 {
			want = http.StatusTooManyRequests
		}
		expect(t, e.act(fmt.Sprint("ghost-", i), "POST", "/admin/login", "", creds("ghost@limited.example.com", "x")), want, "")
	}
	log := e.auditLog(o.token)
	actor := auActor(o.adminID, o.email)
	target := []api.AuditTarget{auOrg(orgID, "Limited")}
	for i := range 2 {
		checkEvent(t, log, wantEvent{req: fmt.Sprint("wrong-", i), action: "auth.login_failed", actor: actor, targets: target,
			changes: map[string]api.AuditChange{"reason": auTo("invalid_password")}})
	}
	checkEvent(t, log, wantEvent{req: "refused-0", action: "auth.login_failed", actor: actor, targets: target,
		changes: map[string]api.AuditChange{"reason": auTo("rate_limited")}})
	for i := 1; i < 4; i++ {
		if got := matching(log, fmt.Sprint("refused-", i), ""); len(got) != 0 {
			t.Errorf("refusal %d within 10 s recorded again:%s", i, summary(got))
		}
	}
	if n := len(ofAction(log, "auth.login_failed")); n != 3 {
		t.Errorf("%d auth.login_failed events, want 3:%s", n, summary(log))
	}
	for _, ev := range e.allStoredEvents() {
		if strings.HasPrefix(ev.Context.RequestID, "ghost-") || strings.Contains(ev.Actor.Email, "ghost") {
			t.Errorf("an unknown address's login recorded: %+v", ev)
		}
	}
}

// TestAuditDocumentWrites: with AUDIT_DOCUMENTS each document write is
// one event, reads and refused writes none; without it no document event.
func TestAuditDocumentWrites(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprint("AuditDocuments=", on), func(t *testing.T) {
			e := newEnv(t, func(c *config.Config) { c.AuditDocuments = on })
			o := e.signUp("Documented")
			m := e.join(o, "writer@documented.example.com", model.RoleMember)
			r := e.act("doc-create", "POST", "/org/documents", m.token, map[string]any{"a": 1})
			expect(t, r, http.StatusCreated, "")
			id := r.obj()["id"].(string)
			expect(t, e.act("doc-read", "GET", "/org/documents/"+id, m.token, nil), http.StatusOK, "")
			expect(t, e.act("doc-list", "GET", "/org/documents", m.token, nil), http.StatusOK, "")
			expect(t, e.act("doc-replace", "PUT", "/org/documents/"+id, m.token, map[string]any{"a": 2}), http.StatusOK, "")
			expect(t, e.act("doc-patch", "PATCH", "/org/documents/"+id, m.token, map[string]any{"b": 3}), http.StatusOK, "")
			expect(t, e.act("doc-delete", "DELETE", "/org/documents/"+id, m.token, nil), http.StatusNoContent, "")
			expect(t, e.act("doc-delete-again", "DELETE", "/org/documents/"+id, m.token, nil), http.StatusNotFound, "")
			expect(t, e.act("doc-replace-gone", "PUT", "/org/documents/"+id, m.token, map[string]any{"a": 4}), http.StatusNotFound, "")
			expect(t, e.act("doc-viewer", "POST", "/org/documents", e.join(o, "reader@documented.example.com", model.RoleViewer).token, map[string]any{"a": 5}), http.StatusForbidden, "")
			log := e.auditLog(o.token)
			var docs []api.AuditEvent
			for _, ev := range log {
				if strings.HasPrefix(ev.Action, "document.") {
					docs = append(docs, ev)
				}
			}
			if !on {
				if len(docs) != 0 {
					t.Fatalf("document events without AUDIT_DOCUMENTS:%s", summary(docs))
				}
				return
			}
			actor := auActor(m.id, m.email)
			for _, w := range [][2]string{{"doc-create", "document.created"}, {"doc-replace", "document.replaced"}, {"doc-patch", "document.patched"}, {"doc-delete", "document.deleted"}} {
				checkEvent(t, log, wantEvent{req: w[0], action: w[1], actor: actor, targets: []api.AuditTarget{auDocument(id)}})
			}
			if len(docs) != 4 {
				t.Fatalf("%d document events, want 4:%s", len(docs), summary(docs))
			}
			for _, req := range []string{"doc-read", "doc-list", "doc-delete-again", "doc-replace-gone", "doc-viewer"} {
				if got := matching(log, req, ""); len(got) != 0 {
					t.Errorf("request %s recorded:%s", req, summary(got))
				}
			}
		})
	}
}

// TestAuditInvitationExpired: an invitation's expiry is recorded once, by
// the system, without a request.
func TestAuditInvitationExpired(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.InvitationTTL = 300 * time.Millisecond })
	o := e.signUp("Expiring")
	r := e.call("POST", "/org/invitations", o.token, map[string]any{"email": "late@expiring.example.com", "role": "member"})
	expect(t, r, http.StatusCreated, "")
	inv := r.obj()["id"].(string)
	ctx := context.Background()
	if n, err := e.orgs.RecordExpired(ctx); err != nil || n != 0 {
		t.Fatalf("RecordExpired before the expiry: %d, %v", n, err)
	}
	time.Sleep(400 * time.Millisecond)
	if n, err := e.orgs.RecordExpired(ctx); err != nil || n != 1 {
		t.Fatalf("RecordExpired: %d, %v; want 1", n, err)
	}
	if n, err := e.orgs.RecordExpired(ctx); err != nil || n != 0 {
		t.Fatalf("RecordExpired again: %d, %v; want 0", n, err)
	}
	checkEvent(t, e.auditLog(o.token), wantEvent{action: "invitation.expired", system: true,
		actor:   api.AuditActor{Type: "system", ID: "orgsvc"},
		targets: []api.AuditTarget{auInvitation(inv, "late@expiring.example.com")}, changes: map[string]api.AuditChange{"role": auTo("member")}})
}

// TestAuditKeepsNoSecrets: after password changes, invitations and logins,
// neither the export nor the stored log holds a password, a hash, an
// invitation token or a JWT.
func TestAuditKeepsNoSecrets(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.AuditDocuments = true })
	o := e.signUp("Secretive")
	secrets := []string{o.password, o.token}
	keep := func(r response) string {
		t.Helper()
		tok := accessToken(t, r)
		secrets = append(secrets, tok)
		return tok
	}
	guess := "guessed-secret-77"
	secrets = append(secrets, guess)
	expect(t, e.call("POST", "/admin/login", "", creds(o.email, guess)), http.StatusUnauthorized, "")
	expect(t, e.call("POST", "/admin/login", "", creds("nobody@secretive.example.com", guess)), http.StatusUnauthorized, "")
	invite := func(email string) (id, token string) {
		r := e.call("POST", "/org/invitations", o.token, map[string]any{"email": email, "role": "member"})
		expect(t, r, http.StatusCreated, "")
		id, token = r.obj()["id"].(string), r.obj()["token"].(string)
		secrets = append(secrets, token, token[strings.LastIndex(token, ".")+1:])
		return id, token
	}
	id, _ := invite("ivy@secretive.example.com")
	r := e.call("POST", "/org/invitations/"+id+"/resend", o.token, nil)
	expect(t, r, http.StatusOK, "")
	fresh := r.obj()["token"].(string)
	secrets = append(secrets, fresh, fresh[strings.LastIndex(fresh, ".")+1:])
	ivyPass := "ivy-secret-pass-1"
	secrets = append(secrets, ivyPass)
	ivy := keep(e.call("POST", "/invitations/accept", "", map[string]any{"token": fresh, "password": ivyPass}))
	id, _ = invite("jay@secretive.example.com")
	expect(t, e.call("DELETE", "/org/invitations/"+id, o.token, nil), http.StatusNoContent, "")

	pass2, pass3, ivyPass2 := "Secretive-pass-2", "Secretive-pass-3", "ivy-secret-pass-2"
	secrets = append(secrets, pass2, pass3, ivyPass2)
	tok := keep(e.call("PUT", "/org/update", o.token, map[string]any{"organization_name": "Secretive", "password": pass2, "email": "owner@secretive2.example.com"}))
	keep(e.call("PATCH", "/me", tok, map[string]any{"password": pass3, "current_password": pass2}))
	keep(e.call("PATCH", "/me", ivy, map[string]any{"password": ivyPass2, "current_password": ivyPass}))
	expect(t, e.call("POST", "/admin/login", "", creds("owner@secretive2.example.com", pass2)), http.StatusUnauthorized, "")
	tok = keep(e.call("POST", "/admin/login", "", creds("owner@secretive2.example.com", pass3)))
	expect(t, e.call("POST", "/org/documents", tok, map[string]any{"note": "x"}), http.StatusCreated, "")

	// The stored hashes: the accounts' passwords and the invitations' tokens.
	ctx := context.Background()
	for _, c := range []string{model.Admins, model.Invitations} {
		cur, err := e.db.Collection(c).Find(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		var docs []bson.M
		if err := cur.All(ctx, &docs); err != nil {
			t.Fatal(err)
		}
		for _, d := range docs {
			for _, k := range []string{"password_hash", "token_hash"} {
				if h, ok := d[k].(string); ok && h != "" {
					secrets = append(secrets, h)
				}
			}
		}
	}
	if len(secrets) < 20 {
		t.Fatalf("only %d secrets gathered", len(secrets))
	}
	evs, raw := e.export("export", tok, "")
	if len(evs) < 15 {
		t.Fatalf("export of %d events:%s", len(evs), summary(evs))
	}
	all := e.allStoredEvents()
	if len(all) < len(evs) {
		t.Fatalf("%d events in the store, fewer than the %d exported", len(all), len(evs))
	}
	stored, err := json.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"export": string(raw), "store": string(stored)} {
		for _, s := range append(secrets, "password_hash", "token_hash", "$2a$", "$2b$", "$2y$", "eyJ") {
			if strings.Contains(text, s) {
				t.Errorf("the %s holds a secret (%.12s…)", name, s)
			}
		}
	}
}

// TestAuditRetriesAddNothing: a retried request whose change happened
// already answers as the first did and adds no event.
func TestAuditRetriesAddNothing(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.AuditDocuments = true })
	o := e.signUp("Retried")
	oid := e.orgID(o)
	orgID := oid.Hex()
	rename := map[string]any{"organization_name": "Retried", "new_organization_name": "Retried Again"}
	for i := range 3 {
		expect(t, e.act(fmt.Sprint("rename-", i), "PUT", "/org/update", o.token, rename), http.StatusOK, "")
	}
	post := func(reqID string) response {
		return e.request("POST", "/org/documents", []byte(`{"total":12}`), map[string]string{
			"Authorization": "Bearer " + o.token, "Content-Type": "application/json", "Idempotency-Key": "order-17",
			"X-Request-ID": reqID, "User-Agent": auditUA,
		})
	}
	first, again := post("keyed-0"), post("keyed-1")
	expect(t, first, http.StatusCreated, "")
	expect(t, again, http.StatusCreated, "")
	doc := first.obj()["id"].(string)
	if again.obj()["id"] != doc {
		t.Fatalf("the retry made document %v, the first %s", again.obj()["id"], doc)
	}
	r := e.call("POST", "/org/invitations", o.token, map[string]any{"email": "once@retried.example.com", "role": "member"})
	inv := r.obj()["id"].(string)
	expect(t, e.act("revoke-0", "DELETE", "/org/invitations/"+inv, o.token, nil), http.StatusNoContent, "")
	expect(t, e.act("revoke-1", "DELETE", "/org/invitations/"+inv, o.token, nil), http.StatusGone, "")

	log := e.auditLog(o.token)
	checkEvent(t, log, wantEvent{req: "rename-0", action: "org.renamed", actor: auActor(o.adminID, o.email),
		targets: []api.AuditTarget{auOrg(orgID, "Retried Again")}, changes: map[string]api.AuditChange{"organization_name": auChange("Retried", "Retried Again")}})
	checkEvent(t, log, wantEvent{req: "keyed-0", action: "document.created", actor: auActor(o.adminID, o.email), targets: []api.AuditTarget{auDocument(doc)}})
	checkEvent(t, log, wantEvent{req: "revoke-0", action: "invitation.revoked", actor: auActor(o.adminID, o.email),
		targets: []api.AuditTarget{auInvitation(inv, "once@retried.example.com")}, changes: map[string]api.AuditChange{"role": auTo("member")}})
	for action, want := range map[string]int{"org.renamed": 1, "document.created": 1, "invitation.revoked": 1} {
		if n := len(ofAction(log, action)); n != want {
			t.Errorf("%d %s events, want %d:%s", n, action, want, summary(log))
		}
	}

	// A deletion retried with its token: 200, one org.deleted.
	for i := range 2 {
		expect(t, e.act(fmt.Sprint("delete-", i), "DELETE", "/org/delete", o.token, map[string]any{"organization_name": "Retried Again"}), http.StatusOK, "")
	}
	if n := len(ofAction(e.storedEvents(oid), "org.deleted")); n != 1 {
		t.Errorf("%d org.deleted events after a retried deletion, want 1:%s", n, summary(e.storedEvents(oid)))
	}
}

// TestAuditRights: owners and admins read and export the log; members and
// viewers get 403, no token 401; a refused export records nothing.
func TestAuditRights(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("Guarded")
	tokens := map[string]string{
		model.RoleOwner:  o.token,
		model.RoleAdmin:  e.join(o, "adm@guarded.example.com", model.RoleAdmin).token,
		model.RoleMember: e.join(o, "mem@guarded.example.com", model.RoleMember).token,
		model.RoleViewer: e.join(o, "view@guarded.example.com", model.RoleViewer).token,
	}
	for _, role := range []string{model.RoleOwner, model.RoleAdmin, model.RoleMember, model.RoleViewer} {
		list := e.act("list-"+role, "GET", "/org/audit", tokens[role], nil)
		exp := e.act("export-"+role, "GET", "/org/audit/export", tokens[role], nil)
		if role == model.RoleOwner || role == model.RoleAdmin {
			expect(t, list, http.StatusOK, "")
			expect(t, exp, http.StatusOK, "")
			if len(parseNDJSON(t, exp.raw)) == 0 {
				t.Errorf("%s's export is empty", role)
			}
			continue
		}
		expect(t, list, http.StatusForbidden, "Your role in this organization does not allow this")
		expect(t, exp, http.StatusForbidden, "Your role in this organization does not allow this")
	}
	for _, path := range []string{"/org/audit", "/org/audit/export"} {
		r := e.call("GET", path, "", nil)
		expect(t, r, http.StatusUnauthorized, "")
		if r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s without a token: no WWW-Authenticate", path)
		}
		expect(t, e.call("GET", path, "not-a-token", nil), http.StatusUnauthorized, "")
	}
	exports := ofAction(e.auditLog(o.token), "audit.exported")
	if len(exports) != 2 || exports[0].Context.RequestID != "export-owner" || exports[1].Context.RequestID != "export-admin" {
		t.Fatalf("audit.exported events:%s", summary(exports))
	}
}

// TestAuditListing: newest first; pages walk the whole log without gaps or
// duplicates; filters work alone and together, also across pages; each
// bad parameter is a 422 at its place.
func TestAuditListing(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("Listed")
	m := e.join(o, "mem@listed.example.com", model.RoleMember)
	for i := range 12 {
		switch i % 3 {
		case 0:
			e.login(o.email, o.password)
		case 1:
			expect(t, e.call("POST", "/admin/login", "", creds(o.email, "wrong-"+strconv.Itoa(i))), http.StatusUnauthorized, "")
		default:
			e.login(m.email, m.password)
		}
		time.Sleep(3 * time.Millisecond) // spread over several milliseconds
	}
	stored := e.storedEvents(e.orgID(o))
	n := len(stored)
	if n != 2+2+12 {
		t.Fatalf("%d events stored, want 16:%s", n, summary(stored))
	}
	full := e.auditPage(o.token, "")
	if len(full.Items) != n || full.Next != nil {
		t.Fatalf("default page: %d items, next %v; want %d, null", len(full.Items), full.Next, n)
	}
	for i, ev := range full.Items {
		if ev.Seq != int64(n-i) {
			t.Fatalf("item %d has seq %d, want %d (newest first)", i, ev.Seq, n-i)
		}
		if !reflect.DeepEqual(ev, stored[n-1-i]) {
			t.Fatalf("item %d: %+v, stored %+v", i, ev, stored[n-1-i])
		}
	}
	for _, limit := range []int{1, 3, 4, 5, 16, 17} {
		walked := e.auditWalk(o.token, nil, limit)
		if !reflect.DeepEqual(walked, full.Items) {
			t.Fatalf("pages of %d:%s\nwant%s", limit, summary(walked), summary(full.Items))
		}
	}
	if p := e.auditPage(o.token, "?limit=3&after=2"); len(p.Items) != 1 || p.Items[0].Seq != 1 || p.Next != nil {
		t.Fatalf("after=2: %+v", p)
	}
	if p := e.auditPage(o.token, "?after=1"); len(p.Items) != 0 || p.Next != nil {
		t.Fatalf("after=1: %+v", p)
	}

	// Filters, against the same filter applied to the whole log.
	times := map[string]bool{}
	for _, ev := range stored {
		times[ev.Time] = true
	}
	if len(times) < 5 {
		t.Fatalf("the events span %d milliseconds only", len(times))
	}
	t1, t2 := stored[5].Time, stored[11].Time
	// ms is s moved by d: as a query (RFC 3339), and as an event time.
	ms := func(s string, d time.Duration) string { return mustTime(t, s).Add(d).Format(time.RFC3339Nano) }
	msEvent := func(s string, d time.Duration) string { return audit.Time(mustTime(t, s).Add(d)) }
	zoned := mustTime(t, t1).In(time.FixedZone("", 2*3600)).Format(time.RFC3339Nano)
	type filter struct {
		q    url.Values
		keep func(api.AuditEvent) bool
	}
	since := func(s string) func(api.AuditEvent) bool { return func(ev api.AuditEvent) bool { return ev.Time >= s } }
	until := func(s string) func(api.AuditEvent) bool { return func(ev api.AuditEvent) bool { return ev.Time < s } }
	action := func(a string) func(api.AuditEvent) bool {
		return func(ev api.AuditEvent) bool { return ev.Action == a }
	}
	actor := func(a string) func(api.AuditEvent) bool {
		return func(ev api.AuditEvent) bool { return ev.Actor.ID == a }
	}
	all := func(fs ...func(api.AuditEvent) bool) func(api.AuditEvent) bool {
		return func(ev api.AuditEvent) bool {
			for _, f := range fs {
				if !f(ev) {
					return false
				}
			}
			return true
		}
	}
	cases := []filter{
		{url.Values{"action": {"auth.login_failed"}}, action("auth.login_failed")},
		{url.Values{"action": {"org.deleted"}}, action("org.deleted")},
		{url.Values{"actor": {m.id}}, actor(m.id)},
		{url.Values{"since": {t1}}, since(t1)},
		{url.Values{"until": {t2}}, until(t2)},
		{url.Values{"since": {zoned}}, since(t1)},
		{url.Values{"since": {t1}, "until": {t2}}, all(since(t1), until(t2))},
		// Sub-millisecond bounds: an event at t1 is before t1+0.5ms.
		{url.Values{"since": {ms(t1, 500*time.Microsecond)}}, since(msEvent(t1, time.Millisecond))},
		{url.Values{"until": {ms(t1, 500*time.Microsecond)}}, until(msEvent(t1, time.Millisecond))},
		{url.Values{"action": {"auth.login_succeeded"}, "actor": {o.adminID}}, all(action("auth.login_succeeded"), actor(o.adminID))},
		{url.Values{"action": {"auth.login_succeeded"}, "since": {t1}}, all(action("auth.login_succeeded"), since(t1))},
		{url.Values{"actor": {m.id}, "until": {t2}}, all(actor(m.id), until(t2))},
		{url.Values{"action": {"auth.login_succeeded"}, "actor": {m.id}, "since": {t1}, "until": {t2}},
			all(action("auth.login_succeeded"), actor(m.id), since(t1), until(t2))},
	}
	for _, c := range cases {
		var want []api.AuditEvent
		for _, ev := range full.Items {
			if c.keep(ev) {
				want = append(want, ev)
			}
		}
		if len(want) == n && c.q.Get("action") == "" && c.q.Get("actor") == "" {
			t.Fatalf("filter %s keeps every event: a useless case", c.q.Encode())
		}
		for _, limit := range []int{2, 500} {
			if got := e.auditWalk(o.token, c.q, limit); !reflect.DeepEqual(got, want) {
				t.Errorf("filter %s, pages of %d:%s\nwant%s", c.q.Encode(), limit, summary(got), summary(want))
			}
		}
	}
	if got := len(e.auditWalk(o.token, url.Values{"action": {"auth.login_failed"}}, 2)); got != 4 {
		t.Errorf("%d failed logins listed, want 4", got)
	}

	for _, c := range []struct{ query, loc string }{
		{"limit=0", "limit"}, {"limit=501", "limit"}, {"limit=x", "limit"},
		{"after=abc", "after"}, {"after=0", "after"}, {"after=-3", "after"},
		{"action=nope", "action"}, {"action=org.", "action"},
		{"actor=123", "actor"}, {"actor=zzzzzzzzzzzzzzzzzzzzzzzz", "actor"},
		{"since=yesterday", "since"}, {"since=2026-12-01", "since"}, {"until=2026-13-01T00:00:00Z", "until"},
	} {
		r := e.call("GET", "/org/audit?"+c.query, o.token, nil)
		expect(t, r, http.StatusUnprocessableEntity, "")
		if p := r.problems(); len(p) != 1 || fmtLoc(p[0]["loc"]) != "query."+c.loc {
			t.Errorf("?%s: %s, want one problem at query.%s", c.query, r.raw, c.loc)
		}
	}
	r := e.call("GET", "/org/audit?since=x&until=y&action=z&actor=w", o.token, nil)
	expect(t, r, http.StatusUnprocessableEntity, "")
	var locs []string
	for _, p := range r.problems() {
		locs = append(locs, fmtLoc(p["loc"]))
	}
	if slices.Sort(locs); !slices.Equal(locs, []string{"query.action", "query.actor", "query.since", "query.until"}) {
		t.Errorf("four bad filters: %s", r.raw)
	}
	for _, q := range []string{"since=yesterday", "until=2026-12-01T25:00:00Z"} {
		r := e.call("GET", "/org/audit/export?"+q, o.token, nil)
		expect(t, r, http.StatusUnprocessableEntity, "")
		if p := r.problems(); len(p) != 1 || fmtLoc(p[0]["loc"]) != "query."+strings.Split(q, "=")[0] {
			t.Errorf("export ?%s: %s", q, r.raw)
		}
	}
	if got := e.storedEvents(e.orgID(o)); len(got) != n {
		t.Errorf("refused exports recorded events:%s", summary(got))
	}
}

// verifyScript runs examples/verify_audit.py on file: its output and
// whether it exited 0.
func verifyScript(t *testing.T, file string) (string, bool) {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed to run examples/verify_audit.py: %v", err)
	}
	out, err := exec.Command(python, filepath.Join(repoRoot(), "examples", "verify_audit.py"), file).CombinedOutput()
	if _, exit := err.(*exec.ExitError); err != nil && !exit {
		t.Fatalf("verify_audit.py: %v", err)
	}
	return strings.TrimSpace(string(out)), err == nil
}

// TestAuditExportVerifies: the export is the log oldest first, one chain
// from 64 zeros, ending with its own audit.exported; the README's script
// verifies it and finds an edit.
func TestAuditExportVerifies(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("Exported")
	m := e.join(o, "mem@exported.example.com", model.RoleMember)
	e.login(m.email, m.password)
	expect(t, e.call("POST", "/admin/login", "", creds(o.email, "wrong \"quoted\" ü")), http.StatusUnauthorized, "")
	orgID := e.orgID(o).Hex()
	time.Sleep(5 * time.Millisecond) // the rename is a millisecond after the first event
	// Characters the canonical form escapes, in a name.
	r := e.call("PUT", "/org/update", o.token, map[string]any{"organization_name": "Exported", "new_organization_name": "Zürich Café 東京"})
	expect(t, r, http.StatusOK, "")
	listed := e.auditLog(o.token)

	evs, raw := e.export("export-all", o.token, "")
	if len(evs) != len(listed)+1 {
		t.Fatalf("export of %d events, the listing had %d", len(evs), len(listed))
	}
	if !reflect.DeepEqual(evs[:len(listed)], listed) {
		t.Fatalf("export differs from the listing:%s\nlisting%s", summary(evs), summary(listed))
	}
	prev := strings.Repeat("0", 64)
	for i, ev := range evs {
		if ev.Seq != int64(i+1) || ev.ID != fmt.Sprintf("%s:%d", orgID, i+1) || ev.OrgID != orgID {
			t.Fatalf("line %d: seq %d id %s org_id %s", i+1, ev.Seq, ev.ID, ev.OrgID)
		}
		if ev.PrevHash != prev {
			t.Fatalf("line %d: prev_hash %s, want %s", i+1, ev.PrevHash, prev)
		}
		if len(ev.Hash) != 64 || ev.Hash == ev.PrevHash {
			t.Fatalf("line %d: hash %q", i+1, ev.Hash)
		}
		prev = ev.Hash
	}
	checkEvent(t, evs[len(evs)-1:], wantEvent{req: "export-all", action: "audit.exported", actor: auActor(o.adminID, o.email),
		targets: []api.AuditTarget{auOrg(orgID, "")}})
	if !bytes.Contains(raw, []byte("Zürich Café 東京")) {
		t.Errorf("the export escapes the name: %s", raw)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "export.ndjson")
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	out, ok := verifyScript(t, file)
	if want := fmt.Sprintf("ok: %d events, chain intact, head %s", len(evs), prev); !ok || out != want {
		t.Fatalf("verify_audit.py: ok %v, %q; want %q", ok, out, want)
	}
	lines := strings.SplitAfter(string(raw), "\n")
	for name, edit := range map[string]func() string{
		"an e-mail edited": func() string {
			c := slices.Clone(lines)
			c[2] = strings.Replace(c[2], m.email, "someone@exported.example.com", 1)
			if c[2] == lines[2] {
				t.Fatalf("line 3 does not hold %s: %s", m.email, lines[2])
			}
			return strings.Join(c, "")
		},
		"a time edited": func() string {
			c := slices.Clone(lines)
			c[1] = strings.Replace(c[1], evs[1].Time, "2001-01-01T00:00:00.000Z", 1)
			return strings.Join(c, "")
		},
		"a line removed": func() string { return strings.Join(slices.Delete(slices.Clone(lines), 2, 3), "") },
		"lines swapped": func() string {
			c := slices.Clone(lines)
			c[1], c[2] = c[2], c[1]
			return strings.Join(c, "")
		},
	} {
		bad := filepath.Join(dir, "bad.ndjson")
		text := edit()
		if text == string(raw) {
			t.Fatalf("%s: no change", name)
		}
		if err := os.WriteFile(bad, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, ok := verifyScript(t, bad); ok || strings.HasPrefix(out, "ok") {
			t.Errorf("%s: verify_audit.py exits 0: %s", name, out)
		}
	}

	// since narrows the export, and is recorded in the export's event.
	since := evs[3].Time
	part, partRaw := e.export("export-since", o.token, "?since="+url.QueryEscape(since))
	for _, ev := range part {
		if ev.Time < since {
			t.Errorf("event at %s exported since %s", ev.Time, since)
		}
	}
	if len(part) < 2 || part[0].Seq > evs[3].Seq || part[len(part)-1].Seq != int64(len(evs)+1) {
		t.Fatalf("export since %s:%s", since, summary(part))
	}
	checkEvent(t, part, wantEvent{req: "export-since", action: "audit.exported", actor: auActor(o.adminID, o.email),
		targets: []api.AuditTarget{auOrg(orgID, "")}, changes: map[string]api.AuditChange{"since": auTo(since)}})
	if err := os.WriteFile(file, partRaw, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, ok := verifyScript(t, file); !ok || !strings.HasPrefix(out, fmt.Sprintf("ok: %d events", len(part))) {
		t.Errorf("verify_audit.py on a part: %v %s", ok, out)
	}
	// until in the past: the export's own event is recorded, not exported.
	until := evs[6].Time
	part, _ = e.export("export-until", o.token, "?until="+url.QueryEscape(until))
	for _, ev := range part {
		if ev.Time >= until {
			t.Errorf("event at %s exported until %s", ev.Time, until)
		}
	}
	if len(part) == 0 || part[0].Seq != 1 {
		t.Fatalf("export until %s:%s", until, summary(part))
	}
	last := e.auditPage(o.token, "?limit=1").Items
	if len(last) != 1 || last[0].Action != "audit.exported" || last[0].Context.RequestID != "export-until" ||
		!reflect.DeepEqual(last[0].Changes, map[string]api.AuditChange{"until": auTo(until)}) {
		t.Fatalf("newest event after an export until %s: %+v", until, last)
	}
	// Nothing to export still answers NDJSON, and is recorded.
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if none, raw := e.export("export-none", o.token, "?since="+future); len(none) != 0 || len(raw) != 0 {
		t.Fatalf("export since %s: %s", future, raw)
	}
	if n := len(ofAction(e.auditLog(o.token), "audit.exported")); n != 4 {
		t.Fatalf("%d audit.exported events, want 4", n)
	}
}

// TestAuditLogsDoNotMix: two organizations with a member in common; each
// one's export and stored log hold its own events only.
func TestAuditLogsDoNotMix(t *testing.T) {
	e := newEnv(t)
	a, b := e.signUp("Mix One"), e.signUp("Mix Two")
	shared := e.joinAs(a, "both@mix.example.com", "both-pass-123", model.RoleAdmin)
	e.joinAs(b, "both@mix.example.com", "both-pass-123", model.RoleMember)
	for i := range 3 {
		expect(t, e.act(fmt.Sprint("one-", i), "POST", "/org/invitations", a.token, map[string]any{"email": fmt.Sprintf("x%d@one.example.com", i), "role": "viewer"}), http.StatusCreated, "")
		expect(t, e.act(fmt.Sprint("two-", i), "POST", "/admin/login", "", creds(b.email, "wrong")), http.StatusUnauthorized, "")
	}
	expect(t, e.act("me", "PATCH", "/me", shared.token, map[string]any{"email": "both2@mix.example.com", "current_password": "both-pass-123"}), http.StatusOK, "")
	for _, c := range []struct {
		o         *org
		mine, not string
	}{{a, "one-", "two-"}, {b, "two-", "one-"}} {
		oid := e.orgID(c.o)
		evs, _ := e.export("export", c.o.token, "")
		checkOwnOrg(t, evs, oid.Hex())
		stored := e.storedEvents(oid)
		checkOwnOrg(t, stored, oid.Hex())
		if len(stored) != len(evs) {
			t.Errorf("%s: %d stored, %d exported", c.o.name, len(stored), len(evs))
		}
		mine := 0
		for _, ev := range evs {
			switch {
			case strings.HasPrefix(ev.Context.RequestID, c.not):
				t.Errorf("%s holds the other's event %s (%s)", c.o.name, ev.Action, ev.Context.RequestID)
			case strings.HasPrefix(ev.Context.RequestID, c.mine):
				mine++
			}
			for _, tg := range ev.Targets {
				if tg.Type == "organization" && tg.ID != oid.Hex() && ev.Action != "auth.switch" {
					t.Errorf("%s: %s targets organization %s", c.o.name, ev.Action, tg.ID)
				}
			}
		}
		if mine != 3 || len(matching(evs, "me", "org.email_changed")) != 1 {
			t.Errorf("%s: %d of its own events, %d e-mail changes:%s", c.o.name, mine, len(matching(evs, "me", "org.email_changed")), summary(evs))
		}
	}
}

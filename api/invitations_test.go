package api_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/config"
	"github.com/orgsvc/orgsvc/internal/mail/mailtest"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/service"
)

// TestInvitations without mail: the inviter gets the token; every refusal
// of the list, and each changes nothing.
func TestInvitations(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("Inviting")
	admin := e.join(o, "adm@inviting.example.com", model.RoleAdmin)
	member := e.join(o, "mem@inviting.example.com", model.RoleMember)

	inv := e.call("POST", "/org/invitations", admin.token, map[string]any{"email": "ana@inviting.example.com", "role": "member"})
	expect(t, inv, 201, "")
	body := inv.obj()
	token, _ := body["token"].(string)
	if body["status"] != "pending" || body["invited_by"] != admin.id || body["email"] != "ana@inviting.example.com" || len(token) < 40 {
		t.Fatalf("invitation: %s", inv.raw)
	}
	if exp, _ := time.Parse(time.RFC3339, body["expires_at"].(string)); time.Until(exp) < 167*time.Hour {
		t.Fatalf("expires_at %v, want INVITATION_TTL (168h) from now", body["expires_at"])
	}
	expect(t, e.call("POST", "/org/invitations", o.token, map[string]any{"email": "ANA@Inviting.example.com", "role": "viewer"}), 409, "An invitation to this address is pending")
	expect(t, e.call("POST", "/org/invitations", o.token, map[string]any{"email": member.email, "role": "viewer"}), 409, "Already a member of this organization")
	expect(t, e.call("POST", "/org/invitations", admin.token, map[string]any{"email": "boss@inviting.example.com", "role": "owner"}), 403, "")
	expect(t, e.call("POST", "/org/invitations", member.token, map[string]any{"email": "x@inviting.example.com", "role": "viewer"}), 403, "")
	expect(t, e.call("GET", "/org/invitations", member.token, nil), 403, "")
	expect(t, e.call("POST", "/org/invitations", o.token, map[string]any{"email": "x@inviting.example.com", "role": "king"}), 422, "")
	expect(t, e.call("GET", "/org/invitations?status=lost", o.token, nil), 422, "")

	// The token is stored only as a hash.
	var stored model.Invitation
	if err := e.db.Collection(model.Invitations).FindOne(context.Background(), map[string]any{"email": "ana@inviting.example.com"}).Decode(&stored); err != nil {
		t.Fatal(err)
	}
	if stored.TokenHash == "" || strings.Contains(stored.TokenHash, token) {
		t.Fatalf("stored invitation: %+v", stored)
	}

	expect(t, e.call("POST", "/invitations/accept", "", map[string]any{"token": token, "password": "short"}), 422, "")
	expect(t, e.call("POST", "/invitations/accept", "", map[string]any{"token": token + "x", "password": "ana-pass-123"}), 404, "Invitation not found")
	ok := e.call("POST", "/invitations/accept", "", map[string]any{"token": token, "password": "ana-pass-123"})
	expect(t, ok, 200, "")
	ana := ok.obj()["access_token"].(string)
	expect(t, e.call("POST", "/org/documents", ana, map[string]any{"by": "ana"}), 201, "")
	expect(t, e.call("POST", "/invitations/accept", "", map[string]any{"token": token, "password": "ana-pass-123"}), 410, "Invitation accepted, revoked or expired")
	listed := e.call("GET", "/org/invitations?status=accepted", o.token, nil)
	if items, _ := listed.obj()["items"].([]any); len(items) != 3 || items[2].(map[string]any)["email"] != "ana@inviting.example.com" || items[2].(map[string]any)["token"] != nil {
		t.Fatalf("accepted invitations: %s", listed.raw)
	}

	// An existing account must give its own password; a wrong one keeps
	// the invitation usable.
	other := e.signUp("Elsewhere")
	inv = e.call("POST", "/org/invitations", o.token, map[string]any{"email": other.email, "role": "viewer"})
	expect(t, inv, 201, "")
	token = inv.obj()["token"].(string)
	expect(t, e.call("POST", "/invitations/accept", "", map[string]any{"token": token, "password": "not-the-password"}), 401, "Invalid credentials")
	expect(t, e.call("POST", "/invitations/accept", "", map[string]any{"token": token, "password": other.password}), 200, "")

	// Revoked, and resent: the old token stops working either way.
	inv = e.call("POST", "/org/invitations", o.token, map[string]any{"email": "bo@inviting.example.com", "role": "member"})
	id, old := inv.obj()["id"].(string), inv.obj()["token"].(string)
	re := e.call("POST", "/org/invitations/"+id+"/resend", admin.token, nil)
	expect(t, re, 200, "")
	fresh := re.obj()["token"].(string)
	if fresh == old {
		t.Fatal("resend kept the token")
	}
	expect(t, e.call("POST", "/invitations/accept", "", map[string]any{"token": old, "password": "bo-pass-1234"}), 404, "")
	expect(t, e.call("DELETE", "/org/invitations/"+id, admin.token, nil), 204, "")
	expect(t, e.call("POST", "/invitations/accept", "", map[string]any{"token": fresh, "password": "bo-pass-1234"}), 410, "")
	expect(t, e.call("DELETE", "/org/invitations/"+id, admin.token, nil), 410, "")
	expect(t, e.call("DELETE", "/org/invitations/"+id, member.token, nil), 403, "")
	expect(t, e.call("DELETE", "/org/invitations/000000000000000000000000", admin.token, nil), 404, "Invitation not found")
	// A revoked address may be invited again.
	expect(t, e.call("POST", "/org/invitations", o.token, map[string]any{"email": "bo@inviting.example.com", "role": "member"}), 201, "")

	// Deleting the organization ends its invitations.
	pending := e.call("POST", "/org/invitations", o.token, map[string]any{"email": "cy@inviting.example.com", "role": "member"}).obj()["token"].(string)
	expect(t, e.call("DELETE", "/org/delete", o.token, map[string]any{"organization_name": o.name}), 200, "")
	expect(t, e.call("POST", "/invitations/accept", "", map[string]any{"token": pending, "password": "cy-pass-1234"}), 404, "")
	for _, c := range []string{model.Invitations, model.InvitationClaims, model.Memberships} {
		n, err := e.db.Collection(c).CountDocuments(context.Background(), map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		// Of the memberships, Elsewhere's owner's is left.
		want := map[string]int64{model.Invitations: 0, model.InvitationClaims: 0, model.Memberships: 1}[c]
		if n != want {
			t.Errorf("%s after the deletion: %d, want %d", c, n, want)
		}
	}
	if f, err := service.NewChecker(e.orgs).Check(context.Background()); err != nil || len(f) != 0 {
		t.Fatalf("check: %v %v", f, err)
	}
}

// TestInvitationByMail: with SMTP_URL, the invitee gets the token by mail
// from a real SMTP server, the answer never shows it, and the delivery
// state follows the mail.
func TestInvitationByMail(t *testing.T) {
	smtp := mailtest.Start(t)
	e := newEnv(t, func(c *config.Config) {
		c.SMTPURL, c.MailFrom, c.InvitationURL = smtp.URL(), "team@orgsvc.example.com", "https://app.example.com/join?token={token}"
	})
	o := e.signUp("Mailing")
	inv := e.call("POST", "/org/invitations", o.token, map[string]any{"email": "dee@mailing.example.com", "role": "admin"})
	expect(t, inv, 201, "")
	if _, has := inv.obj()["token"]; has || inv.obj()["delivery"] != "pending" {
		t.Fatalf("invitation answer with mail: %s", inv.raw)
	}
	msg := smtp.WaitFor(t, "dee@mailing.example.com", 10*time.Second)
	if !strings.Contains(msg.Subject, "Mailing") || !strings.Contains(msg.Body, "https://app.example.com/join?token=") {
		t.Fatalf("mail: subject %q body %q", msg.Subject, msg.Body)
	}
	token := regexp.MustCompile(`token: (\S+)`).FindStringSubmatch(msg.Body)
	if token == nil {
		t.Fatalf("no token in the mail: %q", msg.Body)
	}
	var delivery any
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		items, _ := e.call("GET", "/org/invitations", o.token, nil).obj()["items"].([]any)
		if delivery = items[0].(map[string]any)["delivery"]; delivery == "sent" {
			break
		}
	}
	if delivery != "sent" {
		t.Fatalf("delivery %v after the mail arrived, want sent", delivery)
	}
	r := e.call("POST", "/invitations/accept", "", map[string]any{"token": token[1], "password": "dee-pass-123"})
	expect(t, r, 200, "")
	if n := len(smtp.To("dee@mailing.example.com")); n != 1 {
		t.Fatalf("%d mails to the invitee, want 1", n)
	}
	expect(t, e.call("POST", "/org/invitations", r.obj()["access_token"].(string), map[string]any{"email": "eve@mailing.example.com", "role": "viewer"}), 201, "")
	smtp.WaitFor(t, "eve@mailing.example.com", 10*time.Second)
}

// TestConcurrentAccepts: two accepts of one invitation through two
// instances make one membership.
func TestConcurrentAccepts(t *testing.T) {
	e := newEnv(t)
	other := startEnv(t, e.db, func(ctx context.Context) error { return e.db.Client().Ping(ctx, nil) })
	o := e.signUp("Racing")
	for round := range 4 {
		email := "racer" + string(rune('a'+round)) + "@racing.example.com"
		token := e.call("POST", "/org/invitations", o.token, map[string]any{"email": email, "role": "member"}).obj()["token"].(string)
		var wg sync.WaitGroup
		statuses := make([]int, 2)
		for i, env := range []*env{e, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i] = env.call("POST", "/invitations/accept", "", map[string]any{"token": token, "password": "racer-pass-1"}).status
			}()
		}
		wg.Wait()
		ok := 0
		for _, s := range statuses {
			switch s {
			case http.StatusOK:
				ok++
			case http.StatusGone, http.StatusConflict:
			default:
				t.Fatalf("round %d: statuses %v", round, statuses)
			}
		}
		members, _ := e.call("GET", "/org/members", o.token, nil).obj()["items"].([]any)
		if ok != 1 || len(members) != 2+round {
			t.Fatalf("round %d: statuses %v, %d members", round, statuses, len(members))
		}
	}
}

// TestInvitationMailMissing: an invitation whose instance died before its
// mail reached the outbox is mailed, with a fresh token, by the next
// round that looks for such invitations.
func TestInvitationMailMissing(t *testing.T) {
	smtp := mailtest.Start(t)
	e := newEnv(t, func(c *config.Config) { c.SMTPURL, c.MailFrom = smtp.URL(), "team@orgsvc.example.com" })
	o := e.signUp("Missing Mail")
	ctx := context.Background()
	org := e.orgID(o)
	inv := model.Invitation{
		ID: bson.NewObjectID(), OrgID: org, Email: "lost@missing.example.com", Role: model.RoleMember, Status: model.InvitePending,
		TokenHash: "0", CreatedAt: model.At(time.Now().Add(-2 * time.Minute)), ExpiresAt: model.At(time.Now().Add(time.Hour)),
	}
	if _, err := e.db.Collection(model.Invitations).InsertOne(ctx, inv); err != nil {
		t.Fatal(err)
	}
	if n, err := e.orgs.DeliverMissing(ctx); err != nil || n != 1 {
		t.Fatalf("DeliverMissing: %d, %v; want 1", n, err)
	}
	msg := smtp.WaitFor(t, "lost@missing.example.com", 10*time.Second)
	token := regexp.MustCompile(`token: (\S+)`).FindStringSubmatch(msg.Body)
	if token == nil {
		t.Fatalf("no token in the mail: %q", msg.Body)
	}
	expect(t, e.call("POST", "/invitations/accept", "", map[string]any{"token": token[1], "password": "lost-pass-123"}), 200, "")
	if n, err := e.orgs.DeliverMissing(ctx); err != nil || n != 0 {
		t.Fatalf("DeliverMissing again: %d, %v; want 0", n, err)
	}
}

// TestAdminIDFollowsOwners: admin_id stays the signing account while it
// is a member, then becomes the oldest owner.
func TestAdminIDFollowsOwners(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("Following")
	second := e.join(o, "second@following.example.com", model.RoleOwner)
	adminID := func() any { return e.call("GET", "/org/get?organization_name=Following", "", nil).obj()["admin_id"] }
	if got := adminID(); got != o.adminID {
		t.Fatalf("admin_id %v, want the signing account %s", got, o.adminID)
	}
	expect(t, e.call("DELETE", "/org/members/"+o.adminID, o.token, nil), 204, "")
	var got any
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got = adminID(); got == second.id {
			break
		}
	}
	if got != second.id {
		t.Fatalf("admin_id %v after the signing account left, want the remaining owner %s", got, second.id)
	}
}

// accounts counts the accounts of email.
func (e *env) accounts(email string) int64 {
	e.t.Helper()
	n, err := e.db.Collection(model.Admins).CountDocuments(context.Background(), bson.D{{Key: "email", Value: email}})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// TestAcceptExpiredInvitation: past INVITATION_TTL, an accept is 410, for
// a new address and for an existing account alike, and makes no account
// and no membership.
func TestAcceptExpiredInvitation(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.InvitationTTL = 300 * time.Millisecond })
	o := e.signUp("Lapsing")
	other := e.signUp("Lapsing Elsewhere")
	newcomer := "new@lapsing.example.com"
	var tokens []string
	var last time.Time
	for _, email := range []string{newcomer, other.email} {
		r := e.call("POST", "/org/invitations", o.token, map[string]any{"email": email, "role": model.RoleMember})
		expect(t, r, http.StatusCreated, "")
		exp, err := time.Parse(time.RFC3339, r.obj()["expires_at"].(string))
		if err != nil || time.Until(exp) > time.Second {
			t.Fatalf("expires_at %v (%v), want INVITATION_TTL (300ms) from now", r.obj()["expires_at"], err)
		}
		tokens, last = append(tokens, r.obj()["token"].(string)), exp
	}
	time.Sleep(time.Until(last) + 100*time.Millisecond)
	memberships := func() int64 {
		n, err := e.db.Collection(model.Memberships).CountDocuments(context.Background(), bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := memberships()

	const gone = "Invitation accepted, revoked or expired"
	expect(t, e.call("POST", "/invitations/accept", "", map[string]any{"token": tokens[0], "password": "newcomer-pass-1"}), http.StatusGone, gone)
	expect(t, e.call("POST", "/invitations/accept", "", map[string]any{"token": tokens[1], "password": other.password}), http.StatusGone, gone)

	if n := e.accounts(newcomer); n != 0 {
		t.Fatalf("%d accounts of %s after an accept of its expired invitation, want 0", n, newcomer)
	}
	expect(t, e.call("POST", "/admin/login", "", creds(newcomer, "newcomer-pass-1")), http.StatusUnauthorized, "Invalid credentials")
	if after := memberships(); after != before {
		t.Fatalf("memberships: %d before the accepts of expired invitations, %d after", before, after)
	}
	if items, _ := e.call("GET", "/org/members", o.token, nil).obj()["items"].([]any); len(items) != 1 {
		t.Fatalf("%d members after accepts of expired invitations, want the owner alone", len(items))
	}
	me := e.call("GET", "/me", other.token, nil)
	if orgs, _ := me.obj()["organizations"].([]any); len(orgs) != 1 {
		t.Fatalf("GET /me of the invited account after the accept of an expired invitation: %s", me.raw)
	}
	if items, _ := e.call("GET", "/org/invitations?status=expired", o.token, nil).obj()["items"].([]any); len(items) != 2 {
		t.Fatalf("%d expired invitations, want 2", len(items))
	}
}

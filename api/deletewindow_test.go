package api_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/config"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/service"
)

// deletedArchive is the restorable deletion of organization id, if the
// service lists one.
func (e *env) deletedArchive(id bson.ObjectID) (service.DeletedSummary, bool) {
	e.t.Helper()
	all, err := e.orgs.ListDeleted(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	for _, d := range all {
		if d.Archive.ID == id {
			return d, true
		}
	}
	return service.DeletedSummary{}, false
}

// trashIDs are the ids of the documents in organization id's trash
// collection in tenant database db ("" for the master), in id order.
func (e *env) trashIDs(db string, id bson.ObjectID) []string {
	e.t.Helper()
	d := e.db
	if db != "" && db != e.db.Name() {
		d = e.db.Client().Database(db)
	}
	cur, err := d.Collection(repository.TrashName(id)).Find(context.Background(), bson.D{})
	if err != nil {
		e.t.Fatal(err)
	}
	var docs []struct {
		ID bson.ObjectID `bson:"_id"`
	}
	if err := cur.All(context.Background(), &docs); err != nil {
		e.t.Fatal(err)
	}
	ids := make([]string, 0, len(docs))
	for _, d := range docs {
		ids = append(ids, d.ID.Hex())
	}
	slices.Sort(ids)
	return ids
}

// trashes lists every trash collection, as database and name.
func (e *env) trashes() [][2]string {
	e.t.Helper()
	all, err := repository.NewTenantRepository(e.db, 0).Trashes(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return all
}

// TestDeleteWithRestoreWindow: with ORG_DELETE_RETENTION set, DELETE
// /org/delete answers exactly as with no window, and the organization is
// gone from the API at once: 404, its members' tokens refused, its name
// and its members' e-mails free for sign-ups. Yet its documents wait in
// the trash, and a restore under a new name brings back the same ids and
// contents, readable over HTTP after a fresh login, while tokens of
// before the deletion stay refused. With no window nothing is kept.
func TestDeleteWithRestoreWindow(t *testing.T) {
	ctx := context.Background()
	kept := newEnv(t, func(c *config.Config) { c.OrgDeleteRetention = time.Hour })
	plain := newEnv(t) // ORG_DELETE_RETENTION=0

	sent := []string{`{"n":1.50,"a":[[1,2],[]],"s":"x"}`, `{"nested":{"k":true,"z":null},"big":12345678901234567890}`}
	o := kept.signUp("Window Co")
	var ids []string
	before := map[string]string{}
	for _, data := range sent {
		id := kept.postDoc(o, data)
		ids = append(ids, id)
		r := kept.call("GET", "/org/documents/"+id, o.token, nil)
		expect(t, r, http.StatusOK, "")
		before[id] = rawData(t, r.raw)
		if !jsonEqual(before[id], data) {
			t.Fatalf("document %s stored as %s, sent %s", id, before[id], data)
		}
	}
	slices.Sort(ids)
	ana := kept.joinAs(o, "ana@window.example.com", "ana-pass-1", model.RoleMember)
	bob := kept.joinAs(o, "bob@window.example.com", "bob-pass-1", model.RoleAdmin)
	id := kept.orgID(o)

	p := plain.signUp("Window Co")
	plain.postDoc(p, sent[0])
	pid := plain.orgID(p)

	// The deletion answers as with no window: status, type and body.
	del := kept.call("DELETE", "/org/delete", o.token, map[string]any{"organization_name": o.name})
	want := plain.call("DELETE", "/org/delete", p.token, map[string]any{"organization_name": p.name})
	expect(t, want, http.StatusOK, "Organization deleted successfully")
	if del.status != want.status || string(del.raw) != string(want.raw) || del.header.Get("Content-Type") != want.header.Get("Content-Type") {
		t.Fatalf("delete with a window: %d %q %s; without: %d %q %s",
			del.status, del.header.Get("Content-Type"), del.raw, want.status, want.header.Get("Content-Type"), want.raw)
	}

	// Gone from the API at once, in the same words as with no window.
	for _, c := range []struct {
		what, method, path, token, plainToken string
	}{
		{"GET /org/get", "GET", "/org/get?organization_name=Window+Co", "", ""},
		{"the owner's token", "GET", "/org/documents", o.token, p.token},
		{"the owner's token on a document", "GET", "/org/documents/" + ids[0], o.token, p.token},
		{"the owner's token on /me", "GET", "/me", o.token, p.token},
		{"a member's token", "GET", "/org/documents", ana.token, p.token},
		{"an admin's token", "GET", "/org/members", bob.token, p.token},
	} {
		got, w := kept.call(c.method, c.path, c.token, nil), plain.call(c.method, c.path, c.plainToken, nil)
		status := http.StatusUnauthorized
		if c.token == "" {
			status = http.StatusNotFound
		}
		if got.status != status || got.status != w.status || got.detail() != w.detail() {
			t.Errorf("%s after the deletion: %d %s; want %d, as with no window: %d %s", c.what, got.status, got.raw, status, w.status, w.raw)
		}
	}

	// The name, the owner's e-mail and the admin's e-mail are free at once.
	expect(t, kept.createOrg("Window Co", "new@window.example.com"), http.StatusCreated, "")
	expect(t, kept.createOrg("Owner Again", o.email), http.StatusCreated, "")
	expect(t, kept.createOrg("Bob Again", bob.email), http.StatusCreated, "")
	expect(t, getOrg(kept, "Window Co"), http.StatusOK, "")

	// The trash holds the documents, and the archive the members.
	d, ok := kept.deletedArchive(id)
	if !ok {
		t.Fatal("the deleted organization is not listed as restorable")
	}
	if d.Archive.Org.Name != "Window Co" || d.Stats.Documents != int64(len(ids)) || len(d.Archive.Members) != 3 || len(d.Archive.Accounts) != 3 {
		t.Fatalf("listed: %+v, %d members, %d accounts, %d documents", d.Archive.Org, len(d.Archive.Members), len(d.Archive.Accounts), d.Stats.Documents)
	}
	if w := d.Archive.PurgeAt.Sub(d.Archive.DeletedAt); w < 59*time.Minute || w > 61*time.Minute {
		t.Fatalf("restore window %s, want 1h", w)
	}
	if all := kept.trashes(); !slices.Equal(all, [][2]string{{d.Archive.Org.TenantDB, repository.TrashName(id)}}) {
		t.Fatalf("trash collections %v, want %s's alone", all, id.Hex())
	}
	if got := kept.trashIDs(d.Archive.Org.TenantDB, id); !slices.Equal(got, ids) {
		t.Fatalf("trash holds %v, want %v", got, ids)
	}

	// Under its old name, taken meanwhile, it is not restored.
	if _, err := kept.orgs.Restore(ctx, service.RestoreRequest{ID: id}); !errors.Is(err, service.ErrOrgExists) {
		t.Fatalf("restore under the taken name: %v, want ErrOrgExists", err)
	}
	// The owner's e-mail went to a new account, which becomes the owner.
	res, err := kept.orgs.Restore(ctx, service.RestoreRequest{ID: id, Name: "Window Back", Owner: o.email, Command: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Org.ID != id || res.Org.Name != "Window Back" || res.Documents != int64(len(ids)) {
		t.Fatalf("restored: %+v with %d documents", res.Org, res.Documents)
	}
	// The old owner's and Bob's e-mails were taken: both are left out.
	var left []string
	for _, l := range res.LeftOut {
		if l.Reason == service.LeftEmailTaken {
			left = append(left, l.Email)
		}
	}
	if slices.Sort(left); len(res.LeftOut) != 2 || !slices.Equal(left, []string{o.email, bob.email}) {
		t.Fatalf("left out: %+v, want the old owner and Bob (e-mail taken)", res.LeftOut)
	}
	if _, ok := kept.deletedArchive(id); ok || len(kept.trashes()) != 0 {
		t.Fatal("the archive or the trash outlived the restore")
	}

	r := getOrg(kept, "Window Back")
	expect(t, r, http.StatusOK, "")
	if r.obj()["_id"] != id.Hex() {
		t.Fatalf("GET /org/get of the restored organization: %s, want id %s", r.raw, id.Hex())
	}
	// Tokens of before the deletion stay refused.
	for _, tok := range []string{o.token, ana.token, bob.token} {
		expect(t, kept.call("GET", "/org/documents", tok, nil), http.StatusUnauthorized, "")
	}
	// Ana, made anew with her old password, reads the same documents.
	reader := &org{name: "Window Back", token: kept.login(ana.email, ana.password)}
	if got := kept.listAll(reader, "", 100); !slices.Equal(got, ids) {
		t.Fatalf("documents after the restore: %v, want %v", got, ids)
	}
	for _, doc := range ids {
		r := kept.call("GET", "/org/documents/"+doc, reader.token, nil)
		expect(t, r, http.StatusOK, "")
		if got := rawData(t, r.raw); got != before[doc] {
			t.Fatalf("document %s after the restore: %s, want %s", doc, got, before[doc])
		}
	}
	// The named owner logs in to it with its own password and owns it.
	login := kept.call("POST", "/admin/login", "", map[string]any{"email": o.email, "password": "password-123", "organization_name": "Window Back"})
	expect(t, login, http.StatusOK, "")
	owner := accessToken(t, login)
	expect(t, kept.call("GET", "/org/documents/"+ids[1], owner, nil), http.StatusOK, "")
	expect(t, kept.call("PUT", "/org/update", owner, map[string]any{"organization_name": "Window Back"}), http.StatusOK, "")
	// Bob's old account did not come back: his old password does not open
	// the new account of his e-mail.
	expect(t, kept.call("POST", "/admin/login", "", map[string]any{"email": bob.email, "password": bob.password}), http.StatusUnauthorized, "Invalid credentials")

	// With no window nothing is kept.
	if all, err := plain.orgs.ListDeleted(ctx); err != nil || len(all) != 0 {
		t.Fatalf("deleted with no window: %+v, %v", all, err)
	}
	if all := plain.trashes(); len(all) != 0 {
		t.Fatalf("trash collections with no window: %v", all)
	}
	if _, err := plain.orgs.Restore(ctx, service.RestoreRequest{ID: pid, Name: "Window Back"}); !errors.Is(err, service.ErrNotDeleted) {
		t.Fatalf("restore with no window: %v, want ErrNotDeleted", err)
	}
}

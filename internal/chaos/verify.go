package chaos

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// verify holds the store, through the API and directly, to the clients'
// ledgers, once the load is over and recovery has run.
func (r *runner) verify(ctx context.Context, cs []*client, cli *mongo.Client) error {
	r.final.Store(true)
	// What the load left uncertain is settled by reading, once its
	// operations have surely been recovered.
	var latest time.Time
	for _, c := range cs {
		for _, o := range c.orgs {
			if o.uncertain() && o.uncertainAt.After(latest) {
				latest = o.uncertainAt
			}
		}
	}
	if wait := time.Until(latest.Add(r.settle + time.Second)); wait > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	for _, c := range cs {
		for _, o := range c.orgs {
			if o.uncertain() && o.id != "" {
				c.settleOrg(o)
			}
		}
	}

	// Through the API: each organization under its last acknowledged name,
	// its admin's login, every acknowledged document in its listing; each
	// acknowledged deletion done.
	for _, c := range cs {
		for _, o := range c.orgs {
			switch {
			case o.id == "":
			case o.deleted:
				c.checkDeleted(o)
			case o.uncertain():
				r.note("organization left uncertain by an unanswered rename or deletion")
			default:
				c.orgGet(o)
				if c.tryLogin(o) == "" && c.lasting(func() bool { return c.tryLogin(o) != "" }) {
					r.violate("lost-organization", fmt.Sprintf("organization %s (%q)", o.id, o.name),
						"its admin's login is refused", o.id)
					continue
				}
				c.listDocs(o, "doc-list")
			}
		}
		for _, p := range c.pending {
			if c.tryLogin(p) != "" {
				r.note("unanswered sign-up exists")
			}
		}
	}

	// Directly in the store.
	view, err := readStore(ctx, cli)
	if err != nil {
		return fmt.Errorf("read the store: %w", err)
	}
	r.verifyStore(cs, view)
	if err := r.verifyAudit(ctx, cs, cli); err != nil {
		return fmt.Errorf("read the audit logs: %w", err)
	}

	// Names: each name ever sent that nobody owns now can be signed up.
	v := r.newClient(ctx, len(cs))
	v.budget = 2*r.cfg.Lease + 2*time.Second
	r.verifyNames(ctx, cs, v, cli)
	return nil
}

// connect opens a driver connection to the store.
func (r *runner) connect() (*mongo.Client, error) {
	return mongo.Connect(options.Client().ApplyURI(r.mongoURI).SetTimeout(30 * time.Second))
}

// context describes what the store and the run know of the ids in a
// finding of orgsvc check: when each was made (an ObjectID holds its
// second) next to the kills, and an outcome's decision.
func (r *runner) findingContext(ctx context.Context, cli *mongo.Client, line string) string {
	var parts []string
	for _, h := range hexWords(line) {
		id, err := bson.ObjectIDFromHex(h)
		if err != nil {
			continue
		}
		made := id.Timestamp().Sub(r.began)
		p := fmt.Sprintf("%s made at +%.0fs", h, made.Seconds())
		r.mu.Lock()
		before, after := -1.0, -1.0
		for _, k := range r.killTimes {
			if k <= made+time.Second {
				before = k.Seconds()
			} else if after < 0 {
				after = k.Seconds()
			}
		}
		r.mu.Unlock()
		if before >= 0 {
			p += fmt.Sprintf(", last kill before it at +%.1fs", before)
		}
		if after >= 0 {
			p += fmt.Sprintf(", next kill at +%.1fs", after)
		}
		var out model.Outcome
		if err := cli.Database(masterDB).Collection(model.Outcomes).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&out); err == nil {
			p += fmt.Sprintf("; outcome commit=%v decided at %s", out.Commit, out.DecidedAt.UTC().Format(time.RFC3339Nano))
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

// storeView is what the store holds, read once.
type storeView struct {
	orgs    map[string]model.Organization // by _id, hex
	tenants []*tenantColl
	members map[string]model.Membership // by _id
}

// tenantColl is one collection org_* of the master or a tenant database.
type tenantColl struct {
	db   string // "" for the master database
	slug string
	docs []model.Document
}

func (t *tenantColl) String() string {
	db := t.db
	if db == "" {
		db = masterDB
	}
	return db + "." + repository.CollectionName(t.slug)
}

func readStore(ctx context.Context, cli *mongo.Client) (*storeView, error) {
	master := cli.Database(masterDB)
	v := &storeView{orgs: map[string]model.Organization{}}
	orgs, err := findAll[model.Organization](ctx, master.Collection(model.Organizations))
	if err != nil {
		return nil, err
	}
	for _, o := range orgs {
		v.orgs[o.ID.Hex()] = o
	}
	members, err := findAll[model.Membership](ctx, master.Collection(model.Memberships))
	if err != nil {
		return nil, err
	}
	v.members = map[string]model.Membership{}
	for _, m := range members {
		v.members[m.ID] = m
	}
	dbs, err := cli.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	sort.Strings(dbs)
	for _, db := range append([]string{""}, dbs...) {
		if db != "" && !model.IsTenantDatabase(masterDB, db) {
			continue
		}
		d := master
		if db != "" {
			d = cli.Database(db)
		}
		names, err := d.ListCollectionNames(ctx, bson.D{})
		if err != nil {
			return nil, err
		}
		sort.Strings(names)
		for _, name := range names {
			slug, ok := strings.CutPrefix(name, repository.TenantPrefix)
			if !ok {
				continue
			}
			docs, err := findAll[model.Document](ctx, d.Collection(name))
			if err != nil {
				return nil, err
			}
			v.tenants = append(v.tenants, &tenantColl{db: db, slug: slug, docs: docs})
		}
	}
	return v, nil
}

// findAll reads every document of coll.
func findAll[T any](ctx context.Context, coll *mongo.Collection) ([]T, error) {
	cur, err := coll.Find(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	var out []T
	return out, cur.All(ctx, &out)
}

// tenantKey is where an organization's collection is: its database ("" for
// the master database) and slug.
func tenantKey(db, slug string) string {
	if db == masterDB {
		db = ""
	}
	return db + "/" + slug
}

// verifyStore holds the store itself to the ledgers: no collection org_*
// that no organization names, no document in a collection of another
// organization than its _org, every acknowledged organization's record
// and documents there, and nothing left of an acknowledged deletion.
func (r *runner) verifyStore(cs []*client, v *storeView) {
	owner := map[string]model.Organization{}
	for _, o := range v.orgs {
		owner[tenantKey(o.TenantDB, o.Slug)] = o
	}
	ledger := map[string]*orgRec{}
	whose := map[string]int{}
	for _, c := range cs {
		for _, o := range append(append([]*orgRec{}, c.orgs...), c.pending...) {
			if o.id != "" {
				ledger[o.id], whose[o.id] = o, c.idx
			}
		}
	}
	describe := func(id string) string {
		var parts []string
		if rec, ok := v.orgs[id]; ok {
			parts = append(parts, fmt.Sprintf("now %q in %s", rec.Name, tenantKey(rec.TenantDB, rec.Slug)))
		} else {
			parts = append(parts, "no longer in the store")
		}
		if o, ok := ledger[id]; ok {
			state := "live"
			switch {
			case o.deleted:
				state = "deletion acknowledged"
			case o.uncertain():
				state = "uncertain"
			}
			parts = append(parts, fmt.Sprintf("client %d's, names %s, %s", whose[id], strings.Join(o.names, " -> "), state))
		}
		return "organization " + id + " (" + strings.Join(parts, "; ") + ")"
	}
	byOrg := map[string][]*tenantColl{} // _org -> collections holding its documents
	for _, t := range v.tenants {
		writers := map[string]int{}
		for _, d := range t.docs {
			writers[d.Org.Hex()]++
		}
		for id := range writers {
			byOrg[id] = append(byOrg[id], t)
		}
		o, owned := owner[tenantKey(t.db, t.slug)]
		if !owned {
			var lines []string
			keys := []string{t.slug}
			for id, n := range writers {
				lines = append(lines, fmt.Sprintf("  %d documents of %s", n, describe(id)))
				keys = append(keys, id)
			}
			sort.Strings(lines)
			detail := fmt.Sprintf("no organization's record names %s; it holds %d documents", t, len(t.docs))
			if len(lines) > 0 {
				detail += ":\n" + strings.Join(lines, "\n")
			}
			r.violate("orphan-collection", t.String(), detail, keys...)
			continue
		}
		for _, d := range t.docs {
			if d.Org != o.ID {
				r.violate("foreign-document", "document "+d.ID.Hex(),
					fmt.Sprintf("%s, the collection of %s, holds document %s of %s", t, describe(o.ID.Hex()), d.ID.Hex(), describe(d.Org.Hex())),
					d.ID.Hex(), o.ID.Hex(), d.Org.Hex(), t.slug)
			}
		}
	}
	for _, c := range cs {
		for _, o := range c.orgs {
			if o.id == "" || o.uncertain() {
				continue
			}
			rec, ok := v.orgs[o.id]
			if o.deleted {
				if ok {
					r.violate("deleted-organization-present", fmt.Sprintf("organization %s (%q)", o.id, o.name),
						fmt.Sprintf("its deletion was acknowledged, but its record is in the store (%q, state %q)", rec.Name, rec.State), o.id)
				}
				for _, t := range byOrg[o.id] {
					r.violate("deleted-organization-data", fmt.Sprintf("organization %s in %s", o.id, t),
						fmt.Sprintf("its deletion was acknowledged, but %s holds documents of it", t), o.id, t.slug)
				}
				continue
			}
			if !ok {
				r.violate("lost-organization", fmt.Sprintf("organization %s (%q)", o.id, o.name),
					fmt.Sprintf("no record of it in the store (names %s)", strings.Join(o.names, " -> ")), o.id, model.Slug(o.name))
				continue
			}
			r.verifyMembers(o, v)
			if rec.Name != o.name || rec.State != "" {
				r.violate("lost-organization", fmt.Sprintf("organization %s (%q)", o.id, o.name),
					fmt.Sprintf("its record says name %q, state %q; acknowledged name %q", rec.Name, rec.State, o.name), o.id, rec.Slug)
			}
			var mine *tenantColl
			for _, t := range v.tenants {
				if tenantKey(t.db, t.slug) == tenantKey(rec.TenantDB, rec.Slug) {
					mine = t
				}
			}
			if mine == nil {
				r.violate("missing-collection", fmt.Sprintf("organization %s (%q)", o.id, o.name),
					fmt.Sprintf("its collection %s does not exist; %d acknowledged documents lived in it (names %s); other organizations that held the name: %s",
						tenantKey(rec.TenantDB, rec.Slug), len(o.liveDocs()), strings.Join(o.names, " -> "), strings.Join(r.otherHolders(o.name, o.id), ", ")),
					append([]string{o.id, rec.Slug}, r.otherHolders(o.name, o.id)...)...)
				continue
			}
			found := map[string][]byte{}
			for _, d := range mine.docs {
				if d.Org == rec.ID {
					found[d.ID.Hex()] = []byte(d.JSON)
				}
			}
			c.compare(o, found, "the store's "+mine.String())
		}
	}
}

// verifyNames signs up every name a client ever sent that no organization
// holds now: each must succeed (a 201), or the name is stuck.
func (r *runner) verifyNames(ctx context.Context, cs []*client, v *client, cli *mongo.Client) {
	r.mu.Lock()
	names := make([]string, 0, len(r.used))
	for n := range r.used {
		names = append(names, n)
	}
	r.mu.Unlock()
	sort.Strings(names)
	for _, name := range names {
		if ctx.Err() != nil {
			return
		}
		res := v.call("org-get", "GET", getPath(name), "", nil, false)
		if res.ans == nil || res.ans.status == http.StatusOK {
			continue
		}
		v.n++
		email := fmt.Sprintf("verify.%d@chaos.example.com", v.n)
		res = v.call("signup", "POST", "/org/create", "",
			map[string]string{"organization_name": name, "email": email, "password": "chaos-verify-pass"}, false)
		if res.ans != nil && res.ans.status == http.StatusCreated {
			r.note("free name signed up after the load")
			continue
		}
		answer := res.last
		if res.ans != nil {
			answer = res.ans.String()
		}
		slug := model.Slug(name)
		claim := "no claim on its slug"
		keys := []string{slug}
		var c model.NameClaim
		if err := cli.Database(masterDB).Collection(model.NameClaims).FindOne(ctx, bson.D{{Key: "_id", Value: slug}}).Decode(&c); err == nil {
			claim = fmt.Sprintf("the claim on slug %q names %s (sweep %v, made %s)", slug, c.OrganizationID.Hex(), c.Sweep, c.CreatedAt.UTC().Format(time.RFC3339Nano))
			keys = append(keys, c.OrganizationID.Hex())
		}
		r.violate("stuck-name", fmt.Sprintf("name %q", name),
			fmt.Sprintf("GET /org/get finds no organization named %q, but a sign-up of it answered %s; %s; %s",
				name, answer, claim, history(cs, name)), append(keys, res.reqIDs...)...)
	}
}

// history tells what the ledgers know of a name: who held it and how they
// gave it up.
func history(cs []*client, name string) string {
	var parts []string
	for _, c := range cs {
		for _, o := range c.orgs {
			for i, n := range o.names {
				if n != name {
					continue
				}
				switch {
				case i < len(o.names)-1:
					parts = append(parts, fmt.Sprintf("%s (client %d) renamed away from it to %q", o.id, c.idx, o.names[i+1]))
				case o.deleted:
					parts = append(parts, fmt.Sprintf("%s (client %d) was deleted under it", o.id, c.idx))
				default:
					parts = append(parts, fmt.Sprintf("%s (client %d) holds it for all the client knows", o.id, c.idx))
				}
			}
		}
	}
	if len(parts) == 0 {
		return "no acknowledged organization ever held it"
	}
	return strings.Join(parts, "; ")
}

// verifyMembers holds the memberships of o to the ledger: every
// acknowledged member there with its acknowledged role, every
// acknowledged removal gone.
func (r *runner) verifyMembers(o *orgRec, v *storeView) {
	for _, m := range o.certainMembers() {
		account, err := bson.ObjectIDFromHex(m.id)
		if err != nil {
			continue
		}
		orgID, _ := bson.ObjectIDFromHex(o.id)
		got, there := v.members[model.MembershipID(account, orgID)]
		switch {
		case m.removed && there:
			r.violate("removed-member-present", fmt.Sprintf("member %s of %s", m.email, o.id),
				fmt.Sprintf("its removal was acknowledged, but its membership is in the store (role %q)", got.Role), o.id, m.id)
		case !m.removed && !there:
			r.violate("lost-member", fmt.Sprintf("member %s of %s", m.email, o.id),
				"its acceptance was acknowledged, but no membership is in the store", o.id, m.id)
		case !m.removed && got.Role != m.role:
			r.violate("lost-member", fmt.Sprintf("member %s of %s", m.email, o.id),
				fmt.Sprintf("its role %q was acknowledged, the store says %q", m.role, got.Role), o.id, m.id)
		}
	}
}

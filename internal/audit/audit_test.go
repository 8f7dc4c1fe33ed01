package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgsvc/orgsvc/internal/audit"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

func newLog(db *mongo.Database) *audit.Log {
	return audit.NewLog(repository.NewAuditRepository(db))
}

func event(action string) *model.Event {
	return &model.Event{Action: action, Actor: model.Actor{Type: model.ActorAccount, ID: "a1", Email: "ä@example.com"}}
}

// TestCanonicalIsPythons: the canonical form is what Python's json.dumps
// writes with sorted keys, compact separators and ASCII escapes, for
// every kind of character an event may hold.
func TestCanonicalIsPythons(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed to compare with the README's verification: %v", err)
	}
	from := "quote \" backslash \\ tab \t nl \n cr \r bs \b ff \f nul \x00 del \x7f"
	to := "é ü 中文 😀 \u2028 <>& end"
	ev := model.Event{
		Seq: 7, ID: "x:7", OrgID: "x", Time: "2026-12-02T10:00:00.000Z", Action: "org.renamed",
		Actor:    model.Actor{Type: "account", ID: "id", Email: "ünï@example.com"},
		Targets:  []model.Target{{Type: "organization", ID: "x", Name: to}},
		Changes:  map[string]model.Change{"b": {From: &from, To: &to}, "a": {To: &to}},
		Context:  model.EventContext{RequestID: "r", ClientAddress: "::1", UserAgent: "ua/1"},
		PrevHash: audit.ZeroHash, Hash: "ignored",
	}
	got := string(audit.Canonical(ev))
	if strings.Contains(got, `"hash"`) || strings.Contains(got, "source") {
		t.Fatalf("the canonical form holds the hash or the source: %s", got)
	}
	script := `import json,sys
ev = json.load(sys.stdin)
ev.pop("hash")
sys.stdout.write(json.dumps(ev, sort_keys=True, separators=(",", ":"), ensure_ascii=True))`
	cmd := exec.Command(python, "-c", script)
	plain, _ := json.Marshal(audit.Normal(ev))
	cmd.Stdin = strings.NewReader(string(plain))
	want, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	if got != string(want) {
		t.Fatalf("canonical form differs from Python's:\n got %s\nwant %s", got, want)
	}
}

// TestAppendChains: events get seq 1, 2, 3, each linked to the one
// before, and the chain verifies.
func TestAppendChains(t *testing.T) {
	ctx := context.Background()
	l := newLog(storetest.Database(t))
	org := bson.NewObjectID()
	for i := range 5 {
		ev := event(fmt.Sprint("a", i))
		if err := l.Append(ctx, org, ev); err != nil {
			t.Fatal(err)
		}
		if ev.Seq != int64(i+1) || ev.ID != model.EventID(org, ev.Seq) || ev.OrgID != org.Hex() {
			t.Fatalf("event %d: seq %d id %s org %s", i, ev.Seq, ev.ID, ev.OrgID)
		}
		if i == 0 && ev.PrevHash != audit.ZeroHash {
			t.Fatalf("first prev_hash %s", ev.PrevHash)
		}
	}
	if n, err := l.Verify(ctx, org); err != nil || n != 5 {
		t.Fatalf("verify: %d events, %v", n, err)
	}
}

// TestSourceIsRecordedOnce: an event whose source is in the log already
// (a step running again, here on another instance) is not added again.
func TestSourceIsRecordedOnce(t *testing.T) {
	ctx := context.Background()
	db := storetest.Database(t)
	a, b := newLog(db), newLog(db)
	org := bson.NewObjectID()
	first := event("org.created")
	first.Source = "op:1:created"
	if err := a.Append(ctx, org, first); err != nil || first.Seq != 1 {
		t.Fatalf("first: seq %d, %v", first.Seq, err)
	}
	if err := b.Append(ctx, org, event("auth.login_succeeded")); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*audit.Log{a, b} {
		again := event("org.created")
		again.Source = "op:1:created"
		if err := l.Append(ctx, org, again); err != nil {
			t.Fatal(err)
		}
	}
	evs, _, err := a.Page(ctx, org, repository.AuditFilter{}, 0, 10)
	if err != nil || len(evs) != 2 || evs[0].Action != "auth.login_succeeded" || evs[1].Action != "org.created" {
		t.Fatalf("log: %+v, %v", evs, err)
	}
}

// TestConcurrentAppendersKeepOneChain: two instances (two clients, two
// logs) appending to one organization's log at once give one gapless
// chain holding every event.
func TestConcurrentAppendersKeepOneChain(t *testing.T) {
	ctx := context.Background()
	db := storetest.Database(t)
	other, err := mongo.Connect(options.Client().ApplyURI(storetest.URI()))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Disconnect(ctx)
	logs := []*audit.Log{newLog(db), newLog(other.Database(db.Name()))}
	org := bson.NewObjectID()
	const each = 40
	var wg sync.WaitGroup
	errs := make(chan error, 4*each)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range each {
				if err := logs[i%2].Append(ctx, org, event(fmt.Sprintf("w%d.%d", i, n))); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n, err := logs[0].Verify(ctx, org)
	if err != nil || n != 4*each {
		t.Fatalf("verify: %d events, want %d; %v", n, 4*each, err)
	}
	seen := map[string]bool{}
	err = logs[1].Scan(ctx, org, repository.AuditFilter{}, func(ev *model.Event) error {
		seen[ev.Action] = true
		return nil
	})
	if err != nil || len(seen) != 4*each {
		t.Fatalf("%d distinct events, want %d; %v", len(seen), 4*each, err)
	}
}

// TestVerifyFindsAnEdit: one field edited in the database breaks the
// chain at that event.
func TestVerifyFindsAnEdit(t *testing.T) {
	ctx := context.Background()
	db := storetest.Database(t)
	l := newLog(db)
	org := bson.NewObjectID()
	for i := range 4 {
		if err := l.Append(ctx, org, event(fmt.Sprint("a", i))); err != nil {
			t.Fatal(err)
		}
	}
	_, err := db.Collection(model.AuditCollection).UpdateOne(ctx, bson.D{{Key: "_id", Value: model.EventKey(org, 3)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "actor.email", Value: "someone.else@example.com"}}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Verify(ctx, org)
	var broken *audit.Broken
	if !errors.As(err, &broken) || broken.Seq != 3 {
		t.Fatalf("verify after an edit of event 3: %v", err)
	}

	// VerifyAll reads each database once and reports each log once: the
	// edited one broken at event 3, the others whole, wherever they are.
	intact, elsewhere := bson.NewObjectIDFromTimestamp(time.Unix(0, 0)), bson.NewObjectID()
	l.Know(elsewhere, model.TenantDatabase(db.Name(), 0))
	for _, o := range []bson.ObjectID{intact, intact, elsewhere} {
		if err := l.Append(ctx, o, event("auth.logout")); err != nil {
			t.Fatal(err)
		}
	}
	got := map[bson.ObjectID]string{}
	err = l.VerifyAll(ctx, func(o bson.ObjectID, n int64, err error) {
		if _, seen := got[o]; seen {
			t.Errorf("the log of %s reported twice", o.Hex())
		}
		got[o] = fmt.Sprint(n, " ", err)
	})
	want := map[bson.ObjectID]string{org: "2 " + broken.Error(), intact: "2 <nil>", elsewhere: "1 <nil>"}
	if err != nil || !maps.Equal(got, want) {
		t.Fatalf("VerifyAll: %v, %v; want %v", got, err, want)
	}
}

// TestPageNewestFirst: pages run from the newest event down, with the
// cursor, and filters narrow them.
func TestPageNewestFirst(t *testing.T) {
	ctx := context.Background()
	org := bson.NewObjectID()
	for _, idOnly := range []bool{true, false} {
		t.Run(fmt.Sprint("id filters only ", idOnly), func(t *testing.T) {
			l := audit.NewLog(repository.NewAuditRepository(storetest.Database(t)))
			for i := range 7 {
				action := "auth.login_succeeded"
				if i%3 == 0 {
					action = "auth.logout"
				}
				if err := l.Append(ctx, org, event(action)); err != nil {
					t.Fatal(err)
				}
			}
			var seqs []int64
			before := int64(0)
			for {
				evs, more, err := l.Page(ctx, org, repository.AuditFilter{}, before, 3)
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range evs {
					seqs = append(seqs, ev.Seq)
				}
				if !more {
					break
				}
				before = evs[len(evs)-1].Seq
			}
			if fmt.Sprint(seqs) != "[7 6 5 4 3 2 1]" {
				t.Fatalf("pages: %v", seqs)
			}
			// A cursor past the newest event starts from the newest.
			evs, more, err := l.Page(ctx, org, repository.AuditFilter{}, 100, 3)
			if err != nil || !more || len(evs) != 3 || evs[0].Seq != 7 {
				t.Fatalf("past the newest: %+v more %v, %v", evs, more, err)
			}
			evs, more, err = l.Page(ctx, org, repository.AuditFilter{Action: "auth.logout"}, 0, 10)
			if err != nil || more || len(evs) != 3 || evs[0].Seq != 7 || evs[2].Seq != 1 {
				t.Fatalf("filtered: %+v more %v, %v", evs, more, err)
			}
		})
	}
}

// TestSweepKeepsTheChainVerifiable: events past the retention go from the
// start; the first kept one keeps its prev_hash, so the rest verifies; a
// live organization's newest event stays; a deleted one's log goes whole.
func TestSweepKeepsTheChainVerifiable(t *testing.T) {
	ctx := context.Background()
	db := storetest.Database(t)
	clock := time.Now().Add(-48 * time.Hour)
	l := audit.NewLogAt(repository.NewAuditRepository(db), func() time.Time { return clock })
	live, gone, quiet := bson.NewObjectID(), bson.NewObjectID(), bson.NewObjectID()
	for i := range 6 {
		if i == 3 {
			clock = time.Now().Add(-time.Hour)
		}
		for _, org := range []bson.ObjectID{live, gone} {
			if err := l.Append(ctx, org, event(fmt.Sprint("a", i))); err != nil {
				t.Fatal(err)
			}
		}
		if i < 3 {
			if err := l.Append(ctx, quiet, event(fmt.Sprint("a", i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	clock = time.Now()
	swept, err := l.Sweep(ctx, 24*time.Hour, func(_ context.Context, org bson.ObjectID) (bool, error) { return org != gone, nil })
	if err != nil {
		t.Fatal(err)
	}
	// live: 3 old events go; gone: 3 old go (its newest is recent);
	// quiet: all old, live, so its newest stays.
	if swept.Events != 3+3+2 || swept.Logs != 0 {
		t.Fatalf("swept %+v", swept)
	}
	for org, want := range map[bson.ObjectID]int64{live: 3, gone: 3, quiet: 1} {
		if n, err := l.Verify(ctx, org); err != nil || n != want {
			t.Fatalf("after the sweep: %d events (want %d), %v", n, want, err)
		}
	}
	if err := l.Append(ctx, quiet, event("after")); err != nil {
		t.Fatal(err)
	}
	if n, err := l.Verify(ctx, quiet); err != nil || n != 2 {
		t.Fatalf("the chain goes on from the kept event: %d, %v", n, err)
	}
	clock = time.Now().Add(48 * time.Hour)
	swept, err = l.Sweep(ctx, 24*time.Hour, func(_ context.Context, org bson.ObjectID) (bool, error) { return org != gone, nil })
	if err != nil || swept.Logs != 1 {
		t.Fatalf("second sweep: %+v, %v", swept, err)
	}
	logs, err := l.Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, org := range logs {
		if org == gone {
			t.Fatal("the deleted organization's log is still there")
		}
	}
}

// TestLogsAreFoundWhereTheyAre: a live organization's log is kept in its
// tenant database, whose database the locator says once; a deleted
// organization's is found wherever it is kept.
func TestLogsAreFoundWhereTheyAre(t *testing.T) {
	ctx := context.Background()
	db := storetest.Database(t)
	tenantDB := model.TenantDatabase(db.Name(), 0)
	live, gone, inMaster := bson.NewObjectID(), bson.NewObjectID(), bson.NewObjectID()
	// Before: a deleted organization's log in a tenant database.
	before := newLog(db)
	before.Know(gone, tenantDB)
	if err := before.Append(ctx, gone, event("org.created")); err != nil {
		t.Fatal(err)
	}
	l := newLog(db)
	dbOf := map[bson.ObjectID]string{live: tenantDB, inMaster: ""}
	located := 0
	l.SetLocator(func(_ context.Context, org bson.ObjectID) (string, error) {
		located++
		db, ok := dbOf[org]
		if !ok {
			return "", repository.ErrNotFound
		}
		return db, nil
	})
	for _, org := range []bson.ObjectID{live, gone, inMaster, live, gone} {
		if err := l.Append(ctx, org, event("auth.logout")); err != nil {
			t.Fatal(err)
		}
	}
	if located != 3 {
		t.Fatalf("the locator was asked %d times, want 3 (once for each organization)", located)
	}
	for _, c := range []struct {
		org    bson.ObjectID
		db     string
		events int64
	}{{live, tenantDB, 2}, {gone, tenantDB, 3}, {inMaster, db.Name(), 1}} {
		other := tenantDB
		if c.db == tenantDB {
			other = db.Name()
		}
		if n := countEvents(t, db.Client().Database(c.db), c.org); n != c.events {
			t.Errorf("%d events of %s in %s, want %d", n, c.org.Hex(), c.db, c.events)
		}
		if n := countEvents(t, db.Client().Database(other), c.org); n != 0 {
			t.Errorf("%d events of %s in %s too", n, c.org.Hex(), other)
		}
		if n, err := l.Verify(ctx, c.org); err != nil || n != c.events {
			t.Errorf("the log of %s: %d events, %v; want %d", c.org.Hex(), n, err, c.events)
		}
	}
	orgs, err := newLog(db).Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(orgs, func(a, b bson.ObjectID) int { return strings.Compare(a.Hex(), b.Hex()) })
	want := []bson.ObjectID{live, gone, inMaster}
	slices.SortFunc(want, func(a, b bson.ObjectID) int { return strings.Compare(a.Hex(), b.Hex()) })
	if !slices.Equal(orgs, want) {
		t.Errorf("Logs: %v, want %v", orgs, want)
	}
}

// countEvents is how many events of org's log the database db holds.
func countEvents(t *testing.T, db *mongo.Database, org bson.ObjectID) int64 {
	t.Helper()
	n, err := db.Collection(model.AuditCollection).CountDocuments(context.Background(), bson.D{{Key: "_id", Value: bson.D{
		{Key: "$gte", Value: model.EventKeyFrom(org)}, {Key: "$lt", Value: model.EventKeyTo(org)}}}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLegacyLogsMove: logs kept as one collection per organization in the
// master database, the earlier layout, move into the audit collection of
// the organization's tenant database (a deleted one's into the master
// database's), whole and still verifiable; the move runs again, and in
// two instances at once, to the same end; the log goes on from there.
func TestLegacyLogsMove(t *testing.T) {
	ctx := context.Background()
	db := storetest.Database(t)
	tenantDB := model.TenantDatabase(db.Name(), 0)
	live, gone := bson.NewObjectID(), bson.NewObjectID()
	// The earlier layout: _id the seq in 12 digits, in audit_<org>.
	for _, org := range []bson.ObjectID{live, gone} {
		prev := audit.ZeroHash
		for seq := int64(1); seq <= 30; seq++ {
			ev := event("auth.logout")
			ev.Seq, ev.ID, ev.OrgID, ev.PrevHash = seq, model.EventID(org, seq), org.Hex(), prev
			ev.Time, ev.Source = audit.Time(time.Now()), fmt.Sprint("r:", seq)
			ev.Hash = audit.Hash(*ev)
			ev.Key, prev = fmt.Sprintf("%012d", seq), ev.Hash
			if _, err := db.Collection(model.LegacyAuditPrefix+org.Hex()).InsertOne(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	newInstance := func() *audit.Log {
		l := newLog(db)
		l.SetLocator(func(_ context.Context, org bson.ObjectID) (string, error) {
			if org == live {
				return tenantDB, nil
			}
			return "", repository.ErrNotFound
		})
		return l
	}
	var wg sync.WaitGroup
	moved := make([]int, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { moved[i], errs[i] = newInstance().MoveLegacy(ctx) })
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("move %d: %v", i, errs[i])
		}
	}
	l := newInstance()
	if n, err := l.MoveLegacy(ctx); err != nil || n != 0 {
		t.Fatalf("a move after the moves: %d logs, %v", n, err)
	}
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, model.LegacyAuditPrefix) {
			t.Errorf("%s is still there", n)
		}
	}
	for org, where := range map[bson.ObjectID]string{live: tenantDB, gone: db.Name()} {
		if n := countEvents(t, db.Client().Database(where), org); n != 30 {
			t.Errorf("%d events of %s in %s, want 30", n, org.Hex(), where)
		}
		if err := l.Append(ctx, org, event("auth.logout")); err != nil {
			t.Fatal(err)
		}
		if n, err := l.Verify(ctx, org); err != nil || n != 31 {
			t.Errorf("the moved log of %s: %d events, %v; want 31", org.Hex(), n, err)
		}
	}
}

// TestRawScanReadsWhatTheDriverReads: the embedded store's tables, read
// past the driver, give every event as the driver decodes it, filters
// applied the same.
func TestRawScanReadsWhatTheDriverReads(t *testing.T) {
	ctx := context.Background()
	db := storetest.Database(t)
	org := bson.NewObjectID()
	l := newLog(db)
	from, to := "ä\u2028<&>\"\\", ""
	for i := range 40 {
		ev := event([]string{"org.renamed", "auth.logout", "member.role_changed"}[i%3])
		ev.Targets = []model.Target{{Type: "organization", ID: org.Hex(), Name: fmt.Sprintf("n%d 🎉", i)}}
		if i%2 == 0 {
			ev.Changes = map[string]model.Change{"organization_name": {From: &from, To: &to}, "role": {From: &from}}
		}
		ev.Context = model.EventContext{RequestID: fmt.Sprint(i), ClientAddress: "::1", UserAgent: "curl/8 \x01"}
		if i == 20 {
			ev.Actor.ID = "someone"
		}
		if err := l.Append(ctx, org, ev); err != nil {
			t.Fatal(err)
		}
	}
	driver := repository.NewAuditRepository(db)
	raw := repository.NewAuditRepository(db)
	raw.ReadRaw(storetest.RawReader(db))
	at := repository.LogRef{DB: db.Name(), Org: org}
	// Another organization's events around it in the same collection.
	other := newLog(db)
	for range 3 {
		for _, o := range []bson.ObjectID{bson.NewObjectIDFromTimestamp(time.Unix(0, 0)), bson.NewObjectIDFromTimestamp(time.Now().Add(time.Hour))} {
			if err := other.Append(ctx, o, event("auth.logout")); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, newest := range []bool{true, false} {
		end := map[bool]func(*repository.AuditRepository) (*model.Event, error){
			true:  func(r *repository.AuditRepository) (*model.Event, error) { return r.Last(ctx, at) },
			false: func(r *repository.AuditRepository) (*model.Event, error) { return r.First(ctx, at) }}[newest]
		a, aerr := end(driver)
		b, berr := end(raw)
		if aerr != nil || berr != nil || !reflect.DeepEqual(a, b) || a.Seq != map[bool]int64{true: 40, false: 1}[newest] {
			t.Fatalf("newest %v: %+v %v / %+v %v", newest, a, aerr, b, berr)
		}
	}
	for _, before := range []int64{0, 40, 17, 2, 1} {
		a, amore, aerr := driver.Page(ctx, at, repository.AuditFilter{}, before, 5)
		b, bmore, berr := raw.Page(ctx, at, repository.AuditFilter{}, before, 5)
		if aerr != nil || berr != nil || amore != bmore || !reflect.DeepEqual(a, b) {
			t.Fatalf("page before %d: %d %v %v / %d %v %v", before, len(a), amore, aerr, len(b), bmore, berr)
		}
	}
	all, _, err := driver.Page(ctx, repository.LogRef{DB: db.Name(), Org: org}, repository.AuditFilter{}, 0, 100)
	if err != nil || len(all) != 40 {
		t.Fatalf("page: %d, %v", len(all), err)
	}
	mid := all[19].Time
	for _, f := range []repository.AuditFilter{{}, {Action: "auth.logout"}, {Actor: "someone"}, {Since: mid}, {Until: mid}} {
		read := func(r *repository.AuditRepository) []model.Event {
			var out []model.Event
			err := r.Scan(ctx, at, f, func(ev *model.Event) error {
				out = append(out, *ev)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		want, got := read(driver), read(raw)
		if len(want) == 0 || !reflect.DeepEqual(want, got) {
			t.Fatalf("filter %+v: the driver read %d events, the raw scan %d, or they differ:\n%+v\n%+v", f, len(want), len(got), want, got)
		}
	}
	whole := func(r *repository.AuditRepository) []model.Event {
		var out []model.Event
		if err := r.ScanDatabase(ctx, db.Name(), func(ev *model.Event) error { out = append(out, *ev); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if want, got := whole(driver), whole(raw); len(want) != 46 || !reflect.DeepEqual(want, got) {
		t.Fatalf("the whole database: the driver read %d events, the raw scan %d, or they differ", len(want), len(got))
	}
	var n int
	err = raw.Scan(ctx, repository.LogRef{DB: db.Name(), Org: bson.NewObjectID()}, repository.AuditFilter{}, func(*model.Event) error { n++; return nil })
	if err != nil || n != 0 {
		t.Fatalf("a log that does not exist: %d events, %v", n, err)
	}
	err = raw.Scan(ctx, repository.LogRef{DB: model.TenantDatabase(db.Name(), 7), Org: org}, repository.AuditFilter{}, func(*model.Event) error { n++; return nil })
	if err != nil || n != 0 {
		t.Fatalf("a log that does not exist: %d events, %v", n, err)
	}
}

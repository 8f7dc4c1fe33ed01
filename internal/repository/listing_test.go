package repository_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/jsondoc"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/storetest"
)

// listModes are the two ways ListDocuments reads: sorted by the store
// (MongoDB) and by ids first (the embedded store).
var listModes = []struct {
	name   string
	idOnly bool
}{{"sorted", false}, {"by-ids", true}}

// listed walks every page of org's listing and returns the pages.
func listed(t *testing.T, r *repository.TenantRepository, tn model.Tenant, org bson.ObjectID, where []jsondoc.Condition, limit, maxBytes int) [][]model.Document {
	t.Helper()
	var pages [][]model.Document
	var after bson.ObjectID
	for range 1000 {
		docs, more, err := r.ListDocuments(context.Background(), tn, org, after, where, limit, maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, docs)
		if !more {
			return pages
		}
		if len(docs) == 0 {
			t.Fatal("an empty page says more follow")
		}
		after = docs[len(docs)-1].ID
	}
	t.Fatal("the listing never ended")
	return nil
}

// TestListDocumentsPages: pages hold at most limit documents and, unless
// they hold one, at most maxBytes of data; across pages every document of
// the organization is listed once, in id order, and none of another's.
func TestListDocumentsPages(t *testing.T) {
	for _, mode := range listModes {
		t.Run(mode.name, func(t *testing.T) {
			ctx := context.Background()
			r := repository.NewTenantRepository(storetest.Database(t), 0)
			r.SetIDFiltersOnly(mode.idOnly)
			tn := model.Tenant{Slug: "pages"}
			if _, err := r.Create(ctx, tn); err != nil {
				t.Fatal(err)
			}
			org, other := bson.NewObjectID(), bson.NewObjectID()
			// Sizes 100 to 2,500 bytes, and one of 5,000 (over any budget below).
			var want []bson.ObjectID
			for i := range 24 {
				size := 100 + (i*377)%2400
				if i == 13 {
					size = 5000
				}
				d := storedDoc(org, fmt.Sprintf(`{"i":%d,"pad":%q}`, i, strings.Repeat("x", size)))
				if err := r.InsertDocument(ctx, tn, org, d); err != nil {
					t.Fatal(err)
				}
				want = append(want, d.ID)
				if i%5 == 0 {
					if err := r.InsertDocument(ctx, tn, other, storedDoc(other, `{"other":true}`)); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, c := range []struct{ limit, maxBytes int }{{5, 1 << 20}, {50, 4000}, {3, 4000}, {1, 1}, {50, 1 << 20}} {
				pages := listed(t, r, tn, org, nil, c.limit, c.maxBytes)
				var got []bson.ObjectID
				for i, p := range pages {
					bytes := 0
					for _, d := range p {
						bytes += len(d.JSON)
						got = append(got, d.ID)
						if d.Org != org {
							t.Fatalf("limit %d, budget %d: listed a document of %s", c.limit, c.maxBytes, d.Org.Hex())
						}
					}
					if len(p) > c.limit || (len(p) > 1 && bytes > c.maxBytes) {
						t.Fatalf("limit %d, budget %d: page %d holds %d documents, %d bytes", c.limit, c.maxBytes, i, len(p), bytes)
					}
					if i < len(pages)-1 && len(p) == 0 {
						t.Fatalf("limit %d, budget %d: empty page %d before the last", c.limit, c.maxBytes, i)
					}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("limit %d, budget %d: listed %d documents, want the %d in id order", c.limit, c.maxBytes, len(got), len(want))
				}
				if c.maxBytes == 4000 && c.limit == 50 && len(pages) < 8 {
					t.Fatalf("budget 4000: %d pages; the budget did not stop them", len(pages))
				}
			}
		})
	}
}

// TestListDocumentsFilters: equality conditions match the scalars in their
// stored form and in the form of documents written before (a "fields"
// sub-document), numbers by value whatever their type.
func TestListDocumentsFilters(t *testing.T) {
	for _, mode := range listModes {
		t.Run(mode.name, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Database(t)
			r := repository.NewTenantRepository(db, 0)
			r.SetIDFiltersOnly(mode.idOnly)
			tn := model.Tenant{Slug: "filters"}
			if _, err := r.Create(ctx, tn); err != nil {
				t.Fatal(err)
			}
			org := bson.NewObjectID()
			docs := map[string]*model.Document{}
			for name, fields := range map[string]bson.D{
				"int":   {{Key: "kind", Value: "a"}, {Key: "n", Value: int64(2)}, {Key: "big", Value: int64(1<<53 + 1)}},
				"float": {{Key: "kind", Value: "a"}, {Key: "n", Value: 2.0}, {Key: "big", Value: float64(1 << 53)}, {Key: "z", Value: math.Copysign(0, -1)}},
				"half":  {{Key: "kind", Value: "b"}, {Key: "n", Value: 2.5}, {Key: "gone", Value: nil}, {Key: "ok", Value: true}},
				"text":  {{Key: "kind", Value: "b"}, {Key: "n", Value: "2"}, {Key: "ok", Value: false}, {Key: "nul", Value: "a\x00b"}},
			} {
				d := storedDoc(org, `{"name":"`+name+`"}`)
				d.Fields = fields
				if err := r.InsertDocument(ctx, tn, org, d); err != nil {
					t.Fatal(err)
				}
				docs[name] = d
			}
			// Written before: scalars in a sub-document, an int32 among them.
			legacy := bson.D{
				{Key: "_id", Value: bson.NewObjectID()}, {Key: "_org", Value: org}, {Key: "data_json", Value: `{"name":"legacy"}`},
				{Key: "fields", Value: bson.D{{Key: "kind", Value: "a"}, {Key: "n", Value: int32(2)}, {Key: "gone", Value: nil}}},
				{Key: "created_at", Value: time.Now()}, {Key: "updated_at", Value: time.Now()},
			}
			if _, err := db.Collection(repository.CollectionName(tn.Slug)).InsertOne(ctx, legacy); err != nil {
				t.Fatal(err)
			}
			cases := []struct {
				where []jsondoc.Condition
				want  []string
			}{
				{[]jsondoc.Condition{{Field: "kind", Value: "a"}}, []string{"float", "int", "legacy"}},
				{[]jsondoc.Condition{{Field: "n", Value: int64(2)}}, []string{"float", "int", "legacy"}},
				{[]jsondoc.Condition{{Field: "n", Value: 2.0}, {Field: "kind", Value: "a"}}, []string{"float", "int", "legacy"}},
				{[]jsondoc.Condition{{Field: "n", Value: "2"}}, []string{"text"}},
				{[]jsondoc.Condition{{Field: "n", Value: 2.5}}, []string{"half"}},
				{[]jsondoc.Condition{{Field: "big", Value: int64(1<<53 + 1)}}, []string{"int"}},
				{[]jsondoc.Condition{{Field: "big", Value: int64(1 << 53)}}, []string{"float"}},
				{[]jsondoc.Condition{{Field: "z", Value: int64(0)}}, []string{"float"}},
				{[]jsondoc.Condition{{Field: "gone", Value: nil}}, []string{"half", "legacy"}},
				{[]jsondoc.Condition{{Field: "ok", Value: false}}, []string{"text"}},
				{[]jsondoc.Condition{{Field: "nul", Value: "a\x00b"}}, []string{"text"}},
				{[]jsondoc.Condition{{Field: "kind", Value: "b"}, {Field: "n", Value: int64(2)}}, nil},
				{[]jsondoc.Condition{{Field: "missing", Value: nil}}, nil},
			}
			for _, c := range cases {
				var got []string
				for _, p := range listed(t, r, tn, org, c.where, 2, 1<<20) {
					for _, d := range p {
						got = append(got, strings.TrimSuffix(strings.TrimPrefix(d.JSON, `{"name":"`), `"}`))
					}
				}
				slices.Sort(got)
				if !slices.Equal(got, c.want) {
					t.Errorf("where %v: %v, want %v", c.where, got, c.want)
				}
			}
		})
	}
}

// TestScalarsStoredAsAnArray: a document's scalars are written as an array
// of entries, and a write of a document of the older form drops its
// "fields" sub-document.
func TestScalarsStoredAsAnArray(t *testing.T) {
	ctx := context.Background()
	db := storetest.Database(t)
	r := repository.NewTenantRepository(db, 0)
	tn := model.Tenant{Slug: "stored"}
	if _, err := r.Create(ctx, tn); err != nil {
		t.Fatal(err)
	}
	coll := db.Collection(repository.CollectionName(tn.Slug))
	org := bson.NewObjectID()
	d := storedDoc(org, `{"kind":"a","n":2}`)
	d.Fields = bson.D{{Key: "kind", Value: "a"}, {Key: "n", Value: int64(2)}}
	if err := r.InsertDocument(ctx, tn, org, d); err != nil {
		t.Fatal(err)
	}
	raw, err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: d.ID}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	var stored struct {
		Scalars []string `bson:"scalars"`
		Fields  bson.D   `bson:"fields"`
	}
	if err := bson.Unmarshal(raw, &stored); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(stored.Scalars, []string{"kind\x00sa", "n\x00n2"}) || stored.Fields != nil {
		t.Fatalf("stored %q, fields %v", stored.Scalars, stored.Fields)
	}

	if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: d.ID}}, bson.D{
		{Key: "$set", Value: bson.D{{Key: "fields", Value: bson.D{{Key: "kind", Value: "old"}}}}},
		{Key: "$unset", Value: bson.D{{Key: "scalars", Value: ""}}},
	}); err != nil {
		t.Fatal(err)
	}
	base, err := r.Document(ctx, tn, org, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	next := &model.Document{ID: d.ID, JSON: `{"kind":"new"}`, Fields: bson.D{{Key: "kind", Value: "new"}}, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt.Add(time.Second)}
	if _, err := r.SetDocument(ctx, tn, org, base, next, true); err != nil {
		t.Fatal(err)
	}
	stored.Scalars, stored.Fields = nil, nil
	raw, _ = coll.FindOne(ctx, bson.D{{Key: "_id", Value: d.ID}}).Raw()
	if err := bson.Unmarshal(raw, &stored); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(stored.Scalars, []string{"kind\x00snew"}) || stored.Fields != nil {
		t.Fatalf("after a write: stored %q, fields %v", stored.Scalars, stored.Fields)
	}
	for _, c := range []struct {
		value string
		n     int
	}{{"new", 1}, {"old", 0}} {
		docs, _, err := r.ListDocuments(ctx, tn, org, bson.ObjectID{}, []jsondoc.Condition{{Field: "kind", Value: c.value}}, 10, 1<<20)
		if err != nil || len(docs) != c.n {
			t.Fatalf("kind %s: %d documents, %v; want %d", c.value, len(docs), err, c.n)
		}
	}
}

// TestListDocumentsAfterDeletions: on the embedded store a page's ids are
// read first; documents among them deleted before they are read are left
// out, and the page is filled from those after them.
func TestListDocumentsAfterDeletions(t *testing.T) {
	ctx := context.Background()
	r := repository.NewTenantRepository(storetest.Database(t), 0)
	r.SetIDFiltersOnly(true)
	tn := model.Tenant{Slug: "deletions"}
	if _, err := r.Create(ctx, tn); err != nil {
		t.Fatal(err)
	}
	org := bson.NewObjectID()
	var ids []bson.ObjectID
	for i := range 5 {
		d := storedDoc(org, fmt.Sprintf(`{"i":%d}`, i))
		if err := r.InsertDocument(ctx, tn, org, d); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.ID)
	}
	scans := 0
	r.SetAfterIDScan(func() {
		if scans++; scans == 1 {
			for _, id := range ids[1:3] {
				if err := r.DeleteDocument(ctx, tn, org, id, nil); err != nil {
					t.Error(err)
				}
			}
		}
	})
	docs, more, err := r.ListDocuments(ctx, tn, org, bson.ObjectID{}, nil, 2, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var got []bson.ObjectID
	for _, d := range docs {
		got = append(got, d.ID)
	}
	if !slices.Equal(got, []bson.ObjectID{ids[0], ids[3]}) || !more || scans != 2 {
		t.Fatalf("page %v, more %v after %d scans; want the first and fourth, more, 2 scans", got, more, scans)
	}
}

// TestScanSlots: on the embedded store an organization runs at most half
// of the whole-collection listings allowed at once (one per core), and
// another organization still gets a slot while it holds them all; once
// every slot is taken, a listing waits and gives up at its deadline.
func TestScanSlots(t *testing.T) {
	r := repository.NewTenantRepository(storetest.Database(t), 0)
	n := max(1, runtime.NumCPU())
	perOrg := max(1, n/2)
	heavy := bson.NewObjectID()
	var held []func()
	for range perOrg {
		release, err := r.AcquireScan(context.Background(), heavy)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, release)
	}
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	if _, err := r.AcquireScan(short(), heavy); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the heavy organization past its share: %v, want it to wait until its deadline", err)
	}
	for len(held) < n {
		release, err := r.AcquireScan(short(), bson.NewObjectID())
		if err != nil {
			t.Fatalf("another organization with %d of %d slots taken: %v", len(held), n, err)
		}
		held = append(held, release)
	}
	if _, err := r.AcquireScan(short(), bson.NewObjectID()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a listing past every slot: %v, want it to wait until its deadline", err)
	}
	held[0]()
	release, err := r.AcquireScan(short(), heavy)
	if err != nil {
		t.Fatalf("a slot given back: %v", err)
	}
	release()
	for _, release := range held[1:] {
		release()
	}
}

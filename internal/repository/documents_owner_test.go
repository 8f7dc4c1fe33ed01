package repository_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/storetest"
)

// ownerModes are the ways the tenant repository checks _org: in the
// filter (MongoDB), in Go after a read by _id (a store that evaluates only
// _id filters), or as the store says of itself (the embedded store: in Go).
var ownerModes = []struct {
	name string
	set  func(*repository.TenantRepository)
}{
	{"in-filter", func(r *repository.TenantRepository) { r.SetIDFiltersOnly(false) }},
	{"read-by-id", func(r *repository.TenantRepository) { r.SetIDFiltersOnly(true) }},
	{"as-the-store-says", func(*repository.TenantRepository) {}},
}

func storedDoc(org bson.ObjectID, data string) *model.Document {
	now := model.Now()
	return &model.Document{ID: bson.NewObjectID(), Org: org, JSON: data, Fields: bson.D{}, CreatedAt: now, UpdatedAt: now}
}

// TestAnotherOrganizationsDocumentIsNotFound: in one collection, a
// document whose _org is V's is not found by X's Document, SetDocument,
// DeleteDocument or ListDocuments, and stays as it was; X's own document
// is found and changed by the same calls.
func TestAnotherOrganizationsDocumentIsNotFound(t *testing.T) {
	for _, mode := range ownerModes {
		t.Run(mode.name, func(t *testing.T) {
			ctx := context.Background()
			r := repository.NewTenantRepository(storetest.Database(t), 0)
			mode.set(r)
			tn := model.Tenant{Slug: "shared"}
			if _, err := r.Create(ctx, tn); err != nil {
				t.Fatal(err)
			}
			x, v := bson.NewObjectID(), bson.NewObjectID()
			vd, xd := storedDoc(v, `{"owner":"v"}`), storedDoc(x, `{"owner":"x"}`)
			for _, d := range []struct {
				org bson.ObjectID
				doc *model.Document
			}{{v, vd}, {x, xd}} {
				if err := r.InsertDocument(ctx, tn, d.org, d.doc); err != nil {
					t.Fatal(err)
				}
			}

			if _, err := r.Document(ctx, tn, x, vd.ID); !errors.Is(err, repository.ErrNotFound) {
				t.Errorf("X's Document of V's: %v, want ErrNotFound", err)
			}
			vAsRead, err := r.Document(ctx, tn, v, vd.ID)
			if err != nil {
				t.Fatal(err)
			}
			later := model.Now().Add(time.Second)
			overwrite := &model.Document{ID: vd.ID, Org: x, JSON: `{"owner":"x"}`, Fields: bson.D{}, CreatedAt: vd.CreatedAt, UpdatedAt: later}
			for _, c := range []struct {
				name        string
				base        *model.Document
				ifUnchanged bool
			}{{"read here", nil, false}, {"read here, if unchanged", nil, true}, {"V's as base", vAsRead, false}, {"V's as base, if unchanged", vAsRead, true}} {
				if _, err := r.SetDocument(ctx, tn, x, c.base, overwrite, c.ifUnchanged); !errors.Is(err, repository.ErrNotFound) {
					t.Errorf("X's SetDocument of V's (%s): %v, want ErrNotFound", c.name, err)
				}
			}
			for _, base := range []*model.Document{nil, vAsRead} {
				if err := r.DeleteDocument(ctx, tn, x, vd.ID, base); !errors.Is(err, repository.ErrNotFound) {
					t.Errorf("X's DeleteDocument of V's (base %v): %v, want ErrNotFound", base != nil, err)
				}
			}
			list, _, err := r.ListDocuments(ctx, tn, x, bson.ObjectID{}, nil, 10, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 || list[0].ID != xd.ID {
				t.Errorf("X's listing: %v, want only X's document %s", list, xd.ID.Hex())
			}
			got, err := r.Document(ctx, tn, v, vd.ID)
			if err != nil || got.JSON != `{"owner":"v"}` || got.Org != v || !got.UpdatedAt.Equal(vd.UpdatedAt) {
				t.Fatalf("V's document afterwards: %+v, %v; want it unchanged", got, err)
			}

			// X's own document, by the same calls.
			xAsRead, err := r.Document(ctx, tn, x, xd.ID)
			if err != nil || xAsRead.Org != x {
				t.Fatalf("X's Document of its own: %+v, %v", xAsRead, err)
			}
			changed := &model.Document{ID: xd.ID, JSON: `{"owner":"x","n":2}`, Fields: bson.D{}, CreatedAt: xd.CreatedAt, UpdatedAt: later}
			if out, err := r.SetDocument(ctx, tn, x, xAsRead, changed, true); err != nil || out.JSON != changed.JSON || out.Org != x {
				t.Fatalf("X's SetDocument of its own: %+v, %v", out, err)
			}
			if err := r.DeleteDocument(ctx, tn, x, xd.ID, nil); err != nil {
				t.Fatalf("X's DeleteDocument of its own: %v", err)
			}
			if _, err := r.Document(ctx, tn, x, xd.ID); !errors.Is(err, repository.ErrNotFound) {
				t.Fatalf("X's document after its deletion: %v", err)
			}
		})
	}
}

// TestDocumentWithoutOrganization: a document stored before documents
// carried _org is found as ErrUnowned, listed with Org zero, and neither
// changed nor removed unless given as base; given, a change records the
// organization on it.
func TestDocumentWithoutOrganization(t *testing.T) {
	for _, mode := range ownerModes {
		t.Run(mode.name, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Database(t)
			r := repository.NewTenantRepository(db, 0)
			mode.set(r)
			tn := model.Tenant{Slug: "old"}
			if _, err := r.Create(ctx, tn); err != nil {
				t.Fatal(err)
			}
			old := storedDoc(bson.ObjectID{}, `{"n":1}`)
			if _, err := db.Collection(repository.CollectionName(tn.Slug)).InsertOne(ctx, old); err != nil {
				t.Fatal(err)
			}
			x := bson.NewObjectID()

			d, err := r.Document(ctx, tn, x, old.ID)
			if !errors.Is(err, repository.ErrUnowned) || d == nil || d.ID != old.ID || !d.Org.IsZero() {
				t.Fatalf("Document: %+v, %v; want it with ErrUnowned", d, err)
			}
			if err := r.DeleteDocument(ctx, tn, x, old.ID, nil); !errors.Is(err, repository.ErrUnowned) {
				t.Fatalf("DeleteDocument without base: %v, want ErrUnowned", err)
			}
			next := &model.Document{ID: old.ID, JSON: `{"n":2}`, Fields: bson.D{}, CreatedAt: old.CreatedAt, UpdatedAt: old.UpdatedAt.Add(time.Second)}
			if _, err := r.SetDocument(ctx, tn, x, nil, next, false); !errors.Is(err, repository.ErrUnowned) {
				t.Fatalf("SetDocument without base: %v, want ErrUnowned", err)
			}
			list, _, err := r.ListDocuments(ctx, tn, x, bson.ObjectID{}, nil, 10, 1<<20)
			if err != nil || len(list) != 1 || list[0].ID != old.ID || !list[0].Org.IsZero() {
				t.Fatalf("ListDocuments: %v, %v; want the document, Org zero", list, err)
			}

			out, err := r.SetDocument(ctx, tn, x, d, next, true)
			if err != nil || out.Org != x || out.JSON != `{"n":2}` {
				t.Fatalf("SetDocument with base: %+v, %v; want it changed and X's", out, err)
			}
			// Now X's, and nobody else's.
			if err := r.DeleteDocument(ctx, tn, bson.NewObjectID(), old.ID, nil); !errors.Is(err, repository.ErrNotFound) {
				t.Fatalf("another's DeleteDocument after the change: %v, want ErrNotFound", err)
			}
			if got, err := r.Document(ctx, tn, x, old.ID); err != nil || got.Org != x {
				t.Fatalf("Document after the change: %+v, %v", got, err)
			}
		})
	}
}

package repository_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/storetest"
)

// TestRenameWhileALateWriteRemakesTheTarget: a late write re-makes the
// target collection between its drop and the move; the move is tried
// again, and the organization's documents land there, the stray's not.
func TestRenameWhileALateWriteRemakesTheTarget(t *testing.T) {
	ctx := context.Background()
	db := storetest.Database(t)
	r := repository.NewTenantRepository(db, 0)
	org := bson.NewObjectID()
	from, to := model.Tenant{Slug: "before"}, model.Tenant{Slug: "after"}
	own := storedDoc(org, `{"own":true}`)
	if err := r.InsertDocument(ctx, from, org, own); err != nil {
		t.Fatal(err)
	}
	uuid, err := r.UUID(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	stray := storedDoc(bson.NewObjectID(), `{"late":true}`)
	remade := 0
	r.SetBeforeMove(func() {
		if remade < 2 {
			remade++
			if _, err := db.Collection(repository.CollectionName(to.Slug)).InsertOne(ctx, stray); err != nil {
				t.Error(err)
			}
		}
	})
	if err := r.Rename(ctx, from, to.Slug, uuid); err != nil {
		t.Fatalf("Rename with the target re-made twice: %v", err)
	}
	if remade != 2 {
		t.Fatalf("the target was re-made %d times, want 2", remade)
	}
	ids := map[bson.ObjectID]bool{}
	cur, err := db.Collection(repository.CollectionName(to.Slug)).Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.M
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		ids[d["_id"].(bson.ObjectID)] = true
	}
	if len(ids) != 1 || !ids[own.ID] {
		t.Fatalf("after the move the target holds %v, want only %v", ids, own.ID)
	}
}

// TestCreateWhileALateWriteRemakesTheCollection: a late write makes the
// collection again between Create's drop of a leftover and its create;
// Create tries again instead of failing.
func TestCreateWhileALateWriteRemakesTheCollection(t *testing.T) {
	ctx := context.Background()
	db := storetest.Database(t)
	r := repository.NewTenantRepository(db, 0)
	ten := model.Tenant{Slug: "taken_again"}
	late := func() {
		if _, err := db.Collection(repository.CollectionName(ten.Slug)).InsertOne(ctx, storedDoc(bson.NewObjectID(), `{"late":true}`)); err != nil {
			t.Error(err)
		}
	}
	late() // the leftover
	remade := 0
	r.SetBeforeMove(func() {
		if remade < 2 {
			remade++
			late()
		}
	})
	if _, err := r.Create(ctx, ten); err != nil {
		t.Fatalf("Create over a leftover: %v", err)
	}
	n, err := db.Collection(repository.CollectionName(ten.Slug)).CountDocuments(ctx, bson.D{})
	if err != nil || n != 0 || remade != 2 {
		t.Fatalf("the new collection holds %d documents (%v) after %d re-makes, want 0 after 2", n, err, remade)
	}
}

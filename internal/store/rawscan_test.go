package store_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgsvc/orgsvc/internal/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// TestNaturalIDsAreFindOrder: the ids the raw reader gives are those of a
// find without sort through FerretDB, in its order, on a collection with
// the lookup index, written out of id order and then changed by deletes,
// updates and inserts again of deleted ids; _ids of other types are left
// out, a string of 24 hex digits among them.
func TestNaturalIDsAreFindOrder(t *testing.T) {
	ctx := context.Background()
	db := storetest.Database(t)
	raw := storetest.RawReader(db)
	const name = "org_natural"
	if err := db.CreateCollection(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := storetest.PrepareCollection(db)(ctx, db.Name(), name); err != nil {
		t.Fatal(err)
	}
	coll := db.Collection(name)

	ids := make([]bson.ObjectID, 300)
	for i := range ids {
		ids[i] = bson.NewObjectID()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	shuffled := slices.Clone(ids)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	var batch []any
	for i, id := range shuffled {
		batch = append(batch, bson.D{{Key: "_id", Value: id}, {Key: "n", Value: i}})
		if i == 7 || i == 8 {
			batch = append(batch, bson.D{{Key: "_id", Value: bson.NewObjectID().Hex()}}, bson.D{{Key: "_id", Value: int32(i)}})
		}
		if len(batch) >= 40 || i == len(shuffled)-1 {
			if _, err := coll.InsertMany(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = nil
		}
	}
	same := func(step string) []bson.ObjectID {
		t.Helper()
		raw, err := raw.NaturalIDs(ctx, db.Name(), name)
		if err != nil {
			t.Fatal(err)
		}
		want := driverIDs(t, coll)
		if !slices.Equal(raw, want) {
			t.Fatalf("%s: the raw reader's %d ids differ from the %d of a find without sort", step, len(raw), len(want))
		}
		return raw
	}
	if got := same("written shuffled"); !slices.Equal(got, shuffled) {
		t.Fatal("written shuffled: the ids are not in the order written")
	}

	// Delete every fifth id, the last one written among them, update
	// some and write some of the deleted again, and new ones.
	var gone []bson.ObjectID
	for i := 0; i < len(shuffled); i += 5 {
		gone = append(gone, shuffled[i])
	}
	gone = append(gone, shuffled[len(shuffled)-1])
	if _, err := coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: gone}}}}); err != nil {
		t.Fatal(err)
	}
	for i := 3; i < len(shuffled); i += 11 {
		if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: shuffled[i]}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: -i}}}}); err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range gone {
		if i%2 == 0 {
			if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: bson.NewObjectID()}}); err != nil {
			t.Fatal(err)
		}
	}
	got := same("after deletes, updates and inserts")
	if slices.IsSortedFunc(got, func(a, b bson.ObjectID) int { return slices.Compare(a[:], b[:]) }) {
		t.Fatal("the collection came out in id order: the test shows nothing")
	}

	for _, c := range []struct{ db, name string }{{db.Name(), "org_none"}, {"no_such_db", name}} {
		if ids, err := raw.NaturalIDs(ctx, c.db, c.name); err != nil || ids != nil {
			t.Fatalf("%s.%s, which does not exist: %d ids, %v", c.db, c.name, len(ids), err)
		}
	}
}

// driverIDs are the ObjectID _ids of coll as a find without sort returns
// them.
func driverIDs(t *testing.T, coll *mongo.Collection) []bson.ObjectID {
	t.Helper()
	ctx := context.Background()
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close(ctx)
	var ids []bson.ObjectID
	for cur.Next(ctx) {
		if id, ok := cur.Current.Lookup("_id").ObjectIDOK(); ok {
			ids = append(ids, id)
		}
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

package store

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgsvc/orgsvc/internal/model"
)

// TestLookupsByIDUseAnIndex: on the embedded store, the master collections
// and every tenant collection the service makes get an index on the very
// expression FerretDB looks _id up by, and a renamed collection keeps it;
// collections of the tenant databases made without it get it at the next
// start-up (Prepare).
func TestLookupsByIDUseAnIndex(t *testing.T) {
	dir := t.TempDir()
	e, err := StartEmbedded(dir, "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(e.URI()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	db := client.Database("idx")
	if err := Prepare(ctx, db, e); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateCollection(ctx, "org_alpha"); err != nil {
		t.Fatal(err)
	}
	if err := e.IndexCollection(ctx, "idx", "org_alpha"); err != nil {
		t.Fatal(err)
	}
	id := bson.NewObjectID()
	if _, err := db.Collection("org_alpha").InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "n", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	rename := bson.D{{Key: "renameCollection", Value: "idx.org_alpha"}, {Key: "to", Value: "idx.org_beta"}}
	if err := client.Database("admin").RunCommand(ctx, rename).Err(); err != nil {
		t.Fatal(err)
	}
	var got bson.M
	if err := db.Collection("org_beta").FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&got); err != nil || got["n"] != int32(1) {
		t.Fatalf("lookup after rename: %v %v", got, err)
	}

	tenantDB := model.TenantDatabase("idx", 7)
	if err := client.Database(tenantDB).CreateCollection(ctx, "org_gamma"); err != nil {
		t.Fatal(err)
	}
	if err := Prepare(ctx, db, e); err != nil {
		t.Fatal(err)
	}
	usesIndex(t, filepath.Join(dir, tenantDB+".sqlite"), "org_gamma")
	usesIndex(t, filepath.Join(dir, "idx.sqlite"), append([]string{"org_beta"}, model.MasterCollections...)...)
}

// usesIndex fails the test unless lookups by _id in each named collection
// of the SQLite file path use the service's index.
func usesIndex(t *testing.T, path string, names ...string) {
	t.Helper()
	sq, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	for _, name := range names {
		var table string
		if err := sq.QueryRow(`SELECT table_name FROM _ferretdb_collections WHERE name = ?`, name).Scan(&table); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var a, b, c int
		var plan string
		q := `EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM "` + table + `" WHERE _ferretdb_sjson->'$._id' = ?`
		if err := sq.QueryRow(q, `"x"`).Scan(&a, &b, &c, &plan); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.Contains(plan, "USING INDEX "+table+"_orgsvc_id") {
			t.Errorf("%s: lookups by _id would %s", name, plan)
		}
	}
}

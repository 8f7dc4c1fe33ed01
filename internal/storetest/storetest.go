// Package storetest starts the embedded store once per test package and
// hands each test a database of its own on it.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/store"
)

var (
	uri      string
	client   *mongo.Client
	embedded *store.Embedded
)

// Main starts the embedded FerretDB in a temporary directory, runs the
// package's tests, stops the store and exits. Call it from TestMain.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "orgsvc-store-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	e, err := store.StartEmbedded(dir, "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer e.Stop()
	embedded = e
	uri = e.URI()
	client, err = mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer client.Disconnect(context.Background())
	return m.Run()
}

// URI is the connection string of the package's embedded store.
func URI() string { return uri }

// Database returns a new, empty database prepared as the service prepares
// its own (master collections and indexes), dropped with its tenant
// databases when the test ends.
func Database(t testing.TB) *mongo.Database {
	t.Helper()
	if client == nil {
		t.Fatal("storetest: call storetest.Main from TestMain")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	db := client.Database("t_" + hex.EncodeToString(b))
	if err := store.Prepare(context.Background(), db, embedded); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		dbs, _ := client.ListDatabaseNames(ctx, bson.D{})
		for _, name := range dbs {
			if model.IsTenantDatabase(db.Name(), name) {
				_ = client.Database(name).Drop(ctx)
			}
		}
		_ = db.Drop(ctx)
	})
	return db
}

// PrepareCollection is what the service over the master database master
// does to each tenant collection it makes (see store.Store.IndexCollection);
// nothing for a database of another store.
func PrepareCollection(master *mongo.Database) func(ctx context.Context, db, collection string) error {
	return func(ctx context.Context, db, collection string) error {
		if master.Client() != client {
			return nil
		}
		return embedded.IndexCollection(ctx, db, collection)
	}
}

// RawReader is the embedded store's reader of tables for the service over
// master (see store.Store.RawReader); nil for a database of another store.
func RawReader(master *mongo.Database) repository.RawReader {
	if master.Client() != client {
		return nil
	}
	return embedded
}

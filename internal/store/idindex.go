package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgsvc/orgsvc/internal/model"

	_ "modernc.org/sqlite" // the driver FerretDB itself stores with
)

// FerretDB 1.24 keeps each collection in a SQLite table of JSON documents
// and builds its unique _id index on the expression `_ferretdb_sjson->"_id"`,
// but looks documents up by `_ferretdb_sjson->'$._id'`. SQLite uses an
// index on an expression only for that very expression, so every lookup by
// _id reads the whole table (see BENCHMARKS.md). The embedded store gets a
// second index per table, on the expression the lookups use. FerretDB
// neither sees nor minds it: dropping a collection drops its table with
// the index, and renaming one only renames it in FerretDB's own catalogue.

// idIndexes adds the lookup index to the tables of one database of the
// embedded store, through a connection of its own to the database's file.
type idIndexes struct {
	files sqlFiles
}

// sqlFiles opens, once each, pools of connections to the embedded store's
// database files under dir, with the DSN options opts.
type sqlFiles struct {
	mu    sync.Mutex
	dir   string
	opts  string
	conns int
	// existing: open only files that exist (nil, nil for another).
	existing bool
	dbs      map[string]*sql.DB
}

func (f *sqlFiles) open(dbName string) (*sql.DB, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if db, ok := f.dbs[dbName]; ok {
		return db, nil
	}
	path := filepath.Join(f.dir, dbName+".sqlite")
	if _, err := os.Stat(path); f.existing && errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)"+f.opts)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(f.conns)
	if f.dbs == nil {
		f.dbs = map[string]*sql.DB{}
	}
	f.dbs[dbName] = db
	return db, nil
}

func (f *sqlFiles) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for _, db := range f.dbs {
		errs = append(errs, db.Close())
	}
	f.dbs = nil
	return errors.Join(errs...)
}

// ensure indexes the tables of the named collections (every collection of
// the database when names is empty).
func (x *idIndexes) ensure(ctx context.Context, dbName string, names ...string) error {
	db, err := x.files.open(dbName)
	if err != nil {
		return err
	}
	q := `SELECT table_name FROM _ferretdb_collections`
	var args []any
	if len(names) > 0 {
		q += ` WHERE name IN (?` + strings.Repeat(`, ?`, len(names)-1) + `)`
		for _, n := range names {
			args = append(args, n)
		}
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("list the embedded store's tables: %w", err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, t := range tables {
		ddl := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, t+"_orgsvc_id", t)
		if _, err := db.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("index table %s: %w", t, err)
		}
	}
	return nil
}

func (x *idIndexes) close() error { return x.files.close() }

// IndexCollection makes lookups by _id in the named collection of the
// database db use an index, on the embedded store; elsewhere it does
// nothing.
func (s *Store) IndexCollection(ctx context.Context, db, name string) error {
	if s.embedded == nil {
		return nil
	}
	return s.embedded.IndexCollection(ctx, db, name)
}

// ensureMasterCollections makes every master collection exist, so that
// each can be indexed before its first use.
func ensureMasterCollections(ctx context.Context, db *mongo.Database) error {
	existing, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return err
	}
	for _, name := range model.MasterCollections {
		if slices.Contains(existing, name) {
			continue
		}
		if err := db.CreateCollection(ctx, name); err != nil {
			var ce mongo.CommandError
			if errors.As(err, &ce) && ce.Code == 48 { // created meanwhile
				continue
			}
			return fmt.Errorf("create collection %s: %w", name, err)
		}
	}
	return nil
}

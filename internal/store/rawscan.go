package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/repository"
)

// FerretDB 1.24 sends every document it reads through its own decoding
// and the wire protocol (README, "Audit log"), and evaluates a range of _ids by reading the whole collection
// (BENCHMARKS.md). The audit log's reads of ranges of _ids are served here
// from the collection's table instead, through the lookup index on _id
// (idindex.go): each row is the document as FerretDB's "sjson" (plain JSON
// values, with their BSON types under "$s"), read by connections of their
// own that only query. SQLite's write-ahead log, which FerretDB turns on,
// lets them read while FerretDB writes, and shows them every write
// FerretDB has answered.

// RawReader is the embedded store's reader of tables past the driver; nil
// elsewhere.
func (s *Store) RawReader() repository.RawReader {
	if s.embedded == nil {
		return nil
	}
	return s.embedded
}

// table is the SQLite table of the collection name, "" when there is none.
func table(ctx context.Context, db *sql.DB, name string) (string, error) {
	var t string
	err := db.QueryRowContext(ctx, `SELECT table_name FROM _ferretdb_collections WHERE name = ?`, name).Scan(&t)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return t, err
}

// idExpr is the expression the lookup index is on: the _id as JSON text,
// so that a string _id s is compared as `"` + s + `"`.
const idExpr = `_ferretdb_sjson->'$._id'`

// ScanIDs implements repository.RawReader.
func (e *Embedded) ScanIDs(ctx context.Context, dbName, name string, r repository.IDRange, fn func([]byte) error) error {
	db, err := e.read.open(dbName)
	if err != nil || db == nil {
		return err
	}
	t, err := table(ctx, db, name)
	if err != nil || t == "" {
		return err
	}
	order := "ASC"
	if r.Desc {
		order = "DESC"
	}
	limit := r.Limit
	if limit <= 0 {
		limit = -1
	}
	// Without their closing quote the bounds sort just before the _id they
	// name, so From is included and To is not.
	q := fmt.Sprintf(`SELECT _ferretdb_sjson FROM %q WHERE %s >= ? AND %s < ? ORDER BY %s %s LIMIT ?`, t, idExpr, idExpr, idExpr, order)
	rows, err := db.QueryContext(ctx, q, `"`+r.From, `"`+r.To, limit)
	if err != nil {
		return fmt.Errorf("read %s.%s: %w", dbName, name, err)
	}
	defer rows.Close()
	var doc sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&doc); err != nil {
			return err
		}
		if err := fn(doc); err != nil {
			return err
		}
	}
	return rows.Err()
}

// NaturalIDs implements repository.RawReader. FerretDB 1.24 answers a find
// without sort by reading the table with no ORDER BY, a scan in rowid
// order; here the order is said, for SQLite could otherwise read the _ids
// from the lookup index, in id order. The type of the _id is in the
// document's schema, under "$s": a string _id of 24 hex digits is not an
// ObjectID.
func (e *Embedded) NaturalIDs(ctx context.Context, dbName, name string) ([]bson.ObjectID, error) {
	db, err := e.read.open(dbName)
	if err != nil || db == nil {
		return nil, err
	}
	t, err := table(ctx, db, name)
	if err != nil || t == "" {
		return nil, err
	}
	q := fmt.Sprintf(`SELECT _ferretdb_sjson->>'$._id' FROM %q WHERE _ferretdb_sjson->>'$."$s".p._id.t' = 'objectId' ORDER BY rowid`, t)
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read the ids of %s.%s: %w", dbName, name, err)
	}
	defer rows.Close()
	var ids []bson.ObjectID
	var h string
	for rows.Next() {
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		id, err := bson.ObjectIDFromHex(h)
		if err != nil {
			return nil, fmt.Errorf("read the ids of %s.%s: %w", dbName, name, err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// FerretDB 1.24 sends every document it reads through its own decoding
// and the wire protocol: about 4,000 audit events a second on two cores
// (BENCHMARKS.md). A read of a whole collection in insertion order, as
// the audit log's verification and export make, is served here from the
// collection's table instead: each row is the document as FerretDB's
// "sjson" (plain JSON values, with their BSON types under "$s"), read by
// a connection of its own that only queries. SQLite's write-ahead log, which
// FerretDB turns on, lets it read while FerretDB writes.

// CollectionScanner returns a function that calls fn with each document
// of the collection name of the database db, as JSON, in insertion order,
// on the embedded store; nil elsewhere. A collection that does not exist
// has no documents. The bytes passed to fn are valid only during the call.
func (s *Store) CollectionScanner() func(ctx context.Context, db, name string, fn func([]byte) error) error {
	if s.embedded == nil {
		return nil
	}
	return s.embedded.ScanCollection
}

// ScanCollection is Store.ScanCollection.
func (e *Embedded) ScanCollection(ctx context.Context, dbName, name string, fn func([]byte) error) error {
	db, err := e.read.open(dbName)
	if err != nil {
		return err
	}
	var table string
	err = db.QueryRowContext(ctx, `SELECT table_name FROM _ferretdb_collections WHERE name = ?`, name).Scan(&table)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find the table of %s.%s: %w", dbName, name, err)
	}
	rows, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT _ferretdb_sjson FROM %q ORDER BY rowid`, table))
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

// Package repository holds the queries: the master repository for
// organizations and admins, and the tenant repository for each
// organization's own collection.
package repository

import "errors"

var (
	// ErrNotFound is returned when no document matches.
	ErrNotFound = errors.New("not found")
	// ErrDuplicate is returned when a unique key is already taken.
	ErrDuplicate = errors.New("duplicate key")
	// ErrUnavailable is returned when the database cannot be reached in
	// time; the request may be retried.
	ErrUnavailable = errors.New("database unavailable")
	// ErrCollectionGone is returned when a write met its collection being
	// dropped or moved at that very moment; nothing was written.
	ErrCollectionGone = errors.New("collection dropped or moved during the write")
)

package repository

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// SetAfterIDScan sets a function run after each id scan of a listing on
// the embedded store.
func (r *TenantRepository) SetAfterIDScan(f func()) { r.afterIDScan = f }

// AcquireScan takes a slot of the listings that read whole collections.
func (r *TenantRepository) AcquireScan(ctx context.Context, org bson.ObjectID) (func(), error) {
	return r.scans.acquire(ctx, org)
}

// SetBeforeMove sets a function run before each move of a collection.
func (r *TenantRepository) SetBeforeMove(f func()) { r.beforeMove = f }

// Reread is reread.
var Reread = reread

// ReadAttempts is readAttempts.
const ReadAttempts = readAttempts

// SplitIncreasing is splitIncreasing.
var SplitIncreasing = splitIncreasing

package service

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// A check that read an admin before a change cannot cache what it read
// once the change has been forgotten; a check that started afterwards can.
func TestPrincipalCacheRefusesStaleChecks(t *testing.T) {
	c := newPrincipalCache(time.Minute)
	admin, org := bson.NewObjectID(), bson.NewObjectID()
	p := Principal{AdminID: admin, OrgID: org}

	stale := c.generation(admin)    // a check reads version 1 ...
	c.forget(admin)                 // ... the change to version 2 is written and forgotten ...
	c.put(p, 1, stale, time.Time{}) // ... and the check tries to cache version 1.
	if _, ok := c.get(admin, 1, org, bson.ObjectID{}); ok {
		t.Fatal("a check that read the admin before the change cached it afterwards")
	}

	fresh := c.generation(admin)
	c.put(p, 2, fresh, time.Time{})
	if _, ok := c.get(admin, 2, org, bson.ObjectID{}); !ok {
		t.Fatal("a check that started after the change was not cached")
	}
	if _, ok := c.get(admin, 1, org, bson.ObjectID{}); ok {
		t.Fatal("the old version passes")
	}

	// Another admin's change leaves this one's checks alone, unless they
	// share a generation.
	other := bson.NewObjectID()
	c.forget(admin)
	g := c.generation(admin)
	c.forget(other)
	c.put(p, 2, g, time.Time{})
	if _, ok := c.get(admin, 2, org, bson.ObjectID{}); ok != (genIndex(other) != genIndex(admin)) {
		t.Fatalf("after another admin's change: cached %v", ok)
	}
}

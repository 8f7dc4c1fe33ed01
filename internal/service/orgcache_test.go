package service

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
)

// A read that began before a change cannot cache what it read once the
// change is forgotten; entries expire; the least recently used goes first.
func TestOrgCache(t *testing.T) {
	c := newOrgCache(time.Minute)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	org := &model.Organization{ID: bson.NewObjectID(), Name: "A", Slug: "a"}
	key := orgSlugKey("a")

	stale := c.generation(key)
	c.forget(org.ID, "a")
	c.put(key, org, stale)
	if _, _, ok := c.get(key); ok {
		t.Fatal("a read from before the change was cached after it")
	}
	c.put(key, org, c.generation(key))
	got, _, ok := c.get(key)
	if !ok || got.Name != "A" {
		t.Fatalf("got %v %v, want A cached", got, ok)
	}
	got.Name = "changed by a caller"
	if again, _, _ := c.get(key); again.Name != "A" {
		t.Fatal("a caller's change reached the cache")
	}

	busy := *org
	busy.State = model.StateRenaming
	c.put(orgIDKey(org.ID), &busy, c.generation(orgIDKey(org.ID)))
	if _, _, ok := c.get(orgIDKey(org.ID)); ok {
		t.Fatal("an organization under an operation was cached")
	}

	now = now.Add(time.Minute)
	if _, _, ok := c.get(key); ok {
		t.Fatal("an entry outlived its TTL")
	}

	// A change of the admin drops its organization under every key, and
	// refuses every read under way.
	c.put(key, org, c.generation(key))
	c.put(orgIDKey(org.ID), org, c.generation(orgIDKey(org.ID)))
	other := &model.Organization{ID: bson.NewObjectID(), Name: "B", Slug: "b", AdminID: bson.NewObjectID()}
	c.put(orgSlugKey("b"), other, c.generation(orgSlugKey("b")))
	pending := c.generation(orgSlugKey("c"))
	c.forgetAdmin(org.AdminID)
	_, _, bySlug := c.get(key)
	_, _, byID := c.get(orgIDKey(org.ID))
	_, _, kept := c.get(orgSlugKey("b"))
	if bySlug || byID || !kept {
		t.Fatalf("after forgetAdmin: by slug %v, by id %v, another admin's %v; want false, false, true", bySlug, byID, kept)
	}
	c.put(orgSlugKey("c"), other, pending)
	if _, _, ok := c.get(orgSlugKey("c")); ok {
		t.Fatal("a read from before forgetAdmin was cached after it")
	}

	c.maxEntries = 2
	c.forgetAdmin(bson.NewObjectID()) // empties nothing; the LRU below starts from b
	c.forget(other.ID, "b")
	for _, s := range []string{"x", "y"} {
		c.put(orgSlugKey(s), org, c.generation(orgSlugKey(s)))
	}
	c.get(orgSlugKey("x")) // y is now the least recently used
	c.put(orgSlugKey("z"), org, c.generation(orgSlugKey("z")))
	_, _, hasX := c.get(orgSlugKey("x"))
	_, _, hasY := c.get(orgSlugKey("y"))
	if !hasX || hasY || c.len() != 2 {
		t.Fatalf("after an eviction: x %v, y %v, %d keys; want x kept, y gone, 2 keys", hasX, hasY, c.len())
	}
}

package service

import (
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// maxCachedPrincipals bounds the cache; past it, expired entries are
// dropped, and if none are, the cache starts over.
const maxCachedPrincipals = 100_000

// generations is how many generation counters the admins share.
const generations = 1024

// principalCache remembers, for a short time, that an admin's token version
// and organization were checked against the master database, so that a
// burst of requests with one token costs one lookup. The instance that
// changes an admin forgets it at once; other instances see the change when
// the entry expires.
//
// A check reads the admin's generation before reading the database, and
// caches what it read only if the generation has not moved since: forget
// moves it, so a check that read the state before a change cannot put it
// back afterwards. Admins share a fixed set of generations (memory stays
// bounded); a shared one only costs a neighbour an uncached check.
type principalCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[bson.ObjectID]map[bson.ObjectID]cachedPrincipal // admin, organization
	gen [generations]uint64
	now func() time.Time
}

type cachedPrincipal struct {
	p       Principal
	version int64
	expires time.Time
}

func newPrincipalCache(ttl time.Duration) *principalCache {
	return &principalCache{ttl: ttl, m: map[bson.ObjectID]map[bson.ObjectID]cachedPrincipal{}, now: time.Now}
}

// get returns the cached principal of admin in org if it was checked
// within the TTL for this token version and membership grant.
func (c *principalCache) get(admin bson.ObjectID, version int64, org, grant bson.ObjectID) (Principal, bool) {
	if c == nil || c.ttl <= 0 {
		return Principal{}, false
	}
	c.mu.Lock()
	e, ok := c.m[admin][org]
	c.mu.Unlock()
	if !ok || e.version != version || e.p.Grant != grant || !c.now().Before(e.expires) {
		return Principal{}, false
	}
	return e.p, true
}

// generation is admin's generation, to pass to put.
func (c *principalCache) generation(admin bson.ObjectID) uint64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen[genIndex(admin)]
}

func genIndex(admin bson.ObjectID) int {
	// The last bytes of an ObjectID are a counter: they spread well.
	return (int(admin[10])<<8 | int(admin[11])) % generations
}

// put caches p unless admin was forgotten since gen was read; the entry
// lasts the TTL, and no longer than notAfter when that is set (the
// organization's record came from the organization cache).
func (c *principalCache) put(p Principal, version int64, gen uint64, notAfter time.Time) {
	if c == nil || c.ttl <= 0 {
		return
	}
	now := c.now()
	expires := now.Add(c.ttl)
	if !notAfter.IsZero() && notAfter.Before(expires) {
		expires = notAfter
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen[genIndex(p.AdminID)] != gen {
		return
	}
	if len(c.m) >= maxCachedPrincipals {
		for k, orgs := range c.m {
			for org, e := range orgs {
				if !now.Before(e.expires) {
					delete(orgs, org)
				}
			}
			if len(orgs) == 0 {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxCachedPrincipals {
			c.m = map[bson.ObjectID]map[bson.ObjectID]cachedPrincipal{}
		}
	}
	if c.m[p.AdminID] == nil {
		c.m[p.AdminID] = map[bson.ObjectID]cachedPrincipal{}
	}
	c.m[p.AdminID][p.OrgID] = cachedPrincipal{p: p, version: version, expires: expires}
}

// forget drops what is known of admin, and what checks under way read.
func (c *principalCache) forget(admin bson.ObjectID) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.gen[genIndex(admin)]++
	delete(c.m, admin)
	c.mu.Unlock()
}

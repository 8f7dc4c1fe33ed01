package service

import (
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// maxCachedPrincipals bounds the cache; past it, expired entries are
// dropped, and if none are, the cache starts over.
const maxCachedPrincipals = 100_000

// principalCache remembers, for a short time, that an admin's token version
// and organization were checked against the master database, so that a
// burst of requests with one token costs one lookup. The instance that
// changes an admin forgets it at once; other instances see the change when
// the entry expires.
type principalCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[bson.ObjectID]cachedPrincipal
	now func() time.Time
}

type cachedPrincipal struct {
	p       Principal
	version int64
	expires time.Time
}

func newPrincipalCache(ttl time.Duration) *principalCache {
	return &principalCache{ttl: ttl, m: map[bson.ObjectID]cachedPrincipal{}, now: time.Now}
}

// get returns the cached principal of admin if it was checked within the
// TTL for this token version and organization.
func (c *principalCache) get(admin bson.ObjectID, version int64, org bson.ObjectID) (Principal, bool) {
	if c == nil || c.ttl <= 0 {
		return Principal{}, false
	}
	c.mu.Lock()
	e, ok := c.m[admin]
	c.mu.Unlock()
	if !ok || e.version != version || e.p.OrgID != org || !c.now().Before(e.expires) {
		return Principal{}, false
	}
	return e.p, true
}

func (c *principalCache) put(p Principal, version int64) {
	if c == nil || c.ttl <= 0 {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedPrincipals {
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxCachedPrincipals {
			c.m = map[bson.ObjectID]cachedPrincipal{}
		}
	}
	c.m[p.AdminID] = cachedPrincipal{p: p, version: version, expires: now.Add(c.ttl)}
}

// forget drops what is known of admin.
func (c *principalCache) forget(admin bson.ObjectID) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.m, admin)
	c.mu.Unlock()
}

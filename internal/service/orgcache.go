package service

import (
	"container/list"
	"hash/fnv"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
)

// maxCachedOrgs bounds the organization cache (keys: an organization
// takes one by id and one by slug). An entry is a few hundred bytes, so
// the cache stays under about 4 MiB; one instance serves far fewer than
// 10,000 organizations within one TTL (at most 5 s), so the working set
// fits and only the least recently used go.
const maxCachedOrgs = 10_000

// orgCache remembers organizations at rest, by id and by slug, for ttl, in
// an LRU of maxCachedOrgs keys. The instance that changes an organization
// forgets it once the change is written; other instances see the change
// when the entry expires. Only organizations at rest are kept, and never
// an absence: a request that finds none asks the database.
//
// As in principalCache, a reader takes its key's generation before it
// reads the database and puts what it read only if the generation has not
// moved: forget moves it, so a read of the old record cannot come back.
type orgCache struct {
	ttl        time.Duration
	mu         sync.Mutex
	ll         *list.List // front: most recently used
	m          map[string]*list.Element
	gen        [generations]uint64
	epoch      uint64 // moved by forgetAdmin: every read under way is refused
	now        func() time.Time
	hit, miss  func()
	maxEntries int
}

type orgEntry struct {
	key     string
	org     model.Organization
	expires time.Time
}

func newOrgCache(ttl time.Duration) *orgCache {
	return &orgCache{ttl: ttl, ll: list.New(), m: map[string]*list.Element{}, now: time.Now, maxEntries: maxCachedOrgs}
}

func orgIDKey(id bson.ObjectID) string { return "i" + string(id[:]) }
func orgSlugKey(slug string) string    { return "s" + slug }

func orgGenIndex(key string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % generations)
}

func (c *orgCache) enabled() bool { return c != nil && c.ttl > 0 }

// get returns a copy of the organization cached under key, and when its
// entry expires.
func (c *orgCache) get(key string) (*model.Organization, time.Time, bool) {
	if !c.enabled() {
		return nil, time.Time{}, false
	}
	now := c.now()
	c.mu.Lock()
	el, ok := c.m[key]
	var e orgEntry
	if ok {
		e = *el.Value.(*orgEntry)
		if now.Before(e.expires) {
			c.ll.MoveToFront(el)
		} else {
			c.ll.Remove(el)
			delete(c.m, key)
			ok = false
		}
	}
	c.mu.Unlock()
	if !ok {
		if c.miss != nil {
			c.miss()
		}
		return nil, time.Time{}, false
	}
	if c.hit != nil {
		c.hit()
	}
	return &e.org, e.expires, true
}

// orgGen is what put checks: key's generation and the cache's epoch.
type orgGen struct{ key, epoch uint64 }

// generation is key's generation, to pass to put.
func (c *orgCache) generation(key string) orgGen {
	if !c.enabled() {
		return orgGen{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return orgGen{c.gen[orgGenIndex(key)], c.epoch}
}

// put caches org under key unless it is not at rest or key was forgotten
// since gen was read.
func (c *orgCache) put(key string, org *model.Organization, gen orgGen) {
	if !c.enabled() || org.State != "" {
		return
	}
	expires := c.now().Add(c.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if (orgGen{c.gen[orgGenIndex(key)], c.epoch}) != gen {
		return
	}
	if el, ok := c.m[key]; ok {
		*el.Value.(*orgEntry) = orgEntry{key: key, org: *org, expires: expires}
		c.ll.MoveToFront(el)
		return
	}
	c.m[key] = c.ll.PushFront(&orgEntry{key: key, org: *org, expires: expires})
	for c.ll.Len() > c.maxEntries {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.m, last.Value.(*orgEntry).key)
	}
}

// forget drops the organization id and the slugs it had or takes, and
// what reads under way found of them.
func (c *orgCache) forget(id bson.ObjectID, slugs ...string) {
	if c == nil {
		return
	}
	keys := []string{orgIDKey(id)}
	for _, s := range slugs {
		keys = append(keys, orgSlugKey(s))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		c.gen[orgGenIndex(k)]++
		if el, ok := c.m[k]; ok {
			c.ll.Remove(el)
			delete(c.m, k)
		}
	}
}

// forgetAdmin drops every organization admin administers, and what every
// read under way found (it cannot know which key such a read is for). It
// runs after each change of an admin or its organization that the
// lifecycle makes (AuthService.Forget), so rarely: the scan is cheap.
func (c *orgCache) forgetAdmin(admin bson.ObjectID) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	for el := c.ll.Front(); el != nil; {
		next := el.Next()
		if e := el.Value.(*orgEntry); e.org.AdminID == admin {
			c.ll.Remove(el)
			delete(c.m, e.key)
		}
		el = next
	}
}

// len is how many keys are cached, for tests.
func (c *orgCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

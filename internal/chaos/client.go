package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// client is one of the load's clients: it signs organizations up and
// works in them, one request at a time, against A or B at random, and
// keeps the ledger of what was acknowledged.
type client struct {
	r    *runner
	idx  int
	ctx  context.Context // the run's: ends only when the run is cut short
	rng  *mrand.Rand
	http *http.Client
	seq  int // requests made, for request ids
	// budget bounds the retries of one request (the runner's when zero).
	budget time.Duration
	n      int // sign-ups and documents made, for e-mails and tags

	orgs []*orgRec
	// pending are sign-ups that got no definitive answer: each may have
	// made an organization.
	pending []*orgRec
}

func (r *runner) newClient(ctx context.Context, idx int) *client {
	return &client{
		r: r, idx: idx, ctx: ctx,
		rng: mrand.New(mrand.NewPCG(uint64(r.cfg.Seed), uint64(idx+1))),
		http: &http.Client{
			Timeout:   20 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second},
		},
	}
}

// answer is one HTTP answer.
type answer struct {
	status int
	raw    []byte
	body   map[string]any
	header http.Header
	reqID  string
	inst   string
}

func (a *answer) str(key string) string {
	s, _ := a.body[key].(string)
	return s
}

func (a *answer) detail() string { return a.str("detail") }

func (a *answer) String() string {
	raw := strings.TrimSpace(string(a.raw))
	if len(raw) > 300 {
		raw = raw[:300] + "..."
	}
	return fmt.Sprintf("%d %s (from %s, request %s)", a.status, raw, a.inst, a.reqID)
}

// result is the outcome of a request and its retries.
type result struct {
	ans     *answer // the definitive answer; nil when the retries ran out
	unknown bool    // an attempt got no answer, a 5xx or a 409: it may have taken effect
	last    string  // the last attempt that was not definitive
	reqIDs  []string
}

// first is the request id of the first attempt.
func (r result) first() string {
	if len(r.reqIDs) == 0 {
		return ""
	}
	return r.reqIDs[0]
}

// loop runs operations until ctx ends.
func (c *client) loop(ctx context.Context) {
	for ctx.Err() == nil && c.ctx.Err() == nil {
		c.step()
		time.Sleep(time.Duration(c.rng.IntN(8)) * time.Millisecond)
	}
}

// pick chooses the instance of one attempt.
func (c *client) pick() *instance {
	if c.rng.IntN(2) == 0 {
		return c.r.a
	}
	return c.r.b
}

// send makes one attempt.
func (c *client) send(in *instance, method, path, token, key string, body []byte, reqID string) (*answer, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(c.ctx, method, in.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	req.Header.Set("X-Request-ID", reqID)
	res, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	a := &answer{status: res.StatusCode, raw: raw, header: res.Header, reqID: reqID, inst: in.name}
	_ = json.Unmarshal(raw, &a.body)
	return a, nil
}

// refused reports an attempt the instance never received: nothing
// listened (B between a kill and its restart).
func refused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// definitive reports whether an answer settles the request. 5xx, 429 and
// every 409 but a name conflict ask for a retry (and a 409 of a document
// write may come after the write was made).
func definitive(a *answer) bool {
	switch {
	case a.status >= 500, a.status == http.StatusTooManyRequests:
		return false
	case a.status == http.StatusConflict:
		return a.detail() == "Organization name conflict"
	}
	return true
}

// call sends a request to a random instance, and again to a random one
// (the same request: same body, same token) until an answer settles it
// or the retry budget runs out. lifecycle marks sign-ups, updates and
// deletions, whose requests to B the killer may aim at.
func (c *client) call(op, method, path, token string, body any, lifecycle bool) result {
	return c.callKeyed(op, method, path, token, "", body, lifecycle)
}

// callKeyed is call with an Idempotency-Key, sent on every attempt.
func (c *client) callKeyed(op, method, path, token, key string, body any, lifecycle bool) result {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			panic(err)
		}
	}
	c.seq++
	var res result
	budget := c.budget
	if budget == 0 {
		budget = c.r.budget
	}
	deadline := time.Now().Add(budget)
	for attempt := 1; ; attempt++ {
		in := c.pick()
		reqID := fmt.Sprintf("chaos.c%d.%d.%d", c.idx, c.seq, attempt)
		res.reqIDs = append(res.reqIDs, reqID)
		onB := lifecycle && in == c.r.b
		if onB {
			c.r.lifeBAt.Store(time.Now().UnixNano())
			c.r.lifeB.Add(1)
		}
		a, err := c.send(in, method, path, token, key, raw, reqID)
		if onB {
			c.r.lifeB.Add(-1)
		}
		c.r.requests.Add(1)
		var after time.Duration
		switch {
		case err != nil && c.ctx.Err() != nil:
			return res
		case err != nil && refused(err):
			c.r.refused.Add(1)
			res.last = in.name + " refused the connection"
		case err != nil:
			c.r.noAnswer.Add(1)
			res.unknown = true
			res.last = fmt.Sprintf("no answer from %s: %v", in.name, err)
		case a.status == http.StatusInternalServerError:
			res.unknown = true
			res.last = a.String()
			c.r.violate("server-error", fmt.Sprintf("%s %s (%s)", op, reqID, in.name),
				fmt.Sprintf("%s %s answered %s", method, routeOf(path), a), reqID)
		case !definitive(a):
			res.unknown = true
			res.last = a.String()
			if s, err := strconv.Atoi(a.header.Get("Retry-After")); err == nil {
				after = min(time.Duration(s)*time.Second, 2*time.Second)
			}
		default:
			res.ans = a
			if res.unknown {
				c.r.count(c.r.unknown, op)
			}
			return res
		}
		if time.Now().After(deadline) {
			if res.unknown {
				c.r.count(c.r.unknown, op)
			}
			return res
		}
		backoff := min(100*time.Millisecond<<min(attempt-1, 4), time.Second)
		backoff = max(backoff, after)
		time.Sleep(backoff/2 + time.Duration(c.rng.Int64N(int64(backoff/2)+1)))
	}
}

// routeOf is a path without its query and document id, for messages.
func routeOf(path string) string {
	p, _, _ := strings.Cut(path, "?")
	if rest, ok := strings.CutPrefix(p, "/org/documents/"); ok && rest != "" {
		return "/org/documents/{id}"
	}
	return p
}

// ---------------------------------------------------------------------------
// The load.

// step runs one operation, chosen at random.
func (c *client) step() {
	c.settleSome()
	var live []*orgRec
	for _, o := range c.orgs {
		if o.live() {
			live = append(live, o)
		}
	}
	if len(live) == 0 {
		c.signup()
		return
	}
	o := live[c.rng.IntN(len(live))]
	liveDocs := o.liveDocs()
	choices := []choice{
		{when(len(live) < 2, 8, 0) + when(len(live) < 4, 1, 0), c.signup},
		{3, func() { c.login(o) }},
		{3, func() { c.orgGet(o) }},
		{when(!o.uncertain(), 5, 0), func() { c.rename(o) }},
		{when(!o.uncertain() && len(live) >= 2, 1, 0), func() { c.deleteOrg(o) }},
		{when(len(liveDocs) < 40, 16, 3), func() { c.createDoc(o) }},
		{5, func() { c.listDocs(o, "doc-list") }},
		{when(c.deadOrg() != nil, 1, 0), func() { c.checkDeleted(c.deadOrg()) }},
	}
	if len(liveDocs) > 0 {
		d := liveDocs[c.rng.IntN(len(liveDocs))]
		choices = append(choices,
			choice{12, func() { c.patchDoc(o, d) }},
			choice{5, func() { c.putDoc(o, d) }},
			choice{7, func() { c.deleteDoc(o, d) }},
			choice{14, func() { c.getDoc(o, d) }},
		)
	}
	choices = append(choices, c.teamChoices(o)...)
	if dead := o.deadDocs(); len(dead) > 0 {
		d := dead[c.rng.IntN(len(dead))]
		choices = append(choices, choice{1, func() { c.getDoc(o, d) }})
	}
	total := 0
	for _, ch := range choices {
		total += ch.w
	}
	n := c.rng.IntN(total)
	for _, ch := range choices {
		if n < ch.w {
			ch.do()
			return
		}
		n -= ch.w
	}
}

// choice is one operation of step, with its weight.
type choice struct {
	w  int
	do func()
}

// liveDocs are the documents that exist for all the client knows.
func (o *orgRec) liveDocs() []*docRec {
	var out []*docRec
	for _, id := range o.order {
		if d := o.docs[id]; !d.deleted && !d.maybeDeleted {
			out = append(out, d)
		}
	}
	return out
}

// deadDocs are the documents whose deletion was acknowledged.
func (o *orgRec) deadDocs() []*docRec {
	var out []*docRec
	for _, id := range o.order {
		if d := o.docs[id]; d.deleted {
			out = append(out, d)
		}
	}
	return out
}

// deadOrg is an organization whose deletion was acknowledged, if any.
func (c *client) deadOrg() *orgRec {
	for _, o := range c.orgs {
		if o.deleted {
			return o
		}
	}
	return nil
}

// settleSome tries, now and then, to settle an uncertain organization.
func (c *client) settleSome() {
	for _, o := range c.orgs {
		if o.uncertain() && o.id != "" && (time.Since(o.uncertainAt) > c.r.settle || c.rng.IntN(8) == 0) {
			c.settleOrg(o)
		}
	}
}

// settleOrg finds out, by reading, what an unanswered rename or deletion
// did. Found under the new name, it was renamed; not found under any name
// with its admin's login refused, it was deleted. Found as it was, it is
// as it was only once the operation has surely been recovered (a deletion
// under way still answers /org/get, and a committed rename is finished
// by whoever takes it over): until then it stays uncertain.
func (c *client) settleOrg(o *orgRec) {
	settled := time.Since(o.uncertainAt) > c.r.settle
	found := false
	for _, name := range append([]string{o.name}, o.maybeNames...) {
		res := c.call("org-get", "GET", getPath(name), "", nil, false)
		if res.ans == nil {
			return
		}
		if res.ans.status != http.StatusOK || res.ans.str("_id") != o.id {
			continue
		}
		found = true
		if name != o.name {
			c.r.held(name, o.id)
			o.names = append(o.names, name)
			c.r.freeName(o.name)
			o.name = name
			o.maybeNames = nil
		}
		if settled {
			o.maybeNames, o.maybeDeleted = nil, false
		}
		break
	}
	if !found && o.maybeDeleted {
		res := c.call("login", "POST", "/admin/login", "", map[string]string{"email": o.email, "password": o.password}, false)
		if res.ans != nil && res.ans.status == http.StatusUnauthorized {
			o.deleted, o.maybeDeleted, o.maybeNames = true, false, nil
		}
	}
	if !o.uncertain() {
		c.r.note("uncertain organization settled by a read")
	}
}

func getPath(name string) string { return "/org/get?organization_name=" + url.QueryEscape(name) }

// signup signs an organization up under a contended name.
func (c *client) signup() {
	name := c.r.pickName(c.rng, 0.5)
	c.n++
	o := &orgRec{
		name: name, names: []string{name},
		email:    fmt.Sprintf("c%d.%d@chaos.example.com", c.idx, c.n),
		password: fmt.Sprintf("chaos-pass-%d-%d", c.idx, c.n),
		docs:     map[string]*docRec{}, maybeTags: map[string]bool{}, keyed: map[string]bool{},
	}
	c.r.useName(name)
	body := map[string]string{"organization_name": name, "email": o.email, "password": o.password}
	start := time.Now()
	unknown := false
	for {
		res := c.call("signup", "POST", "/org/create", "", body, true)
		unknown = unknown || res.unknown
		if res.ans == nil {
			c.r.gaveUpOn("signup", fmt.Sprintf("%q: %s", name, res.last))
			c.pending = append(c.pending, o)
			return
		}
		a := res.ans
		switch {
		case a.status == http.StatusCreated:
			o.adminID = a.str("admin_id")
			c.adopt(o, "signup", res.first())
			return
		case a.status == http.StatusBadRequest && unknown:
			// The interrupted attempt may have made it, or may still hold
			// the name until it is rolled back.
			if tok := c.tryLogin(o); tok != "" {
				c.adopt(o, "signup (confirmed by login)", res.first())
				return
			}
			if time.Since(start) < c.r.settle {
				c.r.note("sign-up retry answered 400 while the interrupted attempt still held its claims")
				time.Sleep(500 * time.Millisecond)
				continue
			}
			c.r.refusal("signup: " + a.detail())
			return
		case a.status == http.StatusBadRequest && a.detail() == "Organization already exists":
			c.r.refusal("signup: " + a.detail())
			return
		default:
			c.r.violate("unexpected-answer", "signup "+res.first(),
				fmt.Sprintf("POST /org/create %q (fresh e-mail %s) answered %s", name, o.email, a), res.reqIDs...)
			return
		}
	}
}

// adopt puts an organization the service acknowledged into the ledger,
// with its id (from /org/get) and a token.
func (c *client) adopt(o *orgRec, kind, reqID string) {
	c.r.ack(kind)
	c.orgs = append(c.orgs, o)
	// The organization is readable at once; a sign-up whose last step
	// failed after it committed may take until its recovery (a lease).
	var res result
	start := time.Now()
	for {
		res = c.call("org-get", "GET", getPath(o.name), "", nil, false)
		if res.ans == nil {
			o.maybeDeleted = true // its id is unknown: kept out of every later operation
			return
		}
		if res.ans.status == http.StatusOK && (o.adminID == "" || res.ans.str("admin_id") == o.adminID) {
			break
		}
		if time.Since(start) > cacheGrace {
			c.r.violate("lost-organization", fmt.Sprintf("organization %q (sign-up %s)", o.name, reqID),
				fmt.Sprintf("acknowledged sign-up of %q: GET /org/get still answered %s after %s", o.name, res.ans, time.Since(start).Round(time.Millisecond)), append(res.reqIDs, reqID)...)
		}
		if time.Since(start) > c.r.settle {
			o.maybeDeleted = true
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	o.id, o.adminID = res.ans.str("_id"), res.ans.str("admin_id")
	c.r.held(o.name, o.id)
	c.r.event("client %d: %s: organization %s %q (request %s)", c.idx, kind, o.id, o.name, reqID)
	if c.tryLogin(o) == "" && c.lasting(func() bool { return c.tryLogin(o) != "" }) {
		c.r.violate("lost-organization", fmt.Sprintf("organization %s (%q)", o.id, o.name),
			"acknowledged sign-up: the admin's login is refused", o.id)
		o.maybeDeleted = true
	}
}

// tryLogin logs the organization's admin in; the token, or "".
func (c *client) tryLogin(o *orgRec) string {
	res := c.call("login", "POST", "/admin/login", "", map[string]string{"email": o.email, "password": o.password}, false)
	if res.ans == nil || res.ans.status != http.StatusOK {
		return ""
	}
	o.token = res.ans.str("access_token")
	return o.token
}

func (c *client) login(o *orgRec) {
	res := c.call("login", "POST", "/admin/login", "", map[string]string{"email": o.email, "password": o.password}, false)
	switch {
	case res.ans == nil:
		c.r.gaveUpOn("login", res.last)
	case res.ans.status == http.StatusOK:
		o.token = res.ans.str("access_token")
		c.r.ack("login")
	case res.ans.status == http.StatusUnauthorized && o.uncertain():
		c.settleOrg(o)
	default:
		if c.lasting(func() bool { return c.tryLogin(o) != "" }) {
			c.r.violate("lost-organization", fmt.Sprintf("organization %s (%q)", o.id, o.name),
				fmt.Sprintf("POST /admin/login of its admin %s answered %s, and again %s later", o.email, res.ans, cacheGrace), append(res.reqIDs, o.id)...)
		}
	}
}

func (c *client) orgGet(o *orgRec) {
	if o.uncertain() {
		c.settleOrg(o)
		return
	}
	res := c.call("org-get", "GET", getPath(o.name), "", nil, false)
	switch {
	case res.ans == nil:
		c.r.gaveUpOn("org-get", res.last)
	case res.ans.status == http.StatusOK && res.ans.str("_id") == o.id:
		c.r.ack("org-get")
	default:
		if c.lasting(func() bool { return c.isNamed(o, o.name) }) {
			c.r.violate("lost-organization", fmt.Sprintf("organization %s (%q)", o.id, o.name),
				fmt.Sprintf("GET /org/get of its acknowledged name answered %s, and no better %s later", res.ans, cacheGrace), append(res.reqIDs, o.id)...)
		}
	}
}

// isNamed reports whether GET /org/get finds the organization under name.
func (c *client) isNamed(o *orgRec, name string) bool {
	res := c.call("org-get", "GET", getPath(name), "", nil, false)
	return res.ans != nil && res.ans.status == http.StatusOK && res.ans.str("_id") == o.id
}

// cacheGrace is how long an instance may answer from its caches after a
// change made through the other one (AUTH_CACHE_TTL and ORG_CACHE_TTL,
// 1 s each by default, as the README documents), with a margin.
const cacheGrace = 2500 * time.Millisecond

// lasting asks again, cacheGrace later, whether things are as they
// should be, and reports whether they still are not: a wrong answer that
// a read after the documented cache window corrects is noted, not a
// violation.
func (c *client) lasting(ok func() bool) bool {
	time.Sleep(cacheGrace)
	if ok() {
		c.r.note("a wrong answer right again after the cache window")
		return false
	}
	return true
}

// rename renames the organization to a contended name.
func (c *client) rename(o *orgRec) {
	to := c.r.pickName(c.rng, 0.3)
	if to == o.name {
		return
	}
	c.r.useName(to)
	res := c.call("rename", "PUT", "/org/update", o.token,
		map[string]string{"organization_name": o.name, "new_organization_name": to}, true)
	a := res.ans
	switch {
	case a == nil:
		c.r.gaveUpOn("rename", fmt.Sprintf("%s %q -> %q: %s", o.id, o.name, to, res.last))
		o.mayBeRenamed(to)
		return
	case a.status == http.StatusOK:
		c.r.ack("rename")
		c.r.event("client %d: rename: organization %s %q -> %q (request %s, %d attempts)", c.idx, o.id, o.name, to, res.first(), len(res.reqIDs))
		c.r.freeName(o.name)
		c.r.held(to, o.id)
		o.name = to
		o.names = append(o.names, to)
		o.token = a.str("access_token")
		return
	case a.status == http.StatusConflict:
		c.r.refusal("rename: " + a.detail())
	case res.unknown:
		c.r.violate("retry-refused", fmt.Sprintf("rename %s", res.first()),
			fmt.Sprintf("rename of %s %q to %q, retried after %s, answered %s", o.id, o.name, to, res.last, a), append(res.reqIDs, o.id)...)
	default:
		c.r.violate("unexpected-answer", fmt.Sprintf("rename %s", res.first()),
			fmt.Sprintf("rename of %s %q to %q answered %s", o.id, o.name, to, a), append(res.reqIDs, o.id)...)
	}
	if res.unknown {
		// A refusal after an unanswered attempt: which name is it under?
		o.mayBeRenamed(to)
		c.settleOrg(o)
		if o.name == to {
			c.r.violate("retry-refused", fmt.Sprintf("rename %s", res.first()),
				fmt.Sprintf("rename of %s to %q was refused on retry (%s) but had happened", o.id, to, a), append(res.reqIDs, o.id)...)
		}
	}
}

func (c *client) deleteOrg(o *orgRec) {
	res := c.call("org-delete", "DELETE", "/org/delete", o.token, map[string]string{"organization_name": o.name}, true)
	a := res.ans
	switch {
	case a == nil:
		c.r.gaveUpOn("org-delete", fmt.Sprintf("%s %q: %s", o.id, o.name, res.last))
		o.mayBeDeleted()
		return
	case a.status == http.StatusOK:
		c.r.ack("org-delete")
		c.r.event("client %d: org-delete: organization %s %q (request %s, %d attempts)", c.idx, o.id, o.name, res.first(), len(res.reqIDs))
		o.deleted = true
		c.r.freeName(o.name)
		return
	case res.unknown:
		c.r.violate("retry-refused", fmt.Sprintf("org-delete %s", res.first()),
			fmt.Sprintf("deletion of %s %q, retried with the same token after %s, answered %s", o.id, o.name, res.last, a), append(res.reqIDs, o.id)...)
	default:
		c.r.violate("unexpected-answer", fmt.Sprintf("org-delete %s", res.first()),
			fmt.Sprintf("deletion of %s %q answered %s", o.id, o.name, a), append(res.reqIDs, o.id)...)
	}
	o.mayBeDeleted()
	c.settleOrg(o)
}

// checkDeleted makes sure an acknowledged deletion stays done: the
// admin's login is refused, and the name is not the organization's.
func (c *client) checkDeleted(o *orgRec) {
	logsIn := func() bool {
		res := c.call("login", "POST", "/admin/login", "", map[string]string{"email": o.email, "password": o.password}, false)
		return res.ans != nil && res.ans.status == http.StatusOK
	}
	if logsIn() && c.lasting(func() bool { return !logsIn() }) {
		c.r.violate("deleted-organization-present", fmt.Sprintf("organization %s (%q)", o.id, o.name),
			fmt.Sprintf("its deletion was acknowledged, but its admin still logs in %s later", cacheGrace), o.id)
	}
	if c.isNamed(o, o.name) && c.lasting(func() bool { return !c.isNamed(o, o.name) }) {
		c.r.violate("deleted-organization-present", fmt.Sprintf("organization %s (%q)", o.id, o.name),
			fmt.Sprintf("its deletion was acknowledged, but GET /org/get still finds it %s later", cacheGrace), o.id)
	}
	c.r.ack("deleted-check")
}

// ---------------------------------------------------------------------------
// Documents.

func (c *client) createDoc(o *orgRec) {
	c.n++
	tag := fmt.Sprintf("c%d.%d", c.idx, c.n)
	content := map[string]any{"tag": tag, "org": o.id, "n": c.n, "v": c.word(), "lines": []any{[]any{1, 2}, []any{c.n}}}
	raw, _ := json.Marshal(content)
	// Half the creates carry an Idempotency-Key: their retries must not
	// make a second document.
	key := ""
	if c.rng.IntN(2) == 0 {
		key = "chaos-" + tag
		o.keyed[tag] = true
	}
	res := c.callKeyed("doc-create", "POST", "/org/documents", o.token, key, content, false)
	a := res.ans
	switch {
	case a == nil:
		c.r.gaveUpOn("doc-create", res.last)
		o.maybeTags[tag] = true
	case a.status == http.StatusCreated:
		c.r.ack("doc-create")
		if res.unknown {
			o.maybeTags[tag] = true
		}
		id := a.str("id")
		want := canonical(raw)
		d := &docRec{id: id, tag: tag, states: []string{want}}
		o.docs[id] = d
		o.order = append(o.order, id)
		if got := canonical(dataOf(a)); got != want {
			c.r.violate("wrong-content", "document "+id, fmt.Sprintf("POST /org/documents answered data %s, sent %s", got, want), append(res.reqIDs, o.id, id)...)
		}
	default:
		c.unexpected(o, "doc-create", "POST /org/documents", res)
	}
}

// dataOf is the data of a document envelope.
func dataOf(a *answer) []byte {
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(a.raw, &env)
	return env.Data
}

func (c *client) word() string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 8)
	for i := range b {
		b[i] = letters[c.rng.IntN(len(letters))]
	}
	return string(b)
}

// write is a PATCH or PUT of a document; next is what it leaves of each
// possible state.
func (c *client) write(o *orgRec, d *docRec, op, method string, body map[string]any, next func([]string) []string) {
	res := c.call(op, method, "/org/documents/"+d.id, o.token, body, false)
	a := res.ans
	switch {
	case a == nil:
		c.r.gaveUpOn(op, res.last)
		d.states = union(d.states, next(d.states))
	case a.status == http.StatusOK:
		c.r.ack(op)
		want := next(d.states)
		got := canonical(dataOf(a))
		if !contains(want, got) {
			c.r.violate("wrong-content", "document "+d.id, fmt.Sprintf("%s answered data %s, expected one of %s", method, got, strings.Join(want, " | ")), append(res.reqIDs, o.id, d.id)...)
			d.states = union(want, []string{got})
			return
		}
		d.states = []string{got}
	case a.status == http.StatusNotFound:
		c.lost(o, d, fmt.Sprintf("%s /org/documents/{id} answered %s", method, a), res)
	default:
		c.unexpected(o, op, method+" /org/documents/{id}", res)
	}
}

func (c *client) patchDoc(o *orgRec, d *docRec) {
	c.n++
	patch := map[string]any{"n": c.n, "v": c.word(), "p": c.n}
	if c.rng.IntN(3) == 0 {
		patch["lines"] = nil
	}
	raw, _ := json.Marshal(patch)
	c.write(o, d, "doc-patch", "PATCH", patch, func(states []string) []string { return merge(states, raw) })
}

func (c *client) putDoc(o *orgRec, d *docRec) {
	c.n++
	content := map[string]any{"tag": d.tag, "org": o.id, "n": c.n, "v": c.word(), "kind": "replaced"}
	raw, _ := json.Marshal(content)
	c.write(o, d, "doc-put", "PUT", content, func([]string) []string { return []string{canonical(raw)} })
}

func (c *client) deleteDoc(o *orgRec, d *docRec) {
	res := c.call("doc-delete", "DELETE", "/org/documents/"+d.id, o.token, nil, false)
	a := res.ans
	switch {
	case a == nil:
		c.r.gaveUpOn("doc-delete", res.last)
		d.maybeDeleted = true
	case a.status == http.StatusNoContent:
		c.r.ack("doc-delete")
		d.deleted = true
	case a.status == http.StatusNotFound && res.unknown:
		c.r.ack("doc-delete (404 on retry)")
		d.deleted = true
	case a.status == http.StatusNotFound:
		c.lost(o, d, fmt.Sprintf("DELETE /org/documents/{id} answered %s", a), res)
	default:
		c.unexpected(o, "doc-delete", "DELETE /org/documents/{id}", res)
	}
}

func (c *client) getDoc(o *orgRec, d *docRec) {
	res := c.call("doc-get", "GET", "/org/documents/"+d.id, o.token, nil, false)
	a := res.ans
	switch {
	case a == nil:
		c.r.gaveUpOn("doc-get", res.last)
	case a.status == http.StatusOK:
		c.r.ack("doc-get")
		got := canonical(dataOf(a))
		if d.deleted {
			c.r.violate("resurrected-document", "document "+d.id, fmt.Sprintf("its deletion was acknowledged; GET answered %s", got), append(res.reqIDs, o.id, d.id)...)
			return
		}
		d.maybeDeleted = false
		if !contains(d.states, got) {
			c.r.violate("wrong-content", "document "+d.id, fmt.Sprintf("GET answered data %s, expected one of %s", got, strings.Join(d.states, " | ")), append(res.reqIDs, o.id, d.id)...)
		}
	case a.status == http.StatusNotFound:
		if d.deleted {
			c.r.ack("doc-get (404 after delete)")
			return
		}
		c.lost(o, d, fmt.Sprintf("GET /org/documents/{id} answered %s", a), res)
	default:
		c.unexpected(o, "doc-get", "GET /org/documents/{id}", res)
	}
}

// listDocs lists every document of the organization and holds the listing
// to the ledger; false when a page got no definitive answer.
func (c *client) listDocs(o *orgRec, op string) bool {
	listed := map[string][]byte{}
	after := ""
	for {
		path := "/org/documents?limit=200"
		if after != "" {
			path += "&after=" + after
		}
		res := c.call(op, "GET", path, o.token, nil, false)
		if res.ans == nil {
			c.r.gaveUpOn(op, res.last)
			return false
		}
		if res.ans.status != http.StatusOK {
			c.unexpected(o, op, "GET /org/documents", res)
			return false
		}
		var page struct {
			Items []struct {
				ID   string          `json:"id"`
				Data json.RawMessage `json:"data"`
			} `json:"items"`
			Next *string `json:"next"`
		}
		if err := json.Unmarshal(res.ans.raw, &page); err != nil {
			c.r.violate("unexpected-answer", op+" "+res.first(), fmt.Sprintf("GET /org/documents answered %s", res.ans), res.reqIDs...)
			return false
		}
		for _, it := range page.Items {
			listed[it.ID] = it.Data
		}
		if page.Next == nil || *page.Next == "" {
			break
		}
		after = *page.Next
	}
	c.r.ack(op)
	c.compare(o, listed, "the listing")
	return true
}

// compare holds the documents found of an organization (id -> data) to
// the ledger: every live document there with an expected content, no
// deleted one, and nothing else but what an unanswered create may have
// made.
func (c *client) compare(o *orgRec, found map[string][]byte, where string) {
	for _, id := range o.order {
		d := o.docs[id]
		data, ok := found[id]
		switch {
		case d.deleted && ok:
			c.r.violate("resurrected-document", "document "+id, fmt.Sprintf("its deletion was acknowledged; %s holds it: %s", where, data), o.id, id)
		case d.deleted:
		case !ok && d.maybeDeleted:
			d.deleted, d.maybeDeleted = true, false
		case !ok:
			c.r.violate("lost-document", "document "+id,
				fmt.Sprintf("acknowledged document of %s %q (names %s) is not in %s; expected %s", o.id, o.name, strings.Join(o.names, " -> "), where, strings.Join(d.states, " | ")),
				append([]string{o.id, id}, c.r.otherHolders(o.name, o.id)...)...)
		default:
			d.maybeDeleted = false
			if got := canonical(data); !contains(d.states, got) {
				c.r.violate("wrong-content", "document "+id, fmt.Sprintf("%s holds %s, expected one of %s", where, got, strings.Join(d.states, " | ")), o.id, id)
			}
		}
	}
	for id, data := range found {
		if _, ok := o.docs[id]; ok {
			continue
		}
		tag, org := tagOf(data)
		if org == o.id && o.keyed[tag] && o.hasTag(tag) {
			c.r.violate("duplicate-create", "document "+id,
				fmt.Sprintf("%s of %s %q holds a second document of the create %q, which carried an Idempotency-Key: %s", where, o.id, o.name, tag, data), o.id, id)
			continue
		}
		if org == o.id && o.maybeTags[tag] {
			// Made by an attempt that got no answer: the ledger adopts it.
			o.docs[id] = &docRec{id: id, tag: tag, states: []string{canonical(data)}}
			o.order = append(o.order, id)
			c.r.note("document of an unanswered create adopted")
			continue
		}
		c.r.violate("foreign-document", "document "+id,
			fmt.Sprintf("%s of %s %q holds a document nobody made there (tag %q, written for organization %q): %s", where, o.id, o.name, tag, org, data), o.id, id, org)
	}
}

// lost reports an acknowledged document the service says is not there,
// unless an unanswered deletion explains it.
func (c *client) lost(o *orgRec, d *docRec, what string, res result) {
	if d.maybeDeleted {
		d.deleted, d.maybeDeleted = true, false
		return
	}
	keys := append(append(res.reqIDs, o.id, d.id), c.r.otherHolders(o.name, o.id)...)
	c.r.violate("lost-document", "document "+d.id,
		fmt.Sprintf("acknowledged document of %s %q (names %s): %s; other organizations that held the name: %s",
			o.id, o.name, strings.Join(o.names, " -> "), what, strings.Join(c.r.otherHolders(o.name, o.id), ", ")), keys...)
}

// unexpected reports an answer the operation has no business getting.
func (c *client) unexpected(o *orgRec, op, what string, res result) {
	kind := "unexpected-answer"
	if res.ans.status == http.StatusUnauthorized {
		if o.uncertain() {
			c.settleOrg(o)
			return
		}
		tokenWorks := func() bool {
			r := c.call("doc-list", "GET", "/org/documents?limit=1", o.token, nil, false)
			return r.ans != nil && r.ans.status == http.StatusOK
		}
		if !c.lasting(tokenWorks) {
			return // refused, so not applied: the ledger stands
		}
		c.r.violate("lost-organization", fmt.Sprintf("organization %s (%q)", o.id, o.name),
			fmt.Sprintf("%s answered %s", what, res.ans), append(res.reqIDs, o.id)...)
		return
	}
	c.r.violate(kind, fmt.Sprintf("%s %s", op, res.first()),
		fmt.Sprintf("%s of %s %q answered %s", what, o.id, o.name, res.ans), append(res.reqIDs, o.id)...)
}

// when is yes if cond holds, no otherwise.
func when(cond bool, yes, no int) int {
	if cond {
		return yes
	}
	return no
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

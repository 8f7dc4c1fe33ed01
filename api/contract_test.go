package api_test

// TestContractReplay replays the original service's recorded wire contract
// (testdata/transcript.jsonl, see the seed contract's README) against this
// service, step by step, as one scenario on one database. Every HTTP answer
// must match the recording, except where this service deliberately differs:
// those steps are listed in overrides, each with its reason, and must then
// match the override instead (and must not match the recording, so the table
// holds nothing it does not need).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/proc"
)

const transcriptPath = "testdata/transcript.jsonl"

// ---------------------------------------------------------------------------
// The transcript.

// step is one line of the transcript.
type step struct {
	Step     int          `json:"step"`
	Group    string       `json:"group"`
	Name     string       `json:"name"`
	Kind     string       `json:"kind"` // http, db, inspect or concurrent
	Request  stepRequest  `json:"request"`
	Response stepResponse `json:"response"`
}

type stepRequest struct {
	Method   string            `json:"method"`
	Path     string            `json:"path"` // with its query
	Headers  map[string]string `json:"headers"`
	Body     json.RawMessage   `json:"body"`     // a JSON body, sent as recorded
	BodyRaw  *string           `json:"body_raw"` // a body that is not valid JSON
	Parallel int               `json:"parallel"` // concurrent steps only
}

type stepResponse struct {
	Status         int               `json:"status"`
	Headers        map[string]string `json:"headers"`
	JSON           json.RawMessage   `json:"json"`
	Text           *string           `json:"text"`
	StatusesSorted []int             `json:"statuses_sorted"` // concurrent steps only
	Bodies         []string          `json:"bodies"`          // concurrent steps only
}

// loadTranscript returns the transcript's lines, undecoded: "<n>" (the race
// winner) is substituted into them when they are replayed.
func loadTranscript(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(transcriptPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			lines = append(lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// ---------------------------------------------------------------------------
// What an answer must look like.

// expectation is what one answer must look like. Zero fields are not checked.
type expectation struct {
	status      int
	contentType string   // media type the Content-Type must start with
	allow       []string // methods the Allow header must list (it may list more)
	location    string   // path (and query) the Location header must point at
	json        string   // the JSON body, with placeholders
	text        *string  // the exact text body
	then        *expectation
}

// race is what the answers to one concurrent step must look like.
type race struct {
	statuses []int          // sorted
	bodies   map[int]string // JSON body (with placeholders) by status
}

// recorded turns a recorded answer into an expectation.
func recorded(r stepResponse) expectation {
	want := expectation{status: r.Status, json: string(r.JSON)}
	if ct := r.Headers["content-type"]; ct != "" {
		want.contentType, _, _ = strings.Cut(ct, ";")
	}
	if allow := r.Headers["allow"]; allow != "" {
		for _, m := range strings.Split(allow, ",") {
			want.allow = append(want.allow, strings.TrimSpace(m))
		}
	}
	if loc := r.Headers["location"]; loc != "" {
		want.location = pathOf(loc)
	}
	if r.Text != nil && !strings.HasSuffix(*r.Text, "<truncated>") {
		want.text = r.Text
	}
	return want
}

// recordedRace turns a recorded concurrent step into a race.
func recordedRace(r stepResponse) race {
	want := race{statuses: r.StatusesSorted, bodies: map[int]string{}}
	for i, s := range r.StatusesSorted {
		if i < len(r.Bodies) {
			want.bodies[s] = r.Bodies[i]
		}
	}
	return want
}

func pathOf(location string) string {
	u, err := url.Parse(location)
	if err != nil {
		return location
	}
	if u.RawQuery != "" {
		return u.Path + "?" + u.RawQuery
	}
	return u.Path
}

// ---------------------------------------------------------------------------
// Where this service deliberately differs from the original.

// override is this service's expected answer to a step where it deliberately
// differs from the original.
type override struct {
	reason string
	want   expectation
	race   *race // for concurrent steps
}

func answer(status int, body, reason string) override {
	return override{reason: reason, want: expectation{status: status, contentType: "application/json", json: body}}
}

func detail(status int, msg, reason string) override {
	b, _ := json.Marshal(map[string]string{"detail": msg})
	return answer(status, string(b), reason)
}

func invalid(field, msg, typ, ctx, reason string) override {
	body := fmt.Sprintf(`{"detail":[{"loc":["body",%q],"msg":%q,"type":%q`, field, msg, typ)
	if ctx != "" {
		body += `,"ctx":` + ctx
	}
	return answer(http.StatusUnprocessableEntity, body+"}]}", reason)
}

func oneWinner(name, reason string) override {
	return override{reason: reason, race: &race{
		statuses: []int{201, 400, 400, 400, 400},
		bodies: map[int]string{
			201: fmt.Sprintf(`{"organization_name":%q,"collection_name":"org_%s","admin_id":"<objectid:%s<n>.admin>","created_at":"<datetime>"}`, name, name, name),
			400: `{"detail":"Organization already exists"}`,
		},
	}}
}

const (
	tooShort2 = "ensure this value has at least 2 characters"
	noNUL     = "value must not contain NUL characters"
	updated   = `{"detail":"Organization updated successfully","access_token":"<jwt:%s>","token_type":"bearer"}`
	loggedIn  = `{"access_token":"<jwt:%s>","token_type":"bearer"}`
)

var overrides = map[int]override{
	// One slug, one organization.
	22: detail(400, "Organization already exists", `"acme_inc" has the slug of "Acme Inc" (step 21): one slug is one organization and one collection`),
	// Names without ASCII letters or digits: Punycode slugs, one each.
	24: answer(201, `{"organization_name":"日本","collection_name":"org_xn--wgv71a","admin_id":"<objectid:nihon.admin>","created_at":"<datetime>"}`,
		`"日本" has the Punycode slug "xn--wgv71a", not "_", so it blocks no other such name`),
	25: answer(201, `{"organization_name":"中国","collection_name":"org_xn--fiqs8s","admin_id":"<objectid:zhongguo.admin>","created_at":"<datetime>"}`,
		`"中国" has a slug of its own, "xn--fiqs8s"; "!!" (step 26, all ASCII) keeps the original's "_"`),
	28: invalid("organization_name", tooShort2, "value_error.any_str.min_length", `{"limit_value":2}`,
		"the name's length is checked after trimming, so a blank name is refused"),
	33:  detail(404, "Organization not found", "no organization has the empty name (step 28 was refused)"),
	142: detail(404, "Organization not found", `"acme_inc" was never created (step 22)`),

	// Authentication: 401 with WWW-Authenticate, checked before the body.
	49:  detail(401, "Not authenticated", "a missing token is 401 (with WWW-Authenticate: Bearer), not 403"),
	50:  detail(401, "Invalid authentication credentials", "a scheme other than Bearer is 401, not 403"),
	58:  detail(401, "Invalid token", "a token without exp is refused"),
	65:  detail(401, "Not authenticated", "authentication is checked before the body is read"),
	66:  detail(401, "Not authenticated", "authentication is checked before the body is read, so malformed JSON without a token is 401"),
	130: detail(401, "Not authenticated", "a missing token is 401, not 403"),

	// Update and delete act on the caller's own organization only.
	72: detail(403, "Not authorized to update", "beta cannot update victim's organization"),
	74: answer(200, fmt.Sprintf(loggedIn, "victim"), "victim's credentials were never changed (step 72 was refused)"),
	75: detail(401, "Invalid credentials", "the attacker's credentials were never set (step 72 was refused)"),
	76: detail(403, "Not authorized to update", "beta cannot rename victim's organization"),
	78: detail(404, "Organization not found", `victim was never renamed (step 76 was refused), so "victim-renamed-by-beta" does not exist; the name is looked up before ownership is checked`),
	79: detail(404, "Organization not found", `victim's own token (from step 74; it was never stolen) deletes nothing: "victim-renamed-by-beta" does not exist`),

	// Rename.
	98: detail(409, "Organization name conflict", `"ALPHA" has the slug of alpha, which another organization holds`),

	// Passwords: no NUL, at most 72 bytes.
	102: invalid("password", noNUL, "value_error.str.nul", "", "a password with NUL is refused by validation (before anything moves), not a 500"),
	104: invalid("password", noNUL, "value_error.str.nul", "", "a password with NUL is refused by validation, not a 500 that leaves a ghost collection"),
	109: detail(401, "Invalid credentials", "a login password with NUL simply does not match, not a 500"),
	125: invalid("password", "ensure this value has at most 72 bytes (bcrypt's limit)", "value_error.any_str.max_bytes", `{"limit_value":72}`,
		"a password over 72 bytes is refused rather than silently truncated by bcrypt"),
	126: detail(401, "Invalid credentials", "longpw was never created (step 125 was refused)"),
	153: invalid("password", noNUL, "value_error.str.nul", "", "a password with NUL is refused by validation, not a 500"),

	// Admin e-mails are unique.
	117: detail(400, "Email already registered", "beta's admin already has that e-mail"),
	119: answer(200, fmt.Sprintf(loggedIn, "beta"), "beta's admin keeps its e-mail (step 117 was refused)"),
	120: detail(401, "Invalid credentials", "eightpw's admin never took beta's e-mail (step 117 was refused)"),
	121: detail(400, "Email already registered", "alpha's admin already has that e-mail"),
	138: detail(401, "Invalid credentials", "zeta was never created (step 121 was refused)"),

	// Content types.
	16: detail(415, "Unsupported Media Type: send application/json", "a body that is not JSON is 415, not 422"),
	47: detail(415, "Unsupported Media Type: send application/json", "a body that is not JSON is 415, not 422"),

	// Routing.
	143: answer(200, fmt.Sprintf(updated, "beta"), "POST /org/update is accepted, as the original's README documents"),
	144: detail(200, "Organization deleted successfully", "POST /org/delete is accepted, as the original's README documents (this deletes beta)"),
	151: {reason: "Go's redirect carries a short HTML body (the original's was empty)", want: expectation{
		status: http.StatusTemporaryRedirect, location: "/health", contentType: "text/html",
		text: ptr("<a href=\"/health\">Temporary Redirect</a>.\n\n"),
	}},
	152: {reason: "the API documentation is Swagger UI under /docs/, which /docs redirects to", want: expectation{
		status: http.StatusMovedPermanently, location: "/docs/index.html",
		then: &expectation{status: http.StatusOK, contentType: "text/html"},
	}},

	// Races: the slug claim lets exactly one of the parallel creates win.
	154: oneWinner("raceb", "a unique claim on the slug: exactly one of the parallel creates wins, the rest get 400"),
	160: oneWinner("racea", "a unique claim on the slug: exactly one of the parallel creates wins, the rest get 400"),
}

func ptr[T any](v T) *T { return &v }

// ---------------------------------------------------------------------------
// Comparing answers.

var (
	objectIDPattern = regexp.MustCompile(`^[0-9a-f]{24}$`)
	datetimePattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$`)
	jwtPattern      = regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`)
)

// matcher compares answers with expectations. Ids and tokens met on the way
// are collected in bound and tokens, and kept only if the whole step matches.
type matcher struct {
	known    map[string]string // ids bound by earlier steps
	bound    map[string]string // ids bound by this step
	tokens   map[string]string // tokens issued by this step, by WHO
	problems []string
}

func newMatcher(known map[string]string) *matcher {
	return &matcher{known: known, bound: map[string]string{}, tokens: map[string]string{}}
}

func (m *matcher) ok() bool { return len(m.problems) == 0 }

func (m *matcher) failf(format string, args ...any) {
	m.problems = append(m.problems, fmt.Sprintf(format, args...))
}

// answer checks one HTTP answer. Every 401 must carry a Bearer challenge.
func (m *matcher) answer(want expectation, got response) {
	if got.status != want.status {
		m.failf("status: got %d, want %d", got.status, want.status)
	}
	if _, err := bearerChallenge(got.header.Get("WWW-Authenticate")); got.status == http.StatusUnauthorized && err != nil {
		m.failf("401 without a Bearer challenge: %v", err)
	}
	if ct := got.header.Get("Content-Type"); want.contentType != "" && !strings.HasPrefix(ct, want.contentType) {
		m.failf("content-type: got %q, want %s", ct, want.contentType)
	}
	m.allow(want.allow, got.header.Get("Allow"))
	if loc := got.header.Get("Location"); want.location != "" && pathOf(loc) != want.location {
		m.failf("location: got %q, want %q", loc, want.location)
	}
	if want.text != nil && string(got.raw) != *want.text {
		m.failf("body: got %q, want %q", got.raw, *want.text)
	}
	if want.json != "" {
		m.body(want.json, got)
	}
}

func (m *matcher) allow(want []string, header string) {
	var got []string
	for _, method := range strings.Split(header, ",") {
		got = append(got, strings.TrimSpace(method))
	}
	for _, method := range want {
		if !slices.Contains(got, method) {
			m.failf("allow: got %q, want it to list %s", header, method)
		}
	}
}

func (m *matcher) body(want string, got response) {
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		m.failf("bad expected body %s: %v", want, err)
		return
	}
	if got.body == nil {
		m.failf("body: got %q, want JSON %s", got.raw, want)
		return
	}
	m.value("body", w, got.body)
}

// value compares a JSON value with an expected one, placeholders included.
func (m *matcher) value(path string, want, got any) {
	switch w := want.(type) {
	case string:
		if isPlaceholder(w) {
			m.placeholder(path, w, got)
			return
		}
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			m.failf("%s: got %v, want an object", path, got)
			return
		}
		if w["type"] == "value_error.jsondecode" {
			m.jsonDecodeError(path, w, g)
			return
		}
		m.object(path, w, g)
		return
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			m.failf("%s: got %v, want %v", path, got, want)
			return
		}
		for i := range w {
			m.value(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])
		}
		return
	}
	if !reflect.DeepEqual(want, got) {
		m.failf("%s: got %#v, want %#v", path, got, want)
	}
}

func (m *matcher) object(path string, want, got map[string]any) {
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			m.failf("%s.%s: missing", path, k)
			continue
		}
		m.value(path+"."+k, w, g)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			m.failf("%s.%s: unexpected (%v)", path, k, got[k])
		}
	}
}

// jsonDecodeError compares a value_error.jsondecode problem: the parser's
// wording may differ, the position may not.
func (m *matcher) jsonDecodeError(path string, want, got map[string]any) {
	m.value(path+".loc", want["loc"], got["loc"])
	m.value(path+".type", want["type"], got["type"])
	if msg, _ := got["msg"].(string); msg == "" {
		m.failf("%s.msg: got %v, want a message", path, got["msg"])
	}
	wctx, _ := want["ctx"].(map[string]any)
	gctx, ok := got["ctx"].(map[string]any)
	if !ok {
		m.failf("%s.ctx: got %v, want an object", path, got["ctx"])
		return
	}
	for _, k := range []string{"pos", "lineno", "colno"} {
		m.value(path+".ctx."+k, wctx[k], gctx[k])
	}
}

func isPlaceholder(s string) bool {
	return s == "<datetime>" || s == "<objectid>" ||
		(strings.HasSuffix(s, ">") && (strings.HasPrefix(s, "<objectid:") || strings.HasPrefix(s, "<jwt:")))
}

func (m *matcher) placeholder(path, want string, got any) {
	s, ok := got.(string)
	if !ok {
		m.failf("%s: got %v, want %s", path, got, want)
		return
	}
	inner := strings.TrimSuffix(strings.TrimPrefix(want, "<"), ">")
	kind, key, _ := strings.Cut(inner, ":")
	switch kind {
	case "datetime":
		m.shape(path, datetimePattern, s, want)
	case "objectid":
		if m.shape(path, objectIDPattern, s, want) && key != "" {
			m.bind(path, key, s)
		}
	case "jwt":
		if m.shape(path, jwtPattern, s, want) {
			m.tokens[key] = s
		}
	}
}

func (m *matcher) shape(path string, re *regexp.Regexp, got, want string) bool {
	if !re.MatchString(got) {
		m.failf("%s: got %q, want %s", path, got, want)
		return false
	}
	return true
}

// bind records the id named key, or checks it against the one seen before.
func (m *matcher) bind(path, key, id string) {
	seen, ok := m.known[key]
	if !ok {
		seen, ok = m.bound[key]
	}
	if ok && seen != id {
		m.failf("%s: got %s, want %s (the id of %s seen before)", path, id, seen, key)
		return
	}
	m.bound[key] = id
}

// ---------------------------------------------------------------------------
// The replay.

// replay is the state of one replay: the ids and tokens learned so far and
// the winner of the latest race.
type replay struct {
	t      *testing.T
	base   string
	ids    map[string]string // "alpha.admin", "alpha.org", ...
	tokens map[string]string // current token of each WHO
	winner int               // the <n> of the latest race
	seen   map[int]bool      // http and concurrent steps replayed
	tally  tally
}

type tally struct {
	original, overridden, failed  int // http and concurrent steps
	http, concurrent, db, inspect int
}

func TestContractReplay(t *testing.T) {
	e := newEnv(t)
	r := &replay{t: t, base: e.srv.URL, ids: map[string]string{}, tokens: map[string]string{}, seen: map[int]bool{}}
	for _, line := range loadTranscript(t) {
		r.run(line)
	}
	r.checkOverridesUsed()
	n := r.tally
	t.Logf("replayed %d http and %d concurrent steps: %d matched the original, %d matched their override (of %d overrides), %d failed; skipped %d db and %d inspect steps",
		n.http, n.concurrent, n.original, n.overridden, len(overrides), n.failed, n.db, n.inspect)
	if n.failed > 0 {
		t.Errorf("%d steps did not match", n.failed)
	}
}

func (r *replay) run(line string) {
	var st step
	if err := json.Unmarshal([]byte(strings.ReplaceAll(line, "<n>", strconv.Itoa(r.winner))), &st); err != nil {
		r.t.Fatalf("bad transcript line %q: %v", line, err)
	}
	switch st.Kind {
	case "db":
		r.tally.db++
	case "inspect":
		r.tally.inspect++
	case "http":
		r.seen[st.Step] = true
		r.tally.http++
		r.runHTTP(st)
	case "concurrent":
		// Decoded again: its "<n>" is the winner of this very race.
		var race step
		_ = json.Unmarshal([]byte(line), &race)
		r.seen[race.Step] = true
		r.tally.concurrent++
		r.runRace(race)
	default:
		r.t.Fatalf("step %d: unknown kind %q", st.Step, st.Kind)
	}
}

func (r *replay) runHTTP(st step) {
	headers, err := r.headers(st.Request.Headers)
	if err != nil {
		r.fail(st, []string{err.Error()}, response{})
		return
	}
	got, err := send(r.base, st.Request.Method, st.Request.Path, headers, requestBody(st.Request))
	if err != nil {
		r.fail(st, []string{err.Error()}, response{})
		return
	}
	want := recorded(st.Response)
	ov, overridden := overrides[st.Step]
	if overridden {
		if r.check(want, got).ok() {
			r.fail(st, []string{"matches the original: its override is not needed (" + ov.reason + ")"}, got)
			return
		}
		want = ov.want
	}
	m := r.check(want, got)
	if !m.ok() {
		r.fail(st, m.problems, got)
		return
	}
	r.commit(m, overridden)
}

// check compares an answer, and for a redirect that must lead somewhere,
// follows it.
func (r *replay) check(want expectation, got response) *matcher {
	m := newMatcher(r.ids)
	m.answer(want, got)
	if want.then != nil && m.ok() {
		next, err := send(r.base, http.MethodGet, pathOf(got.header.Get("Location")), nil, nil)
		if err != nil {
			m.failf("following %s: %v", got.header.Get("Location"), err)
			return m
		}
		m.answer(*want.then, next)
	}
	return m
}

func (r *replay) commit(m *matcher, overridden bool) {
	for k, v := range m.bound {
		r.ids[k] = v
	}
	for who, tok := range m.tokens {
		r.tokens[who] = tok
	}
	if overridden {
		r.tally.overridden++
	} else {
		r.tally.original++
	}
}

func (r *replay) fail(st step, problems []string, got response) {
	r.t.Helper()
	r.tally.failed++
	r.t.Errorf("step %d (%s/%s): %s\n\tanswer: %d %s", st.Step, st.Group, st.Name,
		strings.Join(problems, "\n\t"), got.status, got.raw)
}

// checkOverridesUsed fails for an override of a step that is not replayed.
func (r *replay) checkOverridesUsed() {
	for n := range overrides {
		if !r.seen[n] {
			r.t.Errorf("override for step %d, which is not an http or concurrent step", n)
		}
	}
}

// ---------------------------------------------------------------------------
// Requests and tokens.

func requestBody(req stepRequest) []byte {
	switch {
	case req.BodyRaw != nil:
		return []byte(*req.BodyRaw)
	case len(req.Body) > 0:
		return req.Body
	}
	return nil
}

var tokenPlaceholder = regexp.MustCompile(`<jwt:([^;>]+)((?:;[^>]*)?)>`)

// headers resolves the token placeholders of the recorded headers.
func (r *replay) headers(recorded map[string]string) (map[string]string, error) {
	out := map[string]string{}
	var firstErr error
	for k, v := range recorded {
		out[k] = tokenPlaceholder.ReplaceAllStringFunc(v, func(p string) string {
			sub := tokenPlaceholder.FindStringSubmatch(p)
			tok, err := r.token(sub[1], strings.TrimPrefix(sub[2], ";"))
			if err != nil && firstErr == nil {
				firstErr = err
			}
			return tok
		})
	}
	return out, firstErr
}

// token is WHO's current token or, with flags, one minted for the step.
func (r *replay) token(who, flags string) (string, error) {
	if flags == "" {
		tok, ok := r.tokens[who]
		if !ok {
			return "", fmt.Errorf("no token for %s: it never logged in", who)
		}
		return tok, nil
	}
	return r.mint(who, strings.Split(flags, ";"))
}

// mint signs a token like WHO's current one (or, for "?", like a real one
// for an admin that does not exist) changed as the flags say.
func (r *replay) mint(who string, flags []string) (string, error) {
	claims, err := r.baseClaims(who)
	if err != nil {
		return "", err
	}
	method, key := jwt.SigningMethod(jwt.SigningMethodHS256), any(testSecret)
	now := time.Now()
	for _, flag := range flags {
		name, value, _ := strings.Cut(flag, "=")
		switch {
		case flag == "expired":
			claims["iat"], claims["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
		case flag == "no-exp":
			delete(claims, "exp")
		case flag == "alg=none":
			method, key = jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType
		case flag == "wrong-secret":
			key = []byte("a-different-secret-that-is-also-32-bytes-long")
		case name == "org_id":
			if err := r.setOrg(claims, value); err != nil {
				return "", err
			}
		default:
			return "", fmt.Errorf("unknown token flag %q", flag)
		}
	}
	return jwt.NewWithClaims(method, claims).SignedString(key)
}

func (r *replay) baseClaims(who string) (jwt.MapClaims, error) {
	if who == "?" {
		now := time.Now()
		return jwt.MapClaims{
			"sub": bson.NewObjectID().Hex(), "iss": "orgsvc", "ver": 0,
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		}, nil
	}
	tok, ok := r.tokens[who]
	if !ok {
		return nil, fmt.Errorf("no token for %s to mint from", who)
	}
	return claimsOf(tok)
}

func claimsOf(token string) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		return nil, err
	}
	return claims, nil
}

// setOrg points the claims at org: "?" is an id no organization has.
func (r *replay) setOrg(claims jwt.MapClaims, org string) error {
	if org == "?" {
		claims["org_id"] = bson.NewObjectID().Hex()
		return nil
	}
	id, err := r.orgID(org)
	if err != nil {
		return err
	}
	claims["org_id"], claims["org"] = id, org
	if tok, ok := r.tokens[org]; ok {
		if c, err := claimsOf(tok); err == nil {
			claims["org"] = c["org"]
		}
	}
	return nil
}

// orgID is the id of the organization named name, from an earlier answer or
// else from GET /org/get.
func (r *replay) orgID(name string) (string, error) {
	if id, ok := r.ids[name+".org"]; ok {
		return id, nil
	}
	got, err := send(r.base, http.MethodGet, "/org/get?organization_name="+url.QueryEscape(name), nil, nil)
	if err != nil {
		return "", err
	}
	id, _ := got.obj()["_id"].(string)
	if got.status != http.StatusOK || id == "" {
		return "", fmt.Errorf("no id for organization %q: %d %s", name, got.status, got.raw)
	}
	r.ids[name+".org"] = id
	return id, nil
}

// send makes one request without following redirects; safe to call from
// several goroutines.
func send(base, method, path string, headers map[string]string, body []byte) (response, error) {
	_, res, raw, err := proc.Fetch(noRedirect, method, base+path, headers, body)
	if err != nil {
		return response{}, err
	}
	got := response{status: res.StatusCode, header: res.Header, raw: raw}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &got.body); err != nil {
			return got, fmt.Errorf("answer is not JSON: %v: %s", err, raw)
		}
	}
	return got, nil
}

// ---------------------------------------------------------------------------
// Races.

func (r *replay) runRace(st step) {
	answers, err := r.sendParallel(st.Request)
	if err != nil {
		r.fail(st, []string{err.Error()}, response{})
		return
	}
	r.winner = winner(answers)
	want := recordedRace(st.Response)
	ov, overridden := overrides[st.Step]
	if overridden {
		if r.checkRace(want, answers).ok() {
			r.fail(st, []string{"matches the original: its override is not needed (" + ov.reason + ")"}, response{})
			return
		}
		want = *ov.race
	}
	m := r.checkRace(want, answers)
	if !m.ok() {
		r.fail(st, m.problems, response{})
		return
	}
	r.commit(m, overridden)
}

// sendParallel sends the step's request `parallel` times at once; the i-th
// (from 1) replaces {i} in the body with i. answers[i-1] is the i-th answer.
func (r *replay) sendParallel(req stepRequest) ([]response, error) {
	answers := make([]response, req.Parallel)
	errs := make([]error, req.Parallel)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range req.Parallel {
		body := bytes.ReplaceAll(req.Body, []byte("{i}"), []byte(strconv.Itoa(i+1)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			answers[i], errs[i] = send(r.base, req.Method, req.Path, map[string]string{"Content-Type": "application/json"}, body)
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return answers, nil
}

// winner is the i of the first answer that created the organization.
func winner(answers []response) int {
	for i, a := range answers {
		if a.status == http.StatusCreated {
			return i + 1
		}
	}
	return 0
}

func (r *replay) checkRace(want race, answers []response) *matcher {
	m := newMatcher(r.ids)
	statuses := make([]int, len(answers))
	for i, a := range answers {
		statuses[i] = a.status
	}
	sort.Ints(statuses)
	if !slices.Equal(statuses, want.statuses) {
		m.failf("statuses: got %v, want %v", statuses, want.statuses)
	}
	for i, a := range answers {
		body, ok := want.bodies[a.status]
		if !ok {
			m.failf("answer %d: unexpected status %d: %s", i+1, a.status, a.raw)
			continue
		}
		body = strings.ReplaceAll(body, "<n>", strconv.Itoa(r.winner))
		m.answer(expectation{status: a.status, contentType: "application/json", json: body}, a)
	}
	return m
}

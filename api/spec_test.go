package api_test

// The spec does not lie: every request and answer that goes through
// env.request is held to docs/swagger.json, and the spec itself is checked
// for what a reader of /docs needs (summaries, descriptions, examples, every
// error answer, the security requirement where a token is needed).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// specFile is the published spec, relative to the repository root.
const specFile = "docs/swagger.json"

// specDocs holds the spec twice, converted to OpenAPI 3: requests are held
// to the spec as written (objects take members it does not list, as the
// service ignores unknown fields), answers to a strict copy in which an
// object schema that lists its properties takes no others, so an
// undocumented field in an answer fails. Free-form objects (a document's
// data, a problem's ctx) take anything in both.
type specDocs struct {
	raw         *openapi2.T
	lenient     *openapi3.T
	strict      *openapi3.T
	lenientRtr  routers.Router
	strictRtr   routers.Router
	loadProblem error
}

var (
	specOnce sync.Once
	spec     specDocs
)

// loadSpec reads and converts docs/swagger.json once per test binary.
func loadSpec(t testing.TB) *specDocs {
	t.Helper()
	specOnce.Do(func() { spec.loadProblem = spec.load() })
	if spec.loadProblem != nil {
		t.Fatalf("spec: %v", spec.loadProblem)
	}
	return &spec
}

func (s *specDocs) load() error {
	raw, err := os.ReadFile(filepath.Join(repoRoot(), specFile))
	if err != nil {
		return err
	}
	convert := func() (*openapi3.T, routers.Router, error) {
		var doc2 openapi2.T
		if err := json.Unmarshal(raw, &doc2); err != nil {
			return nil, nil, fmt.Errorf("%s is not a Swagger 2.0 document: %w", specFile, err)
		}
		doc3, err := openapi2conv.ToV3(&doc2)
		if err != nil {
			return nil, nil, fmt.Errorf("converting %s to OpenAPI 3: %w", specFile, err)
		}
		if err := openapi3.NewLoader().ResolveRefsIn(doc3, nil); err != nil {
			return nil, nil, fmt.Errorf("resolving %s: %w", specFile, err)
		}
		// basePath is "/" and there is no host: match on the path alone,
		// whatever httptest's address.
		doc3.Servers = nil
		rtr, err := legacy.NewRouter(doc3)
		if err != nil {
			return nil, nil, fmt.Errorf("routing %s: %w", specFile, err)
		}
		return doc3, rtr, nil
	}
	var doc2 openapi2.T
	if err := json.Unmarshal(raw, &doc2); err != nil {
		return err
	}
	s.raw = &doc2
	if s.lenient, s.lenientRtr, err = convert(); err != nil {
		return err
	}
	if s.strict, s.strictRtr, err = convert(); err != nil {
		return err
	}
	for _, ref := range s.strict.Components.Schemas {
		closeObjects(ref.Value, map[*openapi3.Schema]bool{})
	}
	for _, item := range s.strict.Paths.Map() {
		for _, op := range item.Operations() {
			for _, ref := range op.Responses.Map() {
				for _, mt := range ref.Value.Content {
					if mt.Schema != nil {
						closeObjects(mt.Schema.Value, map[*openapi3.Schema]bool{})
					}
				}
			}
		}
	}
	return nil
}

// closeObjects forbids members beyond the listed properties in every object
// schema that lists some.
func closeObjects(s *openapi3.Schema, seen map[*openapi3.Schema]bool) {
	if s == nil || seen[s] {
		return
	}
	seen[s] = true
	if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
		no := false
		s.AdditionalProperties.Has = &no
	}
	for _, p := range s.Properties {
		closeObjects(p.Value, seen)
	}
	if s.Items != nil {
		closeObjects(s.Items.Value, seen)
	}
	for _, list := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
		for _, r := range list {
			closeObjects(r.Value, seen)
		}
	}
}

// repoRoot is the module's root directory: the parent of this file's.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// specOptions accept any token: the service checks tokens, the spec only
// says where one is needed.
var specOptions = &openapi3filter.Options{
	MultiError:            true,
	IncludeResponseStatus: true,
	AuthenticationFunc: func(context.Context, *openapi3filter.AuthenticationInput) error {
		return nil
	},
}

// specSeen deduplicates mismatches within one test: each distinct problem
// of an operation is reported once, with the first request that showed it.
var specSeen = struct {
	sync.Mutex
	m map[testing.TB]map[string]bool
}{m: map[testing.TB]map[string]bool{}}

// checkSpec holds one exchange made through env.request to the spec. req is
// the request as sent (its body already consumed), body its body.
//
// Requests whose method and path are no operation of the spec (unknown
// routes, 405s, /docs) are not checked. The answer is always checked: its
// status must be documented for the operation, its content type listed and
// its body must match the schema. The request is checked only when the
// answer is 2xx: tests send malformed requests on purpose, and the service
// must refuse those, which its answer's check covers.
func (e *env) checkSpec(req *http.Request, body []byte, r response) {
	e.t.Helper()
	for _, problem := range specProblems(loadSpec(e.t), req, body, r) {
		// One report per problem, whatever value showed it.
		msg := problem.msg
		if i := strings.LastIndex(msg, " (got "); i >= 0 {
			msg = msg[:i]
		}
		key := problem.op + " " + strconv.Itoa(r.status) + ": " + msg
		specSeen.Lock()
		seen := specSeen.m[e.t]
		if seen == nil {
			seen = map[string]bool{}
			specSeen.m[e.t] = seen
			t := e.t
			e.t.Cleanup(func() {
				specSeen.Lock()
				delete(specSeen.m, t)
				specSeen.Unlock()
			})
		}
		dup := seen[key]
		seen[key] = true
		specSeen.Unlock()
		if !dup {
			e.t.Errorf("spec mismatch: %s %s -> %d (operation %s): %s", req.Method, req.URL.RequestURI(), r.status, problem.op, problem.msg)
		}
	}
}

type specProblem struct {
	op  string // "POST /org/documents/{id}"
	msg string
}

// specProblems lists how one exchange differs from the spec.
func specProblems(s *specDocs, sent *http.Request, body []byte, r response) []specProblem {
	req := sent.Clone(context.Background())
	route, params, err := s.strictRtr.FindRoute(req)
	if err != nil {
		return nil // not an operation of the spec
	}
	op := sent.Method + " " + route.Path
	var out []specProblem
	add := func(err error) {
		for _, m := range flatten(err) {
			out = append(out, specProblem{op: op, msg: m})
		}
	}

	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: specOptions}
	req.Body = io.NopCloser(bytes.NewReader(body))
	add(openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 r.status,
		Header:                 r.header,
		Body:                   io.NopCloser(bytes.NewReader(r.raw)),
		Options:                specOptions,
	}))

	if r.status >= 200 && r.status < 300 {
		lreq := sent.Clone(context.Background())
		lreq.Body = io.NopCloser(bytes.NewReader(body))
		lroute, lparams, err := s.lenientRtr.FindRoute(lreq)
		if err != nil {
			add(fmt.Errorf("request: %w", err))
		} else {
			err := openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
				Request: lreq, PathParams: lparams, Route: lroute, Options: specOptions,
			})
			if err != nil {
				for _, m := range flatten(err) {
					out = append(out, specProblem{op: op, msg: "request accepted with " + strconv.Itoa(r.status) + " but the spec refuses it: " + m})
				}
			}
		}
	}
	return out
}

// flatten turns a validator's error into one short line per problem: in
// the answer or the request, where in the body, and what is wrong.
func flatten(err error) []string {
	var out []string
	var walk func(prefix string, err error)
	walk = func(prefix string, err error) {
		switch e := err.(type) {
		case nil:
		case openapi3.MultiError:
			for _, inner := range e {
				walk(prefix, inner)
			}
		case *openapi3filter.ResponseError:
			if e.Err == nil {
				out = append(out, prefix+e.Reason)
				return
			}
			walk(prefix+e.Reason+": ", e.Err)
		case *openapi3filter.RequestError:
			where := "request"
			switch {
			case e.Parameter != nil:
				where = fmt.Sprintf("parameter %q in %s", e.Parameter.Name, e.Parameter.In)
			case e.RequestBody != nil:
				where = "request body"
			}
			if e.Reason != "" && (e.Err == nil || e.Reason != e.Err.Error()) {
				where += ": " + e.Reason
			}
			if e.Err == nil {
				out = append(out, prefix+where)
				return
			}
			walk(prefix+where+": ", e.Err)
		case *openapi3filter.SecurityRequirementsError:
			for _, inner := range e.Errors {
				walk(prefix+"security: ", inner)
			}
		case *openapi3.SchemaError:
			// Array indexes become *, so that one problem repeated in every
			// element of a list is reported once.
			ptr := e.JSONPointer()
			for i, p := range ptr {
				if _, err := strconv.Atoi(p); err == nil {
					ptr[i] = "*"
				}
			}
			out = append(out, fmt.Sprintf("%sat /%s: %s%s", prefix, strings.Join(ptr, "/"), e.Reason, valueNote(e.Value)))
		default:
			out = append(out, prefix+err.Error())
		}
	}
	walk("", err)
	return out
}

// valueNote names the offending value's JSON type, or shows it when it is
// short; the reason of a SchemaError leaves the value out.
func valueNote(v any) string {
	b, err := json.Marshal(v)
	if err != nil || len(b) > 40 {
		return fmt.Sprintf(" (got a %T)", v)
	}
	return " (got " + string(b) + ")"
}

// ---------------------------------------------------------------------------
// The spec itself.

// protectedPath reports whether the route needs a Bearer token: the routes
// behind the authenticate middleware in routes.go.
func protectedPath(path string) bool {
	return path == "/org/update" || path == "/org/delete" || path == "/admin/logout" || path == "/admin/switch" || path == "/me" ||
		path == "/org/documents" || strings.HasPrefix(path, "/org/documents/") ||
		path == "/org/members" || strings.HasPrefix(path, "/org/members/") ||
		path == "/org/invitations" || strings.HasPrefix(path, "/org/invitations/") ||
		path == "/org/audit" || path == "/org/audit/export" ||
		path == "/org/export" || path == "/org/import" || path == "/org/usage"
}

// isJSONMedia reports whether a media type is JSON, whose schemas swag gives
// examples (on their properties); a text answer such as /metrics has none.
func isJSONMedia(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

type specOp struct {
	method, path string
	op           *openapi3.Operation
}

func (s *specDocs) operations() []specOp {
	var ops []specOp
	for path, item := range s.lenient.Paths.Map() {
		for method, op := range item.Operations() {
			ops = append(ops, specOp{method, path, op})
		}
	}
	slices.SortFunc(ops, func(a, b specOp) int {
		return strings.Compare(a.path+" "+a.method, b.path+" "+b.method)
	})
	return ops
}

// TestSpecAnnotations checks that every operation of docs/swagger.json
// tells a reader what it needs: a summary, a description, an example in
// each of its request and answer schemas, every error answer it can give,
// and a security requirement exactly where the route needs a token.
func TestSpecAnnotations(t *testing.T) {
	s := loadSpec(t)
	scheme, ok := s.raw.SecurityDefinitions["BearerAuth"]
	if !ok {
		t.Fatal("securityDefinitions has no BearerAuth")
	}
	if scheme.Type != "apiKey" || scheme.In != "header" || scheme.Name != "Authorization" {
		t.Errorf("BearerAuth: got type %q in %q name %q, want an apiKey in the Authorization header", scheme.Type, scheme.In, scheme.Name)
	}
	ops := s.operations()
	if len(ops) == 0 {
		t.Fatal("the spec has no operations")
	}
	var problems []string
	for _, o := range ops {
		name := o.method + " " + o.path
		bad := func(format string, args ...any) {
			problems = append(problems, name+": "+fmt.Sprintf(format, args...))
		}
		op := o.op
		if strings.TrimSpace(op.Summary) == "" {
			bad("no summary")
		}
		if strings.TrimSpace(op.Description) == "" {
			bad("no description")
		}

		// Examples: every request body and every answer with a schema.
		hasBody, hasQuery := op.RequestBody != nil, false
		if hasBody {
			var without []string
			for _, mt := range sortedKeys(op.RequestBody.Value.Content) {
				content := op.RequestBody.Value.Content[mt]
				if isJSONMedia(mt) && content.Example == nil &&
					(content.Schema == nil || !hasExample(content.Schema.Value, map[*openapi3.Schema]bool{})) &&
					!(freeForm(content.Schema) && strings.Contains(op.RequestBody.Value.Description, "e.g. {")) {
					without = append(without, mt)
				}
			}
			if len(without) > 0 {
				bad("request body (%s): no example in its schema", strings.Join(without, ", "))
			}
		}
		for _, p := range op.Parameters {
			if p.Value.In == "query" {
				hasQuery = true
			}
		}
		responses := op.Responses.Map()
		for _, code := range sortedKeys(responses) {
			for mt, content := range responses[code].Value.Content {
				if isJSONMedia(mt) && content.Schema != nil && !hasExample(content.Schema.Value, map[*openapi3.Schema]bool{}) && content.Example == nil {
					bad("answer %s (%s): no example in its schema", code, mt)
				}
			}
		}

		// Error answers.
		secured := op.Security != nil && len(*op.Security) > 0
		want := []string{"500"}
		if secured {
			want = append(want, "401")
		}
		if hasBody || hasQuery {
			want = append(want, "422")
		}
		if hasBody {
			// Every body is read under a size limit and must be JSON.
			want = append(want, "413", "415")
		}
		for _, code := range want {
			if _, ok := responses[code]; !ok {
				bad("no %s answer documented", code)
			}
		}

		// Security exactly where the route needs a token.
		switch protected := protectedPath(o.path); {
		case protected && !secured:
			bad("needs a token but has no security requirement")
		case !protected && secured:
			bad("needs no token but has a security requirement")
		case secured:
			for _, req := range *op.Security {
				if _, ok := req["BearerAuth"]; !ok || len(req) != 1 {
					bad("security requirement %v is not BearerAuth alone", req)
				}
			}
		}
	}
	if len(problems) > 0 {
		t.Errorf("docs/swagger.json (fix the swag annotations in api/*.go, then make docs): %d problems:\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// hasExample reports whether the schema, or any schema within it, carries
// an example.
// freeForm reports whether a body schema is "any JSON object": swag cannot
// attach an object example to it, so its description must give one.
func freeForm(ref *openapi3.SchemaRef) bool {
	return ref != nil && ref.Value != nil && ref.Value.Type.Is("object") && len(ref.Value.Properties) == 0
}

func hasExample(s *openapi3.Schema, seen map[*openapi3.Schema]bool) bool {
	if s == nil || seen[s] {
		return false
	}
	seen[s] = true
	if s.Example != nil {
		return true
	}
	for _, p := range s.Properties {
		if hasExample(p.Value, seen) {
			return true
		}
	}
	if s.Items != nil && hasExample(s.Items.Value, seen) {
		return true
	}
	for _, list := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
		for _, r := range list {
			if hasExample(r.Value, seen) {
				return true
			}
		}
	}
	return false
}

// TestSpecOperationsServed checks the spec against the routes from the
// outside: every operation it lists is served (neither 404 Not Found nor
// 405), an operation with a security requirement answers 401 without a
// token and one without never does. The answers go through env.request, so
// they are held to the spec as well.
func TestSpecOperationsServed(t *testing.T) {
	s := loadSpec(t)
	e := newEnv(t)
	for _, o := range s.operations() {
		path := strings.ReplaceAll(o.path, "{id}", "665f1b2c9d3e4a0012345679")
		path = strings.ReplaceAll(path, "{account_id}", "665f1b2c9d3e4a0012345678")
		if strings.Contains(path, "{") {
			t.Errorf("%s %s: no value for its path parameters", o.method, o.path)
			continue
		}
		r := e.request(o.method, path, nil, nil)
		name := o.method + " " + o.path
		if r.status == http.StatusMethodNotAllowed || r.status == http.StatusNotFound && r.detail() == "Not Found" {
			t.Errorf("%s is in the spec but not served: %d %s", name, r.status, r.raw)
			continue
		}
		secured := o.op.Security != nil && len(*o.op.Security) > 0
		switch {
		case secured && r.status != http.StatusUnauthorized:
			t.Errorf("%s has a security requirement but answers %d without a token: %s", name, r.status, r.raw)
		case !secured && r.status == http.StatusUnauthorized:
			t.Errorf("%s has no security requirement but answers 401 without a token", name)
		}
	}
}

// TestSpecValidatorCatchesLies makes sure the validator is switched on:
// answers that differ from the spec are reported, and exchanges outside the
// spec are left alone.
func TestSpecValidatorCatchesLies(t *testing.T) {
	s := loadSpec(t)
	jsonHeader := http.Header{"Content-Type": []string{"application/json"}}
	req := func(method, path, body string) *http.Request {
		r, err := http.NewRequest(method, "http://127.0.0.1:1"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		return r
	}
	answer := func(status int, header http.Header, raw string) response {
		return response{status: status, header: header, raw: []byte(raw)}
	}
	cases := []struct {
		name       string
		req        *http.Request
		body       string
		res        response
		wantReport string // "" for no report
	}{
		{"documented answer", req("GET", "/health", ""), "", answer(200, jsonHeader, `{"status":"ok"}`), ""},
		{"undocumented status", req("GET", "/health", ""), "", answer(418, jsonHeader, `{"detail":"x"}`), "status is not supported"},
		{"wrong field type", req("GET", "/health", ""), "", answer(200, jsonHeader, `{"status":1}`), "/status"},
		{"undocumented field", req("GET", "/health", ""), "", answer(200, jsonHeader, `{"status":"ok","extra":1}`), "extra"},
		{"undocumented content type", req("GET", "/health", ""), "", answer(200, http.Header{"Content-Type": []string{"text/plain"}}, `ok`), "text/plain"},
		{"free-form data takes anything", req("GET", "/org/documents/665f1b2c9d3e4a0012345679", ""), "",
			answer(200, jsonHeader, `{"id":"665f1b2c9d3e4a0012345679","data":{"any":{"thing":[1,[2]]}},"created_at":"x","updated_at":"y"}`), ""},
		{"bad request accepted", req("POST", "/org/create", `{"organization_name":"Acme"}`), `{"organization_name":"Acme"}`,
			answer(201, jsonHeader, `{"organization_name":"Acme","collection_name":"org_acme","admin_id":"1","created_at":"x"}`), "request accepted"},
		{"bad request refused", req("POST", "/org/create", `{"organization_name":"Acme"}`), `{"organization_name":"Acme"}`,
			answer(422, jsonHeader, `{"detail":[{"loc":["body","email"],"msg":"field required","type":"value_error.missing"}]}`), ""},
		{"unknown route", req("GET", "/nope", ""), "", answer(404, jsonHeader, `{"detail":"Not Found"}`), ""},
		{"method not allowed", req("PATCH", "/health", ""), "", answer(405, jsonHeader, `{"detail":"Method Not Allowed"}`), ""},
		{"docs", req("GET", "/docs/index.html", ""), "", answer(200, http.Header{"Content-Type": []string{"text/html"}}, `<html>`), ""},
	}
	for _, c := range cases {
		problems := specProblems(s, c.req, []byte(c.body), c.res)
		var msgs []string
		for _, p := range problems {
			msgs = append(msgs, p.msg)
		}
		all := strings.Join(msgs, " | ")
		switch {
		case c.wantReport == "" && len(problems) > 0:
			t.Errorf("%s: unexpected report: %s", c.name, all)
		case c.wantReport != "" && !strings.Contains(all, c.wantReport):
			t.Errorf("%s: want a report mentioning %q, got %q", c.name, c.wantReport, all)
		}
	}
}

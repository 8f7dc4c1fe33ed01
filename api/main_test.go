package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgsvc/orgsvc/api"
	"github.com/orgsvc/orgsvc/internal/app"
	"github.com/orgsvc/orgsvc/internal/config"
	"github.com/orgsvc/orgsvc/internal/metrics"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/proc"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/security"
	"github.com/orgsvc/orgsvc/internal/service"
	"github.com/orgsvc/orgsvc/internal/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// testSecret signs every token in these tests.
var testSecret = []byte("test-secret-that-is-at-least-32-bytes-long")

// env is the whole service over a fresh database, served over real HTTP.
type env struct {
	t       testing.TB
	srv     *httptest.Server
	db      *mongo.Database
	cfg     config.Config
	logs    *proc.Buffer
	metrics *metrics.Metrics
	orgs    *service.OrgService
	// passwords is the service's bcrypt pool.
	passwords *security.Passwords
	// idFiltersOnly is what the store said of itself, as the service
	// learns it at start-up.
	idFiltersOnly bool
}

func testConfig() config.Config {
	return config.Config{
		MongoDB: "unused", JWTAlgorithm: "HS256", JWTExpiresMinutes: 60,
		JWTIssuer: "orgsvc", BcryptCost: 4, BcryptQueue: 64, LogLevel: "info", LogFormat: "json",
		MaxDocumentBytes: 1 << 20, MaxBodyBytes: 1 << 20, RequestTimeout: 10 * time.Second,
		OperationLease: 30 * time.Second, TenantsPerDatabase: 4,
	}
}

// newEnv starts the service with the test configuration, changed by each
// option in turn. The service's log goes to env.logs.
func newEnv(t testing.TB, options ...func(*config.Config)) *env {
	t.Helper()
	db := storetest.Database(t)
	return startEnv(t, db, func(ctx context.Context) error { return db.Client().Ping(ctx, nil) }, options...)
}

// startEnv serves the service over db, with ready as its readiness check.
func startEnv(t testing.TB, db *mongo.Database, ready func(context.Context) error, options ...func(*config.Config)) *env {
	t.Helper()
	cfg := testConfig()
	for _, o := range options {
		o(&cfg)
	}
	logs := &proc.Buffer{}
	log := app.NewLogger(logs, cfg.LogLevel, "json")
	passwords, err := security.NewPasswords(cfg.BcryptCost, cfg.BcryptWorkers, cfg.BcryptQueue)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(passwords)
	idFiltersOnly, err := repository.IDFiltersOnly(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := app.NewServices(cfg, app.Components{
		DB: db, Secret: testSecret, Logger: log, Passwords: passwords, Metrics: m,
		Ready: ready, PrepareCollection: storetest.PrepareCollection(db), IDFiltersOnly: idFiltersOnly,
		RawReader: storetest.RawReader(db),
	})
	if err != nil {
		t.Fatal(err)
	}
	if sv.Outbox != nil {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		go sv.Outbox.Run(ctx)
	}
	srv := httptest.NewServer(api.NewServer(sv.Deps))
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, db: db, cfg: cfg, logs: logs, metrics: m, orgs: sv.Orgs, passwords: passwords, idFiltersOnly: idFiltersOnly}
}

// response is one answer, with its body decoded as JSON when it is JSON.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   any
}

// obj is the body as a JSON object.
func (r response) obj() map[string]any {
	m, _ := r.body.(map[string]any)
	return m
}

// detail is the "detail" string of an error answer.
func (r response) detail() string {
	s, _ := r.obj()["detail"].(string)
	return s
}

// problems is the "detail" list of a 422 answer.
func (r response) problems() []map[string]any {
	list, _ := r.obj()["detail"].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, p := range list {
		m, _ := p.(map[string]any)
		out = append(out, m)
	}
	return out
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// request sends a request with a raw body and headers.
func (e *env) request(method, path string, body []byte, headers map[string]string) response {
	e.t.Helper()
	req, res, raw, err := proc.Fetch(noRedirect, method, e.srv.URL+path, headers, body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := response{status: res.StatusCode, header: res.Header, raw: raw}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		err := json.Unmarshal(raw, &r.body)
		if err != nil {
			// Numbers beyond float64 (documents may hold them) decode as
			// json.Number.
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			err = dec.Decode(&r.body)
		}
		if err != nil {
			e.t.Fatalf("%s %s: answer is not JSON: %v: %s", method, path, err, raw)
		}
	}
	e.checkSpec(req, body, r)
	return r
}

// call sends body as JSON, with a Bearer token when token is not empty.
func (e *env) call(method, path, token string, body any) response {
	e.t.Helper()
	return e.callWith(method, path, token, body, map[string]string{})
}

// callWith is call with headers of its own besides.
func (e *env) callWith(method, path, token string, body any, headers map[string]string) response {
	e.t.Helper()
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			e.t.Fatal(err)
		}
		headers["Content-Type"] = "application/json"
	}
	if token != "" {
		headers["Authorization"] = "Bearer " + token
	}
	return e.request(method, path, raw, headers)
}

// org is an organization a test signed up, with its admin's credentials.
type org struct {
	name, email, password string
	adminID, token        string
}

var nonHost = regexp.MustCompile(`[^a-z0-9]+`)

// signUp creates an organization and logs its admin in.
func (e *env) signUp(name string) *org {
	e.t.Helper()
	slug := strings.Trim(nonHost.ReplaceAllString(strings.ToLower(name), "-"), "-")
	o := &org{name: name, email: "admin@" + slug + ".example.com", password: name + "-pass-1"}
	r := e.call("POST", "/org/create", "", map[string]any{"organization_name": o.name, "email": o.email, "password": o.password})
	if r.status != http.StatusCreated {
		e.t.Fatalf("create %q: %d %s", name, r.status, r.raw)
	}
	o.adminID, _ = r.obj()["admin_id"].(string)
	o.token = e.login(o.email, o.password)
	return o
}

// login returns a token for the credentials, failing the test otherwise.
func (e *env) login(email, password string) string {
	e.t.Helper()
	r := e.call("POST", "/admin/login", "", map[string]any{"email": email, "password": password})
	if r.status != http.StatusOK {
		e.t.Fatalf("login %s: %d %s", email, r.status, r.raw)
	}
	tok, _ := r.obj()["access_token"].(string)
	return tok
}

// collections lists the master database's collections and every tenant
// collection, wherever it is.
func (e *env) collections() []string {
	e.t.Helper()
	names, err := e.db.ListCollectionNames(context.Background(), bson.D{})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, t := range e.tenants() {
		if t.DB != "" {
			names = append(names, repository.CollectionName(t.Slug))
		}
	}
	return names
}

// tenants lists every tenant collection.
func (e *env) tenants() []model.Tenant {
	e.t.Helper()
	ts, err := repository.NewTenantRepository(e.db, 0).Tenants(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return ts
}

// where lists the databases ("" for the master) holding the tenant
// collection of that name.
func (e *env) where(collection string) []string {
	e.t.Helper()
	var dbs []string
	for _, t := range e.tenants() {
		if repository.CollectionName(t.Slug) == collection {
			dbs = append(dbs, t.DB)
		}
	}
	return dbs
}

// tenant is the tenant collection of that name, in whichever database
// holds it.
func (e *env) tenant(name string) *mongo.Collection {
	e.t.Helper()
	dbs := e.where(name)
	switch {
	case len(dbs) == 0:
		e.t.Fatalf("no tenant collection %s", name)
	case dbs[0] == "":
		return e.db.Collection(name)
	}
	return e.db.Client().Database(dbs[0]).Collection(name)
}

// hasCollection reports whether the database has the named collection.
func (e *env) hasCollection(name string) bool {
	for _, n := range e.collections() {
		if n == name {
			return true
		}
	}
	return false
}

// expect fails the test unless the answer has the status and, when detail
// is not empty, that detail.
func expect(t testing.TB, r response, status int, detail string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status: got %d, want %d (%s)", r.status, status, r.raw)
	}
	if detail != "" && r.detail() != detail {
		t.Fatalf("detail: got %q, want %q", r.detail(), detail)
	}
}

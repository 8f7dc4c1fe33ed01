package api_test

import (
	"bufio"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/orgsvc/orgsvc/internal/config"
)

func TestForgedTokensAre401(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("alpha")
	claims := decodeClaims(t, o.token)
	mint := func(m jwt.SigningMethod, key any, change func(jwt.MapClaims)) string {
		c := jwt.MapClaims{}
		for k, v := range claims {
			c[k] = v
		}
		if change != nil {
			change(c)
		}
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	past := time.Now().Add(-time.Hour).Unix()
	tokens := map[string]string{
		"alg none":             mint(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil),
		"HS384, same secret":   mint(jwt.SigningMethodHS384, testSecret, nil),
		"HS512, same secret":   mint(jwt.SigningMethodHS512, testSecret, nil),
		"RS256":                mint(jwt.SigningMethodRS256, rsaKey, nil),
		"wrong secret":         mint(jwt.SigningMethodHS256, []byte("not-the-secret-not-the-secret-xx"), nil),
		"expired":              mint(jwt.SigningMethodHS256, testSecret, func(c jwt.MapClaims) { c["exp"] = past }),
		"expired past leeway":  mint(jwt.SigningMethodHS256, testSecret, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-31 * time.Second).Unix() }),
		"no exp":               mint(jwt.SigningMethodHS256, testSecret, func(c jwt.MapClaims) { delete(c, "exp") }),
		"no iat":               mint(jwt.SigningMethodHS256, testSecret, func(c jwt.MapClaims) { delete(c, "iat") }),
		"no iss":               mint(jwt.SigningMethodHS256, testSecret, func(c jwt.MapClaims) { delete(c, "iss") }),
		"foreign iss":          mint(jwt.SigningMethodHS256, testSecret, func(c jwt.MapClaims) { c["iss"] = "elsewhere" }),
		"old version":          mint(jwt.SigningMethodHS256, testSecret, func(c jwt.MapClaims) { c["ver"] = -1 }),
		"sub not an object id": mint(jwt.SigningMethodHS256, testSecret, func(c jwt.MapClaims) { c["sub"] = "admin" }),
		"exp as string":        mint(jwt.SigningMethodHS256, testSecret, func(c jwt.MapClaims) { c["exp"] = "never" }),
		"tampered":             o.token[:len(o.token)-2] + "xx",
		"garbage":              "a.b.c",
		"not base64":           "!!!.???.***",
	}
	for name, tok := range tokens {
		t.Run(name, func(t *testing.T) {
			for _, route := range [][2]string{{"PUT", "/org/update"}, {"GET", "/org/documents"}, {"POST", "/admin/logout"}} {
				r := e.call(route[0], route[1], tok, map[string]any{"organization_name": "alpha"})
				expect(t, r, http.StatusUnauthorized, "")
				if params, err := bearerChallenge(r.header.Get("WWW-Authenticate")); r.detail() == "" || err != nil || params["error"] != "invalid_token" {
					t.Fatalf("%s %s: %s, WWW-Authenticate %q", route[0], route[1], r.raw, r.header.Get("WWW-Authenticate"))
				}
			}
		})
	}
	// The genuine token still works: the refusals above were about the forgeries.
	expect(t, e.call("GET", "/org/documents", o.token, nil), http.StatusOK, "")
}

// A token names its organization by id; the slug it also carries steers
// nothing, so a token whose slug claim names another organization, or
// none, reaches only its own.
func TestTokenSlugClaimSteersNothing(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("alpha")
	beta := e.signUp("beta")
	secret := e.postDoc(beta, `{"beta":"secret"}`)
	claims := decodeClaims(t, o.token)
	claims["org"] = "beta"
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims)).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	mine := e.postDoc(&org{token: tok}, `{"alpha":"mine"}`)
	expect(t, e.call("GET", "/org/documents/"+secret, tok, nil), http.StatusNotFound, "Document not found")
	if got := e.listAll(o, "", 50); !slices.Equal(got, []string{mine}) {
		t.Fatalf("alpha lists %v, want only %s", got, mine)
	}
	if got := e.listAll(beta, "", 50); !slices.Equal(got, []string{secret}) {
		t.Fatalf("beta lists %v, want only %s", got, secret)
	}
	// Nor is it needed.
	delete(claims, "org")
	if tok, err = jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims)).SignedString(testSecret); err != nil {
		t.Fatal(err)
	}
	if got := e.listAll(&org{token: tok}, "", 50); !slices.Equal(got, []string{mine}) {
		t.Fatalf("without the slug claim alpha lists %v, want %s", got, mine)
	}
}

func TestLogoutEndsEveryTokenOfTheAdmin(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("alpha")
	second := e.login(o.email, o.password)
	other := e.signUp("beta")

	expect(t, e.call("POST", "/admin/logout", o.token, nil), http.StatusOK, "Logged out")
	for _, tok := range []string{o.token, second} {
		expect(t, e.call("GET", "/org/documents", tok, nil), http.StatusUnauthorized, "Token has been revoked")
	}
	// Other admins are untouched; logging in again works.
	expect(t, e.call("GET", "/org/documents", other.token, nil), http.StatusOK, "")
	fresh := e.login(o.email, o.password)
	expect(t, e.call("GET", "/org/documents", fresh, nil), http.StatusOK, "")
	expect(t, e.call("POST", "/admin/logout", "", nil), http.StatusUnauthorized, "Not authenticated")
}

func TestLoginRateLimits(t *testing.T) {
	t.Run("per email", func(t *testing.T) {
		e := newEnv(t, func(c *config.Config) { c.LoginRatePerEmail = 3 })
		a, b := e.signUp("alpha"), e.signUp("beta") // one login each already
		// Successes do not count; failures do, whatever the address's case.
		for range 4 {
			e.login(a.email, a.password)
		}
		for _, email := range []string{a.email, strings.ToUpper(a.email[:1]) + a.email[1:], strings.ToUpper(a.email)} {
			expect(t, e.call("POST", "/admin/login", "", map[string]any{"email": email, "password": "wrong-pass"}), http.StatusUnauthorized, "Invalid credentials")
		}
		r := e.call("POST", "/admin/login", "", map[string]any{"email": a.email, "password": "wrong-pass"})
		expect(t, r, http.StatusTooManyRequests, "Too many requests; retry later")
		if r.header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
		expect(t, e.call("POST", "/admin/login", "", map[string]any{"email": a.email, "password": a.password}), http.StatusTooManyRequests, "")
		e.login(b.email, b.password)
	})
	t.Run("per address", func(t *testing.T) {
		e := newEnv(t, func(c *config.Config) { c.LoginRatePerAddress = 4 })
		o := e.signUp("alpha") // 1
		for range 3 {
			e.login(o.email, o.password)
		}
		// X-Forwarded-For is ignored unless TRUST_PROXY says so.
		r := e.request("POST", "/admin/login", []byte(fmt.Sprintf(`{"email":%q,"password":%q}`, o.email, o.password)),
			map[string]string{"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.9"})
		expect(t, r, http.StatusTooManyRequests, "")
	})
	t.Run("behind a trusted proxy", func(t *testing.T) {
		e := newEnv(t, func(c *config.Config) { c.LoginRatePerAddress = 2; c.TrustProxy = 1 })
		o := e.signUp("alpha") // from the proxy's own address
		login := func(xff string) int {
			body := []byte(fmt.Sprintf(`{"email":%q,"password":%q}`, o.email, o.password))
			return e.request("POST", "/admin/login", body, map[string]string{"Content-Type": "application/json", "X-Forwarded-For": xff}).status
		}
		for range 2 {
			if s := login("198.51.100.1"); s != 200 {
				t.Fatalf("first logins: %d", s)
			}
		}
		if s := login("198.51.100.1"); s != http.StatusTooManyRequests {
			t.Fatalf("third login from one client: %d", s)
		}
		// A client cannot dodge the limit by prepending addresses: the
		// entry the proxy added is the one that counts.
		if s := login("10.0.0.1, 198.51.100.1"); s != http.StatusTooManyRequests {
			t.Fatalf("spoofed prefix: %d", s)
		}
		if s := login("198.51.100.2"); s != 200 {
			t.Fatalf("another client: %d", s)
		}
	})
	t.Run("create per address", func(t *testing.T) {
		e := newEnv(t, func(c *config.Config) { c.CreateRatePerAddress = 2 })
		e.signUp("alpha")
		e.signUp("beta")
		r := e.call("POST", "/org/create", "", map[string]any{"organization_name": "gamma", "email": "a@gamma.example.com", "password": "password-123"})
		expect(t, r, http.StatusTooManyRequests, "")
		expect(t, e.call("GET", "/org/get?organization_name=gamma", "", nil), http.StatusNotFound, "")
	})
	t.Run("zero turns a limit off", func(t *testing.T) {
		e := newEnv(t, func(c *config.Config) { c.LoginRatePerEmail = 0; c.LoginRatePerAddress = 0 })
		o := e.signUp("alpha")
		for range 40 {
			e.login(o.email, o.password)
		}
	})
}

func TestBcryptPoolTurnsAFloodAway(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.BcryptCost = 10; c.BcryptWorkers = 1; c.BcryptQueue = 1 })
	o := e.signUp("alpha")
	var wg sync.WaitGroup
	statuses := make(chan int, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := []byte(fmt.Sprintf(`{"email":%q,"password":%q}`, o.email, o.password))
			res, err := http.Post(e.srv.URL+"/admin/login", "application/json", strings.NewReader(string(body)))
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			if res.StatusCode == http.StatusServiceUnavailable && res.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			statuses <- res.StatusCode
		}()
	}
	// Other requests are served while the burst runs.
	expect(t, e.call("GET", "/org/get?organization_name=alpha", "", nil), http.StatusOK, "")
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[200] == 0 || count[503] == 0 || count[200]+count[503] != 16 {
		t.Fatalf("statuses %v: want some 200 and some fast 503", count)
	}
}

func TestRequestLimits(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.MaxBodyBytes = 2048; c.MaxDocumentBytes = 4096 })
	o := e.signUp("alpha")
	big := fmt.Sprintf(`{"organization_name":"beta","email":"a@beta.example.com","password":"password-123","pad":%q}`, strings.Repeat("x", 4096))
	expect(t, e.request("POST", "/org/create", []byte(big), map[string]string{"Content-Type": "application/json"}), http.StatusRequestEntityTooLarge, "Request body too large")
	expect(t, e.call("GET", "/org/get?organization_name=beta", "", nil), http.StatusNotFound, "")

	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"} {
		r := e.request("POST", "/admin/login", []byte(`{"email":"a@b.com","password":"x"}`), map[string]string{"Content-Type": ct})
		expect(t, r, http.StatusUnsupportedMediaType, "")
		r = e.request("POST", "/org/documents", []byte(`{"a":1}`), map[string]string{"Content-Type": ct, "Authorization": "Bearer " + o.token})
		expect(t, r, http.StatusUnsupportedMediaType, "")
	}
	// JSON with parameters, vendor JSON types, and no Content-Type at all are read as JSON.
	for _, ct := range []string{"application/json; charset=utf-8", "application/merge-patch+json"} {
		h := map[string]string{"Authorization": "Bearer " + o.token, "Content-Type": ct}
		expect(t, e.request("POST", "/org/documents", []byte(`{"a":1}`), h), http.StatusCreated, "")
	}
	// (Sent around the harness: the spec cannot describe a body without a type.)
	req, _ := http.NewRequest("POST", e.srv.URL+"/org/documents", strings.NewReader(`{"a":1}`))
	req.Header.Set("Authorization", "Bearer "+o.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("no Content-Type: %v %v", res, err)
	}
	res.Body.Close()
	// Trailing data after the JSON value is a 422.
	expect(t, e.request("POST", "/admin/login", []byte(`{"email":"a@b.com","password":"x"} {}`), map[string]string{"Content-Type": "application/json"}), http.StatusUnprocessableEntity, "")
	doc := fmt.Sprintf(`{"pad":%q}`, strings.Repeat("x", 4096))
	expect(t, e.request("POST", "/org/documents", []byte(doc), map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + o.token}), http.StatusRequestEntityTooLarge, "")
}

func TestSecurityHeadersAndCORS(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("alpha")
	for _, r := range []response{
		e.call("GET", "/health", "", nil),
		e.call("GET", "/nope", "", nil),
		e.call("GET", "/org/documents", "", nil),
		e.call("GET", "/org/documents", o.token, nil),
		e.call("GET", "/docs/index.html", "", nil),
	} {
		if r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("X-Frame-Options") != "DENY" {
			t.Fatalf("status %d: security headers missing: %v", r.status, r.header)
		}
	}
	r := e.call("GET", "/org/documents", o.token, nil)
	if r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("authenticated answer without Cache-Control: no-store: %v", r.header)
	}
	preflight := func(e *env, origin string) http.Header {
		return e.request("OPTIONS", "/org/documents", nil, map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization",
		}).header
	}
	if h := preflight(e, "https://app.example.com"); h.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("CORS is on by default: %v", h)
	}
	c := newEnv(t, func(c *config.Config) { c.CORSOrigins = []string{"https://app.example.com"} })
	if h := preflight(c, "https://app.example.com"); h.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("allowed origin refused: %v", h)
	}
	if h := preflight(c, "https://evil.example.com"); h.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("other origin allowed: %v", h)
	}
}

// TestLogsAndMetrics runs a full scenario and reads the log and the metrics
// as an operator would.
func TestLogsAndMetrics(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.LogLevel = "debug" }) // probes too
	o := e.signUp("alpha")
	id := e.postDoc(o, `{"kind":"invoice"}`)
	e.call("GET", "/org/documents/"+id, o.token, nil)
	e.call("POST", "/admin/login", "", map[string]any{"email": o.email, "password": "wrong-password-1"})
	r := e.call("PUT", "/org/update", o.token, map[string]any{"organization_name": "alpha", "password": "new-secret-pass-2", "email": "second@alpha.example.com"})
	newToken := r.obj()["access_token"].(string)
	e.call("GET", "/org/documents", newToken, nil)
	given := e.request("GET", "/health", nil, map[string]string{"X-Request-ID": "trace-abc.123"})
	if given.header.Get("X-Request-ID") != "trace-abc.123" {
		t.Fatalf("X-Request-ID not echoed: %v", given.header)
	}
	forged := e.request("GET", "/health", nil, map[string]string{"X-Request-ID": "bad id with spaces"})
	generated := forged.header.Get("X-Request-ID")
	if len(generated) != 32 {
		t.Fatalf("invalid X-Request-ID not replaced: %q", generated)
	}

	// One JSON line per request, with id, route, status, latency and org.
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(e.logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Text())
		}
		if m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	var sawOrg, sawGiven, sawGenerated bool
	for _, l := range lines {
		for _, k := range []string{"request_id", "route", "status", "duration_ms", "method"} {
			if _, ok := l[k]; !ok {
				t.Fatalf("request line without %s: %v", k, l)
			}
		}
		if l["route"] == "/org/documents/{id}" && l["org"] == "alpha" && l["status"] == 200.0 {
			sawOrg = true
		}
		sawGiven = sawGiven || l["request_id"] == "trace-abc.123"
		sawGenerated = sawGenerated || l["request_id"] == generated
	}
	if !sawOrg || !sawGiven || !sawGenerated {
		t.Fatalf("request lines lack the org or the request ids: %v", lines)
	}
	// No secret of the scenario reaches the log.
	logs := e.logs.String()
	var hash struct {
		Hash string `bson:"password_hash"`
	}
	_ = e.db.Collection("admins").FindOne(t.Context(), map[string]any{"email": "second@alpha.example.com"}).Decode(&hash)
	for _, secret := range []string{o.password, "new-secret-pass-2", "wrong-password-1", o.token, newToken, string(testSecret), hash.Hash} {
		if secret != "" && strings.Contains(logs, secret) {
			t.Fatalf("the log contains a secret: %.12s...", secret)
		}
	}
	if hash.Hash == "" {
		t.Fatal("could not read the stored hash to look for it")
	}

	m := e.call("GET", "/metrics", "", nil)
	body := string(m.raw)
	for _, want := range []string{
		`orgsvc_http_requests_total{method="POST",route="/org/create",status="201"} 1`,
		`orgsvc_http_requests_total{method="GET",route="/org/documents/{id}",status="200"} 1`,
		`orgsvc_logins_total{outcome="success"} 1`,
		`orgsvc_logins_total{outcome="invalid"} 1`,
		`orgsvc_http_request_duration_seconds_bucket{method="GET",route="/health"`,
		`orgsvc_bcrypt_queue 0`,
		`orgsvc_build_info{commit=`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, `route="/org/documents/`+id) {
		t.Error("metrics label by raw path, not route pattern")
	}
}

func TestReady(t *testing.T) {
	e := newEnv(t)
	r := e.call("GET", "/ready", "", nil)
	expect(t, r, http.StatusOK, "")
	if r.obj()["status"] != "ready" {
		t.Fatalf("ready: %s", r.raw)
	}
}

// TestProbesAreLoggedAtDebugLevel: polling /health, /ready and /metrics
// writes no request line at the info level; other routes do, and so does a
// probe at the debug level.
func TestProbesAreLoggedAtDebugLevel(t *testing.T) {
	for _, level := range []string{"info", "debug"} {
		t.Run(level, func(t *testing.T) {
			e := newEnv(t, func(c *config.Config) { c.LogLevel = level })
			for path, id := range map[string]string{"/health": "probe-health", "/ready": "probe-ready", "/metrics": "probe-metrics", "/org/get?organization_name=x": "probe-org-get"} {
				r := e.request("GET", path, nil, map[string]string{"X-Request-ID": id})
				if r.status >= 500 {
					t.Fatalf("%s: %d", path, r.status)
				}
			}
			for _, id := range []string{"probe-health", "probe-ready", "probe-metrics"} {
				logged := strings.Contains(e.logs.String(), `"request_id":"`+id+`"`)
				if logged != (level == "debug") {
					t.Errorf("%s at level %s: logged %v", id, level, logged)
				}
			}
			if !strings.Contains(e.logs.String(), `"request_id":"probe-org-get"`) {
				t.Errorf("a request to /org/get was not logged at level %s", level)
			}
		})
	}
}

// TestRequestDeadline: REQUEST_TIMEOUT bounds every API request, its
// database calls included (one that cannot finish in time is a 503 in the
// error shape), while the probes, which do not wait on the database, are
// not bound by it.
func TestRequestDeadline(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.RequestTimeout = time.Nanosecond })
	r := e.call("GET", "/org/get?organization_name=anyone", "", nil)
	expect(t, r, http.StatusServiceUnavailable, "database unavailable")
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	// A sign-up runs out of time waiting for a bcrypt worker or for the
	// database, whichever comes first.
	for range 5 {
		c := e.call("POST", "/org/create", "", map[string]any{"organization_name": "late", "email": "a@late.example.com", "password": "password-123"})
		if d := c.detail(); c.status != http.StatusServiceUnavailable || (d != "database unavailable" && d != "Server busy; retry later") || c.header.Get("Retry-After") == "" {
			t.Fatalf("sign-up past its deadline: %d %s", c.status, c.raw)
		}
	}
	expect(t, e.call("GET", "/health", "", nil), http.StatusOK, "")
	expect(t, e.call("GET", "/metrics", "", nil), http.StatusOK, "")
	if e.hasCollection("org_late") {
		t.Fatal("a sign-up past its deadline left its collection")
	}
}

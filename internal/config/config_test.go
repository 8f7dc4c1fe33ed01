package config_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orgsvc/orgsvc/internal/config"
)

// variable is one setting of config.Config as envconfig sees it.
type variable struct {
	name, def string
}

// variables lists the variables config.Config reads, from its envconfig and
// default tags.
func variables(t *testing.T) []variable {
	t.Helper()
	var vars []variable
	typ := reflect.TypeFor[config.Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		name := f.Tag.Get("envconfig")
		if name == "" {
			t.Fatalf("config.Config.%s has no envconfig tag", f.Name)
		}
		vars = append(vars, variable{name: name, def: f.Tag.Get("default")})
	}
	return vars
}

// getenv is an environment of "NAME=value" pairs, as Load reads it.
func getenv(t *testing.T, pairs ...string) func(string) string {
	t.Helper()
	env := map[string]string{}
	for _, p := range pairs {
		name, value, ok := strings.Cut(p, "=")
		if !ok {
			t.Fatalf("bad pair %q", p)
		}
		env[name] = value
	}
	return func(name string) string { return env[name] }
}

// loadWith is config.Load with the environment of pairs and, when dotenv is
// not empty, that .env file.
func loadWith(t *testing.T, dotenv string, pairs ...string) (config.Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), ".env")
	if dotenv != "" {
		if err := os.WriteFile(path, []byte(dotenv), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return config.LoadDotEnv(getenv(t, pairs...), path)
}

// load is config.Load with the environment of pairs and no .env file.
func load(t *testing.T, pairs ...string) (config.Config, error) {
	t.Helper()
	return loadWith(t, "", pairs...)
}

var secret32 = strings.Repeat("s", config.MinSecretBytes)

// same reports whether two configurations are equal, a nil list being equal
// to an empty one (Load gives nil for an unset list, empty for "").
func same(a, b config.Config) bool {
	return fmt.Sprintf("%+v", a) == fmt.Sprintf("%+v", b)
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := load(t)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"MongoURI", c.MongoURI, ""},
		{"MongoDB", c.MongoDB, "org_master"},
		{"TenantsPerDatabase", c.TenantsPerDatabase, 64},
		{"JWTSecret", c.JWTSecret, ""},
		{"JWTAlgorithm", c.JWTAlgorithm, "HS256"},
		{"JWTExpiresMinutes", c.JWTExpiresMinutes, 60},
		{"JWTIssuer", c.JWTIssuer, "orgsvc"},
		{"HTTPAddr", c.HTTPAddr, ":8000"},
		{"Port", c.Port, ""},
		{"DataDir", c.DataDir, "./data"},
		{"BcryptCost", c.BcryptCost, 12},
		{"EmbeddedMongoAddr", c.EmbeddedMongoAddr, ""},
		{"LogLevel", c.LogLevel, "info"},
		{"MaxDocumentBytes", c.MaxDocumentBytes, int64(1 << 20)},
		{"MaxPageBytes", c.MaxPageBytes, int64(4 << 20)},
		{"MaxDocumentKeys", c.MaxDocumentKeys, 10000},
		{"LoginRatePerEmail", c.LoginRatePerEmail, 10},
		{"LoginRatePerEmailTotal", c.LoginRatePerEmailTotal, 100},
		{"CredentialRatePerAccount", c.CredentialRatePerAccount, 5},
		{"CredentialRatePerAddress", c.CredentialRatePerAddress, 20},
		{"JWTMaxSession", c.JWTMaxSession, 24 * time.Hour},
		{"OrgDeleteRetention", c.OrgDeleteRetention, 168 * time.Hour},
	} {
		if f.got != f.want {
			t.Errorf("%s: got %#v, want %#v", f.name, f.got, f.want)
		}
	}
	if !c.Embedded() {
		t.Error("Embedded: got false, want true with no MONGO_URI")
	}
	if got, want := c.TokenTTL(), time.Hour; got != want {
		t.Errorf("TokenTTL: got %v, want %v", got, want)
	}
}

// Every variable left unset loads as if set to its default tag.
func TestLoadDefaultTags(t *testing.T) {
	t.Parallel()
	unset, err := load(t)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	var defaults []string
	for _, v := range variables(t) {
		if v.def != "" {
			defaults = append(defaults, v.name+"="+v.def)
		}
	}
	set, err := load(t, defaults...)
	if err != nil {
		t.Fatalf("Load with every default set explicitly: %v", err)
	}
	if !same(unset, set) {
		t.Errorf("unset: %+v\nset:   %+v", unset, set)
	}
}

func TestLoadValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   []string
		check func(t *testing.T, c config.Config)
	}{
		{
			name: "PORT honoured when HTTP_ADDR unset",
			env:  []string{"PORT=9090"},
			check: func(t *testing.T, c config.Config) {
				if c.HTTPAddr != ":9090" {
					t.Errorf("HTTPAddr: got %q, want %q", c.HTTPAddr, ":9090")
				}
			},
		},
		{
			name: "HTTP_ADDR wins over PORT",
			env:  []string{"PORT=9090", "HTTP_ADDR=127.0.0.1:7000"},
			check: func(t *testing.T, c config.Config) {
				if c.HTTPAddr != "127.0.0.1:7000" {
					t.Errorf("HTTPAddr: got %q, want %q", c.HTTPAddr, "127.0.0.1:7000")
				}
			},
		},
		{
			name: "MongoDB with a secret of exactly 32 bytes",
			env:  []string{"MONGO_URI=mongodb://db:27017", "JWT_SECRET=" + secret32},
			check: func(t *testing.T, c config.Config) {
				if c.Embedded() {
					t.Error("Embedded: got true, want false with MONGO_URI set")
				}
				if c.JWTSecret != secret32 {
					t.Errorf("JWTSecret: got %q", c.JWTSecret)
				}
			},
		},
		{
			name: "every setting at a bound",
			env: []string{
				"MONGO_DB=tenants_1", "JWT_ALGORITHM=HS512", "JWT_EXPIRES_MINUTES=43200",
				"JWT_ISSUER=issuer", "DATA_DIR=/var/lib/orgsvc", "BCRYPT_COST=4",
				"EMBEDDED_MONGO_ADDR=127.0.0.1:27018", "LOG_LEVEL=DEBUG", "MAX_DOCUMENT_BYTES=1024",
				"TENANTS_PER_DATABASE=0",
			},
			check: func(t *testing.T, c config.Config) {
				want := c
				want.MongoDB, want.JWTAlgorithm, want.JWTExpiresMinutes = "tenants_1", "HS512", 43200
				want.JWTIssuer, want.HTTPAddr, want.DataDir, want.BcryptCost = "issuer", ":8000", "/var/lib/orgsvc", 4
				want.EmbeddedMongoAddr, want.LogLevel, want.MaxDocumentBytes = "127.0.0.1:27018", "DEBUG", 1024
				want.TenantsPerDatabase = 0
				if !same(c, want) {
					t.Errorf("got  %+v\nwant %+v", c, want)
				}
			},
		},
		{
			name: "upper bounds",
			env:  []string{"BCRYPT_COST=16", "MAX_DOCUMENT_BYTES=16776192", "TENANTS_PER_DATABASE=100000", "MONGO_DB=" + strings.Repeat("d", 55)},
			check: func(t *testing.T, c config.Config) {
				if c.TenantsPerDatabase != 100000 || len(c.MongoDB) != 55 {
					t.Errorf("TenantsPerDatabase, MongoDB: got %d, %q", c.TenantsPerDatabase, c.MongoDB)
				}
				if c.BcryptCost != 16 {
					t.Errorf("BcryptCost: got %d, want 16", c.BcryptCost)
				}
				if c.MaxDocumentBytes != 16<<20-1024 {
					t.Errorf("MaxDocumentBytes: got %d, want %d", c.MaxDocumentBytes, 16<<20-1024)
				}
			},
		},
		{
			name: "page bytes and document keys at their bounds",
			env:  []string{"MAX_PAGE_BYTES=65536", "MAX_DOCUMENT_KEYS=1000000"},
			check: func(t *testing.T, c config.Config) {
				if c.MaxPageBytes != 64<<10 || c.MaxDocumentKeys != 1000000 {
					t.Errorf("MaxPageBytes, MaxDocumentKeys: got %d, %d", c.MaxPageBytes, c.MaxDocumentKeys)
				}
			},
		},
		{
			name: "page bytes and document keys at their other bounds",
			env:  []string{"MAX_PAGE_BYTES=67108864", "MAX_DOCUMENT_KEYS=1"},
			check: func(t *testing.T, c config.Config) {
				if c.MaxPageBytes != 64<<20 || c.MaxDocumentKeys != 1 {
					t.Errorf("MaxPageBytes, MaxDocumentKeys: got %d, %d", c.MaxPageBytes, c.MaxDocumentKeys)
				}
			},
		},
		{
			name: "session and credential limits at their bounds",
			env: []string{
				"JWT_MAX_SESSION=8784h", "CREDENTIAL_RATE_PER_ACCOUNT=0", "CREDENTIAL_RATE_PER_ADDRESS=0",
				"LOGIN_RATE_PER_EMAIL=7", "LOGIN_RATE_PER_EMAIL_TOTAL=7",
			},
			check: func(t *testing.T, c config.Config) {
				if c.JWTMaxSession != 366*24*time.Hour || c.CredentialRatePerAccount != 0 || c.CredentialRatePerAddress != 0 {
					t.Errorf("JWTMaxSession, CredentialRatePerAccount, CredentialRatePerAddress: got %s, %d, %d",
						c.JWTMaxSession, c.CredentialRatePerAccount, c.CredentialRatePerAddress)
				}
				if c.LoginRatePerEmail != 7 || c.LoginRatePerEmailTotal != 7 {
					t.Errorf("LoginRatePerEmail, LoginRatePerEmailTotal: got %d, %d", c.LoginRatePerEmail, c.LoginRatePerEmailTotal)
				}
			},
		},
		{
			name: "no session bound, no total login limit",
			env:  []string{"JWT_MAX_SESSION=0", "LOGIN_RATE_PER_EMAIL_TOTAL=0"},
			check: func(t *testing.T, c config.Config) {
				if c.JWTMaxSession != 0 || c.LoginRatePerEmailTotal != 0 {
					t.Errorf("JWTMaxSession, LoginRatePerEmailTotal: got %s, %d", c.JWTMaxSession, c.LoginRatePerEmailTotal)
				}
			},
		},
		{
			name: "deleted organizations purged at once",
			env:  []string{"ORG_DELETE_RETENTION=0"},
			check: func(t *testing.T, c config.Config) {
				if c.OrgDeleteRetention != 0 {
					t.Errorf("OrgDeleteRetention: got %s, want 0", c.OrgDeleteRetention)
				}
			},
		},
		{
			name: "embedded store exposed on purpose",
			env:  []string{"EMBEDDED_MONGO_ADDR=0.0.0.0:27017", "EMBEDDED_MONGO_ALLOW_REMOTE=true"},
			check: func(t *testing.T, c config.Config) {
				if c.EmbeddedMongoAddr != "0.0.0.0:27017" || !c.EmbeddedMongoAllowRemote {
					t.Errorf("EmbeddedMongoAddr, EmbeddedMongoAllowRemote: got %q, %v", c.EmbeddedMongoAddr, c.EmbeddedMongoAllowRemote)
				}
			},
		},
		{
			name: "embedded store on localhost and IPv6 loopback",
			env:  []string{"EMBEDDED_MONGO_ADDR=[::1]:27017"},
			check: func(t *testing.T, c config.Config) {
				if c.EmbeddedMongoAddr != "[::1]:27017" {
					t.Errorf("EmbeddedMongoAddr: got %q", c.EmbeddedMongoAddr)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := load(t, tt.env...)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      []string
		variable string // the error must name it
	}{
		{"JWT_ALGORITHM RS256", []string{"JWT_ALGORITHM=RS256"}, "JWT_ALGORITHM"},
		{"JWT_ALGORITHM none", []string{"JWT_ALGORITHM=none"}, "JWT_ALGORITHM"},
		{"BCRYPT_COST 3", []string{"BCRYPT_COST=3"}, "BCRYPT_COST"},
		{"BCRYPT_COST 17", []string{"BCRYPT_COST=17"}, "BCRYPT_COST"},
		{"BCRYPT_COST not a number", []string{"BCRYPT_COST=twelve"}, "BCRYPT_COST"},
		{"JWT_EXPIRES_MINUTES abc", []string{"JWT_EXPIRES_MINUTES=abc"}, "JWT_EXPIRES_MINUTES"},
		{"JWT_EXPIRES_MINUTES 0", []string{"JWT_EXPIRES_MINUTES=0"}, "JWT_EXPIRES_MINUTES"},
		{"JWT_EXPIRES_MINUTES over 30 days", []string{"JWT_EXPIRES_MINUTES=43201"}, "JWT_EXPIRES_MINUTES"},
		{"JWT_SECRET 31 bytes", []string{"JWT_SECRET=" + secret32[1:]}, "JWT_SECRET"},
		{"JWT_SECRET 31 bytes with MongoDB", []string{"MONGO_URI=mongodb://db:27017", "JWT_SECRET=" + secret32[1:]}, "JWT_SECRET"},
		{"MONGO_URI without JWT_SECRET", []string{"MONGO_URI=mongodb://db:27017"}, "JWT_SECRET"},
		{"LOG_LEVEL loud", []string{"LOG_LEVEL=loud"}, "LOG_LEVEL"},
		{"MONGO_DB with a dot", []string{"MONGO_DB=org.master"}, "MONGO_DB"},
		{"MONGO_DB over 55 bytes", []string{"MONGO_DB=" + strings.Repeat("d", 56)}, "MONGO_DB"},
		{"TENANTS_PER_DATABASE negative", []string{"TENANTS_PER_DATABASE=-1"}, "TENANTS_PER_DATABASE"},
		{"TENANTS_PER_DATABASE over 100000", []string{"TENANTS_PER_DATABASE=100001"}, "TENANTS_PER_DATABASE"},
		{"MAX_DOCUMENT_BYTES 1023", []string{"MAX_DOCUMENT_BYTES=1023"}, "MAX_DOCUMENT_BYTES"},
		{"MAX_DOCUMENT_BYTES over 16 MiB less 1 KiB", []string{"MAX_DOCUMENT_BYTES=16776193"}, "MAX_DOCUMENT_BYTES"},
		{"MAX_DOCUMENT_BYTES 1MB", []string{"MAX_DOCUMENT_BYTES=1MB"}, "MAX_DOCUMENT_BYTES"},
		{"MAX_BODY_BYTES 1023", []string{"MAX_BODY_BYTES=1023"}, "MAX_BODY_BYTES"},
		{"MAX_PAGE_BYTES below 64 KiB", []string{"MAX_PAGE_BYTES=65535"}, "MAX_PAGE_BYTES"},
		{"MAX_PAGE_BYTES over 64 MiB", []string{"MAX_PAGE_BYTES=67108865"}, "MAX_PAGE_BYTES"},
		{"MAX_PAGE_BYTES 4MiB", []string{"MAX_PAGE_BYTES=4MiB"}, "MAX_PAGE_BYTES"},
		{"MAX_DOCUMENT_KEYS 0", []string{"MAX_DOCUMENT_KEYS=0"}, "MAX_DOCUMENT_KEYS"},
		{"MAX_DOCUMENT_KEYS over a million", []string{"MAX_DOCUMENT_KEYS=1000001"}, "MAX_DOCUMENT_KEYS"},
		{"LOG_FORMAT xml", []string{"LOG_FORMAT=xml"}, "LOG_FORMAT"},
		{"LOGIN_RATE_PER_EMAIL negative", []string{"LOGIN_RATE_PER_EMAIL=-1"}, "LOGIN_RATE_PER_EMAIL"},
		{"LOGIN_RATE_PER_EMAIL_TOTAL negative", []string{"LOGIN_RATE_PER_EMAIL_TOTAL=-1"}, "LOGIN_RATE_PER_EMAIL_TOTAL"},
		{"LOGIN_RATE_PER_EMAIL_TOTAL below LOGIN_RATE_PER_EMAIL", []string{"LOGIN_RATE_PER_EMAIL=20", "LOGIN_RATE_PER_EMAIL_TOTAL=19"}, "LOGIN_RATE_PER_EMAIL_TOTAL"},
		{"CREDENTIAL_RATE_PER_ACCOUNT negative", []string{"CREDENTIAL_RATE_PER_ACCOUNT=-1"}, "CREDENTIAL_RATE_PER_ACCOUNT"},
		{"CREDENTIAL_RATE_PER_ADDRESS negative", []string{"CREDENTIAL_RATE_PER_ADDRESS=-1"}, "CREDENTIAL_RATE_PER_ADDRESS"},
		{"CREDENTIAL_RATE_PER_ACCOUNT not a number", []string{"CREDENTIAL_RATE_PER_ACCOUNT=five"}, "CREDENTIAL_RATE_PER_ACCOUNT"},
		{"JWT_MAX_SESSION negative", []string{"JWT_MAX_SESSION=-1h"}, "JWT_MAX_SESSION"},
		{"JWT_MAX_SESSION over 366 days", []string{"JWT_MAX_SESSION=8785h"}, "JWT_MAX_SESSION"},
		{"JWT_MAX_SESSION without a unit", []string{"JWT_MAX_SESSION=24"}, "JWT_MAX_SESSION"},
		{"REQUEST_TIMEOUT zero", []string{"REQUEST_TIMEOUT=0s"}, "REQUEST_TIMEOUT"},
		{"REQUEST_TIMEOUT without a unit", []string{"REQUEST_TIMEOUT=10"}, "REQUEST_TIMEOUT"},
		{"AUTH_CACHE_TTL over 5s", []string{"AUTH_CACHE_TTL=6s"}, "AUTH_CACHE_TTL"},
		{"ORG_CACHE_TTL over 5s", []string{"ORG_CACHE_TTL=6s"}, "ORG_CACHE_TTL"},
		{"ORG_CACHE_TTL negative", []string{"ORG_CACHE_TTL=-1s"}, "ORG_CACHE_TTL"},
		{"ORG_DELETE_RETENTION negative", []string{"ORG_DELETE_RETENTION=-1h"}, "ORG_DELETE_RETENTION"},
		{"ORG_DELETE_RETENTION without a unit", []string{"ORG_DELETE_RETENTION=168"}, "ORG_DELETE_RETENTION"},
		{"EMBEDDED_MONGO_ADDR on every interface", []string{"EMBEDDED_MONGO_ADDR=:27017"}, "EMBEDDED_MONGO_ALLOW_REMOTE"},
		{"EMBEDDED_MONGO_ADDR on a LAN address", []string{"EMBEDDED_MONGO_ADDR=192.0.2.10:27017"}, "EMBEDDED_MONGO_ADDR"},
		{"EMBEDDED_MONGO_ADDR without a port", []string{"EMBEDDED_MONGO_ADDR=127.0.0.1"}, "EMBEDDED_MONGO_ADDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, tt.env...)
			if err == nil {
				t.Fatalf("Load: no error, want one naming %s", tt.variable)
			}
			if !strings.Contains(err.Error(), tt.variable) {
				t.Errorf("Load: error %q does not name %s", err, tt.variable)
			}
		})
	}
}

// Validate reports every problem at once.
func TestLoadReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := load(t, "JWT_ALGORITHM=RS256", "BCRYPT_COST=3", "LOG_LEVEL=loud")
	if err == nil {
		t.Fatal("Load: no error")
	}
	for _, name := range []string{"JWT_ALGORITHM", "BCRYPT_COST", "LOG_LEVEL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

// TestLoadDotEnv: config.Load reads ./.env under what getenv gives, and
// leaves the process environment as it was.
func TestLoadDotEnv(t *testing.T) {
	t.Chdir(t.TempDir())
	dotenv := strings.Join([]string{
		"# a comment",
		"BCRYPT_COST=5",
		"LOG_LEVEL=debug",
		"LOG_FORMAT=text",
		"JWT_ISSUER=from-dotenv",
		"PORT=9999",
		"",
	}, "\n")
	if err := os.WriteFile(".env", []byte(dotenv), 0o600); err != nil {
		t.Fatal(err)
	}
	before := os.Environ()
	slices.Sort(before)

	c, err := config.Load(getenv(t, "BCRYPT_COST=6", "JWT_ISSUER=from-env", "LOG_FORMAT="))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	// The environment wins over .env ...
	if c.BcryptCost != 6 {
		t.Errorf("BcryptCost: got %d, want 6 from the environment", c.BcryptCost)
	}
	if c.JWTIssuer != "from-env" {
		t.Errorf("JWTIssuer: got %q, want %q from the environment", c.JWTIssuer, "from-env")
	}
	// ... and .env fills in what the environment leaves unset or empty.
	if c.LogLevel != "debug" {
		t.Errorf("LogLevel: got %q, want %q from .env", c.LogLevel, "debug")
	}
	if c.LogFormat != "text" {
		t.Errorf("LogFormat: got %q, want %q from .env over an empty variable", c.LogFormat, "text")
	}
	if c.HTTPAddr != ":9999" {
		t.Errorf("HTTPAddr: got %q, want %q from PORT in .env", c.HTTPAddr, ":9999")
	}
	// Untouched settings keep their defaults.
	if c.MongoDB != "org_master" {
		t.Errorf("MongoDB: got %q, want the default", c.MongoDB)
	}

	after := os.Environ()
	slices.Sort(after)
	if !slices.Equal(before, after) {
		var added []string
		for _, kv := range after {
			if _, found := slices.BinarySearch(before, kv); !found {
				added = append(added, kv)
			}
		}
		t.Errorf("Load changed the process environment: %d variables before, %d after, new or changed: %q", len(before), len(after), added)
	}
}

func TestLoadBadDotEnvValue(t *testing.T) {
	t.Parallel()
	_, err := loadWith(t, "BCRYPT_COST=99\n")
	if err == nil || !strings.Contains(err.Error(), "BCRYPT_COST") {
		t.Fatalf("Load: got %v, want an error naming BCRYPT_COST", err)
	}
	if _, err := loadWith(t, "BCRYPT_COST=twelve\n"); err == nil || err.Error() != `BCRYPT_COST: cannot parse "twelve" as int` {
		t.Fatalf("Load: got %v, want BCRYPT_COST: cannot parse \"twelve\" as int", err)
	}
}

// .env.example must list exactly the variables of config.Config, each with
// its default and a comment line above it.
func TestEnvExample(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "..", ".env.example")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	listed := map[string]string{}
	var order []string
	prevComment := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
			prevComment = false
		case strings.HasPrefix(line, "#"):
			prevComment = true
		default:
			name, value, ok := strings.Cut(line, "=")
			if !ok {
				t.Errorf("%s:%d: not NAME=value: %q", path, n, line)
				continue
			}
			if _, dup := listed[name]; dup {
				t.Errorf("%s:%d: %s listed twice", path, n, name)
			}
			if !prevComment {
				t.Errorf("%s:%d: %s has no comment line above it", path, n, name)
			}
			listed[name] = value
			order = append(order, name)
			prevComment = false
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}

	want := map[string]bool{}
	for _, v := range variables(t) {
		want[v.name] = true
		value, ok := listed[v.name]
		if !ok {
			t.Errorf("%s: %s is missing", path, v.name)
			continue
		}
		if value != v.def {
			t.Errorf("%s: %s=%q, want the default %q", path, v.name, value, v.def)
		}
	}
	for _, name := range order {
		if !want[name] {
			t.Errorf("%s: %s is not a variable of config.Config", path, name)
		}
	}
}

// Copied to .env as it stands, .env.example gives the defaults.
func TestEnvExampleAsDotEnv(t *testing.T) {
	t.Parallel()
	example, err := os.ReadFile(filepath.Join("..", "..", ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := loadWith(t, string(example))
	if err != nil {
		t.Fatalf("Load with .env.example as .env: %v", err)
	}
	want, err := load(t)
	if err != nil {
		t.Fatal(err)
	}
	if !same(got, want) {
		t.Errorf("got  %+v\nwant %+v (the defaults)", got, want)
	}
}

// TestEmptyMeansUnset: a variable set to "" takes its default, as if unset.
func TestEmptyMeansUnset(t *testing.T) {
	t.Parallel()
	c, err := load(t, "BCRYPT_COST=", "MONGO_DB=", "REQUEST_TIMEOUT=", "MONGO_URI=", "JWT_SECRET=")
	if err != nil {
		t.Fatal(err)
	}
	if c.BcryptCost != 12 || c.MongoDB != "org_master" || c.RequestTimeout.String() != "10s" || !c.Embedded() {
		t.Fatalf("got %+v", c)
	}
}

// TestMetricsAddr: METRICS_ADDR is empty by default (/metrics on HTTP_ADDR),
// takes a host:port, and is refused naming it when it is not one or is
// HTTP_ADDR itself.
func TestMetricsAddr(t *testing.T) {
	t.Parallel()
	c, err := load(t)
	if err != nil || c.MetricsAddr != "" {
		t.Fatalf("default: %q, %v; want empty", c.MetricsAddr, err)
	}
	for _, addr := range []string{"127.0.0.1:9100", ":9100", "[::1]:9100", "localhost:0"} {
		if c, err := load(t, "METRICS_ADDR="+addr); err != nil || c.MetricsAddr != addr {
			t.Errorf("METRICS_ADDR=%s: got %q, %v", addr, c.MetricsAddr, err)
		}
	}
	for _, env := range [][]string{
		{"METRICS_ADDR=9100"},
		{"METRICS_ADDR=metrics.example.com"},
		{"METRICS_ADDR=:8000"},
		{"HTTP_ADDR=127.0.0.1:7000", "METRICS_ADDR=127.0.0.1:7000"},
		{"PORT=9090", "METRICS_ADDR=:9090"},
	} {
		if _, err := load(t, env...); err == nil || !strings.Contains(err.Error(), "METRICS_ADDR") {
			t.Errorf("%v: error %v, want one naming METRICS_ADDR", env, err)
		}
	}
}

// ORG_CACHE_TTL is 1s unless set; 0 (off) and 5s are accepted.
func TestOrgCacheTTL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		env  []string
		want time.Duration
	}{{nil, time.Second}, {[]string{"ORG_CACHE_TTL=0"}, 0}, {[]string{"ORG_CACHE_TTL=5s"}, 5 * time.Second}} {
		c, err := load(t, tt.env...)
		if err != nil {
			t.Fatalf("%v: %v", tt.env, err)
		}
		if c.OrgCacheTTL != tt.want {
			t.Errorf("%v: got %s, want %s", tt.env, c.OrgCacheTTL, tt.want)
		}
	}
}

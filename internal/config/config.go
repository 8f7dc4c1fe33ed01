// Package config loads the service's settings from the environment.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"
	_ "unsafe" // go:linkname

	"github.com/joho/godotenv"
	"github.com/kelseyhightower/envconfig"
)

// Config holds every setting the service reads from its environment.
// Each field's envconfig tag names its variable; .env.example lists them all.
type Config struct {
	MongoURI string `envconfig:"MONGO_URI"`
	MongoDB  string `envconfig:"MONGO_DB" default:"org_master"`
	// TenantsPerDatabase is how many tenant collections a tenant database
	// (MONGO_DB + "_t000" onwards) receives before new ones go to the
	// next; 0 keeps them in MONGO_DB itself.
	TenantsPerDatabase int    `envconfig:"TENANTS_PER_DATABASE" default:"64"`
	JWTSecret          string `envconfig:"JWT_SECRET"`
	JWTAlgorithm       string `envconfig:"JWT_ALGORITHM" default:"HS256"`
	JWTExpiresMinutes  int    `envconfig:"JWT_EXPIRES_MINUTES" default:"60"`
	JWTIssuer          string `envconfig:"JWT_ISSUER" default:"orgsvc"`
	HTTPAddr           string `envconfig:"HTTP_ADDR"`
	Port               string `envconfig:"PORT"`
	DataDir            string `envconfig:"DATA_DIR" default:"./data"`
	BcryptCost         int    `envconfig:"BCRYPT_COST" default:"12"`
	EmbeddedMongoAddr  string `envconfig:"EMBEDDED_MONGO_ADDR"`
	// EmbeddedMongoAllowRemote lets EMBEDDED_MONGO_ADDR be an address other
	// than loopback: the embedded store has no authentication.
	EmbeddedMongoAllowRemote bool   `envconfig:"EMBEDDED_MONGO_ALLOW_REMOTE" default:"false"`
	LogLevel                 string `envconfig:"LOG_LEVEL" default:"info"`
	LogFormat                string `envconfig:"LOG_FORMAT" default:"json"`
	MaxDocumentBytes         int64  `envconfig:"MAX_DOCUMENT_BYTES" default:"1048576"`
	MaxBodyBytes             int64  `envconfig:"MAX_BODY_BYTES" default:"1048576"`
	// MaxPageBytes bounds the documents' data in a listing page (one
	// document at least); MaxDocumentKeys the keys of a document, nested
	// ones included.
	MaxPageBytes    int64 `envconfig:"MAX_PAGE_BYTES" default:"4194304"`
	MaxDocumentKeys int   `envconfig:"MAX_DOCUMENT_KEYS" default:"10000"`

	// Abuse limits, per minute; 0 turns a limit off. LoginRatePerEmail
	// counts failed logins for one e-mail from one client address,
	// LoginRatePerEmailTotal those for one e-mail from all addresses.
	LoginRatePerEmail      int `envconfig:"LOGIN_RATE_PER_EMAIL" default:"10"`
	LoginRatePerEmailTotal int `envconfig:"LOGIN_RATE_PER_EMAIL_TOTAL" default:"100"`
	LoginRatePerAddress    int `envconfig:"LOGIN_RATE_PER_ADDRESS" default:"30"`
	CreateRatePerAddress   int `envconfig:"CREATE_RATE_PER_ADDRESS" default:"10"`
	// Changes of an admin's e-mail or password (each hashes), per admin
	// and per client address.
	CredentialRatePerAccount int `envconfig:"CREDENTIAL_RATE_PER_ACCOUNT" default:"5"`
	CredentialRatePerAddress int `envconfig:"CREDENTIAL_RATE_PER_ADDRESS" default:"20"`
	// TrustProxy is how many reverse proxies stand in front of the service:
	// the client address is taken that many entries from the right of
	// X-Forwarded-For. 0 ignores the header.
	TrustProxy int `envconfig:"TRUST_PROXY" default:"0"`
	// CORSOrigins lists the origins allowed to call the API from a browser,
	// comma-separated; empty turns CORS off.
	CORSOrigins []string `envconfig:"CORS_ORIGINS"`

	// BcryptWorkers bounds concurrent bcrypt work (0: one per core);
	// BcryptQueue is how many more may wait before answers are 503.
	BcryptWorkers int `envconfig:"BCRYPT_WORKERS" default:"0"`
	BcryptQueue   int `envconfig:"BCRYPT_QUEUE" default:"32"`

	// AuthCacheTTL is how long an instance trusts a token it verified
	// against the database; 0 checks every request.
	AuthCacheTTL time.Duration `envconfig:"AUTH_CACHE_TTL" default:"1s"`
	// OrgCacheTTL is how long an instance keeps an organization's record
	// (by name and by id); 0 reads it every time.
	OrgCacheTTL time.Duration `envconfig:"ORG_CACHE_TTL" default:"1s"`

	// JWTMaxSession is how long a session lasts from its login, however
	// often its token is refreshed; 0: no bound.
	JWTMaxSession time.Duration `envconfig:"JWT_MAX_SESSION" default:"24h"`

	RequestTimeout   time.Duration `envconfig:"REQUEST_TIMEOUT" default:"10s"`
	ShutdownTimeout  time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"15s"`
	DBConnectTimeout time.Duration `envconfig:"DB_CONNECT_TIMEOUT" default:"30s"`

	// OperationLease is how long an instance holds an organization's
	// create, update or delete: it gives up acting after half of it, and
	// another instance may finish the operation once all of it has passed.
	OperationLease time.Duration `envconfig:"OPERATION_LEASE" default:"30s"`

	// SMTPURL, when set, is the mail server invitations go through
	// (smtp://user:pass@host:port, STARTTLS when offered, or smtps://),
	// from MailFrom. InvitationURL, when set, is the link in the mail, with
	// {token} in it; InvitationTTL how long an invitation may be accepted.
	SMTPURL       string        `envconfig:"SMTP_URL"`
	MailFrom      string        `envconfig:"MAIL_FROM" default:"orgsvc@localhost"`
	InvitationURL string        `envconfig:"INVITATION_URL"`
	InvitationTTL time.Duration `envconfig:"INVITATION_TTL" default:"168h"`

	// MetricsAddr, when set, serves /metrics on a listener of its own
	// instead of HTTP_ADDR; empty keeps it on HTTP_ADDR.
	MetricsAddr string `envconfig:"METRICS_ADDR"`

	// AuditRetention is how long audit events are kept (0: for ever);
	// AuditDocuments records document writes too.
	AuditRetention time.Duration `envconfig:"AUDIT_RETENTION" default:"8760h"`
	AuditDocuments bool          `envconfig:"AUDIT_DOCUMENTS" default:"false"`

	// OrgDeleteRetention is how long a deleted organization may be
	// restored (orgsvc org restore) before it is purged; 0 purges at once.
	OrgDeleteRetention time.Duration `envconfig:"ORG_DELETE_RETENTION" default:"168h"`

	// ImportMaxBytes bounds the body of POST /org/import.
	ImportMaxBytes int64 `envconfig:"IMPORT_MAX_BYTES" default:"1073741824"`

	// Per-organization limits (0: none), which an operator may override
	// for one organization (orgsvc org limits): storage quotas, and a
	// request rate with a burst over all the organization's members.
	TenantMaxDocuments int64   `envconfig:"TENANT_MAX_DOCUMENTS" default:"0"`
	TenantMaxBytes     int64   `envconfig:"TENANT_MAX_BYTES" default:"0"`
	OrgRatePerSecond   float64 `envconfig:"ORG_RATE_PER_SECOND" default:"200"`
	OrgRateBurst       int     `envconfig:"ORG_RATE_BURST" default:"50"`
}

// MaxMongoDBBytes is the longest MONGO_DB accepted: MongoDB's 63 bytes
// less room for the suffix of a tenant database ("_t" and up to six
// digits).
const MaxMongoDBBytes = 55

// MinSecretBytes is the shortest JWT_SECRET accepted.
const MinSecretBytes = 32

// Embedded reports whether the service runs its own in-process database.
func (c Config) Embedded() bool { return c.MongoURI == "" }

// TokenTTL is how long an issued token stays valid.
func (c Config) TokenTTL() time.Duration {
	return time.Duration(c.JWTExpiresMinutes) * time.Minute
}

// Load reads the configuration through getenv (os.Getenv in main). A file
// .env in the working directory, when present, fills in variables getenv
// leaves empty; getenv always wins. The process environment is not changed.
func Load(getenv func(string) string) (Config, error) {
	return load(getenv, ".env")
}

// load is Load with the .env file at dotenv.
func load(getenv func(string) string, dotenv string) (Config, error) {
	file, err := godotenv.Read(dotenv)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Config{}, fmt.Errorf(".env: %w", err)
	}
	// A variable set to "" counts as unset: it takes the .env value or the
	// default. A name .env sets, even to "", is set.
	lookup := func(name string) (string, bool) {
		if v := getenv(name); v != "" {
			return v, true
		}
		v, ok := file[name]
		return v, ok
	}
	var c Config
	if err := decode(&c, lookup); err != nil {
		return Config{}, err
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = ":8000"
		if c.Port != "" {
			c.HTTPAddr = ":" + c.Port
		}
	}
	return c, c.Validate()
}

// envLookup is envconfig's lookup of a variable (os.LookupEnv), which it
// offers no way to replace: decode swaps it for a call, under decoding,
// so that settings can come from somewhere other than the process
// environment without that environment being changed.
//
//go:linkname envLookup github.com/kelseyhightower/envconfig.lookupEnv
var envLookup func(string) (string, bool)

var decoding sync.Mutex

// decode sets every field of c with envconfig, reading variables through
// lookup.
func decode(c *Config, lookup func(string) (string, bool)) error {
	decoding.Lock()
	defer decoding.Unlock()
	saved := envLookup
	envLookup = lookup
	defer func() { envLookup = saved }()
	err := envconfig.Process("", c)
	var perr *envconfig.ParseError
	if errors.As(err, &perr) {
		return fmt.Errorf("%s: cannot parse %q as %s", perr.KeyName, perr.Value, perr.TypeName)
	}
	return err
}

// Validate checks values that parse but cannot work, naming the variable.
func (c Config) Validate() error {
	var errs []error
	switch c.JWTAlgorithm {
	case "HS256", "HS384", "HS512":
	default:
		errs = append(errs, fmt.Errorf("JWT_ALGORITHM: %q is not one of HS256, HS384, HS512", c.JWTAlgorithm))
	}
	if c.JWTExpiresMinutes < 1 || c.JWTExpiresMinutes > 60*24*30 {
		errs = append(errs, fmt.Errorf("JWT_EXPIRES_MINUTES: %d is outside 1..43200", c.JWTExpiresMinutes))
	}
	if c.BcryptCost < 4 || c.BcryptCost > 16 {
		errs = append(errs, fmt.Errorf("BCRYPT_COST: %d is outside 4..16", c.BcryptCost))
	}
	if c.MongoDB == "" || strings.ContainsAny(c.MongoDB, "/\\. \"$\x00") || len(c.MongoDB) > MaxMongoDBBytes {
		errs = append(errs, fmt.Errorf("MONGO_DB: %q is not a valid database name of at most %d bytes", c.MongoDB, MaxMongoDBBytes))
	}
	if c.TenantsPerDatabase < 0 || c.TenantsPerDatabase > 100000 {
		errs = append(errs, fmt.Errorf("TENANTS_PER_DATABASE: %d is outside 0..100000", c.TenantsPerDatabase))
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < MinSecretBytes {
		errs = append(errs, fmt.Errorf("JWT_SECRET: must be at least %d bytes, got %d", MinSecretBytes, len(c.JWTSecret)))
	}
	if !c.Embedded() && c.JWTSecret == "" {
		errs = append(errs, errors.New("JWT_SECRET: required when MONGO_URI is set"))
	}
	if c.Embedded() && c.DataDir == "" {
		errs = append(errs, errors.New("DATA_DIR: required when MONGO_URI is empty"))
	}
	if c.Embedded() && c.EmbeddedMongoAddr != "" && !c.EmbeddedMongoAllowRemote && !loopback(c.EmbeddedMongoAddr) {
		errs = append(errs, fmt.Errorf("EMBEDDED_MONGO_ADDR: %q is not a loopback address (127.0.0.1:PORT, [::1]:PORT, localhost:PORT); "+
			"the embedded database has no authentication, so set EMBEDDED_MONGO_ALLOW_REMOTE=true only on a network you trust", c.EmbeddedMongoAddr))
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("LOG_LEVEL: %q is not one of debug, info, warn, error", c.LogLevel))
	}
	if c.MaxDocumentBytes < 1024 || c.MaxDocumentBytes > 16<<20-1024 {
		errs = append(errs, fmt.Errorf("MAX_DOCUMENT_BYTES: %d is outside 1024..%d (MongoDB's 16 MiB document limit)", c.MaxDocumentBytes, 16<<20-1024))
	}
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 64<<20 {
		errs = append(errs, fmt.Errorf("MAX_BODY_BYTES: %d is outside 1024..%d", c.MaxBodyBytes, 64<<20))
	}
	if c.MaxPageBytes < 64<<10 || c.MaxPageBytes > 64<<20 {
		errs = append(errs, fmt.Errorf("MAX_PAGE_BYTES: %d is outside %d..%d", c.MaxPageBytes, 64<<10, 64<<20))
	}
	if c.MaxDocumentKeys < 1 || c.MaxDocumentKeys > 1000000 {
		errs = append(errs, fmt.Errorf("MAX_DOCUMENT_KEYS: %d is outside 1..1000000", c.MaxDocumentKeys))
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		errs = append(errs, fmt.Errorf("LOG_FORMAT: %q is not json or text", c.LogFormat))
	}
	for _, v := range []struct {
		name string
		n    int
	}{
		{"LOGIN_RATE_PER_EMAIL", c.LoginRatePerEmail}, {"LOGIN_RATE_PER_ADDRESS", c.LoginRatePerAddress},
		{"CREATE_RATE_PER_ADDRESS", c.CreateRatePerAddress}, {"TRUST_PROXY", c.TrustProxy},
		{"BCRYPT_WORKERS", c.BcryptWorkers}, {"BCRYPT_QUEUE", c.BcryptQueue},
		{"LOGIN_RATE_PER_EMAIL_TOTAL", c.LoginRatePerEmailTotal},
		{"CREDENTIAL_RATE_PER_ACCOUNT", c.CredentialRatePerAccount}, {"CREDENTIAL_RATE_PER_ADDRESS", c.CredentialRatePerAddress},
	} {
		if v.n < 0 {
			errs = append(errs, fmt.Errorf("%s: %d must not be negative", v.name, v.n))
		}
	}
	if c.LoginRatePerEmailTotal > 0 && c.LoginRatePerEmailTotal < c.LoginRatePerEmail {
		errs = append(errs, fmt.Errorf("LOGIN_RATE_PER_EMAIL_TOTAL: %d is below LOGIN_RATE_PER_EMAIL (%d), which would then never apply",
			c.LoginRatePerEmailTotal, c.LoginRatePerEmail))
	}
	if c.JWTMaxSession < 0 || c.JWTMaxSession > 366*24*time.Hour {
		errs = append(errs, fmt.Errorf("JWT_MAX_SESSION: %s is outside 0..8784h (366 days)", c.JWTMaxSession))
	}
	for _, v := range []struct {
		name string
		d    time.Duration
	}{
		{"REQUEST_TIMEOUT", c.RequestTimeout}, {"SHUTDOWN_TIMEOUT", c.ShutdownTimeout}, {"DB_CONNECT_TIMEOUT", c.DBConnectTimeout},
		{"OPERATION_LEASE", c.OperationLease},
	} {
		if v.d <= 0 {
			errs = append(errs, fmt.Errorf("%s: %s must be positive", v.name, v.d))
		}
	}
	if c.AuthCacheTTL < 0 || c.AuthCacheTTL > 5*time.Second {
		errs = append(errs, fmt.Errorf("AUTH_CACHE_TTL: %s is outside 0..5s", c.AuthCacheTTL))
	}
	if c.OrgCacheTTL < 0 || c.OrgCacheTTL > 5*time.Second {
		errs = append(errs, fmt.Errorf("ORG_CACHE_TTL: %s is outside 0..5s", c.OrgCacheTTL))
	}
	if c.TenantMaxDocuments < 0 || c.TenantMaxBytes < 0 || c.OrgRatePerSecond < 0 || c.OrgRateBurst < 0 {
		errs = append(errs, errors.New("TENANT_MAX_DOCUMENTS, TENANT_MAX_BYTES, ORG_RATE_PER_SECOND, ORG_RATE_BURST: none may be negative (0 is no limit)"))
	}
	if c.ImportMaxBytes < 1<<10 || c.ImportMaxBytes > 1<<40 {
		errs = append(errs, fmt.Errorf("IMPORT_MAX_BYTES: %d is outside 1024..1099511627776 (1 TiB)", c.ImportMaxBytes))
	}
	if c.AuditRetention != 0 && c.AuditRetention < time.Hour {
		errs = append(errs, fmt.Errorf("AUDIT_RETENTION: %s is under 1h (0 keeps events for ever)", c.AuditRetention))
	}
	if c.OrgDeleteRetention < 0 {
		errs = append(errs, fmt.Errorf("ORG_DELETE_RETENTION: %s must not be negative (0 purges a deleted organization at once)", c.OrgDeleteRetention))
	}
	if c.JWTIssuer == "" {
		errs = append(errs, errors.New("JWT_ISSUER: must not be empty"))
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("METRICS_ADDR: %q is not host:port", c.MetricsAddr))
		} else if c.MetricsAddr == c.HTTPAddr {
			errs = append(errs, fmt.Errorf("METRICS_ADDR: %q is HTTP_ADDR itself; leave it empty to serve /metrics there", c.MetricsAddr))
		}
	}
	return errors.Join(errs...)
}

// loopback reports whether addr (host:port) names a loopback host.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

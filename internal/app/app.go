// Package app wires the service together: configuration, database,
// repositories, services and the HTTP server, and its subcommands.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgsvc/orgsvc/api"
	"github.com/orgsvc/orgsvc/internal/audit"
	"github.com/orgsvc/orgsvc/internal/buildinfo"
	"github.com/orgsvc/orgsvc/internal/config"
	"github.com/orgsvc/orgsvc/internal/mail"
	"github.com/orgsvc/orgsvc/internal/metrics"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/security"
	"github.com/orgsvc/orgsvc/internal/service"
	"github.com/orgsvc/orgsvc/internal/store"
)

const usage = `orgsvc: multi-tenant organization management service

Usage:
  orgsvc [serve]    run the HTTP service (the default)
  orgsvc check      scan the master metadata against the tenant collections
                    and list every inconsistency (exit status 1 if any)
  orgsvc check --repair
                    finish or roll back interrupted operations, fix what
                    can be fixed, report what was done, then check again
  orgsvc audit verify [--org NAME|ID]
                    check the hash chains of the audit logs (exit status 1
                    at a broken link)
  orgsvc audit export --org NAME|ID [--since TIME] [--until TIME]
                    write an organization's audit log as NDJSON (a deleted
                    one's by id)
  orgsvc export --org NAME|ID [--out FILE]
                    write an organization's documents as NDJSON
  orgsvc import --org NAME|ID [--mode merge|replace] FILE
                    load an export into an organization
  orgsvc org list|suspend|resume|limits|deleted|restore ...
                    list organizations, suspend or resume one, set its
                    limits, list or restore deleted ones (orgsvc org --help)
  orgsvc health     ask the service configured here for /health (a probe for
                    images without curl; exit status 0 when it answers 200)
  orgsvc version    print the version and the commit it was built from
  orgsvc help       show this help (also -h, --help)

Configuration comes from the environment (and a .env file in the working
directory when present); see .env.example. With no MONGO_URI the service
runs an embedded database under DATA_DIR (default ./data).
`

// Run runs the program with its arguments (args[0] is the program name) and
// its environment, read through getenv (os.Getenv in main), and returns the
// process exit status. It serves until ctx is cancelled.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 1 {
		cmd = args[1]
	}
	switch cmd {
	case "serve":
		if len(args) > 2 {
			fmt.Fprintf(stderr, "orgsvc: serve takes no arguments, got %q\n\n%s", args[2:], usage)
			return 2
		}
		if err := serve(ctx, getenv, stderr); err != nil {
			fmt.Fprintf(stderr, "orgsvc: %v\n", err)
			return 1
		}
		return 0
	case "check":
		repair := len(args) == 3 && args[2] == "--repair"
		if len(args) > 2 && !repair {
			fmt.Fprintf(stderr, "orgsvc: check takes only --repair, got %q\n\n%s", args[2:], usage)
			return 2
		}
		return check(ctx, repair, getenv, stdout, stderr)
	case "audit":
		return auditCommand(ctx, args[2:], getenv, stdout, stderr)
	case "org":
		return orgCommand(ctx, args[2:], getenv, stdout, stderr)
	case "export":
		return exportCommand(ctx, args[2:], getenv, stdout, stderr)
	case "import":
		return importCommand(ctx, args[2:], getenv, stdout, stderr)
	case "health":
		if len(args) > 2 {
			fmt.Fprintf(stderr, "orgsvc: health takes no arguments, got %q\n\n%s", args[2:], usage)
			return 2
		}
		return health(ctx, getenv, stdout, stderr)
	case "version", "-version", "--version":
		bi := buildinfo.Read()
		fmt.Fprintf(stdout, "orgsvc %s (commit %s, %s)\n", bi.Version, bi.Commit, bi.GoVersion)
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		what := "command"
		if strings.HasPrefix(cmd, "-") {
			what = "flag"
		}
		fmt.Fprintf(stderr, "orgsvc: unknown %s %q\n\n%s", what, cmd, usage)
		return 2
	}
}

func serve(ctx context.Context, getenv func(string) string, logOut io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	log := NewLogger(logOut, cfg.LogLevel, cfg.LogFormat)

	// The port first: an instance that cannot serve opens no store and
	// settles nothing.
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: %w", err)
	}
	defer ln.Close()
	var metricsLn net.Listener
	if cfg.MetricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return fmt.Errorf("METRICS_ADDR: %w", err)
		}
		defer metricsLn.Close()
	}

	passwords, err := security.NewPasswords(cfg.BcryptCost, cfg.BcryptWorkers, cfg.BcryptQueue)
	if err != nil {
		return err
	}
	m := metrics.New(passwords)

	st, err := store.Open(ctx, store.Options{
		URI: cfg.MongoURI, Database: cfg.MongoDB, DataDir: cfg.DataDir,
		EmbeddedAddr: cfg.EmbeddedMongoAddr, Logger: log,
		ConnectTimeout:   cfg.DBConnectTimeout,
		OnCommandFailed:  func(cmd string) { m.DBErrors.WithLabelValues(cmd).Inc() },
		OnCommandStarted: func(cmd string) { m.DBCommands.WithLabelValues(cmd).Inc() },
	})
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(context.Background()); err != nil {
			log.Warn("close database", "err", err)
		}
		log.Info("database closed")
	}()
	if cfg.Embedded() {
		log.Info("embedded database started", "uri", st.URI, "data_dir", cfg.DataDir)
	}

	secret := []byte(cfg.JWTSecret)
	if len(secret) == 0 {
		if secret, err = security.LoadOrCreateSecret(filepath.Join(cfg.DataDir, "jwt_secret")); err != nil {
			return fmt.Errorf("JWT secret: %w", err)
		}
	}
	sv, err := NewServices(cfg, Components{
		DB: st.DB, Secret: secret, Logger: log, Passwords: passwords, Metrics: m, Ready: st.Ping,
		PrepareCollection: st.IndexCollection, IDFiltersOnly: st.IDFiltersOnly, RawReader: st.RawReader(),
		// For make bench alone, which measures what the log costs.
		NoAudit: getenv("ORGSVC_AUDIT_OFF") == "1",
	})
	if err != nil {
		return err
	}
	// Before any event is recorded: logs of the layout before this one.
	if sv.Audit != nil {
		if n, err := sv.Audit.MoveLegacy(ctx); err != nil {
			return fmt.Errorf("moving the audit logs of the version before: %w", err)
		} else if n > 0 {
			log.Info("moved the audit logs of the version before into the tenant databases", "count", n)
		}
	}
	// Operations a crash interrupted are settled before serving (see
	// soleOwner); otherwise those whose lease ran out are, and the rest later.
	if n, busy, err := sv.Orgs.Runner().RecoverAll(ctx, sv.AllStale); err != nil {
		log.Error("recovering interrupted operations", "err", err)
	} else if n > 0 || busy > 0 {
		log.Info("recovered interrupted operations", "count", n, "held_elsewhere", busy)
	}
	if n, err := sv.Orgs.AdoptAdmins(ctx); err != nil {
		return fmt.Errorf("adopting the accounts of the version before teams: %w", err)
	} else if n > 0 {
		log.Info("made the admins of the version before teams their organizations' owners", "count", n)
	}
	if n, err := sv.Orgs.SweepOrphans(ctx); err != nil {
		log.Error("sweeping orphan collections", "err", err)
	} else if n > 0 {
		log.Info("dropped orphan collections", "count", n)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go sv.Orgs.Watch(watchCtx, cfg.OperationLease/2)
	if sv.Outbox != nil {
		go sv.Outbox.Run(watchCtx)
		go deliverMissing(watchCtx, sv.Orgs, log)
	}
	go sv.Docs.SweepKeys(watchCtx, time.Hour)
	go purgeDeleted(watchCtx, sv.Orgs, purgeEvery(cfg.OrgDeleteRetention), log)
	if sv.Audit != nil {
		go keepAudit(watchCtx, sv, cfg.AuditRetention, log)
	}
	srv := &http.Server{
		Handler:           api.NewServer(sv.Deps),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      cfg.RequestTimeout + 5*time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "docs", "/docs")
	var metricsSrv *http.Server
	if metricsLn != nil {
		metricsSrv = &http.Server{
			Handler:           api.NewMetricsServer(sv.Deps),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		go func() { errc <- metricsSrv.Serve(metricsLn) }()
		log.Info("metrics listening", "addr", metricsLn.Addr().String())
	}

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Stop accepting, let in-flight requests finish, then close the
	// database (deferred above).
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	shutCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("shutdown: requests still running were cut off", "err", err)
	}
	if metricsSrv != nil {
		if err := metricsSrv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("shutdown: metrics requests still running were cut off", "err", err)
		}
	}
	return nil
}

// check runs the consistency check with the server's configuration and
// prints one line per finding; with repair, it first settles interrupted
// operations and fixes what it can, printing what it did. With the
// embedded store, stop the server first, or set MONGO_URI to its
// EMBEDDED_MONGO_ADDR.
func check(ctx context.Context, repair bool, getenv func(string) string, stdout, stderr io.Writer) int {
	t, code := openTool(ctx, getenv, stderr)
	if t == nil {
		return code
	}
	defer t.close()
	// The check serves no requests, so it has no tokens, passwords or
	// caches.
	orgs := t.orgs()
	c := service.NewChecker(orgs)
	if repair {
		done, err := c.Repair(ctx)
		for _, line := range done {
			fmt.Fprintln(stdout, line)
		}
		if err != nil {
			fmt.Fprintf(stderr, "orgsvc: repair: %v\n", err)
		}
	}
	findings, err := c.Check(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "orgsvc: check: %v\n", err)
		return 2
	}
	for _, f := range findings {
		fmt.Fprintln(stdout, f)
	}
	if len(findings) > 0 {
		fmt.Fprintf(stdout, "%d inconsistencies\n", len(findings))
		return 1
	}
	fmt.Fprintln(stdout, "consistent")
	return 0
}

// soleOwner reports whether this process is the only one that can reach
// the database, so that every unfinished operation in it is abandoned,
// whatever its lease says. That holds only for the embedded store without
// EMBEDDED_MONGO_ADDR, and only because store.Open holds DATA_DIR's
// exclusive lock (store.LockFile) and listens on a socket inside the
// 0700 DATA_DIR: without that lock, a second process on the same
// directory would settle the first one's operations under its feet.
func soleOwner(cfg config.Config) bool {
	return cfg.Embedded() && cfg.EmbeddedMongoAddr == ""
}

// Components are what the process opened, for NewServices to wire together
// with the configuration.
type Components struct {
	DB     *mongo.Database
	Secret []byte
	Logger *slog.Logger
	// Passwords, when nil, is made from the configuration.
	Passwords *security.Passwords
	// Metrics and Ready are optional.
	Metrics *metrics.Metrics
	Ready   func(context.Context) error
	// PrepareCollection, when set, is called for every tenant collection
	// made (see store.Store.IndexCollection).
	PrepareCollection func(ctx context.Context, db, collection string) error
	// IDFiltersOnly: the database evaluates only a lone _id equality
	// filter itself (see store.Store.IDFiltersOnly).
	IDFiltersOnly bool
	// RawReader, when set, reads the embedded store's tables past the
	// driver (see store.Store.RawReader).
	RawReader repository.RawReader
	// NoAudit keeps no audit log (ORGSVC_AUDIT_OFF=1, for make bench).
	NoAudit bool
}

// Services are the business layer with everything the HTTP layer is
// given, built once per process: api.NewServer and api.NewMetricsServer
// take the same Deps.
type Services struct {
	api.Deps
	// AllStale is the services' Lifecycle.AllStale (see soleOwner).
	AllStale bool
	// Outbox delivers invitation mails; nil without SMTP_URL.
	Outbox *mail.Outbox
	// Audit is the organizations' audit logs.
	Audit *audit.Log
}

// NewServices builds the repositories and services over c.DB.
// repositories returns the master, tenant and operation repositories
// over the store.
func repositories(cfg config.Config, c Components) (*repository.MasterRepository, *repository.TenantRepository, *repository.OperationRepository) {
	tenants := repository.NewTenantRepository(c.DB, cfg.TenantsPerDatabase)
	tenants.OnCreate(c.PrepareCollection)
	if c.RawReader != nil {
		tenants.ReadRaw(c.RawReader)
	}
	if c.IDFiltersOnly {
		tenants.SetIDFiltersOnly(true) // known: no buildInfo at the first document call
	}
	return repository.NewMasterRepository(c.DB, c.IDFiltersOnly), tenants, repository.NewOperationRepository(c.DB, c.IDFiltersOnly)
}

// lifecycle is the runner's tuning.
func lifecycle(cfg config.Config) service.Lifecycle {
	return service.Lifecycle{Lease: cfg.OperationLease, AllStale: soleOwner(cfg), ReceiptTTL: cfg.TokenTTL()}
}

func NewServices(cfg config.Config, c Components) (*Services, error) {
	tokens, err := security.NewTokens(c.Secret, cfg.JWTAlgorithm, cfg.JWTIssuer, cfg.TokenTTL())
	if err != nil {
		return nil, err
	}
	tokens.WithMaxSession(cfg.JWTMaxSession)
	passwords := c.Passwords
	if passwords == nil {
		if passwords, err = security.NewPasswords(cfg.BcryptCost, cfg.BcryptWorkers, cfg.BcryptQueue); err != nil {
			return nil, err
		}
	}
	master, tenants, ops := repositories(cfg, c)
	auth := service.NewAuthService(master, tokens, passwords, cfg.AuthCacheTTL)
	var hit, miss func()
	if c.Metrics != nil {
		hit, miss = c.Metrics.OrgCache.WithLabelValues("hit").Inc, c.Metrics.OrgCache.WithLabelValues("miss").Inc
	}
	auth.CacheOrganizations(cfg.OrgCacheTTL, hit, miss)
	life := lifecycle(cfg)
	orgs := service.NewOrgService(master, tenants, ops, passwords, auth, c.Logger, life)
	orgs.SetDeleteRetention(cfg.OrgDeleteRetention)
	outbox, err := invitations(cfg, c, orgs)
	if err != nil {
		return nil, err
	}
	var auditLog *audit.Log
	if !c.NoAudit {
		auditLog = auditLogs(c)
		orgs.SetAudit(auditLog)
		auth.SetAudit(auditLog)
	}
	docs := service.NewDocumentService(tenants, orgs, int(cfg.MaxDocumentBytes))
	limits := tenantLimits(cfg)
	orgs.SetTenantLimits(limits)
	docs.SetTenantLimits(limits)
	if cfg.AuditDocuments && auditLog != nil {
		docs.RecordWrites(auditLog)
	}
	docs.KeepKeys(repository.NewKeyRepository(c.DB))
	docs.SetLimits(service.DocumentLimits{PageBytes: int(cfg.MaxPageBytes), MaxKeys: cfg.MaxDocumentKeys})
	return &Services{AllStale: life.AllStale, Outbox: outbox, Audit: auditLog, Deps: api.Deps{
		Auth: auth, Orgs: orgs, Docs: docs, Logger: c.Logger, Metrics: c.Metrics, Ready: c.Ready,
		Limits: api.Limits{
			LoginPerEmail: cfg.LoginRatePerEmail, LoginPerAddress: cfg.LoginRatePerAddress,
			CreatePerAddress: cfg.CreateRatePerAddress, TrustProxy: cfg.TrustProxy,
			LoginPerEmailTotal:    cfg.LoginRatePerEmailTotal,
			CredentialsPerAccount: cfg.CredentialRatePerAccount, CredentialsPerAddress: cfg.CredentialRatePerAddress,
		},
		CORSOrigins:      cfg.CORSOrigins,
		MaxBodyBytes:     cfg.MaxBodyBytes,
		MaxDocumentBytes: cfg.MaxDocumentBytes,
		ImportMaxBytes:   cfg.ImportMaxBytes,
		MaxDocumentKeys:  cfg.MaxDocumentKeys,
		RequestTimeout:   cfg.RequestTimeout,
		MetricsApart:     cfg.MetricsAddr != "",
	}}, nil
}

// tenantLimits are the server's per-organization limits.
func tenantLimits(cfg config.Config) service.Limits {
	return service.Limits{MaxDocuments: cfg.TenantMaxDocuments, MaxBytes: cfg.TenantMaxBytes,
		RatePerSecond: cfg.OrgRatePerSecond, RateBurst: cfg.OrgRateBurst}
}

// auditLogs is the audit logs over the store.
func auditLogs(c Components) *audit.Log {
	repo := repository.NewAuditRepository(c.DB)
	repo.OnPrepare(c.PrepareCollection)
	if c.RawReader != nil {
		repo.ReadRaw(c.RawReader)
	}
	return audit.NewLog(repo)
}

// keepAudit records the expiry of invitations every few minutes, and
// removes the events older than retention every hour.
func keepAudit(ctx context.Context, sv *Services, retention time.Duration, log *slog.Logger) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for tick := 0; ; tick++ {
		if n, err := sv.Orgs.RecordExpired(ctx); err != nil && ctx.Err() == nil {
			log.Warn("recording expired invitations", "err", err)
		} else if n > 0 {
			log.Info("recorded expired invitations", "count", n)
		}
		if tick%12 == 0 {
			if swept, err := sv.Audit.Sweep(ctx, retention, sv.Orgs.Exists); err != nil && ctx.Err() == nil {
				log.Warn("sweeping audit logs", "err", err)
			} else if swept.Events > 0 || swept.Logs > 0 {
				log.Info("swept audit logs", "events", swept.Events, "deleted_organizations", swept.Logs)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// purgeEvery is how often an instance looks for deleted organizations to
// purge: a tenth of the restore window, so that a purge comes at most that
// late, within 1s and 1m (one read of the archives each time); every
// minute with no window (for archives made under an earlier setting).
func purgeEvery(retention time.Duration) time.Duration {
	if retention == 0 {
		return time.Minute
	}
	return min(max(retention/10, time.Second), time.Minute)
}

// purgeDeleted purges, now and every interval, the deleted organizations
// whose restore window has passed.
func purgeDeleted(ctx context.Context, orgs *service.OrgService, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := orgs.PurgeDue(ctx, time.Now()); err != nil && ctx.Err() == nil {
			log.Warn("purging deleted organizations", "err", err)
		} else if n > 0 {
			log.Info("purged deleted organizations", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// deliverMissing mails, now and every few minutes, the invitations whose
// mail a crash kept from the outbox.
func deliverMissing(ctx context.Context, orgs *service.OrgService, log *slog.Logger) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		if n, err := orgs.DeliverMissing(ctx); err != nil && ctx.Err() == nil {
			log.Warn("mailing invitations whose mail is missing", "err", err)
		} else if n > 0 {
			log.Info("mailed invitations whose mail was missing", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// invitations sets how orgs invites: through the outbox to SMTP_URL when
// it is set (the outbox is returned, for Run), else with no mail.
func invitations(cfg config.Config, c Components, orgs *service.OrgService) (*mail.Outbox, error) {
	settings := service.InvitationSettings{TTL: cfg.InvitationTTL, URL: cfg.InvitationURL, Mails: repository.NewOutboxRepository(c.DB)}
	if cfg.SMTPURL == "" {
		orgs.SetInvitations(settings)
		return nil, nil
	}
	sender, err := mail.NewSMTP(cfg.SMTPURL, cfg.MailFrom, 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("SMTP_URL: %w", err)
	}
	settings.Outbox = mail.NewOutbox(settings.Mails, sender, c.Logger, mail.Options{
		Domain: sender.Domain(), Lease: cfg.OperationLease, Exists: orgs.InvitationLive,
	})
	orgs.SetInvitations(settings)
	return settings.Outbox, nil
}

// NewLogger returns the service's logger: JSON lines, or text with format
// "text", at the given level.
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/audit"
	"github.com/orgsvc/orgsvc/internal/config"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/service"
	"github.com/orgsvc/orgsvc/internal/store"
)

const auditUsage = `Usage:
  orgsvc audit verify [--org NAME|ID]
        check the hash chain of every organization's audit log, or of one;
        print the first broken link of each, exit status 1 if any
  orgsvc audit export --org NAME|ID [--since TIME] [--until TIME]
        write the organization's audit log to stdout as NDJSON, oldest
        first; a deleted organization is addressed by its id
`

// tool is what an operator's command opens: the configuration and the
// store.
type tool struct {
	cfg config.Config
	st  *store.Store
	log *slog.Logger
}

// openTool loads the configuration and opens the store, as the server
// does; the exit status when it cannot.
func openTool(ctx context.Context, getenv func(string) string, stderr io.Writer) (*tool, int) {
	cfg, err := config.Load(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "orgsvc: configuration: %v\n", err)
		return nil, 2
	}
	log := NewLogger(stderr, "warn", cfg.LogFormat)
	st, err := store.Open(ctx, store.Options{
		URI: cfg.MongoURI, Database: cfg.MongoDB, DataDir: cfg.DataDir,
		EmbeddedAddr: cfg.EmbeddedMongoAddr, Logger: log, ConnectTimeout: cfg.DBConnectTimeout,
	})
	if err != nil {
		fmt.Fprintf(stderr, "orgsvc: %v\n", err)
		return nil, 2
	}
	return &tool{cfg: cfg, st: st, log: log}, 0
}

func (t *tool) close() { _ = t.st.Close(context.Background()) }

// components are what the command opened.
func (t *tool) components() Components {
	return Components{DB: t.st.DB, PrepareCollection: t.st.IndexCollection, IDFiltersOnly: t.st.IDFiltersOnly,
		RawReader: t.st.RawReader()}
}

// orgs is an organization service for commands: no tokens or passwords.
func (t *tool) orgs() *service.OrgService {
	master, tenants, ops := repositories(t.cfg, t.components())
	orgs := service.NewOrgService(master, tenants, ops, nil, nil, t.log, lifecycle(t.cfg))
	orgs.SetInvitations(service.InvitationSettings{Mails: repository.NewOutboxRepository(t.st.DB)})
	orgs.SetAudit(auditLogs(t.components()))
	return orgs
}

// auditCommand runs orgsvc audit.
func auditCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, auditUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	fs := flag.NewFlagSet("orgsvc audit "+args[0], flag.ContinueOnError)
	org := fs.String("org", "", "organization name, or id")
	since := fs.String("since", "", "only events at or after this RFC 3339 time")
	until := fs.String("until", "", "only events before this RFC 3339 time")
	if args[0] != "verify" && args[0] != "export" {
		fmt.Fprintf(stderr, "orgsvc audit: unknown command %q\n\n%s", args[0], auditUsage)
		return 2
	}
	if code, stop := flags(fs, args[1:], auditUsage, stdout, stderr); stop {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "orgsvc audit %s: unexpected arguments %q\n", args[0], fs.Args())
		return 2
	}
	var f repository.AuditFilter
	for _, v := range []struct {
		name, value string
		into        *string
	}{{"since", *since, &f.Since}, {"until", *until, &f.Until}} {
		if v.value == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v.value)
		if err != nil {
			fmt.Fprintf(stderr, "orgsvc audit: --%s: %q is not an RFC 3339 time\n", v.name, v.value)
			return 2
		}
		*v.into = audit.Time(t)
	}
	if args[0] == "export" && *org == "" {
		fmt.Fprintf(stderr, "orgsvc audit export: --org is required\n")
		return 2
	}
	if args[0] == "verify" && (*since != "" || *until != "") {
		fmt.Fprintf(stderr, "orgsvc audit verify: --since and --until are for export\n")
		return 2
	}
	t, code := openTool(ctx, getenv, stderr)
	if t == nil {
		return code
	}
	defer t.close()
	orgs := t.orgs()
	log := orgs.AuditLog()
	if _, err := log.MoveLegacy(ctx); err != nil {
		fmt.Fprintf(stderr, "orgsvc audit: moving the audit logs of the version before: %v\n", err)
		return 2
	}

	var ids []bson.ObjectID
	if *org != "" {
		id, err := logOf(ctx, orgs, log, *org)
		if err != nil {
			fmt.Fprintf(stderr, "orgsvc audit: %v\n", err)
			return 1
		}
		ids = []bson.ObjectID{id}
	}
	if args[0] == "export" {
		w := json.NewEncoder(stdout)
		w.SetEscapeHTML(false)
		err := log.Scan(ctx, ids[0], f, func(ev *model.Event) error { return w.Encode(audit.Normal(*ev)) })
		if err != nil {
			fmt.Fprintf(stderr, "orgsvc audit export: %v\n", err)
			return 1
		}
		return 0
	}
	status := 0
	var logs, total int64
	start := time.Now()
	report := func(id bson.ObjectID, n int64, err error) {
		logs++
		total += n
		var broken *audit.Broken
		if errors.As(err, &broken) {
			fmt.Fprintf(stdout, "broken: %v\n", broken)
			status = 1
			return
		}
		fmt.Fprintf(stdout, "ok: organization %s: %d events\n", id.Hex(), n)
	}
	var err error
	if ids == nil {
		err = log.VerifyAll(ctx, report)
	} else {
		var n int64
		if n, err = log.Verify(ctx, ids[0]); err == nil || errors.As(err, new(*audit.Broken)) {
			report(ids[0], n, err)
			err = nil
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "orgsvc audit verify: %v\n", err)
		return 2
	}
	elapsed := time.Since(start)
	fmt.Fprintf(stdout, "%d logs, %d events verified in %s (%.0f events/s)\n", logs, total, elapsed.Round(time.Millisecond), float64(total)/max(elapsed.Seconds(), 1e-9))
	return status
}

// logOf is the organization whose log --org names: a live organization by
// name or id, or a deleted one by id if its log is kept.
func logOf(ctx context.Context, orgs *service.OrgService, log *audit.Log, name string) (bson.ObjectID, error) {
	org, err := orgs.Lookup(ctx, name)
	if err == nil {
		return org.ID, nil
	}
	if !errors.Is(err, service.ErrOrgNotFound) {
		return bson.ObjectID{}, err
	}
	if id, herr := bson.ObjectIDFromHex(name); herr == nil {
		logs, err := log.Logs(ctx)
		if err != nil {
			return bson.ObjectID{}, err
		}
		for _, l := range logs {
			if l == id {
				return id, nil
			}
		}
	}
	return bson.ObjectID{}, fmt.Errorf("no organization %q, and no kept log of a deleted one with that id", name)
}

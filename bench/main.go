// Command orgbench measures orgsvc under load, next to the limits it cannot
// beat: the database driven directly, bcrypt on every core, and a bare
// net/http handler.
//
// By default it builds ./cmd/orgsvc, starts it on the embedded store in a
// fresh temporary directory, seeds it through the HTTP API, drives each
// scenario at a fixed concurrency for a fixed duration, and writes
// results.md, results.json and PNG charts into -out. With -target and
// -mongo it measures a service that is already running instead.
//
//	make bench                                            # every scenario, 10 s each
//	make bench BENCHFLAGS=-short                          # CI: 2 s each, small data sets
//	make bench BENCHFLAGS="-scenarios health,doc-read -duration 5s"
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	if addr := os.Getenv(floorEnv); addr != "" {
		fmt.Fprintln(os.Stderr, "orgbench floor:", serveFloor(addr))
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "orgbench:", err)
		os.Exit(1)
	}
}

// config is the command line's settings.
type config struct {
	target      string
	mongoURI    string
	mongoDB     string
	bin         string
	concurrency int
	duration    time.Duration
	scenarios   []string
	out         string
	short       bool
	bcryptCost  int
	render      string
	args        []string
}

// sizes are the data set sizes; -short shrinks them.
type sizes struct {
	listDocs      int   // documents of the organization "bench"
	renameDocs    int   // documents of the organization renamed in rename-100k
	loginAdmins   int   // admins the login scenario cycles through
	renames       int   // renames timed per rename scenario, in turns (even: ends on the original name)
	orgLevels     []int // organization counts of the org-count series
	seriesCreates int   // sign-ups measured per level of the series (on each service, in turns)
	teamOrgs      int   // organizations of the account login-many and switch use
	auditOps      int   // operations of each kind timed per side in audit-write (even: roles and names end where they began)
	auditBurst    int   // sign-ups per side in audit-write's sign-ups under load (informational)
	auditOrgs     int   // audit logs of the big service in audit-list
	auditEvents   int   // events of each of those logs
	auditListed   int   // signed-up organizations whose logs audit-list lists (all the small service holds)
	verifyEvents  int   // events of the log audit-verify verifies
	verifyRuns    int   // runs of orgsvc audit verify timed
}

func defaultSizes(short bool) sizes {
	if short {
		return sizes{listDocs: 600, renameDocs: 1_000, loginAdmins: 64, renames: 6, orgLevels: []int{10, 100, 200}, seriesCreates: 50, teamOrgs: 10,
			auditOps: 40, auditBurst: 50, auditOrgs: 500, auditEvents: 50, auditListed: 10, verifyEvents: 10_000, verifyRuns: 3}
	}
	return sizes{listDocs: 1_000, renameDocs: 100_000, loginAdmins: 64, renames: 20, orgLevels: []int{10, 100, 1_000, 5_000}, seriesCreates: 300, teamOrgs: 50,
		auditOps: 200, auditBurst: 300, auditOrgs: 5_000, auditEvents: 200, auditListed: 10, verifyEvents: 100_000, verifyRuns: 3}
}

func parseOptions(args []string, stderr io.Writer) (config, error) {
	o := config{args: args}
	fs := flag.NewFlagSet("orgbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.target, "target", "", "base URL of a running service (loopback only); empty starts one on the embedded store")
	fs.StringVar(&o.mongoURI, "mongo", "", "MongoDB URI of the running service's database (loopback only), for seeding and the driver baselines; with -target")
	fs.StringVar(&o.mongoDB, "mongo-db", "org_master", "database name (MONGO_DB) of the service")
	fs.StringVar(&o.bin, "bin", "", "service binary to start; empty builds ./cmd/orgsvc")
	fs.IntVar(&o.concurrency, "concurrency", 16, "concurrent clients per scenario")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "duration of each scenario (2s with -short unless set)")
	scen := fs.String("scenarios", "all", "comma-separated scenarios: "+strings.Join(scenarioNames(), ","))
	fs.StringVar(&o.out, "out", "bench-results", "directory for results.md, results.json, the charts and the service logs")
	fs.BoolVar(&o.short, "short", false, "CI mode: 2s per scenario and small data sets")
	fs.StringVar(&o.render, "render", "", "measure nothing: write results.md and the charts into -out from this results.json")
	fs.IntVar(&o.bcryptCost, "bcrypt-cost", 12, "BCRYPT_COST of the started service (and of the bcrypt baseline when the cost cannot be read from the database)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: orgbench [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	durationSet := false
	fs.Visit(func(f *flag.Flag) { durationSet = durationSet || f.Name == "duration" })
	if o.short && !durationSet {
		o.duration = 2 * time.Second
	}
	switch {
	case o.concurrency < 1 || o.concurrency > 1024:
		return o, fmt.Errorf("-concurrency %d is outside 1..1024", o.concurrency)
	case o.duration < 100*time.Millisecond || o.duration > 10*time.Minute:
		return o, fmt.Errorf("-duration %s is outside 100ms..10m", o.duration)
	case o.bcryptCost < 4 || o.bcryptCost > 16:
		return o, fmt.Errorf("-bcrypt-cost %d is outside 4..16", o.bcryptCost)
	case o.mongoURI != "" && o.target == "":
		return o, errors.New("-mongo goes with -target; without -target the started service's store is used")
	}
	if *scen == "all" || *scen == "" {
		o.scenarios = scenarioNames()
	} else {
		for s := range strings.SplitSeq(*scen, ",") {
			s = strings.TrimSpace(s)
			if !slices.Contains(scenarioNames(), s) {
				return o, fmt.Errorf("unknown scenario %q (known: %s)", s, strings.Join(scenarioNames(), ", "))
			}
			o.scenarios = append(o.scenarios, s)
		}
	}
	if o.target != "" {
		if err := checkLoopbackURL(o.target); err != nil {
			return o, fmt.Errorf("-target: %w", err)
		}
		o.target = strings.TrimRight(o.target, "/")
	}
	if o.mongoURI != "" {
		if err := checkLoopbackMongo(o.mongoURI); err != nil {
			return o, fmt.Errorf("-mongo: %w", err)
		}
	}
	return o, nil
}

func (o config) wants(name string) bool { return slices.Contains(o.scenarios, name) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(opts.out, 0o755); err != nil {
		return err
	}
	b := newBench(opts, stderr)
	if opts.render != "" {
		return b.renderFrom(opts.render, stdout)
	}
	began := time.Now()
	runErr := b.runAll(ctx)
	b.report.WallSeconds = time.Since(began).Seconds()
	if len(b.report.Results) > 0 {
		if err := b.writeOutputs(stdout); err != nil {
			return errors.Join(runErr, err)
		}
	}
	fmt.Fprintf(stderr, "orgbench: finished in %s\n", time.Since(began).Round(time.Second))
	return runErr
}

// Command orgchaos is the service's chaos test. It starts two instances of
// the orgsvc binary on one store (A owns the embedded store and exposes it
// on a loopback port, B connects to it with MONGO_URI), kills B with
// SIGKILL at random moments and starts it again, while clients sign up,
// log in, rename and delete organizations and write, read and list their
// documents against both at random. Each client keeps a ledger of what was
// acknowledged. After the load the runner waits for `orgsvc check` to come
// out clean, then holds the store, through the API and with the driver, to
// the ledgers, and prints what it found. It exits 1 on any violation.
//
//	go run ./cmd/orgchaos                        # 150 s, B killed every 2-6 s
//	go run ./cmd/orgchaos -duration 60s -kills 20 -seed 7 -out chaos-logs
//	go run ./cmd/orgchaos -bin bin/orgsvc -kill-owner
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/orgsvc/orgsvc/internal/chaos"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("orgchaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg chaos.Config
	var quiet bool
	fs.StringVar(&cfg.Binary, "bin", "", "the orgsvc binary to run (default: build ./cmd/orgsvc into a temporary directory)")
	fs.DurationVar(&cfg.Duration, "duration", 150*time.Second, "how long the load and the kills last")
	fs.IntVar(&cfg.Kills, "kills", 0, "number of kills to aim for over -duration, spaced to fit (0: one every 2-6 s)")
	fs.IntVar(&cfg.Clients, "clients", 8, "concurrent clients")
	fs.Int64Var(&cfg.Seed, "seed", 0, "random seed (0: from the clock; printed)")
	fs.StringVar(&cfg.Out, "out", "", "directory for the instances' logs, events.log and summary.txt (default: a new temporary directory)")
	fs.BoolVar(&cfg.KillOwner, "kill-owner", false, "also kill A, the store's owner, one kill in four, and start it again on its DATA_DIR (B answers 503 meanwhile)")
	fs.Float64Var(&cfg.Aim, "aim", 0.5, "share of B's kills that land during a sign-up, rename or deletion it is serving (0 for none)")
	fs.DurationVar(&cfg.Lease, "lease", 4*time.Second, "the instances' OPERATION_LEASE")
	fs.DurationVar(&cfg.RecoveryTimeout, "recovery-timeout", 60*time.Second, "how long to wait after the load for orgsvc check to come out clean")
	fs.BoolVar(&quiet, "q", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "orgchaos: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if cfg.Duration <= 0 || cfg.Clients <= 0 || cfg.Kills < 0 || cfg.Lease <= 0 {
		fmt.Fprintln(stderr, "orgchaos: -duration, -clients and -lease must be positive, -kills not negative")
		return 2
	}
	if cfg.Aim == 0 {
		cfg.Aim = -1 // Config's zero means the default
	}
	if cfg.Seed == 0 {
		cfg.Seed = time.Now().UnixNano()
	}
	if !quiet {
		cfg.Progress = stderr
	}
	if cfg.Binary == "" {
		dir, err := os.MkdirTemp("", "orgchaos-bin-")
		if err != nil {
			fmt.Fprintln(stderr, "orgchaos:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		fmt.Fprintln(stderr, "orgchaos: building ./cmd/orgsvc")
		if cfg.Binary, err = chaos.Build(ctx, dir); err != nil {
			fmt.Fprintln(stderr, "orgchaos:", err)
			return 1
		}
	}
	sum, err := chaos.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "orgchaos:", err)
		return 1
	}
	sum.Write(stdout, false)
	if len(sum.Violations) > 0 {
		return 1
	}
	return 0
}

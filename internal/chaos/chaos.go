// Package chaos runs the service's chaos test: two instances of the built
// binary on one store, the second killed with SIGKILL at random moments
// and started again, while clients drive a mixed load against both and
// keep a ledger of what was acknowledged. Afterwards the runner waits for
// recovery and holds the store, through the API and directly with the
// driver, to the ledgers.
//
// Instance A owns the embedded store (DATA_DIR, exposed on
// EMBEDDED_MONGO_ADDR); instance B reaches it with MONGO_URI. Only B is
// killed by default: killing A takes the store away from both, so that B
// can only answer 503 until A is back (KillOwner kills A too, now and
// then, and starts it again on the same DATA_DIR).
package chaos

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Config is one run's settings; zero fields take the defaults.
type Config struct {
	// Binary is the orgsvc binary to run (see Build). Required.
	Binary string
	// Duration is how long the load and the kills last (150s).
	Duration time.Duration
	// Kills is the number of kills to aim for over Duration; 0 kills B
	// every 2 to 6 s (random) after it serves again.
	Kills int
	// Clients is the number of concurrent clients (8).
	Clients int
	// Seed seeds every random choice (0: the time).
	Seed int64
	// Out is where the instances' logs, the events and the summary go (a
	// new temporary directory when empty).
	Out string
	// KillOwner kills A too, one kill in four, and starts it again on the
	// same DATA_DIR.
	KillOwner bool
	// Aim is the share of B's kills that wait (up to 1.5 s) for B to be
	// serving a sign-up, rename or deletion, and land 0 to 40 ms into it;
	// the others land wherever the timer falls. Negative: none (0.5).
	Aim float64
	// Lease is the instances' OPERATION_LEASE (4s).
	Lease time.Duration
	// RecoveryTimeout bounds the wait, after the load, for `orgsvc check`
	// to come out clean (60s).
	RecoveryTimeout time.Duration
	// Progress receives a line per kill and per phase (nothing when nil).
	Progress io.Writer
}

func (c *Config) defaults() {
	if c.Duration <= 0 {
		c.Duration = 150 * time.Second
	}
	if c.Clients <= 0 {
		c.Clients = 8
	}
	if c.Seed == 0 {
		c.Seed = time.Now().UnixNano()
	}
	if c.Aim < 0 {
		c.Aim = 0
	} else if c.Aim == 0 {
		c.Aim = 0.5
	}
	if c.Lease <= 0 {
		c.Lease = 4 * time.Second
	}
	if c.RecoveryTimeout <= 0 {
		c.RecoveryTimeout = 60 * time.Second
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// masterDB is the instances' MONGO_DB.
const masterDB = "org_master"

// Violation is one broken promise found by the run.
type Violation struct {
	Kind string
	// Subject is what it is about (a document, an organization, a
	// collection, a request); the same kind and subject are one violation,
	// however often seen.
	Subject string
	Detail  string
	Count   int
	// At is when it was first seen, from the start of the load.
	At time.Duration
	// Keys find its log lines: WARN and ERROR lines holding one of them.
	Keys []string
	// ReqIDs find its log lines at any level.
	ReqIDs []string
	// Logs are the instances' log lines about it.
	Logs []string
	// Final says it was found by the verification after recovery, not
	// during the load.
	Final bool
}

// Summary is what a run found.
type Summary struct {
	Seed     int64
	Duration time.Duration
	Clients  int
	Lease    time.Duration
	Out      string

	Requests, NoAnswer, Refused int64
	Kills, OwnerKills, Aimed    int
	Restarts                    int

	Acked    map[string]int // acknowledged operations by kind
	Unknown  map[string]int // operations with an unanswered (or 5xx/409) attempt, retried
	GaveUp   map[string]int // operations still without a definitive answer when the retries ran out
	Refusals map[string]int // definitive refusals the load expects (a name taken, ...)
	Notes    map[string]int // things worth knowing that break no promise

	Recovered   bool
	RecoveredIn time.Duration
	CheckOutput string // the final `orgsvc check`

	// Messages counts the instances' WARN and ERROR lines by message.
	Messages map[string]int

	Violations []*Violation
}

// ByKind counts the violations by kind.
func (s *Summary) ByKind() map[string]int {
	out := map[string]int{}
	for _, v := range s.Violations {
		out[v.Kind]++
	}
	return out
}

// runner is one run's state.
type runner struct {
	cfg      Config
	a, b     *instance
	mongoURI string
	secret   string
	out      string
	began    time.Time // the load's start
	budget   time.Duration
	settle   time.Duration
	ending   atomic.Bool // the load is over: unexpected exits are still reported, not restarted by the killer
	final    atomic.Bool // the verification after recovery is running

	requests, noAnswer, refused atomic.Int64
	lifeB                       atomic.Int64 // lifecycle requests in flight on B
	lifeBAt                     atomic.Int64 // when the latest of them was sent, UnixNano

	mu         sync.Mutex
	acked      map[string]int
	unknown    map[string]int
	gaveUp     map[string]int
	refusals   map[string]int
	notes      map[string]int
	violations []*Violation
	byKey      map[string]*Violation
	used       map[string]bool     // every organization name a client sent
	holders    map[string][]string // name -> organizations acknowledged under it, in order
	freed      []freedName
	killTimes  []time.Duration
	kills      int
	ownerKills int
	aimed      int
	restarts   int

	eventsMu sync.Mutex
	events   *os.File
}

type freedName struct {
	name string
	at   time.Time
}

// Run runs the chaos test. Its error is for a run that could not be
// carried out; what the run found is in the summary.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	cfg.defaults()
	if cfg.Binary == "" {
		return nil, errors.New("no binary: build one with Build")
	}
	out := cfg.Out
	if out == "" {
		var err error
		if out, err = os.MkdirTemp("", "orgchaos-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "orgchaos-work-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	secretBytes := make([]byte, 24)
	if _, err := rand.Read(secretBytes); err != nil {
		return nil, err
	}
	mongoAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	r := &runner{
		cfg: cfg, out: out, secret: hex.EncodeToString(secretBytes), mongoURI: "mongodb://" + mongoAddr + "/",
		acked: map[string]int{}, unknown: map[string]int{}, gaveUp: map[string]int{}, refusals: map[string]int{},
		notes: map[string]int{}, byKey: map[string]*Violation{}, used: map[string]bool{}, holders: map[string][]string{},
		budget: max(20*time.Second, 5*cfg.Lease), settle: 3*cfg.Lease + 2*time.Second,
	}
	if r.events, err = os.Create(filepath.Join(out, "events.log")); err != nil {
		return nil, err
	}
	defer r.events.Close()

	common := r.serviceEnv(
		"JWT_SECRET="+r.secret, "MONGO_DB="+masterDB, "BCRYPT_COST=4", "LOG_LEVEL=info",
		"OPERATION_LEASE="+cfg.Lease.String(),
		"CREATE_RATE_PER_ADDRESS=0", "LOGIN_RATE_PER_ADDRESS=0", "LOGIN_RATE_PER_EMAIL=0",
		"LOGIN_RATE_PER_EMAIL_TOTAL=0", "CREDENTIAL_RATE_PER_ACCOUNT=0", "CREDENTIAL_RATE_PER_ADDRESS=0",
	)
	if r.a, err = newInstance("A", cfg.Binary, filepath.Join(work, "a"), filepath.Join(out, "a.log"),
		append(slices.Clone(common), "DATA_DIR="+filepath.Join(work, "data"), "EMBEDDED_MONGO_ADDR="+mongoAddr)); err != nil {
		return nil, err
	}
	defer r.a.close()
	if r.b, err = newInstance("B", cfg.Binary, filepath.Join(work, "b"), filepath.Join(out, "b.log"),
		append(slices.Clone(common), "MONGO_URI="+r.mongoURI)); err != nil {
		return nil, err
	}
	defer r.b.close()
	for _, in := range []*instance{r.a, r.b} {
		in.exited = r.exited
	}
	// B uses A's store: B stops first.
	defer func() {
		r.ending.Store(true)
		r.b.stop(20 * time.Second)
		r.a.stop(20 * time.Second)
	}()

	r.progress("orgchaos: seed %d, %s of load, %d clients, OPERATION_LEASE %s; logs in %s", cfg.Seed, cfg.Duration, cfg.Clients, cfg.Lease, out)
	for _, in := range []*instance{r.a, r.b} {
		if err := in.start(); err != nil {
			return nil, fmt.Errorf("start %s: %w", in.name, err)
		}
		if err := in.waitServing(ctx, 90*time.Second); err != nil {
			return nil, err
		}
	}
	r.event("A serves on %s (embedded store on %s), B on %s", r.a.addr, mongoAddr, r.b.addr)

	// The load and the kills.
	r.began = time.Now()
	loadCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var clients sync.WaitGroup
	cs := make([]*client, cfg.Clients)
	for i := range cs {
		cs[i] = r.newClient(ctx, i)
		clients.Add(1)
		go func() {
			defer clients.Done()
			cs[i].loop(loadCtx)
		}()
	}
	killer := make(chan struct{})
	go func() {
		defer close(killer)
		r.killLoop(loadCtx)
	}()
	<-killer
	r.progress("orgchaos: load over after %d kills; waiting for the clients' last requests", r.kills+r.ownerKills)
	clients.Wait()
	r.ending.Store(true)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	// The load's counts; the verification's requests are not among them.
	r.mu.Lock()
	sum := &Summary{Seed: cfg.Seed, Duration: cfg.Duration, Clients: cfg.Clients, Lease: cfg.Lease, Out: out,
		Requests: r.requests.Load(), NoAnswer: r.noAnswer.Load(), Refused: r.refused.Load(),
		Acked: maps.Clone(r.acked), Unknown: maps.Clone(r.unknown), GaveUp: maps.Clone(r.gaveUp),
		Refusals: maps.Clone(r.refusals)}
	r.mu.Unlock()

	// Recovery: both instances serve, then the check comes out clean.
	for _, in := range []*instance{r.a, r.b} {
		if !in.running() {
			r.event("starting %s for the recovery", in.name)
			if err := in.start(); err != nil {
				return nil, err
			}
		}
		if err := in.waitServing(ctx, 90*time.Second); err != nil {
			return nil, err
		}
	}
	r.progress("orgchaos: waiting for orgsvc check to come out clean (up to %s)", cfg.RecoveryTimeout)
	recoveryStart := time.Now()
	var seen string
	for {
		code, text, err := r.check(ctx)
		if err != nil {
			return nil, err
		}
		if code == 0 && hasLine(text, "consistent") {
			sum.Recovered, sum.RecoveredIn = true, time.Since(recoveryStart)
			break
		}
		if text != seen { // what recovery still has to settle, each time it changes
			seen = text
			r.event("orgsvc check %.0fs into the recovery:\n%s", time.Since(recoveryStart).Seconds(), text)
		}
		if time.Since(recoveryStart) > cfg.RecoveryTimeout {
			r.event("orgsvc check still not clean after %s:\n%s", cfg.RecoveryTimeout, text)
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}

	// Verification.
	r.progress("orgchaos: verifying the store against the clients' ledgers")
	cli, err := r.connect()
	if err != nil {
		return nil, err
	}
	defer cli.Disconnect(context.Background())
	if err := r.verify(ctx, cs, cli); err != nil {
		return nil, err
	}
	code, text, err := r.check(ctx)
	if err != nil {
		return nil, err
	}
	sum.CheckOutput = text
	r.checkFindings(ctx, cli, code, text)

	r.ending.Store(true)
	for _, in := range []*instance{r.b, r.a} {
		if code := in.stop(20 * time.Second); code != 0 {
			r.violate("instance-exit", in.name+" stop", fmt.Sprintf("%s exited with %d on SIGTERM, want 0; its log ends:\n%s", in.name, code, tail(in.logPath, 15)))
		}
	}

	r.mu.Lock()
	sum.Kills, sum.OwnerKills, sum.Aimed, sum.Restarts = r.kills, r.ownerKills, r.aimed, r.restarts
	sum.Notes = r.notes
	sum.Violations = r.violations
	r.mu.Unlock()
	sum.Messages = attachLogs(sum.Violations, []string{r.a.logPath, r.b.logPath})
	if f, err := os.Create(filepath.Join(out, "summary.txt")); err == nil {
		sum.Write(f, true)
		f.Close()
	}
	return sum, nil
}

// serviceEnv is the environment of every process the run starts: what a
// process needs, and extra; nothing of the runner's own environment.
func (r *runner) serviceEnv(extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	return append(env, extra...)
}

// killLoop kills B (and, with KillOwner, now and then A) until ctx ends,
// starting each again at once.
func (r *runner) killLoop(ctx context.Context) {
	rng := mrand.New(mrand.NewPCG(uint64(r.cfg.Seed), 0x6b696c6c))
	end := r.began.Add(r.cfg.Duration)
	for {
		wait := r.spacing(rng, time.Until(end))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		victim := r.b
		if r.cfg.KillOwner && rng.IntN(4) == 0 {
			victim = r.a
		}
		aimed := false
		if victim == r.b && rng.Float64() < r.cfg.Aim {
			aimed = r.awaitLifecycle(ctx, 1500*time.Millisecond)
			if aimed {
				time.Sleep(time.Duration(rng.IntN(41)) * time.Millisecond)
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err := victim.kill(); err != nil {
			r.event("kill %s: %v", victim.name, err)
		}
		r.mu.Lock()
		if victim == r.a {
			r.ownerKills++
		} else {
			r.kills++
		}
		if aimed {
			r.aimed++
		}
		r.killTimes = append(r.killTimes, time.Since(r.began))
		n := r.kills + r.ownerKills
		r.mu.Unlock()
		how := "at a random moment"
		if aimed {
			how = "during a lifecycle request"
		}
		r.event("kill %d: %s (kill -9) %s", n, victim.name, how)
		r.progress("orgchaos: +%5.1fs kill %d: %s %s", time.Since(r.began).Seconds(), n, victim.name, how)
		r.restart(victim)
	}
}

// restart starts the instance again and waits for it to serve, trying a
// few times.
func (r *runner) restart(in *instance) {
	for try := 1; try <= 3; try++ {
		if err := in.start(); err != nil {
			r.event("start %s: %v", in.name, err)
		} else if err := in.waitServing(context.Background(), 90*time.Second); err != nil {
			r.violate("instance-start", fmt.Sprintf("%s start %d", in.name, in.process().n), err.Error())
			in.kill()
		} else {
			r.mu.Lock()
			r.restarts++
			r.mu.Unlock()
			r.event("%s serves again", in.name)
			return
		}
		time.Sleep(time.Second)
	}
}

// exited reports a process that ended without the runner's doing.
func (r *runner) exited(in *instance, start, code int, tail string) {
	r.violate("instance-exit", fmt.Sprintf("%s start %d", in.name, start),
		fmt.Sprintf("%s exited by itself with status %d; its log ends:\n%s", in.name, code, tail))
	if !r.ending.Load() {
		go r.restart(in)
	}
}

// spacing is the wait before the next kill, given the time left.
func (r *runner) spacing(rng *mrand.Rand, left time.Duration) time.Duration {
	if r.cfg.Kills <= 0 {
		return 2*time.Second + time.Duration(rng.Int64N(int64(4*time.Second)))
	}
	r.mu.Lock()
	todo := r.cfg.Kills - r.kills - r.ownerKills
	r.mu.Unlock()
	if todo <= 0 {
		return left + time.Second
	}
	mean := left / time.Duration(todo+1)
	return max(300*time.Millisecond, mean/2+time.Duration(rng.Int64N(int64(mean)+1)))
}

// awaitLifecycle waits, up to within, for a sign-up, rename or deletion
// sent to B in the last 5 ms.
func (r *runner) awaitLifecycle(ctx context.Context, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if r.lifeB.Load() > 0 && time.Since(time.Unix(0, r.lifeBAt.Load())) < 5*time.Millisecond {
			return true
		}
		time.Sleep(500 * time.Microsecond)
	}
	return false
}

// ---------------------------------------------------------------------------
// Bookkeeping.

func (r *runner) count(m map[string]int, kind string) {
	r.mu.Lock()
	m[kind]++
	r.mu.Unlock()
}

func (r *runner) ack(kind string)     { r.count(r.acked, kind) }
func (r *runner) refusal(kind string) { r.count(r.refusals, kind) }
func (r *runner) note(kind string)    { r.count(r.notes, kind) }

func (r *runner) gaveUpOn(kind, detail string) {
	r.count(r.gaveUp, kind)
	r.event("gave up: %s: %s", kind, detail)
}

// violate records a violation; keys find its log lines (see Violation).
// Request ids (c<client>.<n>.<attempt>) among keys are matched at any
// level.
func (r *runner) violate(kind, subject, detail string, keys ...string) {
	at := time.Duration(0)
	if !r.began.IsZero() {
		at = time.Since(r.began)
	}
	final := r.final.Load()
	r.mu.Lock()
	k := fmt.Sprintf("%s\x00%s\x00%v", kind, subject, final)
	v, seen := r.byKey[k]
	if seen {
		v.Count++
	} else {
		v = &Violation{Kind: kind, Subject: subject, Detail: detail, Count: 1, At: at, Final: final}
		for _, key := range keys {
			if key == "" {
				continue
			}
			if isReqID(key) {
				v.ReqIDs = append(v.ReqIDs, key)
			} else {
				v.Keys = append(v.Keys, key)
			}
		}
		r.byKey[k] = v
		r.violations = append(r.violations, v)
	}
	r.mu.Unlock()
	if !seen {
		r.event("VIOLATION %s: %s: %s", kind, subject, detail)
		r.progress("orgchaos: +%5.1fs violation %s: %s", at.Seconds(), kind, subject)
	}
}

// isReqID reports whether s is a request id the clients send.
func isReqID(s string) bool {
	return strings.HasPrefix(s, "chaos.")
}

func (r *runner) event(format string, args ...any) {
	r.eventsMu.Lock()
	defer r.eventsMu.Unlock()
	at := 0.0
	if !r.began.IsZero() {
		at = time.Since(r.began).Seconds()
	}
	fmt.Fprintf(r.events, "%s +%7.2fs %s\n", time.Now().UTC().Format("15:04:05.000"), at, fmt.Sprintf(format, args...))
}

func (r *runner) progress(format string, args ...any) {
	fmt.Fprintf(r.cfg.Progress, format+"\n", args...)
}

// useName records a name a client sent.
func (r *runner) useName(name string) {
	r.mu.Lock()
	r.used[name] = true
	r.mu.Unlock()
}

// held records that an organization was acknowledged under a name.
func (r *runner) held(name, orgID string) {
	if orgID == "" {
		return
	}
	r.mu.Lock()
	if !slices.Contains(r.holders[name], orgID) {
		r.holders[name] = append(r.holders[name], orgID)
	}
	r.mu.Unlock()
}

// otherHolders are the organizations other than orgID ever acknowledged
// under name: when orgID's collection (named after name) loses documents,
// their operations are the suspects.
func (r *runner) otherHolders(name, orgID string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, id := range r.holders[name] {
		if id != orgID {
			out = append(out, id)
		}
	}
	return out
}

// freeName records a name an acknowledged rename or deletion gave up, so
// that sign-ups and renames try it soon after.
func (r *runner) freeName(name string) {
	r.mu.Lock()
	r.freed = append(r.freed, freedName{name, time.Now()})
	if len(r.freed) > 32 {
		r.freed = r.freed[len(r.freed)-32:]
	}
	r.mu.Unlock()
}

// poolName is the i-th name of the shared pool.
func poolName(i int) string { return fmt.Sprintf("Chaos Org %02d", i) }

// pickName chooses an organization name: with probability fresh, one
// freed in the last 10 s, else one of the pool (clients × 5 names, so
// that names are contended and reused).
func (r *runner) pickName(rng *mrand.Rand, fresh float64) string {
	if rng.Float64() < fresh {
		r.mu.Lock()
		var recent []string
		for _, f := range r.freed {
			if time.Since(f.at) < 10*time.Second {
				recent = append(recent, f.name)
			}
		}
		r.mu.Unlock()
		if len(recent) > 0 {
			return recent[rng.IntN(len(recent))]
		}
	}
	return poolName(rng.IntN(r.cfg.Clients * 5))
}

// ---------------------------------------------------------------------------
// orgsvc check.

// check runs `orgsvc check` against the store and returns its status and
// output.
func (r *runner) check(ctx context.Context) (int, string, error) {
	dir, err := os.MkdirTemp("", "orgchaos-check-")
	if err != nil {
		return 0, "", err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.cfg.Binary, "check")
	cmd.Dir = dir
	cmd.Env = r.serviceEnv("MONGO_URI="+r.mongoURI, "JWT_SECRET="+r.secret, "MONGO_DB="+masterDB,
		"OPERATION_LEASE="+r.cfg.Lease.String())
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil {
		return 0, "", fmt.Errorf("orgsvc check: %w", err)
	}
	return cmd.ProcessState.ExitCode(), string(out), nil
}

// checkFindings records every finding of the final check as a violation.
func (r *runner) checkFindings(ctx context.Context, cli *mongo.Client, code int, out string) {
	found := false
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line == "consistent" || strings.HasSuffix(line, " inconsistencies") {
			continue
		}
		kind, _, _ := strings.Cut(line, " ")
		subject, _, _ := strings.Cut(line, ": ")
		keys := hexWords(line)
		detail := line
		if more := r.findingContext(ctx, cli, line); more != "" {
			detail += "\n" + more
		}
		r.violate("check:"+kind, subject, detail, keys...)
		found = true
	}
	if code != 0 && !found || code == 0 && !hasLine(out, "consistent") {
		r.violate("check-failed", "orgsvc check", fmt.Sprintf("exit %d:\n%s", code, out))
	} else if code != 0 {
		r.mu.Lock()
		r.notes[fmt.Sprintf("final orgsvc check exit status %d", code)]++
		r.mu.Unlock()
	}
}

func hasLine(text, line string) bool {
	return slices.Contains(strings.Split(text, "\n"), line)
}

// hexWords returns the 24-digit hex ids in s.
func hexWords(s string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(s, func(r rune) bool {
		return !('0' <= r && r <= '9' || 'a' <= r && r <= 'f')
	}) {
		if len(w) == 24 && !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Logs.

// attachLogs puts into each violation the log lines about it, and counts
// the WARN and ERROR lines by instance and message.
func attachLogs(vs []*Violation, paths []string) map[string]int {
	messages := map[string]int{}
	const perViolation = 12
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		name := filepath.Base(path)
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
		n := 0
		for sc.Scan() {
			n++
			line := sc.Text()
			warn := strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, `"level":"ERROR"`)
			if warn {
				messages[name+" "+jsonField(line, "level")+" "+jsonField(line, "msg")]++
			}
			for _, v := range vs {
				if len(v.Logs) >= perViolation {
					continue
				}
				hit := false
				for _, id := range v.ReqIDs {
					if strings.Contains(line, `"`+id+`"`) {
						hit = true
					}
				}
				if warn && !hit {
					for _, k := range v.Keys {
						if strings.Contains(line, k) {
							hit = true
							break
						}
					}
				}
				if hit {
					v.Logs = append(v.Logs, fmt.Sprintf("%s:%d: %s", name, n, line))
				}
			}
		}
		f.Close()
	}
	return messages
}

// jsonField pulls a string field out of a JSON log line without decoding
// it.
func jsonField(line, field string) string {
	_, rest, ok := strings.Cut(line, `"`+field+`":"`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// ---------------------------------------------------------------------------
// The summary.

// Write prints the summary; full prints every violation with its log
// lines, otherwise the first three of each kind.
func (s *Summary) Write(w io.Writer, full bool) {
	fmt.Fprintf(w, "orgchaos summary: seed %d, %s of load, %d clients, OPERATION_LEASE %s\n", s.Seed, s.Duration, s.Clients, s.Lease)
	fmt.Fprintf(w, "  logs                %s\n", s.Out)
	fmt.Fprintf(w, "  requests            %d (no answer %d, connection refused %d)\n", s.Requests, s.NoAnswer, s.Refused)
	fmt.Fprintf(w, "  kills               %d of B (%d during a lifecycle request), %d of A; %d restarts\n", s.Kills, s.Aimed, s.OwnerKills, s.Restarts)
	fmt.Fprintf(w, "  acknowledged        %s\n", counts(s.Acked))
	fmt.Fprintf(w, "  unknown, retried    %s\n", counts(s.Unknown))
	fmt.Fprintf(w, "  given up            %s\n", counts(s.GaveUp))
	fmt.Fprintf(w, "  refused as expected %s\n", counts(s.Refusals))
	if len(s.Notes) > 0 {
		fmt.Fprintf(w, "  notes               %s\n", counts(s.Notes))
	}
	if s.Recovered {
		fmt.Fprintf(w, "  recovery            orgsvc check clean %.1fs after the load\n", s.RecoveredIn.Seconds())
	} else {
		fmt.Fprintf(w, "  recovery            orgsvc check never came out clean\n")
	}
	if len(s.Messages) > 0 {
		fmt.Fprintf(w, "  warnings and errors the instances logged:\n")
		keys := make([]string, 0, len(s.Messages))
		for k := range s.Messages {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "    %6d  %s\n", s.Messages[k], k)
		}
	}
	fmt.Fprintf(w, "  final orgsvc check:\n")
	for _, line := range strings.Split(strings.TrimSpace(s.CheckOutput), "\n") {
		fmt.Fprintf(w, "    %s\n", line)
	}
	byKind := s.ByKind()
	fmt.Fprintf(w, "  violations          %d", len(s.Violations))
	if len(s.Violations) > 0 {
		fmt.Fprintf(w, ": %s", counts(byKind))
	}
	fmt.Fprintln(w)
	shown := map[string]int{}
	for _, v := range s.Violations {
		shown[v.Kind]++
		if !full && shown[v.Kind] > 3 {
			if shown[v.Kind] == 4 {
				fmt.Fprintf(w, "\n  [%s] %d more, in summary.txt\n", v.Kind, byKind[v.Kind]-3)
			}
			continue
		}
		when := "during the load"
		if v.Final {
			when = "after recovery"
		}
		fmt.Fprintf(w, "\n  [%s] %s (%s, at +%.1fs, seen %d times)\n", v.Kind, v.Subject, when, v.At.Seconds(), v.Count)
		for _, line := range strings.Split(v.Detail, "\n") {
			fmt.Fprintf(w, "      %s\n", line)
		}
		logs := v.Logs
		if !full && len(logs) > 5 {
			logs = logs[:5]
		}
		for _, line := range logs {
			if len(line) > 600 && !full {
				line = line[:600] + "..."
			}
			fmt.Fprintf(w, "      | %s\n", line)
		}
	}
}

// counts prints a map of counts as "a 3, b 1", largest first.
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

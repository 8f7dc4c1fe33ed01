package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Result is one measured scenario or baseline.
type Result struct {
	Name        string  `json:"name"`
	Kind        string  `json:"kind"`             // "scenario" or "baseline"
	Server      string  `json:"server,omitempty"` // which service process answered
	Concurrency int     `json:"concurrency"`
	Requests    uint64  `json:"requests"`
	Errors      uint64  `json:"errors"`
	Seconds     float64 `json:"seconds"`
	// RPS is successful requests (or operations) per second.
	RPS    float64 `json:"requests_per_second"`
	P50    float64 `json:"p50_ms"`
	P99    float64 `json:"p99_ms"`
	P999   float64 `json:"p999_ms"`
	Max    float64 `json:"max_ms"`
	Mean   float64 `json:"mean_ms"`
	PeakMB float64 `json:"peak_rss_mib,omitempty"` // the service's peak RSS while it ran
	// Commands is the database commands the service sent per request
	// (its orgsvc_db_commands_total over the scenario's requests); nil
	// for baselines, or when the service's /metrics cannot be read.
	Commands *float64 `json:"db_commands_per_request,omitempty"`
	// CommandsByName splits Commands by command name.
	CommandsByName map[string]float64 `json:"db_commands_per_request_by_command,omitempty"`
	// ServiceCPU and ToolCPU are the CPU time the service process (with its
	// embedded store) and the tool (load generator, driver, floor server)
	// spent per request, in microseconds.
	ServiceCPU float64 `json:"service_cpu_us_per_request,omitempty"`
	ToolCPU    float64 `json:"tool_cpu_us_per_request,omitempty"`
	// Events is the audit events each request verified (audit-verify);
	// EventsPerSecond, their rate at the median time.
	Events          int64   `json:"events,omitempty"`
	EventsPerSecond float64 `json:"events_per_second,omitempty"`
	// SeedSeconds is how long seeding what the scenario reads took
	// (audit-list, audit-verify).
	SeedSeconds float64 `json:"seed_seconds,omitempty"`
	// Baseline names the result this one is compared with; Ratio is this
	// one's RPS over the baseline's.
	Baseline      string  `json:"baseline,omitempty"`
	Ratio         float64 `json:"ratio_to_baseline,omitempty"`
	Organizations int     `json:"organizations,omitempty"` // organizations present, for the org-count series
	// Reference names the result measured in turns with this one on the
	// org-count series' reference service; ReferenceRatio is this one's
	// p50 over the reference's.
	Reference      string         `json:"reference,omitempty"`
	ReferenceRatio float64        `json:"p50_ratio_to_reference,omitempty"`
	StatusCodes    map[string]int `json:"status_codes,omitempty"`
	ErrorSamples   []string       `json:"error_samples,omitempty"`
	Note           string         `json:"note,omitempty"`
}

// load is a running measurement: a stream of results, and a way to end
// it early. busy, when set, is how long the load has been running, for a
// load that pauses (see alternate); otherwise the wall time counts.
type load struct {
	results <-chan *vegeta.Result
	stop    func()
	busy    func() time.Duration
}

// work is a load to measure, alone or in turns with another.
type work struct {
	name, kind string // kind: "scenario" or "baseline"
	server     string // the service process answering; empty: the one measured
	pid        int    // the process whose RSS and CPU are sampled; 0: none
	base       string // the service's address, to count its database commands; empty: not counted
	// concurrency is how many clients or goroutines; 0: -concurrency.
	concurrency   int
	note          string
	organizations int // organizations present, for the org-count series
	// start runs the load for d (unless it bounds itself otherwise, as
	// size then says); after, when set, runs once each turn of it has
	// ended, outside the measured time.
	start func(concurrency int, d time.Duration) load
	size  string
	after func()
	// op, in place of start: one operation, timed one at a time, times
	// of them.
	op    func(ctx context.Context, i int) error
	times int
	// series, in place of both: measures and records its own results.
	series func(context.Context) error
}

// clients is w's concurrency.
func (b *bench) clients(w work) int {
	if w.concurrency > 0 {
		return w.concurrency
	}
	return b.opts.concurrency
}

// httpWork drives targets at the measured service with vegeta (pacer nil:
// unpaced).
func (b *bench) httpWork(name string, tr vegeta.Targeter, pacer vegeta.Pacer) work {
	return work{name: name, kind: "scenario", pid: b.pid, base: b.base, start: func(c int, d time.Duration) load {
		return attackHTTP(name, tr, c, d, pacer)
	}}
}

// driverWork calls op from as many goroutines, each calling again as soon
// as the last call returns. The service's RSS and CPU are sampled too: the
// driver baselines load its store.
func (b *bench) driverWork(name, note string, op func(context.Context) error) work {
	return work{name: name, kind: "baseline", pid: b.pid, note: note, start: func(c int, d time.Duration) load {
		return runFunc(c, d, op)
	}}
}

// measure measures w alone for the scenario duration (or its operations
// one at a time) and records the result.
func (b *bench) measure(ctx context.Context, w work) *Result {
	var r *Result
	if w.op != nil {
		r = b.timeEach(ctx, w)
	} else {
		c := b.clients(w)
		if w.kind == "scenario" {
			b.logf("%s: %d clients for %s against %s", w.name, c, b.opts.duration, cmp.Or(w.base, b.base))
		} else {
			b.logf("baseline %s: %d goroutines for %s", w.name, c, b.opts.duration)
		}
		var cmds *cmdMeter
		if w.kind == "scenario" && w.base != "" {
			cmds = newCmdMeter(w.base)
		}
		cmds.begin()
		r = collect(ctx, b.log, w.name, w.kind, c, b.opts.duration, w.start(c, b.opts.duration), w.pid)
		cmds.end()
		cmds.fill(r)
	}
	r.Server, r.Note, r.Organizations = w.server, w.note, w.organizations
	b.add(r)
	return r
}

// alternateRounds is how many turns each side of an alternating
// measurement gets.
const alternateRounds = 5

// alternate measures two loads in turns, each running for a fifth of the
// scenario duration at a time until both have run for all of it. On a
// shared machine, load from elsewhere comes and goes on a scale of
// seconds and moves either side's throughput more than the difference
// between them; in turns, both see the same machine.
func (b *bench) alternate(ctx context.Context, sides [2]work) [2]*Result {
	const rounds = alternateRounds
	slice := b.opts.duration / rounds
	var out [2]chan *vegeta.Result
	var busy [2]atomic.Int64
	var stopped atomic.Bool
	var current atomic.Pointer[func()]
	stop := func() {
		stopped.Store(true)
		if f := current.Load(); f != nil {
			(*f)()
		}
	}
	var cmds [2]*cmdMeter
	for i, s := range sides {
		out[i] = make(chan *vegeta.Result, 4*b.clients(s))
		if s.kind == "scenario" && s.base != "" {
			cmds[i] = newCmdMeter(s.base)
		}
	}
	go func() {
		defer close(out[0])
		defer close(out[1])
		for round := range rounds {
			for i, s := range sides {
				if stopped.Load() {
					return
				}
				b.logf("  %s: turn %d of %d", s.name, round+1, rounds)
				cmds[i].begin()
				began := time.Now()
				l := s.start(b.clients(s), slice)
				current.Store(&l.stop)
				for r := range l.results {
					out[i] <- r
				}
				busy[i].Add(int64(time.Since(began)))
				cmds[i].end()
				if s.after != nil {
					s.after()
				}
			}
		}
	}()
	var res [2]*Result
	var wg sync.WaitGroup
	for i, s := range sides {
		size := cmp.Or(s.size, slice.String())
		b.logf("%s %s: %d clients, %d turns of %s, alternating with %s", s.kind, s.name, b.clients(s), rounds, size, sides[1-i].name)
		wg.Go(func() {
			l := load{results: out[i], stop: stop, busy: func() time.Duration { return time.Duration(busy[i].Load()) }}
			res[i] = collect(ctx, io.Discard, s.name, s.kind, b.clients(s), b.opts.duration, l, s.pid)
			// The tool's CPU covers both sides' load at once, and so
			// does the service's when both sides load it (the driver
			// baselines run on its embedded store): not attributable.
			res[i].ToolCPU = 0
			if sides[0].pid == sides[1].pid {
				res[i].ServiceCPU = 0
			}
			res[i].Server, res[i].Note, res[i].Organizations = s.server, s.note, s.organizations
			cmds[i].fill(res[i])
		})
	}
	wg.Wait()
	for _, r := range res {
		b.add(r)
	}
	return res
}

// attackHTTP drives targets with vegeta from concurrency workers, each
// sending its next request as soon as the last one is answered, for d
// (and, when pacer is not nil, until it says stop).
func attackHTTP(name string, tr vegeta.Targeter, concurrency int, d time.Duration, pacer vegeta.Pacer) load {
	a := vegeta.NewAttacker(
		vegeta.Workers(uint64(concurrency)),
		vegeta.MaxWorkers(uint64(concurrency)),
		vegeta.Connections(concurrency),
		vegeta.KeepAlive(true),
		vegeta.Timeout(2*time.Minute),
	)
	if pacer == nil {
		pacer = vegeta.ConstantPacer{} // no pacing: as fast as the workers go
	}
	return load{results: a.Attack(tr, pacer, d, name), stop: func() { a.Stop() }}
}

// maxHits is an unpaced vegeta.Pacer that stops after n hits.
type maxHits uint64

func (n maxHits) Pace(_ time.Duration, hits uint64) (time.Duration, bool) {
	return 0, hits >= uint64(n)
}

func (maxHits) Rate(time.Duration) float64 { return 0 }

// runFunc calls op from concurrency goroutines, each calling again as soon
// as the last call returns, for d; the calls in flight at the end finish
// and count, as vegeta's do.
func runFunc(concurrency int, d time.Duration, op func(context.Context) error) load {
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan *vegeta.Result, 4*concurrency)
	began := time.Now()
	var seq atomic.Uint64
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for ctx.Err() == nil && time.Since(began) < d {
				start := time.Now()
				err := op(ctx)
				r := &vegeta.Result{Seq: seq.Add(1), Timestamp: start, Latency: time.Since(start), Code: 200}
				if err != nil {
					if ctx.Err() != nil {
						return // stopped early: not a failure of op
					}
					r.Code, r.Error = 0, err.Error()
				}
				out <- r
			}
		})
	}
	go func() {
		wg.Wait()
		cancel()
		close(out)
	}()
	return load{results: out, stop: cancel}
}

// collect reads a load to its end, printing a progress line, and turns it
// into a Result. A cancelled ctx stops the load early.
func collect(ctx context.Context, progress io.Writer, name, kind string, concurrency int, d time.Duration, l load, pid int) *Result {
	rss := watchRSS(pid)
	cpu := startCPU(pid)
	var m vegeta.Metrics
	res := &Result{Name: name, Kind: kind, Concurrency: concurrency}
	errSeen := map[string]bool{}
	began := time.Now()
	p := newProgress(progress, name, d)
	defer p.finish()
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	done := ctx.Done()
	for {
		select {
		case r, ok := <-l.results:
			if !ok {
				m.Close()
				res.Seconds = time.Since(began).Seconds()
				if l.busy != nil {
					res.Seconds = l.busy().Seconds()
				}
				res.Requests = m.Requests
				res.PeakMB = mib(rss.Peak())
				res.ServiceCPU, res.ToolCPU = cpu.perRequest(m.Requests)
				if m.Requests == 0 {
					return res
				}
				res.RPS = float64(m.Requests-res.Errors) / res.Seconds
				res.P50 = ms(m.Latencies.Quantile(0.50))
				res.P99 = ms(m.Latencies.Quantile(0.99))
				res.P999 = ms(m.Latencies.Quantile(0.999))
				res.Max = ms(m.Latencies.Max)
				res.Mean = ms(m.Latencies.Mean)
				res.StatusCodes = m.StatusCodes
				return res
			}
			m.Add(r)
			p.add(r.Error != "")
			if r.Error != "" {
				res.Errors++
				msg := r.Error
				if len(r.Body) > 0 {
					msg += ": " + strings.TrimSpace(string(r.Body[:min(len(r.Body), 200)]))
				}
				if !errSeen[msg] && len(res.ErrorSamples) < 5 {
					errSeen[msg] = true
					res.ErrorSamples = append(res.ErrorSamples, msg)
				}
			}
		case <-tick.C:
			p.print()
		case <-done:
			l.stop()
			done = nil
		}
	}
}

// timeEach runs w's operation w.times times, one at a time, and times
// each run that succeeds; it stops early when the context ends or the
// database client is gone.
func (b *bench) timeEach(ctx context.Context, w work) *Result {
	b.logf("%s %s: %d operations, one at a time", w.kind, w.name, w.times)
	rss := watchRSS(w.pid)
	cpu := startCPU(w.pid)
	var lat []time.Duration
	var errs []string
	began := time.Now()
	for i := range w.times {
		if ctx.Err() != nil {
			break
		}
		start := time.Now()
		if err := w.op(ctx, i); err != nil {
			errs = append(errs, err.Error())
			if errors.Is(err, mongo.ErrClientDisconnected) {
				break
			}
			continue
		}
		lat = append(lat, time.Since(start))
	}
	return timed(w.name, w.kind, lat, errs, time.Since(began).Seconds(), rss.Peak(), cpu)
}

// timeInTurns times the operations of ws one at a time and in turns: the
// first of each, then the second of each, and so on. Each operation's
// database commands are counted; the RSS of each work's process is sampled
// over the whole.
func (b *bench) timeInTurns(ctx context.Context, ws []work) []*Result {
	lat := make([][]time.Duration, len(ws))
	errs := make([][]string, len(ws))
	cmds := make([]*cmdMeter, len(ws))
	rounds := 0
	rss := map[int]*rssWatch{}
	for i, w := range ws {
		if w.base != "" {
			cmds[i] = newCmdMeter(w.base)
		}
		rounds = max(rounds, w.times)
		if rss[w.pid] == nil {
			rss[w.pid] = watchRSS(w.pid)
		}
	}
	began := time.Now()
	for round := range rounds {
		for i, w := range ws {
			if ctx.Err() != nil || round >= w.times {
				continue
			}
			cmds[i].begin()
			start := time.Now()
			err := w.op(ctx, round)
			took := time.Since(start)
			cmds[i].end()
			if err != nil {
				errs[i] = append(errs[i], err.Error())
				continue
			}
			lat[i] = append(lat[i], took)
		}
	}
	seconds := time.Since(began).Seconds()
	peak := map[int]int64{}
	for pid, w := range rss {
		peak[pid] = w.Peak()
	}
	out := make([]*Result, len(ws))
	for i, w := range ws {
		r := timed(w.name, w.kind, lat[i], errs[i], seconds, peak[w.pid], nil)
		cmds[i].fill(r)
		r.Note, r.Server = w.note, w.server
		b.add(r)
		out[i] = r
	}
	return out
}

func timed(name, kind string, lat []time.Duration, errs []string, seconds float64, peak int64, cpu *cpuMeter) *Result {
	res := &Result{Name: name, Kind: kind, Concurrency: 1, Requests: uint64(len(lat) + len(errs)), Errors: uint64(len(errs)), Seconds: seconds, PeakMB: mib(peak)}
	if cpu != nil {
		res.ServiceCPU, res.ToolCPU = cpu.perRequest(res.Requests)
	}
	for _, e := range errs {
		if len(res.ErrorSamples) < 5 {
			res.ErrorSamples = append(res.ErrorSamples, e)
		}
	}
	if len(lat) == 0 {
		return res
	}
	s := slices.Clone(lat)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var total time.Duration
	for _, v := range s {
		total += v
	}
	res.P50 = ms(median(s))
	res.P99 = ms(quantile(s, 0.99))
	res.P999 = ms(quantile(s, 0.999))
	res.Max = ms(s[len(s)-1])
	res.Mean = ms(total / time.Duration(len(s)))
	res.RPS = 1000 / res.P50 // one at a time: the rate the median allows
	return res
}

func median(sorted []time.Duration) time.Duration {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// quantile is the nearest-rank quantile of sorted values.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// progress prints one line per interval while a measurement runs: on a
// terminal it rewrites one line, elsewhere it prints a new one.
type progress struct {
	w        io.Writer
	name     string
	total    time.Duration
	began    time.Time
	interval time.Duration
	tty      bool

	n, errs, lastN int
	last           time.Time
}

func newProgress(w io.Writer, name string, total time.Duration) *progress {
	p := &progress{w: w, name: name, total: total, began: time.Now(), interval: 2 * time.Second}
	p.last = p.began
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty, p.interval = true, 500*time.Millisecond
		}
	}
	return p
}

func (p *progress) add(failed bool) {
	p.n++
	if failed {
		p.errs++
	}
}

func (p *progress) line() string {
	now := time.Now()
	rate := float64(p.n-p.lastN) / now.Sub(p.last).Seconds()
	p.lastN, p.last = p.n, now
	return fmt.Sprintf("  %-22s %5.1fs/%-5s %9s req %9s req/s %6d errors",
		p.name, now.Sub(p.began).Seconds(), p.total.String(), group(p.n), group(int(rate)), p.errs)
}

func (p *progress) print() {
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", p.line())
		return
	}
	fmt.Fprintln(p.w, p.line())
}

func (p *progress) finish() {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// group writes n with thousands separators.
func group(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + group(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

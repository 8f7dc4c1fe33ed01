package main

import (
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

// timed turns individually timed operations (the rename scenarios) into a
// Result; its quantiles are exact.
// timeEach runs op n times, one at a time, and times each run that
// succeeds; it stops early when the context ends or the database client is
// gone.
func (b *bench) timeEach(ctx context.Context, name, kind string, n int, op func(ctx context.Context, i int) error) *Result {
	rss := watchRSS(b.pid)
	cpu := startCPU(b.pid)
	var lat []time.Duration
	var errs []string
	began := time.Now()
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		start := time.Now()
		if err := op(ctx, i); err != nil {
			errs = append(errs, err.Error())
			if errors.Is(err, mongo.ErrClientDisconnected) {
				break
			}
			continue
		}
		lat = append(lat, time.Since(start))
	}
	return timed(name, kind, lat, errs, time.Since(began).Seconds(), rss.Peak(), cpu)
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

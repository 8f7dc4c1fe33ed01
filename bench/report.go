package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Report is everything one run measured; results.json holds it as is.
type Report struct {
	Date             string    `json:"date"`
	Command          string    `json:"command"`
	Machine          Machine   `json:"machine"`
	Service          string    `json:"service"`
	Revision         string    `json:"revision,omitempty"` // git revision of the service built
	Concurrency      int       `json:"concurrency"`
	ScenarioSeconds  float64   `json:"scenario_seconds"`
	Short            bool      `json:"short"`
	BcryptCost       int       `json:"bcrypt_cost"`
	SeriesBcryptCost int       `json:"series_bcrypt_cost,omitempty"`
	Results          []*Result `json:"results"`
	Targets          []Target  `json:"targets"`
	Notes            []string  `json:"notes,omitempty"`
	WallSeconds      float64   `json:"wall_seconds"`
	// LoadStart and LoadEnd are the machine's load averages (1, 5 and 15
	// minutes) when the run began and ended: other work on the machine
	// skews every number.
	LoadStart string `json:"load_average_start"`
	LoadEnd   string `json:"load_average_end"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	MemoryMiB int64  `json:"memory_mib"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
}

// Target is one of the goals the service is held to, as measured.
type Target struct {
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	// Met is "yes", "no", or "n/a" when the run did not measure it.
	Met string `json:"met"`
}

func newReport(o config) Report {
	cmd := "orgbench"
	if len(o.args) > 0 {
		cmd += " " + strings.Join(o.args, " ")
	}
	return Report{
		Date:            time.Now().UTC().Format(time.RFC3339),
		Command:         cmd,
		Machine:         machine(),
		Concurrency:     o.concurrency,
		ScenarioSeconds: o.duration.Seconds(),
		Short:           o.short,
		LoadStart:       loadAverage(),
	}
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	if kb, err := strconv.ParseInt(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB"), 10, 64); err == nil {
		m.MemoryMiB = kb / 1024
	}
	return m
}

// procField returns the first value of "key: value" lines in a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// evaluateTargets checks the targets against the results: each
// scenario's, then that no request failed.
func (b *bench) evaluateTargets() []Target {
	var out []Target
	for _, s := range scenarios {
		if s.target != nil {
			out = append(out, s.target(b)...)
		}
	}
	var failing []string
	for _, r := range b.report.Results {
		if r.Errors > 0 {
			failing = append(failing, fmt.Sprintf("%s: %d", r.Name, r.Errors))
		}
	}
	t := Target{Goal: "zero errors in every scenario", Met: "n/a", Measured: "not measured"}
	if len(b.report.Results) > 0 {
		t.Met = yesNo(len(failing) == 0)
		t.Measured = "none"
		if len(failing) > 0 {
			t.Measured = strings.Join(failing, ", ")
		}
	}
	return append(out, t)
}

// renderFrom writes results.md and the charts for a results.json written
// by an earlier run.
func (b *bench) renderFrom(path string, stdout io.Writer) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, &b.report); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	b.sz = defaultSizes(b.report.Short)
	charts, err := b.writeCharts()
	if err != nil {
		return err
	}
	md := b.markdown(charts)
	if err := os.WriteFile(filepath.Join(b.opts.out, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	_, err = fmt.Fprint(stdout, md)
	return err
}

// writeOutputs writes results.json, results.md and the charts into -out,
// and the markdown to stdout.
func (b *bench) writeOutputs(stdout io.Writer) error {
	b.report.Targets = b.evaluateTargets()
	b.report.LoadEnd = loadAverage()
	js, err := json.MarshalIndent(b.report, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.opts.out, "results.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	charts, err := b.writeCharts()
	if err != nil {
		b.note("charts: %v", err)
	}
	md := b.markdown(charts)
	if err := os.WriteFile(filepath.Join(b.opts.out, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Fprint(stdout, md)
	b.logf("wrote %s", strings.Join(append([]string{"results.md", "results.json"}, charts...), ", ")+" into "+b.opts.out)
	return nil
}

// markdown renders the report.
func (b *bench) markdown(charts []string) string {
	r := &b.report
	var s strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&s, format, args...) }
	w("# orgbench results\n\n")
	w("- date: %s\n", r.Date)
	w("- command: `%s`\n", r.Command)
	w("- machine: %d CPUs (%s), %s MiB memory, %s, %s\n", r.Machine.CPUs, r.Machine.CPUModel, group(int(r.Machine.MemoryMiB)), r.Machine.OS, r.Machine.GoVersion)
	w("- service: %s\n", r.Service)
	if r.Revision != "" {
		w("- service source: %s\n", r.Revision)
	}
	w("- %d clients per scenario (unless named -c64), %s per scenario, BCRYPT_COST=%d", r.Concurrency, time.Duration(r.ScenarioSeconds*float64(time.Second)), r.BcryptCost)
	servers := map[string]bool{}
	for _, x := range r.Results {
		servers[x.Server] = true
	}
	switch {
	case servers["reference"]:
		w("; the org-count series (`@N` rows) ran on two more service processes with BCRYPT_COST=%d: `series`, signed up level by level, and `reference`, kept at the first level and measured in turns with it", r.SeriesBcryptCost)
	case servers["series"]:
		w("; the org-count series (`@N` rows) ran on a second service process with BCRYPT_COST=%d", r.SeriesBcryptCost)
	}
	w("\n- wall time: %s; load average %s at the start, %s at the end\n\n", time.Duration(r.WallSeconds*float64(time.Second)).Round(time.Second), r.LoadStart, r.LoadEnd)

	w("## Scenarios\n\n")
	w("req/s counts successful requests; ratio is req/s over the baseline's operations/s. CPU/req is the CPU time per request of the service process (with its embedded store) and of the tool (load generator, driver). DB commands/req is the database commands the service sent per request, from its `orgsvc_db_commands_total` (the driver's command monitor); for the org-create rows it counts the sign-ups alone, for org-delete a login and a deletion.\n\n")
	w("| scenario | server | clients | requests | req/s | p50 | p99 | p99.9 | errors | peak RSS | CPU/req service · tool | DB commands/req | baseline | ratio |\n")
	w("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|\n")
	for _, x := range r.Results {
		if x.Kind != "scenario" {
			continue
		}
		ratio := ""
		if x.Baseline != "" {
			ratio = fmt.Sprintf("%.2f", x.Ratio)
		}
		w("| %s | %s | %d | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s | %s |\n", x.Name, x.Server, x.Concurrency, group(int(x.Requests)), fmtRate(x.RPS),
			fmtMs(x.P50), fmtMs(x.P99), fmtMs(x.P999), x.Errors, fmtMiB(x.PeakMB), fmtCPU(x), fmtCommands(x.Commands), x.Baseline, ratio)
	}

	hasBaselines := false
	for _, x := range r.Results {
		hasBaselines = hasBaselines || x.Kind == "baseline"
	}
	if hasBaselines {
		w("\n## Baselines\n\n")
		w("Same machine, same run, same database; the driver baselines run in the tool's process against the service's own store.\n\n")
		w("| baseline | goroutines | operations | ops/s | p50 | p99 | p99.9 | errors | service RSS | CPU/op service · tool | what it does |\n")
		w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
		for _, x := range r.Results {
			if x.Kind != "baseline" {
				continue
			}
			w("| %s | %d | %s | %s | %s | %s | %s | %d | %s | %s | %s |\n", x.Name, x.Concurrency, group(int(x.Requests)), fmtRate(x.RPS),
				fmtMs(x.P50), fmtMs(x.P99), fmtMs(x.P999), x.Errors, fmtMiB(x.PeakMB), fmtCPU(x), x.Note)
		}
	}

	if rows := b.seriesRows(); len(rows) > 0 {
		w("\n## Latency against the number of organizations\n\n")
		w("Where \"÷ ref\" is filled in, the level was measured in turns with a second service holding the first level's organizations: it is the level's p50 over that service's p50, with the latter in brackets.\n\n")
		w("| organizations | org-get p50 | org-get p99 | org-get req/s | org-get ÷ ref | org-create p50 | org-create p99 | org-create req/s | org-create ÷ ref | org-delete p50 | org-delete ÷ ref |\n")
		w("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, row := range rows {
			del, delRef := "", ""
			if row.del != nil {
				del, delRef = fmtMs(row.del.P50), b.fmtReference(row.del)
			}
			w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", group(row.level), fmtMs(row.get.P50), fmtMs(row.get.P99), fmtRate(row.get.RPS), b.fmtReference(row.get),
				fmtMs(row.create.P50), fmtMs(row.create.P99), fmtRate(row.create.RPS), b.fmtReference(row.create), del, delRef)
		}
		w("\norg-delete is the series' sign-ups deleted again, %d at a time (log in, then `DELETE /org/delete`, timed together); no target, shown so that a deletion that grows with the organizations is seen.\n", deleteWorkers)
	}

	s.WriteString(b.auditMarkdown())

	w("\n## Targets\n\n| target | measured | met |\n|---|---|---|\n")
	for _, t := range r.Targets {
		w("| %s | %s | %s |\n", t.Goal, t.Measured, t.Met)
	}

	if errs := b.errorLines(); len(errs) > 0 {
		w("\n## Errors\n\n")
		for _, e := range errs {
			w("- %s\n", e)
		}
	}
	if len(r.Notes) > 0 {
		w("\n## Notes\n\n")
		for _, n := range r.Notes {
			w("- %s\n", n)
		}
	}
	if len(charts) > 0 {
		w("\n## Charts\n\n")
		for _, c := range charts {
			w("![%s](%s)\n\n", strings.TrimSuffix(c, ".png"), c)
		}
	}
	return s.String()
}

type seriesRow struct {
	level            int
	get, create, del *Result // del may be nil
}

// fmtReference shows r's p50 over its reference's, and the reference's
// p50; empty when r was not measured in turns with one.
func (b *bench) fmtReference(r *Result) string {
	ref := b.find(r.Reference)
	if r.Reference == "" || ref == nil {
		return ""
	}
	return fmt.Sprintf("%.2f× (%s, in turns)", r.ReferenceRatio, fmtMs(ref.P50))
}

// seriesRows pairs the org-count series' results by level.
func (b *bench) seriesRows() []seriesRow {
	var rows []seriesRow
	for _, level := range b.sz.orgLevels {
		g, c := b.find(fmt.Sprintf("org-get@%d", level)), b.find(fmt.Sprintf("org-create@%d", level))
		if g != nil && c != nil {
			rows = append(rows, seriesRow{level, g, c, b.find(fmt.Sprintf("org-delete@%d", level))})
		}
	}
	return rows
}

func (b *bench) errorLines() []string {
	var out []string
	for _, r := range b.report.Results {
		for _, e := range r.ErrorSamples {
			out = append(out, fmt.Sprintf("%s: %s", r.Name, strings.ReplaceAll(e, "\n", " ")))
		}
	}
	return out
}

// fmtMs writes a latency in milliseconds with a fitting unit.
func fmtMs(v float64) string {
	switch {
	case v == 0:
		return "–"
	case v < 1:
		return fmt.Sprintf("%.0f µs", v*1000)
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	case v < 1000:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.2f s", v/1000)
	}
}

// fmtCPU writes the CPU time per request of the service and of the tool.
func fmtCPU(r *Result) string {
	us := func(v float64) string {
		switch {
		case v == 0:
			return "–"
		case v < 10_000:
			return fmt.Sprintf("%.0f µs", v)
		default:
			return fmt.Sprintf("%.0f ms", v/1000)
		}
	}
	return us(r.ServiceCPU) + " · " + us(r.ToolCPU)
}

func fmtRate(v float64) string {
	if v >= 100 {
		return group(int(v + 0.5))
	}
	return fmt.Sprintf("%.1f", v)
}

func fmtMiB(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f MiB", v)
}

// auditMarkdown is the audit log's section of the report: what an event
// costs the operations that record one, a page of a log against the logs
// present, a chain verified whole; empty when none of them ran.
func (b *bench) auditMarkdown() string {
	var s strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&s, format, args...) }
	head := func() {
		if s.Len() == 0 {
			w("\n## Audit log\n")
		}
	}
	var ops [][2]*Result
	for _, op := range auditWriteOps {
		if on, off := b.find(op.with), b.find(op.without); on != nil && off != nil {
			ops = append(ops, [2]*Result{on, off})
		}
	}
	if len(ops) > 0 {
		head()
		w("\nEach operation on two services started alike (BCRYPT_COST=%d), the second with ORGSVC_AUDIT_OFF=1, in turns: one at a time, one of each on each service, then the next; the sign-ups under load in turns of a fifth each.\n\n", seriesCost)
		w("| operation | clients | requests | p50 with the log | p50 without | with ÷ without | p99 with | p99 without | DB commands/req with · without | errors |\n")
		w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, p := range ops {
			on, off := p[0], p[1]
			ratio := ""
			if off.P50 > 0 {
				ratio = fmt.Sprintf("%.2f×", on.P50/off.P50)
			}
			key := strings.TrimSuffix(on.Name, " with log")
			w("| %s | %d | %d | %s | %s | %s | %s | %s | %s · %s | %d |\n", key, on.Concurrency, on.Requests, fmtMs(on.P50), fmtMs(off.P50), ratio,
				fmtMs(on.P99), fmtMs(off.P99), fmtCommands(on.Commands), fmtCommands(off.Commands), on.Errors+off.Errors)
		}
		if r := b.find("driver audit-log create+append"); r != nil {
			w("\nThe log's own writes for a new organization, sent through the driver one at a time (createIndexes on source, which makes the collection, then the first event's insert): %s p50 over %d.\n", fmtMs(r.P50), r.Requests)
		}
	}
	var lists []*Result
	for _, r := range b.report.Results {
		if strings.HasPrefix(r.Name, "audit-list@") {
			lists = append(lists, r)
		}
	}
	if len(lists) > 0 {
		head()
		w("\nGET /org/audit?limit=50 by the owners of signed-up organizations, from %d clients, on two services with the log (BCRYPT_COST=%d), in turns; every log holds the same number of events, seeded through the driver, and the other logs belong to no organization.\n\n", lists[0].Concurrency, seriesCost)
		w("| listing | server | logs present | p50 | p99 | req/s | ÷ ref | DB commands/req | seeded in |\n")
		w("|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, r := range lists {
			w("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Name, r.Server, group(r.Organizations), fmtMs(r.P50), fmtMs(r.P99), fmtRate(r.RPS),
				b.fmtReference(r), fmtCommands(r.Commands), fmtSeconds(r.SeedSeconds))
		}
	}
	var verify []*Result
	for _, name := range []string{"audit-verify", "driver audit scan", "chain check in memory"} {
		if r := b.find(name); r != nil {
			verify = append(verify, r)
		}
	}
	if len(verify) > 0 {
		head()
		w("\n| verify | events | runs | median | max | events/s | seeded in | how |\n")
		w("|---|--:|--:|--:|--:|--:|--:|---|\n")
		for _, r := range verify {
			w("| %s | %s | %d | %s | %s | %s | %s | %s |\n", r.Name, group(int(r.Events)), r.Requests-r.Errors, fmtMs(r.P50), fmtMs(r.Max), group(int(r.EventsPerSecond)),
				fmtSeconds(r.SeedSeconds), r.Note)
		}
	}
	return s.String()
}

// fmtSeconds writes a duration given in seconds; "–" for none.
func fmtSeconds(v float64) string {
	if v == 0 {
		return "–"
	}
	d := time.Duration(v * float64(time.Second))
	if d >= time.Minute {
		return d.Round(time.Second).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

package main

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// commandsMetric is the service's count of database commands sent, by
// command (the driver's command monitor, Started events).
const commandsMetric = "orgsvc_db_commands_total"

// dbCommands reads the service at base's database commands so far from its
// /metrics; false when they cannot be read (METRICS_ADDR elsewhere, or a
// service without the metric).
func dbCommands(base string) (map[string]float64, bool) {
	if base == "" {
		return nil, false
	}
	c := &http.Client{Timeout: 5 * time.Second}
	res, err := c.Get(base + "/metrics")
	if err != nil {
		return nil, false
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, false
	}
	by := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, commandsMetric+"{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, false
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(line[:i], commandsMetric+`{command="`), `"`)
		by[name] += v
	}
	return by, len(by) > 0 && sc.Err() == nil
}

// cmdMeter adds up the database commands a service sends during the
// windows between begin and end (a scenario's load, or one turn of it).
type cmdMeter struct {
	base string
	mu   sync.Mutex
	sum  map[string]float64
	from map[string]float64
	ok   bool
	bad  bool
}

func newCmdMeter(base string) *cmdMeter { return &cmdMeter{base: base} }

// begin and end do nothing on a nil meter: commands not counted.
func (m *cmdMeter) begin() {
	if m == nil {
		return
	}
	v, ok := dbCommands(m.base)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.from, m.bad = v, m.bad || !ok
}

func (m *cmdMeter) end() {
	if m == nil {
		return
	}
	v, ok := dbCommands(m.base)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !ok {
		m.bad = true
		return
	}
	if m.sum == nil {
		m.sum = map[string]float64{}
	}
	for k, n := range v {
		if d := n - m.from[k]; d != 0 {
			m.sum[k] += d
		}
	}
	m.ok = true
}

// perRequest is the commands per request over n requests; nil when they
// could not be counted.
func (m *cmdMeter) perRequest(n uint64) *float64 {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.ok || m.bad || n == 0 {
		return nil
	}
	var v float64
	for _, d := range m.sum {
		v += d
	}
	v /= float64(n)
	return &v
}

// byCommand is perRequest for each command name.
func (m *cmdMeter) byCommand(n uint64) map[string]float64 {
	if m.perRequest(n) == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]float64{}
	for k, d := range m.sum {
		out[k] = d / float64(n)
	}
	return out
}

// fmtCommands formats commands per request for the report.
func fmtCommands(v *float64) string {
	if v == nil {
		return "–"
	}
	return strconv.FormatFloat(*v, 'f', 2, 64)
}

// fill sets r's commands per request from m.
func (m *cmdMeter) fill(r *Result) {
	r.Commands, r.CommandsByName = m.perRequest(r.Requests), m.byCommand(r.Requests)
}

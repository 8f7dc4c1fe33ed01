// Package metrics holds the service's Prometheus metrics.
package metrics

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/orgsvc/orgsvc/internal/buildinfo"
)

// Metrics are the service's collectors, on a registry of their own.
type Metrics struct {
	Registry *prometheus.Registry

	// Requests counts answers by route pattern, method and status.
	Requests *prometheus.CounterVec
	// Latency observes request durations by route pattern and method.
	Latency *prometheus.HistogramVec
	// Logins counts login outcomes: success, invalid, rate_limited, busy,
	// error.
	Logins *prometheus.CounterVec
	// RateLimited counts refusals by limit.
	RateLimited *prometheus.CounterVec
	// DBErrors counts failed database commands by command name.
	DBErrors *prometheus.CounterVec
	// DBCommands counts database commands sent, by command name.
	DBCommands *prometheus.CounterVec
	// OrgCache counts organization cache lookups: hit or miss.
	OrgCache *prometheus.CounterVec

	mu      sync.RWMutex
	answers map[answerKey]answerMetrics
}

// answerKey and answerMetrics keep the children of Requests and Latency
// for each route, method and status seen, so that counting an answer
// costs one map lookup instead of hashing every label value twice.
type answerKey struct {
	route, method string
	status        int
}

type answerMetrics struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// Answered counts one HTTP answer in Requests and Latency.
func (m *Metrics) Answered(route, method string, status int, seconds float64) {
	k := answerKey{route, method, status}
	m.mu.RLock()
	a, ok := m.answers[k]
	m.mu.RUnlock()
	if !ok {
		a = answerMetrics{
			count:   m.Requests.WithLabelValues(route, method, strconv.Itoa(status)),
			latency: m.Latency.WithLabelValues(route, method),
		}
		m.mu.Lock()
		m.answers[k] = a
		m.mu.Unlock()
	}
	a.count.Inc()
	a.latency.Observe(seconds)
}

// Pool is what the bcrypt pool reports.
type Pool interface {
	Waiting() int
	Running() int
}

// New registers the service's metrics, the Go runtime and process
// collectors, and build information.
func New(pool Pool) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		answers:  map[answerKey]answerMetrics{},
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgsvc_http_requests_total", Help: "HTTP answers by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "orgsvc_http_request_duration_seconds", Help: "HTTP request latency by route pattern and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		Logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgsvc_logins_total", Help: "Login attempts by outcome.",
		}, []string{"outcome"}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgsvc_rate_limited_total", Help: "Requests refused by a rate limit, by limit.",
		}, []string{"limit"}),
		DBErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgsvc_db_errors_total", Help: "Failed database commands by command name.",
		}, []string{"command"}),
		DBCommands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgsvc_db_commands_total", Help: "Database commands sent, by command name.",
		}, []string{"command"}),
		OrgCache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgsvc_org_cache_lookups_total", Help: "Organization cache lookups by result (hit, miss).",
		}, []string{"result"}),
	}
	bi := buildinfo.Read()
	reg.MustRegister(
		m.Requests, m.Latency, m.Logins, m.RateLimited, m.DBErrors, m.DBCommands, m.OrgCache,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "orgsvc_bcrypt_queue", Help: "bcrypt calls waiting for a worker.",
		}, func() float64 { return float64(pool.Waiting()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "orgsvc_bcrypt_running", Help: "bcrypt calls running.",
		}, func() float64 { return float64(pool.Running()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "orgsvc_build_info", Help: "The running build: always 1.",
			ConstLabels: prometheus.Labels{"version": bi.Version, "commit": bi.Commit, "goversion": bi.GoVersion},
		}, func() float64 { return 1 }),
	)
	return m
}

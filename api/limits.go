package api

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/httprate"
)

// Limits are the per-minute request limits; 0 turns one off.
type Limits struct {
	// LoginPerEmail counts failed logins for one e-mail from one client
	// address; LoginPerEmailTotal, for one e-mail from all of them. A
	// victim's own logins thus still work while an attacker elsewhere is
	// refused, unless the attack is spread over many addresses.
	LoginPerEmail      int
	LoginPerEmailTotal int
	LoginPerAddress    int
	CreatePerAddress   int
	// CredentialsPerAccount and CredentialsPerAddress count updates that
	// change an e-mail or password (each costs a bcrypt hash).
	CredentialsPerAccount int
	CredentialsPerAddress int
	// TrustProxy is how many reverse proxies stand in front: the client
	// address is read that many entries from the right of X-Forwarded-For.
	TrustProxy int
}

// limiters holds one sliding-window limiter per limit (nil when off). The
// counts live in this process: with several instances, each allows the
// limit.
type limiters struct {
	loginFailures      *failures // by e-mail and address
	loginFailuresTotal *failures // by e-mail
	loginAddress       *httprate.RateLimiter
	createAddr         *httprate.RateLimiter
	credAccount        *httprate.RateLimiter
	credAddress        *httprate.RateLimiter
}

func newLimiters(l Limits) limiters {
	perMinute := func(n int) *httprate.RateLimiter {
		if n <= 0 {
			return nil
		}
		return httprate.NewRateLimiter(n, time.Minute)
	}
	return limiters{
		loginFailures:      newFailures(l.LoginPerEmail, time.Minute),
		loginFailuresTotal: newFailures(l.LoginPerEmailTotal, time.Minute),
		loginAddress:       perMinute(l.LoginPerAddress),
		createAddr:         perMinute(l.CreatePerAddress),
		credAccount:        perMinute(l.CredentialsPerAccount),
		credAddress:        perMinute(l.CredentialsPerAddress),
	}
}

// limited counts the request against limiter under key: nil, or, over the
// limit, errTooManyRequests with Retry-After set.
func (s *server) limited(w http.ResponseWriter, r *http.Request, limiter *httprate.RateLimiter, name, key string) error {
	if limiter == nil || !limiter.OnLimit(w, r, name+":"+key) {
		return nil
	}
	return s.tooMany(name)
}

// tooMany counts a refusal by the limit name and returns errTooManyRequests.
func (s *server) tooMany(name string) error {
	if s.metrics != nil {
		s.metrics.RateLimited.WithLabelValues(name).Inc()
	}
	return errTooManyRequests
}

// failures counts failed attempts per key in a sliding window, weighted
// as httprate weighs requests. An attempt reserves its failure before it
// runs and refunds it if it did not fail, so concurrent attempts cannot
// overrun the limit. The counts live in this process.
type failures struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu        sync.Mutex
	start     time.Time // of the current window
	cur, prev map[string]int
}

// reservation is a failure counted in advance.
type reservation struct {
	key    string
	window time.Time
}

func newFailures(limit int, window time.Duration) *failures {
	if limit <= 0 {
		return nil
	}
	return &failures{limit: limit, window: window, now: time.Now, start: time.Now(), cur: map[string]int{}, prev: map[string]int{}}
}

// rotate moves the windows on to now.
func (f *failures) rotate(now time.Time) {
	switch d := now.Sub(f.start); {
	case d < f.window:
	case d < 2*f.window:
		f.start = f.start.Add(f.window)
		clear(f.prev)
		f.prev, f.cur = f.cur, f.prev
	default:
		f.start = now
		clear(f.prev)
		clear(f.cur)
	}
}

// reserve counts one failure under key, unless the limit is reached
// (then false). A nil failures never refuses.
func (f *failures) reserve(key string) (reservation, bool) {
	if f == nil {
		return reservation{}, true
	}
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rotate(now)
	weight := float64(f.window-now.Sub(f.start)) / float64(f.window)
	if int(math.Round(float64(f.prev[key])*weight))+f.cur[key]+1 > f.limit {
		return reservation{}, false
	}
	f.cur[key]++
	return reservation{key: key, window: f.start}, true
}

// refund takes back a reserved failure: the attempt did not fail.
func (f *failures) refund(r reservation) {
	if f == nil || r.key == "" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rotate(f.now())
	m := f.cur
	if !r.window.Equal(f.start) {
		if !r.window.Equal(f.start.Add(-f.window)) {
			return // forgotten already
		}
		m = f.prev
	}
	if m[r.key] > 1 {
		m[r.key]--
	} else {
		delete(m, r.key)
	}
}

// retryAfter is the Retry-After of a refusal by f.
func (f *failures) retryAfter() string { return strconv.Itoa(int(f.window.Seconds())) }

// clientAddr is the address the request came from: the TCP peer, or, behind
// TrustProxy proxies, the entry of X-Forwarded-For the nearest trusted
// proxy added.
func (s *server) clientAddr(r *http.Request) string {
	if s.trustProxy > 0 {
		var hops []string
		for _, h := range r.Header.Values("X-Forwarded-For") {
			for _, part := range strings.Split(h, ",") {
				if p := strings.TrimSpace(part); p != "" {
					hops = append(hops, p)
				}
			}
		}
		if i := len(hops) - s.trustProxy; i >= 0 && i < len(hops) {
			if ip := net.ParseIP(hops[i]); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

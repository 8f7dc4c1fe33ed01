package api

import (
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/httprate"
)

// Limits are the per-minute request limits; 0 turns one off.
type Limits struct {
	LoginPerEmail    int
	LoginPerAddress  int
	CreatePerAddress int
	// TrustProxy is how many reverse proxies stand in front: the client
	// address is read that many entries from the right of X-Forwarded-For.
	TrustProxy int
}

// limiters holds one sliding-window limiter per limit (nil when off). The
// counts live in this process: with several instances, each allows the
// limit.
type limiters struct {
	loginEmail   *httprate.RateLimiter
	loginAddress *httprate.RateLimiter
	createAddr   *httprate.RateLimiter
}

func newLimiters(l Limits) limiters {
	perMinute := func(n int) *httprate.RateLimiter {
		if n <= 0 {
			return nil
		}
		return httprate.NewRateLimiter(n, time.Minute)
	}
	return limiters{
		loginEmail:   perMinute(l.LoginPerEmail),
		loginAddress: perMinute(l.LoginPerAddress),
		createAddr:   perMinute(l.CreatePerAddress),
	}
}

// limited counts the request against limiter under key and, when over the
// limit, answers 429 with Retry-After and returns true.
func (s *server) limited(w http.ResponseWriter, r *http.Request, limiter *httprate.RateLimiter, name, key string) bool {
	if limiter == nil || !limiter.OnLimit(w, r, name+":"+key) {
		return false
	}
	if s.metrics != nil {
		s.metrics.RateLimited.WithLabelValues(name).Inc()
	}
	encode(w, http.StatusTooManyRequests, ErrorResponse{Detail: "Too many requests; retry later"})
	return true
}

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

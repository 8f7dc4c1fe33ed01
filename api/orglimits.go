package api

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/time/rate"

	"github.com/orgsvc/orgsvc/internal/service"
)

// orgRates limit each organization's requests, over all its members, on
// this instance: a token bucket per organization (golang.org/x/time/rate),
// and a count of the last ten seconds' requests for GET /org/usage.
type orgRates struct {
	mu   sync.Mutex
	orgs map[bson.ObjectID]*orgRate
	// held counts the refusals being held (see hold).
	once sync.Once
	held chan struct{}
}

// RefusalHold is how long a request refused for its organization's rate
// is held before its 429, and heldMax how many are held at once (beyond
// that, refusals are answered at once). A client that retries at once,
// not waiting for Retry-After, then costs an instance a few refusals a
// second per connection instead of thousands, which would take the CPU
// from other organizations.
const (
	RefusalHold = 250 * time.Millisecond
	heldMax     = 1024
)

// hold waits RefusalHold, or until the request ends, if fewer than
// heldMax refusals are being held.
func (o *orgRates) hold(ctx context.Context) {
	o.once.Do(func() { o.held = make(chan struct{}, heldMax) })
	select {
	case o.held <- struct{}{}:
	default:
		return
	}
	defer func() { <-o.held }()
	sleep(ctx, RefusalHold)
}

// sleep waits d, or until ctx ends: false then.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

type orgRate struct {
	limiter *rate.Limiter
	used    time.Time
	// counts are the requests of the last ten whole seconds, by second.
	counts [10]int
	second int64
}

// rateWindow is how many seconds requests_per_second averages over.
const rateWindow = 10

// QueueMax is how long a request past its organization's bucket may wait
// for its turn instead of being refused: requests over the rate are
// spread out to it, as they come, rather than let through in waves.
const QueueMax = 100 * time.Millisecond

// take counts a request of org at now against l. It is let through after
// delay (0: at once), or, when ok is false, refused: wait is then the time
// before the next one would be let through.
func (o *orgRates) take(org bson.ObjectID, l service.Limits, now time.Time) (delay time.Duration, ok bool, wait time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.orgs == nil {
		o.orgs = map[bson.ObjectID]*orgRate{}
	}
	e := o.orgs[org]
	if e == nil {
		if len(o.orgs) >= 100_000 {
			o.forgetIdle(now)
		}
		e = &orgRate{limiter: rate.NewLimiter(rate.Limit(l.RatePerSecond), max(l.RateBurst, 1))}
		o.orgs[org] = e
	}
	e.used = now
	e.advance(now)
	e.counts[now.Unix()%rateWindow]++
	if l.RatePerSecond <= 0 {
		return 0, true, 0
	}
	if e.limiter.Limit() != rate.Limit(l.RatePerSecond) || e.limiter.Burst() != max(l.RateBurst, 1) {
		e.limiter.SetLimitAt(now, rate.Limit(l.RatePerSecond))
		e.limiter.SetBurstAt(now, max(l.RateBurst, 1))
	}
	r := e.limiter.ReserveN(now, 1)
	d := r.DelayFrom(now)
	if d <= QueueMax {
		return d, true, 0
	}
	r.CancelAt(now)
	return 0, false, d
}

// advance moves the per-second counts on to now, clearing the seconds
// passed since.
func (e *orgRate) advance(now time.Time) {
	sec := now.Unix()
	if sec-e.second > rateWindow {
		clear(e.counts[:])
		e.second = sec
	}
	for e.second < sec {
		e.second++
		e.counts[e.second%rateWindow] = 0
	}
}

// perSecond is org's requests per second over the last ten seconds here.
func (o *orgRates) perSecond(org bson.ObjectID, now time.Time) float64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	e := o.orgs[org]
	if e == nil {
		return 0
	}
	e.advance(now)
	total := 0
	for _, n := range e.counts {
		total += n
	}
	return float64(total) / rateWindow
}

// forgetIdle drops the organizations idle for a minute.
func (o *orgRates) forgetIdle(now time.Time) {
	for id, e := range o.orgs {
		if now.Sub(e.used) > time.Minute {
			delete(o.orgs, id)
		}
	}
}

// orgRate holds a request of an organization past its bucket
// (ORG_RATE_PER_SECOND, ORG_RATE_BURST, or its own) until its turn, up to
// QueueMax, and refuses one that would wait longer, with 429 and
// Retry-After.
func (s *server) orgRate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := principal(r)
		delay, ok, wait := s.rates.take(p.OrgID, s.docs.TenantLimits().With(p.Limits), time.Now())
		if ok && delay > 0 && !sleep(r.Context(), delay) {
			return // the client is gone
		}
		if !ok {
			s.rates.hold(r.Context())
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(max(wait.Seconds(), 1)))))
			s.writeError(w, r, s.tooMany("org_rate"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// UsageResponse is an organization's usage and limits.
type UsageResponse struct {
	Documents         int64       `json:"documents" example:"1200"`
	Bytes             int64       `json:"bytes" example:"483200"`
	RequestsPerSecond float64     `json:"requests_per_second" example:"3.4"`
	Limits            UsageLimits `json:"limits"`
} //	@name	UsageResponse

// UsageLimits are the limits in force; 0 is none.
type UsageLimits struct {
	MaxDocuments  int64   `json:"max_documents" example:"0"`
	MaxBytes      int64   `json:"max_bytes" example:"0"`
	RatePerSecond float64 `json:"rate_per_second" example:"200"`
	RateBurst     int     `json:"rate_burst" example:"400"`
} //	@name	UsageLimits

// handleUsage godoc
//
//	@Summary		The organization's usage and limits
//	@Description	What the organization stores (documents, and bytes as the store counts them), its requests per second over the last ten seconds on the instance that answers, and the limits in force (0: none). Any member.
//	@Tags			tenant data
//	@Produce		json
//	@Security		BearerAuth
//	@Success		200	{object}	UsageResponse
//	@Failure		401	{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Header			401	{string}	WWW-Authenticate	"Bearer challenge (RFC 6750)"
//	@Failure		403	{object}	ErrorResponse	"Organization suspended"
//	@Failure		429	{object}	ErrorResponse	"Past the organization's request rate (Retry-After)"
//	@Failure		500	{object}	ErrorResponse
//	@Failure		503	{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Router			/org/usage [get]
func (s *server) handleUsage(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	u, err := s.docs.Usage(r.Context(), p)
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, UsageResponse{
		Documents: u.Documents, Bytes: u.Bytes, RequestsPerSecond: s.rates.perSecond(p.OrgID, time.Now()),
		Limits: UsageLimits(u.Limits),
	})
	return nil
}

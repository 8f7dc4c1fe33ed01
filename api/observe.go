package api

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// requestInfo travels in a request's context so that inner layers can
// tell the outer log line who the request was for.
type requestInfo struct {
	id  string
	org string
}

type requestInfoKey struct{}

func info(ctx context.Context) *requestInfo {
	ri, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	if ri == nil {
		return &requestInfo{}
	}
	return ri
}

// validRequestID is what a client-sent X-Request-ID may look like; anything
// else is replaced, so that log lines cannot be forged through it.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// newRequestID makes a random 128-bit id. It needs to be unique, not
// secret, so it comes from the runtime's fast generator rather than the
// operating system's.
func newRequestID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

// probes are the routes load balancers and monitors poll; their request
// lines are logged at debug level, so that polling does not drown the log
// (errors are logged whatever the route).
var probes = map[string]bool{"/health": true, "/ready": true, "/metrics": true}

// observe gives every request an id (X-Request-ID, accepted or generated,
// and echoed), a deadline that reaches the database calls, one log line and
// its metrics.
func (s *server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-ID")
		if !validRequestID.MatchString(id) {
			id = newRequestID()
		}
		w.Header()["X-Request-Id"] = []string{id}
		ri := &requestInfo{id: id}
		ctx := context.WithValue(r.Context(), requestInfoKey{}, ri)
		if s.requestTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, s.requestTimeout)
			defer cancel()
		}
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r.WithContext(ctx))

		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		elapsed := time.Since(start)
		if s.metrics != nil {
			s.metrics.Requests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
			s.metrics.Latency.WithLabelValues(route, r.Method).Observe(elapsed.Seconds())
		}
		level := slog.LevelInfo
		switch {
		case status >= 500:
			level = slog.LevelError
		case probes[route]:
			level = slog.LevelDebug
		}
		if !s.log.Enabled(r.Context(), level) {
			return
		}
		s.log.LogAttrs(r.Context(), level, "request",
			slog.String("request_id", id),
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
			slog.Int("bytes", ww.BytesWritten()),
			slog.String("org", ri.org),
			slog.String("client", s.clientAddr(r)),
		)
	})
}

// The headers every answer carries, and those of every API answer (not the
// Swagger UI's static files): never cached, since answers carry tokens and
// tenant data, and nothing to run. Keys are in canonical form and values
// shared, so setting them costs no allocation.
var (
	everyAnswer = http.Header{
		"X-Content-Type-Options": {"nosniff"},
		"X-Frame-Options":        {"DENY"},
		"Referrer-Policy":        {"no-referrer"},
	}
	apiAnswer = http.Header{
		"Cache-Control":           {"no-store"},
		"Content-Security-Policy": {"default-src 'none'; frame-ancestors 'none'"},
	}
)

// secureHeaders sets the headers above.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for k, v := range everyAnswer {
			h[k] = v
		}
		if !strings.HasPrefix(r.URL.Path, "/docs") {
			for k, v := range apiAnswer {
				h[k] = v
			}
		}
		next.ServeHTTP(w, r)
	})
}

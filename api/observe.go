package api

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"regexp"
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
	// authError is why authentication failed; never the token.
	authError string
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
// and echoed), one log line and its metrics.
func (s *server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-ID")
		if id == "" || !validRequestID.MatchString(id) {
			id = newRequestID()
		}
		w.Header()["X-Request-Id"] = []string{id}
		ri := &requestInfo{id: id}
		ctx := context.WithValue(r.Context(), requestInfoKey{}, ri)
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
			s.metrics.Answered(route, r.Method, status, elapsed.Seconds())
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
		attrs := [...]slog.Attr{
			slog.String("request_id", id),
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
			slog.Int("bytes", ww.BytesWritten()),
			slog.String("org", ri.org),
			slog.String("client", s.clientAddr(r)),
			slog.String("auth_error", ri.authError),
		}
		n := len(attrs)
		if ri.authError == "" {
			n-- // only refused requests carry it
		}
		s.log.LogAttrs(r.Context(), level, "request", attrs[:n]...)
	})
}

// deadline bounds the request, database calls included, by
// REQUEST_TIMEOUT. The probes and the documentation do without: they do
// not reach the database, or bound their one call themselves.
func (s *server) deadline(next http.Handler) http.Handler {
	if s.requestTimeout <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		timeout := s.requestTimeout
		if streams[r.URL.Path] {
			// Its size is the organization's: the server's write timeout
			// and the request timeout give way to streamTimeout.
			timeout = streamTimeout
			rc := http.NewResponseController(w)
			_ = rc.SetWriteDeadline(time.Now().Add(streamTimeout))
			_ = rc.SetReadDeadline(time.Now().Add(streamTimeout))
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// streams are the routes whose bodies grow with an organization's data:
// exports and imports.
var streams = map[string]bool{"/org/export": true, "/org/import": true, "/org/audit/export": true}

// streamTimeout bounds a stream instead of REQUEST_TIMEOUT.
const streamTimeout = time.Hour

// header is one response header: its key in canonical form and a shared
// value, so that setting it costs no allocation.
type header struct {
	key   string
	value []string
}

// The headers every answer carries, and those of every API answer (not the
// Swagger UI's static files): never cached, since answers carry tokens and
// tenant data, and nothing to run.
var (
	everyAnswer = []header{
		{"X-Content-Type-Options", []string{"nosniff"}},
		{"X-Frame-Options", []string{"DENY"}},
		{"Referrer-Policy", []string{"no-referrer"}},
	}
	apiAnswer = []header{
		{"Cache-Control", []string{"no-store"}},
		{"Content-Security-Policy", []string{"default-src 'none'; frame-ancestors 'none'"}},
	}
)

// secureHeaders sets the headers above.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for _, x := range everyAnswer {
			h[x.key] = x.value
		}
		if !strings.HasPrefix(r.URL.Path, "/docs") {
			for _, x := range apiAnswer {
				h[x.key] = x.value
			}
		}
		next.ServeHTTP(w, r)
	})
}

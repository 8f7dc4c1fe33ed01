package api

import (
	"net/http"
	"runtime/debug"
)

// recoverPanics turns a panic into a 500 in the error shape; the stack goes
// to the log, never to the client.
func (s *server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.ErrorContext(r.Context(), "panic", "request_id", info(r.Context()).id, "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			s.writeError(w, r, errPanicked)
		}()
		next.ServeHTTP(w, r)
	})
}

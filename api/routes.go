package api

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/cors"
	httpSwagger "github.com/swaggo/http-swagger/v2"

	_ "github.com/orgsvc/orgsvc/docs" // the generated OpenAPI document
	"github.com/orgsvc/orgsvc/internal/model"
)

// routes is the whole API surface.
func (s *server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(s.observe, s.recoverPanics, secureHeaders)
	if len(s.corsOrigins) > 0 {
		r.Use(cors.Handler(cors.Options{
			AllowedOrigins: s.corsOrigins,
			AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
			AllowedHeaders: []string{"Authorization", "Content-Type", "X-Request-ID", "Idempotency-Key"},
			ExposedHeaders: []string{"X-Request-ID", "Retry-After"},
			MaxAge:         600,
		}))
	}
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { s.writeError(w, r, errNotFound) })
	r.MethodNotAllowed(s.methodNotAllowed(r))

	// HEAD answers as GET, without the body (net/http drops it).
	r.Get("/health", s.handleHealth)
	r.Head("/health", s.handleHealth)
	r.Get("/ready", s.handle(s.handleReady))
	r.Head("/ready", s.handle(s.handleReady))
	if s.metrics != nil && !s.metricsApart {
		r.Get("/metrics", s.handleMetrics)
	}

	r.Group(func(r chi.Router) {
		r.Use(s.deadline, s.auditContext)
		r.Post("/admin/login", s.handle(s.handleLogin))
		r.With(s.authenticate).Post("/admin/logout", s.handle(s.handleLogout))
		r.With(s.authenticate).Post("/admin/switch", s.handle(s.handleSwitch))
		r.With(s.authenticate).Get("/me", s.handle(s.handleMe))
		r.With(s.authenticate).Patch("/me", s.handle(s.handleUpdateMe))
		r.Post("/invitations/accept", s.handle(s.handleAccept))

		r.Route("/org", func(r chi.Router) {
			r.Post("/create", s.handle(s.handleCreateOrg))
			r.Get("/get", s.handle(s.handleGetOrg))
			r.Group(func(r chi.Router) {
				r.Use(s.authenticate, s.orgRate)
				// POST too: the original's README documents POST for both.
				r.Put("/update", s.handle(s.handleUpdateOrg))
				r.Post("/update", s.handle(s.handleUpdateOrg))

				r.Get("/documents", s.handle(s.handleListDocuments))
				r.Get("/documents/{id}", s.handle(s.handleGetDocument))
				write := s.atLeast(model.RoleMember)
				r.With(write).Post("/documents", s.handle(s.handleCreateDocument))
				r.With(write).Put("/documents/{id}", s.handle(s.handleReplaceDocument))
				r.With(write).Patch("/documents/{id}", s.handle(s.handlePatchDocument))
				r.With(write).Delete("/documents/{id}", s.handle(s.handleDeleteDocument))

				r.Get("/members", s.handle(s.handleListMembers))
				r.Patch("/members/{account_id}", s.handle(s.handleChangeRole))
				r.Delete("/members/{account_id}", s.handle(s.handleRemoveMember))

				r.Post("/invitations", s.handle(s.handleInvite))
				r.Get("/invitations", s.handle(s.handleListInvitations))
				r.Delete("/invitations/{id}", s.handle(s.handleRevokeInvitation))
				r.Post("/invitations/{id}/resend", s.handle(s.handleResendInvitation))

				r.Get("/usage", s.handle(s.handleUsage))
				r.Get("/export", s.handle(s.handleExport))
				r.Post("/import", s.handle(s.handleImport))

				r.Get("/audit", s.handle(s.handleAudit))
				r.Get("/audit/export", s.handle(s.handleAuditExport))
			})
			r.Group(func(r chi.Router) {
				r.Use(s.authenticateDeletion)
				r.Delete("/delete", s.handle(s.handleDeleteOrg))
				r.Post("/delete", s.handle(s.handleDeleteOrg))
			})
		})
	})

	r.Get("/docs", http.RedirectHandler("/docs/index.html", http.StatusMovedPermanently).ServeHTTP)
	r.Get("/docs/*", httpSwagger.Handler(httpSwagger.URL("/docs/doc.json")))

	return stripSlash(r)
}

// metricsRoutes are the metrics listener's (METRICS_ADDR): /metrics alone.
func (s *server) metricsRoutes() http.Handler {
	r := chi.NewRouter()
	r.Use(s.observe, s.recoverPanics, secureHeaders)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { s.writeError(w, r, errNotFound) })
	r.MethodNotAllowed(s.methodNotAllowed(r))
	if s.metrics != nil {
		r.Get("/metrics", s.handleMetrics)
	}
	return r
}

// methodNotAllowed answers 405 in the error shape, with the Allow header
// listing the methods the path does take.
func (s *server) methodNotAllowed(mux *chi.Mux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allowed []string
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if mux.Match(chi.NewRouteContext(), m, r.URL.Path) {
				allowed = append(allowed, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		s.writeError(w, r, errMethodNotAllowed)
	}
}

// stripSlash redirects "/path/" to "/path" with 307, as the original did,
// when the path without the slash is a route.
func stripSlash(mux *chi.Mux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if len(p) > 1 && strings.HasSuffix(p, "/") && !strings.HasPrefix(p, "/docs/") {
			trimmed := strings.TrimRight(p, "/")
			if trimmed != "" && mux.Match(chi.NewRouteContext(), r.Method, trimmed) {
				target := trimmed
				if r.URL.RawQuery != "" {
					target += "?" + r.URL.RawQuery
				}
				http.Redirect(w, r, target, http.StatusTemporaryRedirect)
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

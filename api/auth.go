package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/orgsvc/orgsvc/internal/service"
)

type principalKey struct{}

// authenticate resolves the Bearer token into the admin it speaks for and
// answers 401 before any handler runs when it cannot.
func (s *server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header := r.Header.Get("Authorization")
		if header == "" {
			s.writeError(w, r, errNotAuthenticated)
			return
		}
		scheme, token, _ := strings.Cut(header, " ")
		token = strings.TrimSpace(token)
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			s.writeError(w, r, errBadScheme)
			return
		}
		p, err := s.auth.Authenticate(r.Context(), token)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		info(r.Context()).org = p.Slug
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// principal is the admin the request's token speaks for; only routes behind
// authenticate call it.
func principal(r *http.Request) service.Principal {
	p, _ := r.Context().Value(principalKey{}).(service.Principal)
	return p
}

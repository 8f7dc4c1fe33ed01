package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/service"
)

type (
	principalKey struct{}
	goneKey      struct{}
)

// authenticate resolves the Bearer token into the admin it speaks for and
// answers 401 before any handler runs when it cannot.
func (s *server) authenticate(next http.Handler) http.Handler {
	return s.authenticateOr(next, false)
}

// authenticateDeletion is authenticate for the delete route: the token of
// an admin whose organization was deleted reaches the handler, which
// answers a retried deletion as the first one was.
func (s *server) authenticateDeletion(next http.Handler) http.Handler {
	return s.authenticateOr(next, true)
}

// gone is what a deleted admin's token names.
type gone struct {
	admin, org bson.ObjectID
	err        error
}

func (s *server) authenticateOr(next http.Handler, deletion bool) http.Handler {
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
		if deletion && (errors.Is(err, service.ErrAdminNotFound) || errors.Is(err, service.ErrTokenRevoked) || errors.Is(err, service.ErrOrgGone)) {
			if admin, org, cerr := s.auth.Claims(token); cerr == nil {
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), goneKey{}, gone{admin, org, err})))
				return
			}
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		info(r.Context()).org = p.Tenant.Slug
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// principal is the admin the request's token speaks for; only routes behind
// authenticate call it.
func principal(r *http.Request) service.Principal {
	p, _ := r.Context().Value(principalKey{}).(service.Principal)
	return p
}

// Package api is the HTTP layer: routes, middleware, request decoding and
// validation, and the one map from service errors to answers.
//
//	@title						orgsvc
//	@version					1.0
//	@description				Multi-tenant organization management: sign up an organization, log its admin in, and manage it with a Bearer token. Each organization's data lives in its own collection org_<slug>.
//	@BasePath					/
//	@securityDefinitions.apikey	BearerAuth
//	@in							header
//	@name						Authorization
//	@description				Type "Bearer" followed by a space and the access_token from /admin/login.
package api

import (
	"log/slog"
	"net/http"

	"github.com/go-playground/validator/v10"

	"github.com/orgsvc/orgsvc/internal/service"
)

// Deps are everything the HTTP layer needs.
type Deps struct {
	Auth   *service.AuthService
	Orgs   *service.OrgService
	Docs   *service.DocumentService
	Logger *slog.Logger
	// MaxDocumentBytes bounds a document body.
	MaxDocumentBytes int64
}

type server struct {
	auth     *service.AuthService
	orgs     *service.OrgService
	docs     *service.DocumentService
	log      *slog.Logger
	validate *validator.Validate

	maxDocumentBytes int64
}

// NewServer returns the service's HTTP handler.
func NewServer(d Deps) http.Handler {
	s := &server{
		auth:     d.Auth,
		orgs:     d.Orgs,
		docs:     d.Docs,
		log:      d.Logger,
		validate: newValidator(),

		maxDocumentBytes: d.MaxDocumentBytes,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s.routes()
}

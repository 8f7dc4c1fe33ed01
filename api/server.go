// Package api is the HTTP layer: routes, middleware, request decoding and
// validation, and the one table from errors to answers.
//
//	@title						orgsvc
//	@version					1.0
//	@description				Multi-tenant organization management: sign up an organization, log its admin in, and manage it with a Bearer token. Each organization's data lives in its own collection org_{slug}.
//	@BasePath					/
//	@securityDefinitions.apikey	BearerAuth
//	@in							header
//	@name						Authorization
//	@description				Type "Bearer" followed by a space and the access_token from /admin/login.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-playground/validator/v10"

	"github.com/orgsvc/orgsvc/internal/metrics"
	"github.com/orgsvc/orgsvc/internal/service"
)

// Deps are everything the HTTP layer needs.
type Deps struct {
	Auth   *service.AuthService
	Orgs   *service.OrgService
	Docs   *service.DocumentService
	Logger *slog.Logger
	// Metrics, when set, are kept and served at /metrics.
	Metrics *metrics.Metrics
	// MetricsApart: /metrics is served by NewMetricsServer on a listener
	// of its own (METRICS_ADDR); here it is 404.
	MetricsApart bool
	// Ready checks the database for /ready.
	Ready func(context.Context) error

	Limits Limits
	// CORSOrigins are the origins allowed to call from a browser; none
	// turns CORS off.
	CORSOrigins []string
	// MaxBodyBytes bounds a JSON request body; MaxDocumentBytes a document.
	MaxBodyBytes     int64
	MaxDocumentBytes int64
	// ImportMaxBytes bounds an import's body (0: 1 GiB).
	ImportMaxBytes int64
	// MaxDocumentKeys bounds the keys of a document or merge patch, nested
	// ones included; 0 is jsondoc.DefaultMaxKeys.
	MaxDocumentKeys int
	// RequestTimeout is every request's deadline, database calls included.
	RequestTimeout time.Duration
}

type server struct {
	auth     *service.AuthService
	orgs     *service.OrgService
	docs     *service.DocumentService
	log      *slog.Logger
	metrics  *metrics.Metrics
	ready    func(context.Context) error
	validate *validator.Validate
	limits   limiters
	rates    orgRates

	trustProxy       int
	corsOrigins      []string
	maxBodyBytes     int64
	maxDocumentBytes int64
	importMaxBytes   int64
	maxDocumentKeys  int
	requestTimeout   time.Duration
	// metricsApart: /metrics is not this handler's (see Deps).
	metricsApart bool
}

// NewServer returns the service's HTTP handler.
func NewServer(d Deps) http.Handler { return newServer(d).routes() }

// NewMetricsServer returns the handler of the metrics listener: /metrics
// alone, logged and counted like every request; any other path is 404. Of
// d it uses Logger, Metrics and Limits.TrustProxy.
func NewMetricsServer(d Deps) http.Handler { return newServer(d).metricsRoutes() }

func newServer(d Deps) *server {
	s := &server{
		auth:     d.Auth,
		orgs:     d.Orgs,
		docs:     d.Docs,
		log:      d.Logger,
		metrics:  d.Metrics,
		ready:    d.Ready,
		validate: newValidator(),
		limits:   newLimiters(d.Limits),

		trustProxy:       d.Limits.TrustProxy,
		corsOrigins:      d.CORSOrigins,
		maxBodyBytes:     d.MaxBodyBytes,
		maxDocumentBytes: d.MaxDocumentBytes,
		importMaxBytes:   d.ImportMaxBytes,
		maxDocumentKeys:  d.MaxDocumentKeys,
		requestTimeout:   d.RequestTimeout,
		metricsApart:     d.MetricsApart,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.maxBodyBytes <= 0 {
		s.maxBodyBytes = 1 << 20
	}
	if s.maxDocumentBytes <= 0 {
		s.maxDocumentBytes = 1 << 20
	}
	if s.importMaxBytes <= 0 {
		s.importMaxBytes = 1 << 30
	}
	return s
}

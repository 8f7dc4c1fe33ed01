package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/orgsvc/orgsvc/internal/service"
)

// HealthResponse is the liveness answer.
type HealthResponse struct {
	Status string `json:"status" example:"ok"`
} //	@name	HealthResponse

// handleHealth godoc
//
//	@Summary		Liveness
//	@Description	Answers while the process serves HTTP; it does not touch the database. HEAD answers the same without a body.
//	@Tags			health
//	@Produce		json
//	@Success		200	{object}	HealthResponse
//	@Failure		500	{object}	ErrorResponse
//	@Router			/health [get]
func (s *server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header()["Content-Type"] = jsonContentType
	_, _ = w.Write(healthBody)
}

var healthBody = []byte(`{"status":"ok"}`)

// handleReady godoc
//
//	@Summary		Readiness
//	@Description	Answers 200 while the database answers a ping, 503 while it does not: take the instance out of rotation, it recovers by itself. HEAD answers the same without a body.
//	@Tags			health
//	@Produce		json
//	@Success		200	{object}	HealthResponse
//	@Failure		500	{object}	ErrorResponse
//	@Failure		503	{object}	ErrorResponse	"database unavailable"
//	@Router			/ready [get]
func (s *server) handleReady(w http.ResponseWriter, r *http.Request) error {
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			// %v: whatever the ping met, a timeout too, /ready says this.
			return fmt.Errorf("%w: %v", service.ErrUnavailable, err)
		}
	}
	encode(w, http.StatusOK, HealthResponse{Status: "ready"})
	return nil
}

// handleMetrics godoc
//
//	@Summary		Prometheus metrics
//	@Description	Request counts and latency by route, login outcomes, rate-limit refusals, the bcrypt queue, database errors, Go runtime and process metrics, and build information, in Prometheus text format. Keep it off the public internet: with METRICS_ADDR set it is served only on that listener, and this port has no such route (404).
//	@Tags			health
//	@Produce		plain
//	@Success		200	{string}	string	"Prometheus text exposition"
//	@Failure		500	{object}	ErrorResponse
//	@Router			/metrics [get]
func (s *server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	// promhttp answers its own failures in text, as scrapers expect.
	promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

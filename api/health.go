package api

import "net/http"

// HealthResponse is the liveness answer.
type HealthResponse struct {
	Status string `json:"status" example:"ok"`
}

// handleHealth godoc
//
//	@Summary		Liveness
//	@Description	Answers while the process serves HTTP; it does not touch the database.
//	@Tags			health
//	@Produce		json
//	@Success		200	{object}	HealthResponse
//	@Router			/health [get]
func (s *server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	encode(w, http.StatusOK, HealthResponse{Status: "ok"})
}

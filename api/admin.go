package api

import (
	"net/http"
)

// LoginRequest is the body of POST /admin/login.
type LoginRequest struct {
	Email    *string `json:"email" validate:"required,email,max=254" example:"admin@acme.example.com" swaggertype:"string"`
	Password *string `json:"password" validate:"required,min=1" example:"correct-horse-1" swaggertype:"string"`
}

// TokenResponse carries an access token.
type TokenResponse struct {
	AccessToken string `json:"access_token" example:"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..."`
	TokenType   string `json:"token_type" example:"bearer"`
}

// handleLogin godoc
//
//	@Summary		Log an admin in
//	@Description	Checks the admin's e-mail and password and returns a Bearer token (JWT) for the admin's organization. The e-mail's domain is compared without regard to case, its local part exactly. Passwords longer than 72 bytes never match.
//	@Tags			admin
//	@Accept			json
//	@Produce		json
//	@Param			body	body		LoginRequest	true	"Credentials"
//	@Success		200		{object}	TokenResponse
//	@Failure		401		{object}	ErrorResponse	"Invalid credentials"
//	@Failure		413		{object}	ErrorResponse	"Body over 1 MiB"
//	@Failure		422		{object}	ValidationError
//	@Failure		500		{object}	ErrorResponse
//	@Router			/admin/login [post]
func (s *server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var req LoginRequest
	if !s.decode(w, r, &req) {
		return
	}
	token, err := s.auth.Login(r.Context(), *req.Email, *req.Password)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	encode(w, http.StatusOK, TokenResponse{AccessToken: token, TokenType: "bearer"})
}

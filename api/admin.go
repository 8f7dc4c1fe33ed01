package api

import (
	"errors"
	"net/http"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/service"
)

// LoginRequest is the body of POST /admin/login.
type LoginRequest struct {
	Email    *string `json:"email" validate:"required,email,max=254" example:"admin@acme.example.com" swaggertype:"string"`
	Password *string `json:"password" validate:"required,min=1" example:"correct-horse-1" swaggertype:"string"`
	// OrganizationName picks the organization of an account in several
	// (default: the one it joined first).
	OrganizationName *string `json:"organization_name,omitempty" validate:"omitempty,max=255" example:"Acme Inc" swaggertype:"string"`
} //	@name	LoginRequest

// TokenResponse carries an access token; a login of an account in several
// organizations lists them.
type TokenResponse struct {
	AccessToken   string         `json:"access_token" example:"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..."`
	TokenType     string         `json:"token_type" example:"bearer"`
	Organizations []OrgRoleEntry `json:"organizations,omitempty"`
} //	@name	TokenResponse

// OrgRoleEntry is one organization of an account, with its role there.
type OrgRoleEntry struct {
	OrganizationName string `json:"organization_name" example:"Acme Inc"`
	Role             string `json:"role" example:"owner" enums:"owner,admin,member,viewer"`
} //	@name	OrgRoleEntry

// handleLogin godoc
//
//	@Summary		Log an admin in
//	@Description	Checks the account's e-mail and password and returns a Bearer token (JWT) for one of its organizations: organization_name's (401 when the account is not in it), or else the one it joined first; an account in several also gets them listed. The e-mail's domain is compared after IDNA mapping (case, width, A-labels), its local part exactly. Passwords longer than 72 bytes never match.
//	@Tags			admin
//	@Accept			json
//	@Produce		json
//	@Param			body	body		LoginRequest	true	"Credentials"
//	@Success		200		{object}	TokenResponse
//	@Failure		401		{object}	ErrorResponse	"Invalid credentials"
//	@Header			401		{string}	WWW-Authenticate	"Bearer realm=orgsvc (RFC 6750)"
//	@Failure		413		{object}	ErrorResponse	"Body over MAX_BODY_BYTES"
//	@Failure		415		{object}	ErrorResponse	"Content-Type is not JSON"
//	@Failure		422		{object}	ValidationError
//	@Failure		429		{object}	ErrorResponse	"Too many attempts from this address, or too many failed ones for this e-mail from this address or from everywhere (Retry-After says when to retry)"
//	@Failure		500		{object}	ErrorResponse
//	@Failure		503		{object}	ErrorResponse	"Password checks saturated or database unavailable (Retry-After)"
//	@Failure		403	{object}	ErrorResponse	"Organization suspended"
//	@Router			/admin/login [post]
func (s *server) handleLogin(w http.ResponseWriter, r *http.Request) error {
	addr := s.clientAddr(r)
	if err := s.limited(w, r, s.limits.loginAddress, "login_address", addr); err != nil {
		s.countLogin("rate_limited")
		return err
	}
	var req LoginRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	// Failures lock an e-mail out for one address, and, far higher, for
	// all: a stranger's guesses do not lock the owner out.
	email := model.EmailKey(*req.Email)
	var org bson.ObjectID
	if req.OrganizationName != nil {
		o, err := s.orgs.Get(r.Context(), *req.OrganizationName)
		switch {
		case err == nil:
			org = o.ID
		case errors.Is(err, service.ErrOrgNotFound):
			org = bson.NewObjectID() // no account is in it: refused after the password check
		default:
			return err
		}
	}
	pair, ok := s.limits.loginFailures.reserve(email + "\x00" + addr)
	if !ok {
		w.Header().Set("Retry-After", s.limits.loginFailures.retryAfter())
		return s.loginRefused(r, *req.Email, org, "login_email")
	}
	total, ok := s.limits.loginFailuresTotal.reserve(email)
	if !ok {
		s.limits.loginFailures.refund(pair)
		w.Header().Set("Retry-After", s.limits.loginFailuresTotal.retryAfter())
		return s.loginRefused(r, *req.Email, org, "login_email_total")
	}
	res, err := s.auth.Login(r.Context(), *req.Email, *req.Password, org)
	if !errors.Is(err, service.ErrInvalidCredentials) {
		s.limits.loginFailures.refund(pair)
		s.limits.loginFailuresTotal.refund(total)
	}
	s.countLogin(loginOutcome(err))
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, TokenResponse{AccessToken: res.Token, TokenType: "bearer", Organizations: orgRoles(res.Organizations)})
	return nil
}

// loginRefused answers a login over a limit on its e-mail, once the
// refusal is in the audit log (of an account that exists).
func (s *server) loginRefused(r *http.Request, email string, org bson.ObjectID, limit string) error {
	s.countLogin("rate_limited")
	if err := s.auth.LoginRefused(r.Context(), email, org); err != nil {
		return err
	}
	return s.tooMany(limit)
}

func orgRoles(orgs []service.OrgRole) []OrgRoleEntry {
	var out []OrgRoleEntry
	for _, o := range orgs {
		out = append(out, OrgRoleEntry{OrganizationName: o.Name, Role: o.Role})
	}
	return out
}

func (s *server) countLogin(outcome string) {
	if s.metrics != nil {
		s.metrics.Logins.WithLabelValues(outcome).Inc()
	}
}

// loginOutcome names a login's result for the metrics.
func loginOutcome(err error) string {
	switch {
	case err == nil:
		return "success"
	case errors.Is(err, service.ErrInvalidCredentials):
		return "invalid"
	case errors.Is(err, service.ErrBusy):
		return "busy"
	default:
		return "error"
	}
}

// handleLogout godoc
//
//	@Summary		Log out everywhere
//	@Description	Ends every token of the calling admin, this one included. Log in again for a new one.
//	@Tags			admin
//	@Produce		json
//	@Security		BearerAuth
//	@Success		200	{object}	MessageResponse
//	@Failure		401	{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Header			401	{string}	WWW-Authenticate	"Bearer challenge (RFC 6750): without a token the realm alone, with a refused one error=invalid_token and an error_description saying why (expired, session over, malformed or badly signed, revoked, organization or admin gone)"
//	@Failure		500	{object}	ErrorResponse
//	@Failure		503	{object}	ErrorResponse	"database unavailable"
//	@Failure		403	{object}	ErrorResponse	"Organization suspended"
//	@Router			/admin/logout [post]
func (s *server) handleLogout(w http.ResponseWriter, r *http.Request) error {
	if err := s.auth.Logout(r.Context(), principal(r)); err != nil {
		return err
	}
	encode(w, http.StatusOK, MessageResponse{Detail: "Logged out"})
	return nil
}

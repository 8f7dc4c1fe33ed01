package api

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/service"
)

// InviteRequest is the body of POST /org/invitations.
type InviteRequest struct {
	Email *string `json:"email" validate:"required,email,max=254" example:"ana@acme.example.com" swaggertype:"string"`
	Role  *string `json:"role" validate:"required,oneof=owner admin member viewer" example:"member" swaggertype:"string" enums:"owner,admin,member,viewer"`
} //	@name	InviteRequest

// InvitationResponse is an invitation. Token is there only when the
// service sends no mail (SMTP_URL unset): the inviter passes it on.
type InvitationResponse struct {
	ID        string    `json:"id" example:"665f1b2c9d3e4a0012345670"`
	Email     string    `json:"email" example:"ana@acme.example.com"`
	Role      string    `json:"role" example:"member" enums:"owner,admin,member,viewer"`
	Status    string    `json:"status" example:"pending" enums:"pending,accepted,revoked,expired"`
	ExpiresAt time.Time `json:"expires_at" example:"2026-01-08T00:00:00.000Z"`
	InvitedBy string    `json:"invited_by" example:"665f1b2c9d3e4a0012345678"`
	// Delivery is the mail's state; absent when the service sends no mail.
	Delivery string `json:"delivery,omitempty" example:"sent" enums:"pending,sent,failed"`
	Token    string `json:"token,omitempty" example:"665f1b2c9d3e4a0012345670.q3J1b2..."`
} //	@name	InvitationResponse

// InvitationList is an organization's invitations, the oldest first.
type InvitationList struct {
	Items []InvitationResponse `json:"items"`
} //	@name	InvitationList

// AcceptRequest is the body of POST /invitations/accept.
type AcceptRequest struct {
	Token *string `json:"token" validate:"required,min=1,max=200" example:"665f1b2c9d3e4a0012345670.q3J1b2..." swaggertype:"string"`
	// Password is the existing account's, or, for a new account, its
	// password (at least 8 characters).
	Password *string `json:"password" validate:"required,min=1,maxbytes=72,nonul" example:"correct-horse-1" swaggertype:"string"`
} //	@name	AcceptRequest

func invitation(v *service.InvitationView, token string) InvitationResponse {
	return InvitationResponse{
		ID: v.ID.Hex(), Email: v.Email, Role: v.Role, Status: v.State, ExpiresAt: v.ExpiresAt.UTC(),
		InvitedBy: v.InvitedBy.Hex(), Delivery: v.Delivery, Token: token,
	}
}

// invitationID reads the id path parameter of an invitation route.
func invitationID(r *http.Request) (bson.ObjectID, error) {
	id, err := bson.ObjectIDFromHex(chi.URLParam(r, "id"))
	if err != nil {
		return id, service.ErrInvitationNotFound
	}
	return id, nil
}

// handleInvite godoc
//
//	@Summary		Invite someone
//	@Description	Invites an e-mail address to the caller's organization with a role (owners and admins; only owners invite owners). With SMTP_URL set, the token goes by mail only (delivery shows how far the mail got); without it, the answer carries the token. An address already a member, or already invited and not yet answered, is 409.
//	@Tags			invitations
//	@Accept			json
//	@Produce		json
//	@Security		BearerAuth
//	@Param			body	body		InviteRequest	true	"Who, and with which role"
//	@Success		201		{object}	InvitationResponse
//	@Failure		401		{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Failure		403		{object}	ErrorResponse	"The caller's role does not allow it; or Organization suspended"
//	@Failure		409		{object}	ErrorResponse	"Already a member, or already invited"
//	@Failure		413		{object}	ErrorResponse	"Body over MAX_BODY_BYTES"
//	@Failure		415		{object}	ErrorResponse	"Content-Type is not JSON"
//	@Failure		422		{object}	ValidationError
//	@Failure		500		{object}	ErrorResponse
//	@Failure		503		{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Failure		429	{object}	ErrorResponse	"Past the organization's request rate (Retry-After)"
//	@Router			/org/invitations [post]
func (s *server) handleInvite(w http.ResponseWriter, r *http.Request) error {
	var req InviteRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	v, token, err := s.orgs.Invite(r.Context(), principal(r), *req.Email, *req.Role)
	if err != nil {
		return err
	}
	encode(w, http.StatusCreated, invitation(v, token))
	return nil
}

// handleListInvitations godoc
//
//	@Summary		List invitations
//	@Description	The caller's organization's invitations, the oldest first (owners and admins); status keeps those in one state.
//	@Tags			invitations
//	@Produce		json
//	@Security		BearerAuth
//	@Param			status	query		string	false	"Only invitations in this state"	Enums(pending, accepted, revoked, expired)
//	@Success		200		{object}	InvitationList
//	@Failure		401		{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Failure		403		{object}	ErrorResponse	"The caller's role does not allow it; or Organization suspended"
//	@Failure		422		{object}	ValidationError
//	@Failure		500		{object}	ErrorResponse
//	@Failure		503		{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Failure		429	{object}	ErrorResponse	"Past the organization's request rate (Retry-After)"
//	@Router			/org/invitations [get]
func (s *server) handleListInvitations(w http.ResponseWriter, r *http.Request) error {
	status := r.URL.Query().Get("status")
	switch status {
	case "", model.InvitePending, model.InviteAccepted, model.InviteRevoked, model.InviteExpired:
	default:
		return fieldErrors{{Loc: []any{"query", "status"}, Msg: "value is not a valid enumeration member; permitted: 'pending', 'accepted', 'revoked', 'expired'", Type: "type_error.enum"}}
	}
	all, err := s.orgs.Invitations(r.Context(), principal(r), status)
	if err != nil {
		return err
	}
	out := InvitationList{Items: []InvitationResponse{}}
	for i := range all {
		out.Items = append(out.Items, invitation(&all[i], ""))
	}
	encode(w, http.StatusOK, out)
	return nil
}

// handleRevokeInvitation godoc
//
//	@Summary		Revoke an invitation
//	@Description	Ends a pending invitation (owners and admins; an owner's invitation only an owner): its token stops working and its mail, if not sent yet, is not sent.
//	@Tags			invitations
//	@Produce		json
//	@Security		BearerAuth
//	@Param			id	path	string	true	"Invitation id"
//	@Success		204	"Revoked"
//	@Failure		401	{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Failure		403	{object}	ErrorResponse	"The caller's role does not allow it; or Organization suspended"
//	@Failure		404	{object}	ErrorResponse	"Invitation not found"
//	@Failure		410	{object}	ErrorResponse	"Accepted, revoked or expired already"
//	@Failure		500	{object}	ErrorResponse
//	@Failure		503	{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Failure		429	{object}	ErrorResponse	"Past the organization's request rate (Retry-After)"
//	@Router			/org/invitations/{id} [delete]
func (s *server) handleRevokeInvitation(w http.ResponseWriter, r *http.Request) error {
	id, err := invitationID(r)
	if err != nil {
		return err
	}
	if err := s.orgs.Revoke(r.Context(), principal(r), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleResendInvitation godoc
//
//	@Summary		Send an invitation again
//	@Description	Gives a pending invitation a new token and a new expiry, and mails it again; the old token stops working. Without SMTP_URL the answer carries the new token.
//	@Tags			invitations
//	@Produce		json
//	@Security		BearerAuth
//	@Param			id	path		string	true	"Invitation id"
//	@Success		200	{object}	InvitationResponse
//	@Failure		401	{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Failure		403	{object}	ErrorResponse	"The caller's role does not allow it; or Organization suspended"
//	@Failure		404	{object}	ErrorResponse	"Invitation not found"
//	@Failure		410	{object}	ErrorResponse	"Accepted, revoked or expired already"
//	@Failure		500	{object}	ErrorResponse
//	@Failure		503	{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Failure		429	{object}	ErrorResponse	"Past the organization's request rate (Retry-After)"
//	@Router			/org/invitations/{id}/resend [post]
func (s *server) handleResendInvitation(w http.ResponseWriter, r *http.Request) error {
	id, err := invitationID(r)
	if err != nil {
		return err
	}
	v, token, err := s.orgs.Resend(r.Context(), principal(r), id)
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, invitation(v, token))
	return nil
}

// handleAccept godoc
//
//	@Summary		Accept an invitation
//	@Description	Joins the invitation's organization. An address without an account gets one with this password; an address with one must give its password (a wrong one is 401 and the invitation stays usable). The answer is a token for the organization, as a login's.
//	@Tags			invitations
//	@Accept			json
//	@Produce		json
//	@Param			body	body		AcceptRequest	true	"The invitation's token and a password"
//	@Success		200		{object}	TokenResponse
//	@Failure		401		{object}	ErrorResponse	"Wrong password for the existing account"
//	@Failure		404		{object}	ErrorResponse	"No invitation has this token"
//	@Failure		409		{object}	ErrorResponse	"Already a member; or another change of the organization is under way (Retry-After)"
//	@Failure		410		{object}	ErrorResponse	"Accepted, revoked or expired already"
//	@Failure		413		{object}	ErrorResponse	"Body over MAX_BODY_BYTES"
//	@Failure		415		{object}	ErrorResponse	"Content-Type is not JSON"
//	@Failure		422		{object}	ValidationError
//	@Failure		429		{object}	ErrorResponse	"Too many attempts from this address (Retry-After)"
//	@Failure		500		{object}	ErrorResponse
//	@Failure		503		{object}	ErrorResponse	"Password checks saturated or database unavailable (Retry-After)"
//	@Router			/invitations/accept [post]
func (s *server) handleAccept(w http.ResponseWriter, r *http.Request) error {
	if err := s.limited(w, r, s.limits.loginAddress, "login_address", s.clientAddr(r)); err != nil {
		return err
	}
	var req AcceptRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	token, err := s.orgs.Accept(r.Context(), *req.Token, *req.Password)
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, TokenResponse{AccessToken: token, TokenType: "bearer"})
	return nil
}

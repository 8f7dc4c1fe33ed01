package api

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/service"
)

// SwitchRequest is the body of POST /admin/switch.
type SwitchRequest struct {
	OrganizationName *string `json:"organization_name" validate:"required,min=1,max=255" example:"Globex" swaggertype:"string"`
} //	@name	SwitchRequest

// MeResponse is the caller's account and its organizations.
type MeResponse struct {
	ID            string        `json:"id" example:"665f1b2c9d3e4a0012345678"`
	Email         string        `json:"email" example:"admin@acme.example.com"`
	Organizations []Affiliation `json:"organizations"`
} //	@name	MeResponse

// Affiliation is one membership of the caller's account.
type Affiliation struct {
	OrganizationID   string    `json:"organization_id" example:"665f1b2c9d3e4a0012345679"`
	OrganizationName string    `json:"organization_name" example:"Acme Inc"`
	Role             string    `json:"role" example:"owner" enums:"owner,admin,member,viewer"`
	JoinedAt         time.Time `json:"joined_at" example:"2026-01-01T00:00:00.000Z"`
} //	@name	Affiliation

// MemberResponse is one member of an organization.
type MemberResponse struct {
	ID       string    `json:"id" example:"665f1b2c9d3e4a0012345678"`
	Email    string    `json:"email" example:"ana@acme.example.com"`
	Role     string    `json:"role" example:"member" enums:"owner,admin,member,viewer"`
	JoinedAt time.Time `json:"joined_at" example:"2026-01-01T00:00:00.000Z"`
} //	@name	MemberResponse

// MemberPage is a page of members, in id order.
type MemberPage struct {
	Items []MemberResponse `json:"items"`
	// Next is the after of the following page; null on the last.
	Next *string `json:"next" example:"665f1b2c9d3e4a0012345678" extensions:"x-nullable"`
} //	@name	MemberPage

// RoleRequest is the body of PATCH /org/members/{account_id}.
type RoleRequest struct {
	Role *string `json:"role" validate:"required,oneof=owner admin member viewer" example:"admin" swaggertype:"string" enums:"owner,admin,member,viewer"`
} //	@name	RoleRequest

// MeUpdateRequest is the body of PATCH /me.
type MeUpdateRequest struct {
	Email           *string `json:"email,omitempty" validate:"omitempty,email,max=254" example:"ana@acme.example.com" swaggertype:"string"`
	Password        *string `json:"password,omitempty" validate:"omitempty,min=8,maxbytes=72,nonul" example:"new-horse-battery-2" swaggertype:"string" minLength:"8"`
	CurrentPassword *string `json:"current_password" validate:"required,min=1" example:"correct-horse-1" swaggertype:"string"`
} //	@name	MeUpdateRequest

// atLeast refuses, with 403, a caller whose role in its organization is
// below role.
func (s *server) atLeast(role string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !principal(r).Can(role) {
				s.writeError(w, r, service.ErrForbidden)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// handleSwitch godoc
//
//	@Summary		Switch to another organization
//	@Description	Returns a token for another organization of the caller's account, in the same session: no password is asked and none is checked.
//	@Tags			admin
//	@Accept			json
//	@Produce		json
//	@Security		BearerAuth
//	@Param			body	body		SwitchRequest	true	"The organization"
//	@Success		200		{object}	TokenResponse
//	@Failure		401		{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Failure		403		{object}	ErrorResponse	"Not a member of that organization; or Organization suspended"
//	@Failure		404		{object}	ErrorResponse	"Organization not found"
//	@Failure		413		{object}	ErrorResponse	"Body over MAX_BODY_BYTES"
//	@Failure		415		{object}	ErrorResponse	"Content-Type is not JSON"
//	@Failure		422		{object}	ValidationError
//	@Failure		500		{object}	ErrorResponse
//	@Failure		503		{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Router			/admin/switch [post]
func (s *server) handleSwitch(w http.ResponseWriter, r *http.Request) error {
	var req SwitchRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	org, err := s.orgs.Get(r.Context(), *req.OrganizationName)
	if err != nil {
		return err
	}
	token, err := s.auth.Switch(r.Context(), principal(r), org)
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, TokenResponse{AccessToken: token, TokenType: "bearer"})
	return nil
}

// handleMe godoc
//
//	@Summary		The caller's account
//	@Description	The caller's account and every organization it belongs to, with its role there, the first joined first.
//	@Tags			admin
//	@Produce		json
//	@Security		BearerAuth
//	@Success		200	{object}	MeResponse
//	@Failure		401	{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Failure		500	{object}	ErrorResponse
//	@Failure		503	{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Failure		403	{object}	ErrorResponse	"Organization suspended"
//	@Router			/me [get]
func (s *server) handleMe(w http.ResponseWriter, r *http.Request) error {
	a, err := s.auth.Me(r.Context(), principal(r))
	if err != nil {
		return err
	}
	out := MeResponse{ID: a.ID.Hex(), Email: a.Email, Organizations: []Affiliation{}}
	for _, o := range a.Organizations {
		out.Organizations = append(out.Organizations, Affiliation{
			OrganizationID: o.OrgID.Hex(), OrganizationName: o.Name, Role: o.Role, JoinedAt: o.JoinedAt.UTC(),
		})
	}
	encode(w, http.StatusOK, out)
	return nil
}

// handleUpdateMe godoc
//
//	@Summary		Change one's own e-mail or password
//	@Description	Changes the caller's e-mail or password, any role, given the current password; every token of the account ends, and the answer is a fresh one for the caller's organization.
//	@Tags			admin
//	@Accept			json
//	@Produce		json
//	@Security		BearerAuth
//	@Param			body	body		MeUpdateRequest	true	"The change"
//	@Success		200		{object}	TokenResponse
//	@Failure		400		{object}	ErrorResponse	"Email already registered"
//	@Failure		401		{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Failure		403		{object}	ErrorResponse	"Current password is incorrect; or Organization suspended"
//	@Failure		409		{object}	ErrorResponse	"Another change of the account under way (Retry-After)"
//	@Failure		413		{object}	ErrorResponse	"Body over MAX_BODY_BYTES"
//	@Failure		415		{object}	ErrorResponse	"Content-Type is not JSON"
//	@Failure		422		{object}	ValidationError
//	@Failure		429		{object}	ErrorResponse	"Too many e-mail or password changes for this account or from this address (Retry-After)"
//	@Failure		500		{object}	ErrorResponse
//	@Failure		503		{object}	ErrorResponse	"Password hashing saturated or database unavailable (Retry-After)"
//	@Router			/me [patch]
func (s *server) handleUpdateMe(w http.ResponseWriter, r *http.Request) error {
	var req MeUpdateRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if err := s.limited(w, r, s.limits.credAccount, "credential_account", principal(r).AdminID.Hex()); err != nil {
		return err
	}
	if err := s.limited(w, r, s.limits.credAddress, "credential_address", s.clientAddr(r)); err != nil {
		return err
	}
	token, err := s.orgs.ChangeAccount(r.Context(), principal(r), service.AccountChange{
		Email: req.Email, Password: req.Password, CurrentPassword: *req.CurrentPassword,
	})
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, TokenResponse{AccessToken: token, TokenType: "bearer"})
	return nil
}

// handleListMembers godoc
//
//	@Summary		List members
//	@Description	The members of the caller's organization in id order, a page at a time: pass the answer's next as after for the following page. Every role may list them.
//	@Tags			members
//	@Produce		json
//	@Security		BearerAuth
//	@Param			limit	query		int		false	"Page size, 1 to 500"	default(50)	minimum(1)	maximum(500)
//	@Param			after	query		string	false	"Cursor: the previous page's next"
//	@Success		200		{object}	MemberPage
//	@Failure		401		{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Failure		422		{object}	ValidationError
//	@Failure		500		{object}	ErrorResponse
//	@Failure		503		{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Failure		403	{object}	ErrorResponse	"Organization suspended"
//	@Failure		429	{object}	ErrorResponse	"Past the organization's request rate (Retry-After)"
//	@Router			/org/members [get]
func (s *server) handleListMembers(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := pageLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	var after bson.ObjectID
	if v := q.Get("after"); v != "" {
		if after, err = bson.ObjectIDFromHex(v); err != nil {
			return fieldErrors{{Loc: []any{"query", "after"}, Msg: "not a member id (24 hex digits)", Type: "value_error.member_id"}}
		}
	}
	members, err := s.orgs.Members(r.Context(), principal(r), after, limit+1)
	if err != nil {
		return err
	}
	page := MemberPage{Items: []MemberResponse{}}
	for i, m := range members {
		if i == limit {
			next := members[limit-1].AccountID.Hex()
			page.Next = &next
			break
		}
		page.Items = append(page.Items, MemberResponse{ID: m.AccountID.Hex(), Email: m.Email, Role: m.Role, JoinedAt: m.JoinedAt.UTC()})
	}
	encode(w, http.StatusOK, page)
	return nil
}

// memberID reads the account_id path parameter.
func memberID(r *http.Request) (bson.ObjectID, error) {
	id, err := bson.ObjectIDFromHex(chi.URLParam(r, "account_id"))
	if err != nil {
		return id, service.ErrMemberNotFound
	}
	return id, nil
}

// handleChangeRole godoc
//
//	@Summary		Change a member's role
//	@Description	Owners may give any role; admins move members among admin, member and viewer, never to or from owner. The change ends the member's earlier tokens for this organization. The last owner cannot be demoted (409).
//	@Tags			members
//	@Accept			json
//	@Produce		json
//	@Security		BearerAuth
//	@Param			account_id	path		string		true	"The member's account id"
//	@Param			body		body		RoleRequest	true	"The new role"
//	@Success		200			{object}	MemberResponse
//	@Failure		401			{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Failure		403			{object}	ErrorResponse	"The caller's role does not allow it; or Organization suspended"
//	@Failure		404			{object}	ErrorResponse	"Member not found"
//	@Failure		409			{object}	ErrorResponse	"An organization needs at least one owner; or another change of the organization is under way (Retry-After)"
//	@Failure		413			{object}	ErrorResponse	"Body over MAX_BODY_BYTES"
//	@Failure		415			{object}	ErrorResponse	"Content-Type is not JSON"
//	@Failure		422			{object}	ValidationError
//	@Failure		500			{object}	ErrorResponse
//	@Failure		503			{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Failure		429	{object}	ErrorResponse	"Past the organization's request rate (Retry-After)"
//	@Router			/org/members/{account_id} [patch]
func (s *server) handleChangeRole(w http.ResponseWriter, r *http.Request) error {
	id, err := memberID(r)
	if err != nil {
		return err
	}
	var req RoleRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	p := principal(r)
	if err := s.orgs.ChangeRole(r.Context(), p, id, *req.Role); err != nil {
		return err
	}
	m, err := s.orgs.Member(r.Context(), p, id)
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, MemberResponse{ID: m.AccountID.Hex(), Email: m.Email, Role: m.Role, JoinedAt: m.JoinedAt.UTC()})
	return nil
}

// handleRemoveMember godoc
//
//	@Summary		Remove a member, or leave
//	@Description	With another member's id, removes that member (owners and admins; admins cannot remove owners). With the caller's own id, leaves the organization (any role). The last owner cannot leave or be removed (409). An account left in no organization is deleted, so its e-mail can sign up again.
//	@Tags			members
//	@Produce		json
//	@Security		BearerAuth
//	@Param			account_id	path	string	true	"The member's account id"
//	@Success		204			"Removed"
//	@Failure		401			{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Failure		403			{object}	ErrorResponse	"The caller's role does not allow it; or Organization suspended"
//	@Failure		404			{object}	ErrorResponse	"Member not found"
//	@Failure		409			{object}	ErrorResponse	"An organization needs at least one owner; or another change of the organization is under way (Retry-After)"
//	@Failure		500			{object}	ErrorResponse
//	@Failure		503			{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Failure		429	{object}	ErrorResponse	"Past the organization's request rate (Retry-After)"
//	@Router			/org/members/{account_id} [delete]
func (s *server) handleRemoveMember(w http.ResponseWriter, r *http.Request) error {
	id, err := memberID(r)
	if err != nil {
		return err
	}
	if err := s.orgs.RemoveMember(r.Context(), principal(r), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

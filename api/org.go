package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/orgsvc/orgsvc/internal/service"
)

// CreateOrgRequest is the body of POST /org/create.
type CreateOrgRequest struct {
	OrganizationName *string `json:"organization_name" validate:"required,min=2,max=50,orgname" example:"Acme Inc" swaggertype:"string" minLength:"2" maxLength:"50"`
	Email            *string `json:"email" validate:"required,email,max=254" example:"admin@acme.example.com" swaggertype:"string"`
	Password         *string `json:"password" validate:"required,min=8,maxbytes=72,nonul" example:"correct-horse-1" swaggertype:"string" minLength:"8"`
} //	@name	CreateOrgRequest

func (c *CreateOrgRequest) normalize() { canonicalName(c.OrganizationName) }

// CreateOrgResponse is the answer to a sign-up.
type CreateOrgResponse struct {
	OrganizationName string `json:"organization_name" example:"Acme Inc"`
	CollectionName   string `json:"collection_name" example:"org_acme_inc"`
	AdminID          string `json:"admin_id" example:"665f1b2c9d3e4a0012345678"`
	CreatedAt        string `json:"created_at" example:"2026-11-28T21:59:07.528000"`
} //	@name	CreateOrgResponse

// OrgResponse is an organization's public metadata.
type OrgResponse struct {
	ID               string `json:"_id" example:"665f1b2c9d3e4a0012345677"`
	OrganizationName string `json:"organization_name" example:"Acme Inc"`
	CollectionName   string `json:"collection_name" example:"org_acme_inc"`
	AdminID          string `json:"admin_id" example:"665f1b2c9d3e4a0012345678"`
	CreatedAt        string `json:"created_at" example:"2026-11-28T21:59:07.528000"`
} //	@name	OrgResponse

// UpdateOrgRequest is the body of PUT /org/update.
type UpdateOrgRequest struct {
	OrganizationName    *string `json:"organization_name" validate:"required,min=2,max=50" example:"Acme Inc" swaggertype:"string" minLength:"2" maxLength:"50"`
	NewOrganizationName *string `json:"new_organization_name,omitempty" validate:"omitempty,min=2,max=50,orgname" example:"Acme Group" swaggertype:"string" minLength:"2" maxLength:"50"`
	Email               *string `json:"email,omitempty" validate:"omitempty,email,max=254" example:"owner@acme.example.com" swaggertype:"string"`
	Password            *string `json:"password,omitempty" validate:"omitempty,min=8,maxbytes=72,nonul" example:"new-horse-battery-2" swaggertype:"string" minLength:"8"`
} //	@name	UpdateOrgRequest

func (u *UpdateOrgRequest) normalize() { canonicalName(u.NewOrganizationName) }

// UpdateOrgResponse is the answer to an update: a fresh token for the caller.
type UpdateOrgResponse struct {
	Detail      string `json:"detail" example:"Organization updated successfully"`
	AccessToken string `json:"access_token" example:"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..."`
	TokenType   string `json:"token_type" example:"bearer"`
} //	@name	UpdateOrgResponse

// DeleteOrgRequest is the body of DELETE /org/delete.
type DeleteOrgRequest struct {
	OrganizationName *string `json:"organization_name" validate:"required,min=2,max=50,orgname" example:"Acme Inc" swaggertype:"string" minLength:"2" maxLength:"50"`
} //	@name	DeleteOrgRequest

// MessageResponse is a plain confirmation.
type MessageResponse struct {
	Detail string `json:"detail" example:"Organization deleted successfully"`
} //	@name	MessageResponse

// handleCreateOrg godoc
//
//	@Summary		Sign up an organization
//	@Description	Creates an organization, its admin and its tenant collection org_{slug}. The name is NFKC-normalized and trimmed, and is stored so; control, zero-width and bidi characters are refused. Its slug is the name lower-cased with every run of characters outside [a-z0-9_] turned into "_"; a name without ASCII letters or digits (and not all ASCII) has instead the Punycode slug "xn--..." (runs of ASCII punctuation first become "_"). Two names with one slug are the same organization. Admin e-mails are unique without regard to case, their domains compared after IDNA mapping. No token is needed.
//	@Tags			organization
//	@Accept			json
//	@Produce		json
//	@Param			body	body		CreateOrgRequest	true	"Organization and its admin"
//	@Success		201		{object}	CreateOrgResponse
//	@Failure		400		{object}	ErrorResponse	"Organization already exists, or Email already registered"
//	@Failure		413		{object}	ErrorResponse	"Body over MAX_BODY_BYTES"
//	@Failure		422		{object}	ValidationError
//	@Failure		500		{object}	ErrorResponse
//	@Failure		415		{object}	ErrorResponse	"Content-Type is not JSON"
//	@Failure		429		{object}	ErrorResponse	"Too many sign-ups from this address (Retry-After)"
//	@Failure		503		{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Router			/org/create [post]
func (s *server) handleCreateOrg(w http.ResponseWriter, r *http.Request) error {
	if err := s.limited(w, r, s.limits.createAddr, "create_address", s.clientAddr(r)); err != nil {
		return err
	}
	var req CreateOrgRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	org, err := s.orgs.Create(r.Context(), service.CreateOrg{
		Name: *req.OrganizationName, Email: *req.Email, Password: *req.Password,
	})
	if err != nil {
		return err
	}
	encode(w, http.StatusCreated, CreateOrgResponse{
		OrganizationName: org.Name,
		CollectionName:   org.CollectionName,
		AdminID:          org.AdminID.Hex(),
		CreatedAt:        timestamp(org.CreatedAt),
	})
	return nil
}

// handleGetOrg godoc
//
//	@Summary		Look an organization up by name
//	@Description	Returns the metadata of the organization whose name is exactly organization_name once NFKC-normalized (case and spaces matter; fullwidth letters are the letters). Open, as in the original service.
//	@Tags			organization
//	@Produce		json
//	@Param			organization_name	query		string	true	"Exact organization name"
//	@Success		200					{object}	OrgResponse
//	@Failure		404					{object}	ErrorResponse	"Organization not found"
//	@Failure		422					{object}	ValidationError
//	@Failure		500					{object}	ErrorResponse
//	@Failure		503		{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Router			/org/get [get]
func (s *server) handleGetOrg(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if !q.Has("organization_name") {
		return fieldErrors{missing("query", "organization_name")}
	}
	org, err := s.orgs.Get(r.Context(), q.Get("organization_name"))
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, OrgResponse{
		ID:               org.ID.Hex(),
		OrganizationName: org.Name,
		CollectionName:   org.CollectionName,
		AdminID:          org.AdminID.Hex(),
		CreatedAt:        timestamp(org.CreatedAt),
	})
	return nil
}

// handleUpdateOrg godoc
//
//	@Summary		Update your organization
//	@Description	Renames the caller's own organization (its tenant collection moves on the server, keeping every document), or changes its admin's e-mail or password. A new e-mail or password ends the admin's earlier tokens (a rename does not); the answer carries a fresh token of the same session, which ends JWT_MAX_SESSION after its login however often it is refreshed. Retrying a rename that already happened answers 200 again. Another organization's admin gets 403. POST is accepted as well as PUT.
//	@Tags			organization
//	@Accept			json
//	@Produce		json
//	@Security		BearerAuth
//	@Param			body	body		UpdateOrgRequest	true	"What to change"
//	@Success		200		{object}	UpdateOrgResponse
//	@Failure		400		{object}	ErrorResponse	"Email already registered"
//	@Failure		401		{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Header			401		{string}	WWW-Authenticate	"Bearer challenge (RFC 6750): without a token the realm alone, with a refused one error=invalid_token and an error_description saying why (expired, session over, malformed or badly signed, revoked, organization or admin gone)"
//	@Failure		403		{object}	ErrorResponse	"Not authorized to update; or Organization suspended"
//	@Failure		404		{object}	ErrorResponse	"Organization not found"
//	@Failure		409		{object}	ErrorResponse	"Organization name conflict, or another change of the organization under way (Retry-After)"
//	@Failure		413		{object}	ErrorResponse	"Body over MAX_BODY_BYTES"
//	@Failure		422		{object}	ValidationError
//	@Failure		429		{object}	ErrorResponse	"Too many e-mail or password changes for this admin or from this address (Retry-After)"
//	@Failure		500		{object}	ErrorResponse
//	@Failure		415		{object}	ErrorResponse	"Content-Type is not JSON"
//	@Failure		503		{object}	ErrorResponse	"Password hashing saturated or database unavailable (Retry-After)"
//	@Router			/org/update [put]
//	@Router			/org/update [post]
func (s *server) handleUpdateOrg(w http.ResponseWriter, r *http.Request) error {
	var req UpdateOrgRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if req.Email != nil || req.Password != nil {
		if err := s.limited(w, r, s.limits.credAccount, "credential_account", principal(r).AdminID.Hex()); err != nil {
			return err
		}
		if err := s.limited(w, r, s.limits.credAddress, "credential_address", s.clientAddr(r)); err != nil {
			return err
		}
	}
	token, err := s.orgs.Update(r.Context(), principal(r), service.UpdateOrg{
		Name:     *req.OrganizationName,
		NewName:  req.NewOrganizationName,
		Email:    req.Email,
		Password: req.Password,
	})
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, UpdateOrgResponse{Detail: "Organization updated successfully", AccessToken: token, TokenType: "bearer"})
	return nil
}

// handleDeleteOrg godoc
//
//	@Summary		Delete your organization
//	@Description	Deletes the caller's own organization: its tenant collection with all its data, its admin and its metadata. It is gone from the API at once, and its name and e-mails are free at once; for ORG_DELETE_RETENTION (default 168h) its documents and members are kept in the trash, where only an operator can restore them (orgsvc org restore), then purged. Its tokens stop working, except that retrying the deletion with the same token and name answers 200 again. Another organization's admin gets 403. POST is accepted as well as DELETE.
//	@Tags			organization
//	@Accept			json
//	@Produce		json
//	@Security		BearerAuth
//	@Param			body	body		DeleteOrgRequest	true	"The organization to delete"
//	@Success		200		{object}	MessageResponse
//	@Failure		401		{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Header			401		{string}	WWW-Authenticate	"Bearer challenge (RFC 6750): without a token the realm alone, with a refused one error=invalid_token and an error_description saying why (expired, session over, malformed or badly signed, revoked, organization or admin gone)"
//	@Failure		403		{object}	ErrorResponse	"Not authorized to delete; or Organization suspended"
//	@Failure		404		{object}	ErrorResponse	"Organization not found"
//	@Failure		409		{object}	ErrorResponse	"Another change of the organization under way (Retry-After)"
//	@Failure		413		{object}	ErrorResponse	"Body over MAX_BODY_BYTES"
//	@Failure		422		{object}	ValidationError
//	@Failure		500		{object}	ErrorResponse
//	@Failure		415		{object}	ErrorResponse	"Content-Type is not JSON"
//	@Failure		503		{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Failure		429	{object}	ErrorResponse	"Past the organization's request rate (Retry-After)"
//	@Router			/org/delete [delete]
//	@Router			/org/delete [post]
func (s *server) handleDeleteOrg(w http.ResponseWriter, r *http.Request) error {
	var req DeleteOrgRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	var err error
	if g, ok := r.Context().Value(goneKey{}).(gone); ok {
		// The token's admin is gone: a retry of a deletion that happened.
		err = s.orgs.Deleted(r.Context(), g.org, g.admin, *req.OrganizationName)
		if err != nil && !errors.Is(err, service.ErrOrgBusy) {
			err = g.err
		}
	} else {
		err = s.orgs.Delete(r.Context(), principal(r), *req.OrganizationName)
	}
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, MessageResponse{Detail: "Organization deleted successfully"})
	return nil
}

// timestamp prints a time as the original service did: naive UTC ISO 8601
// with six fractional digits (MongoDB keeps milliseconds).
func timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000")
}

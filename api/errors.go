package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/orgsvc/orgsvc/internal/service"
)

// problem is how one domain error is answered.
type problem struct {
	status int
	detail string
	// retry adds Retry-After: the same request may succeed in a moment.
	retry bool
}

// problems is the one map from the service's errors to HTTP answers.
var problems = map[error]problem{
	service.ErrOrgExists:          {http.StatusBadRequest, "Organization already exists", false},
	service.ErrEmailTaken:         {http.StatusBadRequest, "Email already registered", false},
	service.ErrOrgNotFound:        {http.StatusNotFound, "Organization not found", false},
	service.ErrNameConflict:       {http.StatusConflict, "Organization name conflict", false},
	service.ErrNotOwnerUpdate:     {http.StatusForbidden, "Not authorized to update", false},
	service.ErrNotOwnerDelete:     {http.StatusForbidden, "Not authorized to delete", false},
	service.ErrInvalidCredentials: {http.StatusUnauthorized, "Invalid credentials", false},
	service.ErrInvalidToken:       {http.StatusUnauthorized, "Invalid token", false},
	service.ErrAdminNotFound:      {http.StatusUnauthorized, "Admin not found", false},
	service.ErrOrgMismatch:        {http.StatusUnauthorized, "Admin organization mismatch", false},
	service.ErrTokenRevoked:       {http.StatusUnauthorized, "Token has been revoked", false},
	service.ErrOrgGone:            {http.StatusUnauthorized, "Token's organization not found", false},
	service.ErrDocumentNotFound:   {http.StatusNotFound, "Document not found", false},
	service.ErrDocumentTooLarge:   {http.StatusRequestEntityTooLarge, "Document too large", false},
	service.ErrDocumentChanged:    {http.StatusConflict, "Document changed concurrently; retry", false},
	errNotAuthenticated:           {http.StatusUnauthorized, "Not authenticated", false},
	errBadScheme:                  {http.StatusUnauthorized, "Invalid authentication credentials", false},
	service.ErrBusy:               {http.StatusServiceUnavailable, "Server busy; retry later", true},
	service.ErrUnavailable:        {http.StatusServiceUnavailable, "database unavailable", true},
	service.ErrOrgBusy:            {http.StatusConflict, "Organization is being changed; retry", true},
	service.ErrInterrupted:        {http.StatusServiceUnavailable, "Operation interrupted; retry", true},
	// REQUEST_TIMEOUT ran out while the request waited for something
	// other than the database (a bcrypt worker, an operation to end).
	context.DeadlineExceeded: {http.StatusServiceUnavailable, "Server busy; retry later", true},
	errNotFound:              {http.StatusNotFound, "Not Found", false},
	errMethodNotAllowed:      {http.StatusMethodNotAllowed, "Method Not Allowed", false},
}

var (
	errNotAuthenticated = errors.New("no bearer token")
	errBadScheme        = errors.New("authorization scheme is not Bearer")
	errNotFound         = errors.New("no such route")
	errMethodNotAllowed = errors.New("method not allowed")
)

// writeError answers err in the service's error shape. Errors outside the
// map are logged and answered as a bare 500.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var invalid *service.InvalidError
	if errors.As(err, &invalid) {
		in := invalid.In
		if in == "" {
			in = "body"
		}
		encode(w, http.StatusUnprocessableEntity, ValidationError{Detail: []FieldError{{
			Loc: []any{in, invalid.Field}, Msg: invalid.Message, Type: invalid.Type,
		}}})
		return
	}
	var refused *service.ProblemsError
	if errors.As(err, &refused) {
		encode(w, http.StatusUnprocessableEntity, ValidationError{Detail: docProblems(refused.Where, refused.Problems)})
		return
	}
	if errors.Is(err, service.ErrPasswordTooLong) {
		encode(w, http.StatusUnprocessableEntity, ValidationError{Detail: []FieldError{{
			Loc: []any{"body", "password"}, Msg: "ensure this value has at most 72 bytes (bcrypt's limit)", Type: "value_error.any_str.max_bytes",
		}}})
		return
	}
	for target, p := range problems {
		if errors.Is(err, target) {
			if p.status == http.StatusUnauthorized {
				challenge(w, r, err)
			}
			if p.retry {
				w.Header().Set("Retry-After", "1")
			}
			encode(w, p.status, ErrorResponse{Detail: p.detail})
			return
		}
	}
	s.log.ErrorContext(r.Context(), "request failed", "request_id", info(r.Context()).id, "method", r.Method, "path", r.URL.Path, "err", err)
	encode(w, http.StatusInternalServerError, ErrorResponse{Detail: "Internal Server Error"})
}

// realm names the protection space of every Bearer challenge.
const realm = "orgsvc"

// unknownOwner describes a token whose organization or admin is gone.
const unknownOwner = "The organization or admin the access token names does not exist"

// tokenFaults are the reasons a token is refused: error_description of
// the challenge (RFC 6750) and auth_error of the request's log line. The
// first match wins (ErrSessionOver and ErrTokenExpired are ErrInvalidTokens).
var tokenFaults = []struct {
	err                 error
	reason, description string
}{
	{service.ErrSessionOver, "session_over", "The session is over (JWT_MAX_SESSION since its login); log in again"},
	{service.ErrTokenExpired, "token_expired", "The access token expired"},
	{service.ErrInvalidToken, "token_invalid", "The access token is malformed or its signature is not valid"},
	{service.ErrTokenRevoked, "token_revoked", "The access token was revoked by a logout or a change of e-mail or password"},
	{service.ErrOrgGone, "token_unknown_owner", unknownOwner},
	{service.ErrAdminNotFound, "token_unknown_owner", unknownOwner},
	{service.ErrOrgMismatch, "token_unknown_owner", unknownOwner},
}

// challenge sets the WWW-Authenticate header of a 401 answering err, and
// records why in the request's log line. A request without a Bearer token
// gets the bare challenge, as RFC 6750 asks.
func challenge(w http.ResponseWriter, r *http.Request, err error) {
	for _, f := range tokenFaults {
		if errors.Is(err, f.err) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+f.description+`"`)
			info(r.Context()).authError = f.reason
			return
		}
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`"`)
	switch {
	case errors.Is(err, errNotAuthenticated):
		info(r.Context()).authError = "token_missing"
	case errors.Is(err, errBadScheme):
		info(r.Context()).authError = "scheme_not_bearer"
	case errors.Is(err, service.ErrInvalidCredentials):
		info(r.Context()).authError = "invalid_credentials"
	}
}

package api

import (
	"errors"
	"net/http"

	"github.com/orgsvc/orgsvc/internal/service"
)

// problem is how one domain error is answered.
type problem struct {
	status int
	detail string
}

// problems is the one map from the service's errors to HTTP answers.
var problems = map[error]problem{
	service.ErrOrgExists:          {http.StatusBadRequest, "Organization already exists"},
	service.ErrEmailTaken:         {http.StatusBadRequest, "Email already registered"},
	service.ErrOrgNotFound:        {http.StatusNotFound, "Organization not found"},
	service.ErrNameConflict:       {http.StatusConflict, "Organization name conflict"},
	service.ErrNotOwnerUpdate:     {http.StatusForbidden, "Not authorized to update"},
	service.ErrNotOwnerDelete:     {http.StatusForbidden, "Not authorized to delete"},
	service.ErrInvalidCredentials: {http.StatusUnauthorized, "Invalid credentials"},
	service.ErrInvalidToken:       {http.StatusUnauthorized, "Invalid token"},
	service.ErrAdminNotFound:      {http.StatusUnauthorized, "Admin not found"},
	service.ErrOrgMismatch:        {http.StatusUnauthorized, "Admin organization mismatch"},
	service.ErrTokenRevoked:       {http.StatusUnauthorized, "Token has been revoked"},
	service.ErrDocumentNotFound:   {http.StatusNotFound, "Document not found"},
	service.ErrDocumentTooLarge:   {http.StatusRequestEntityTooLarge, "Document too large"},
	service.ErrDocumentChanged:    {http.StatusConflict, "Document changed concurrently; retry"},
	errNotAuthenticated:           {http.StatusUnauthorized, "Not authenticated"},
	errBadScheme:                  {http.StatusUnauthorized, "Invalid authentication credentials"},
	service.ErrBusy:               {http.StatusServiceUnavailable, "Server busy; retry later"},
	service.ErrUnavailable:        {http.StatusServiceUnavailable, "database unavailable"},
	errNotFound:                   {http.StatusNotFound, "Not Found"},
	errMethodNotAllowed:           {http.StatusMethodNotAllowed, "Method Not Allowed"},
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
			switch p.status {
			case http.StatusUnauthorized:
				w.Header().Set("WWW-Authenticate", "Bearer")
			case http.StatusServiceUnavailable:
				w.Header().Set("Retry-After", "1")
			}
			encode(w, p.status, ErrorResponse{Detail: p.detail})
			return
		}
	}
	s.log.ErrorContext(r.Context(), "request failed", "request_id", info(r.Context()).id, "method", r.Method, "path", r.URL.Path, "err", err)
	encode(w, http.StatusInternalServerError, ErrorResponse{Detail: "Internal Server Error"})
}

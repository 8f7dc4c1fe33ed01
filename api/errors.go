package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/orgsvc/orgsvc/internal/jsondoc"
	"github.com/orgsvc/orgsvc/internal/security"
	"github.com/orgsvc/orgsvc/internal/service"
)

// problem is how one kind of error is answered.
type problem struct {
	// target matches with errors.Is; fields, when set, gives the details of
	// a 422 instead of detail, or nil when the error is not its kind.
	target error
	fields func(error) []FieldError
	status int
	detail string
	// retry adds Retry-After: the same request may succeed in a moment.
	retry bool
}

// statusClientClosed is nginx's "client closed request": the client hung
// up before the answer.
const statusClientClosed = 499

// problems is the one table from errors to HTTP answers. The first row that
// matches wins: an error wrapping two targets answers as the earlier row.
var problems = []problem{
	{target: errClientClosed, status: statusClientClosed, detail: "Client closed request"},

	{fields: as(invalidFields), status: http.StatusUnprocessableEntity},
	{fields: as(func(e *service.ProblemsError) []FieldError { return docProblems(e.Where, e.Problems) }), status: http.StatusUnprocessableEntity},
	{fields: as(func(e fieldErrors) []FieldError { return e }), status: http.StatusUnprocessableEntity},
	{fields: as(importProblems), status: http.StatusUnprocessableEntity},
	{target: service.ErrPasswordTooLong, fields: passwordTooLong, status: http.StatusUnprocessableEntity},

	{target: errUnsupportedMediaType, status: http.StatusUnsupportedMediaType, detail: "Unsupported Media Type: send application/json"},
	{target: errNotNDJSON, status: http.StatusUnsupportedMediaType, detail: "Unsupported Media Type: send application/x-ndjson"},
	{target: errBodyTooLarge, status: http.StatusRequestEntityTooLarge, detail: "Request body too large"},
	{target: errUnreadableBody, status: http.StatusBadRequest, detail: "Could not read request body"},
	// Retry-After is the limiter's, set before.
	{target: errTooManyRequests, status: http.StatusTooManyRequests, detail: "Too many requests; retry later"},

	{target: service.ErrOrgExists, status: http.StatusBadRequest, detail: "Organization already exists"},
	{target: service.ErrEmailTaken, status: http.StatusBadRequest, detail: "Email already registered"},
	{target: service.ErrOrgNotFound, status: http.StatusNotFound, detail: "Organization not found"},
	{target: service.ErrNameConflict, status: http.StatusConflict, detail: "Organization name conflict"},
	{target: service.ErrNotOwnerUpdate, status: http.StatusForbidden, detail: "Not authorized to update"},
	{target: service.ErrNotOwnerDelete, status: http.StatusForbidden, detail: "Not authorized to delete"},
	{target: service.ErrInvalidCredentials, status: http.StatusUnauthorized, detail: "Invalid credentials"},
	{target: security.ErrInvalidToken, status: http.StatusUnauthorized, detail: "Invalid token"},
	{target: service.ErrAdminNotFound, status: http.StatusUnauthorized, detail: "Admin not found"},
	{target: service.ErrOrgMismatch, status: http.StatusUnauthorized, detail: "Admin organization mismatch"},
	{target: service.ErrTokenRevoked, status: http.StatusUnauthorized, detail: "Token has been revoked"},
	{target: service.ErrOrgGone, status: http.StatusUnauthorized, detail: "Token's organization not found"},
	{target: service.ErrForbidden, status: http.StatusForbidden, detail: "Your role in this organization does not allow this"},
	{target: service.ErrOrgSuspended, status: http.StatusForbidden, detail: "Organization suspended"},
	{target: service.ErrQuotaExceeded, status: http.StatusForbidden, detail: "Organization storage quota exceeded"},
	{target: service.ErrNotMember, status: http.StatusForbidden, detail: "Not a member of that organization"},
	{target: service.ErrMemberNotFound, status: http.StatusNotFound, detail: "Member not found"},
	{target: service.ErrAuditOff, status: http.StatusNotFound, detail: "No audit log is kept by this server"},
	{target: service.ErrWrongCurrentPassword, status: http.StatusForbidden, detail: "Current password is incorrect"},
	{target: service.ErrAlreadyMember, status: http.StatusConflict, detail: "Already a member of this organization"},
	{target: service.ErrInvitePending, status: http.StatusConflict, detail: "An invitation to this address is pending"},
	{target: service.ErrInvitationNotFound, status: http.StatusNotFound, detail: "Invitation not found"},
	{target: service.ErrInvitationGone, status: http.StatusGone, detail: "Invitation accepted, revoked or expired"},
	{target: service.ErrLastOwner, status: http.StatusConflict, detail: "An organization needs at least one owner"},
	{target: service.ErrDocumentNotFound, status: http.StatusNotFound, detail: "Document not found"},
	{target: service.ErrDocumentTooLarge, status: http.StatusRequestEntityTooLarge, detail: "Document too large"},
	{target: service.ErrDocumentChanged, status: http.StatusConflict, detail: "Document changed concurrently; retry"},
	{target: errNotAuthenticated, status: http.StatusUnauthorized, detail: "Not authenticated"},
	{target: errBadScheme, status: http.StatusUnauthorized, detail: "Invalid authentication credentials"},
	{target: errNotFound, status: http.StatusNotFound, detail: "Not Found"},
	{target: errMethodNotAllowed, status: http.StatusMethodNotAllowed, detail: "Method Not Allowed"},

	{target: service.ErrOrgBusy, status: http.StatusConflict, detail: "Organization is being changed; retry", retry: true},
	{target: service.ErrInterrupted, status: http.StatusServiceUnavailable, detail: "Operation interrupted; retry", retry: true},
	{target: service.ErrBusy, status: http.StatusServiceUnavailable, detail: "Server busy; retry later", retry: true},
	{target: service.ErrUnavailable, status: http.StatusServiceUnavailable, detail: "database unavailable", retry: true},
	// REQUEST_TIMEOUT ran out while the request waited for something
	// other than the database (a bcrypt worker, an operation to end).
	{target: context.DeadlineExceeded, status: http.StatusServiceUnavailable, detail: "Server busy; retry later", retry: true},
	{target: errPanicked, status: http.StatusInternalServerError, detail: "Internal Server Error"},
}

// The HTTP layer's own errors.
var (
	errClientClosed         = errors.New("client closed the request")
	errNotAuthenticated     = errors.New("no bearer token")
	errBadScheme            = errors.New("authorization scheme is not Bearer")
	errNotFound             = errors.New("no such route")
	errMethodNotAllowed     = errors.New("method not allowed")
	errUnsupportedMediaType = errors.New("body is not JSON")
	errNotNDJSON            = errors.New("body is not NDJSON")
	errBodyTooLarge         = errors.New("body over its limit")
	errUnreadableBody       = errors.New("body could not be read")
	errTooManyRequests      = errors.New("over a rate limit")
	errPanicked             = errors.New("the handler panicked")
)

// fieldErrors is a request the HTTP layer refuses with a 422.
type fieldErrors []FieldError

func (e fieldErrors) Error() string { return "invalid request: " + e[0].Msg }

// as matches the errors of type T, answered with details' 422.
func as[T error](details func(T) []FieldError) func(error) []FieldError {
	return func(err error) []FieldError {
		var t T
		if !errors.As(err, &t) {
			return nil
		}
		return details(t)
	}
}

func invalidFields(e *service.InvalidError) []FieldError {
	in := e.In
	if in == "" {
		in = "body"
	}
	return []FieldError{{Loc: []any{in, e.Field}, Msg: e.Message, Type: e.Type}}
}

func passwordTooLong(error) []FieldError {
	return []FieldError{{
		Loc: []any{"body", "password"}, Msg: "ensure this value has at most 72 bytes (bcrypt's limit)", Type: "value_error.any_str.max_bytes",
	}}
}

// docProblems turns a document's problems into 422 details under where.
func docProblems(where []any, problems []jsondoc.Problem) []FieldError {
	out := make([]FieldError, 0, len(problems))
	for _, p := range problems {
		loc := append(append([]any{}, where...), p.Path...)
		out = append(out, FieldError{Loc: loc, Msg: p.Msg, Type: p.Type, Ctx: p.Ctx})
	}
	return out
}

// lookup is the first row of problems matching err, with its 422
// details; false when none does.
func lookup(err error) (problem, []FieldError, bool) {
	for _, p := range problems {
		if p.target != nil && !errors.Is(err, p.target) {
			continue
		}
		if p.fields == nil {
			return p, nil, true
		}
		if fields := p.fields(err); fields != nil {
			return p, fields, true
		}
	}
	return problem{}, nil, false
}

// handler is a route's handler: it answers success itself and returns
// any error for writeError to answer.
type handler func(http.ResponseWriter, *http.Request) error

// handle serves h, answering its error with writeError.
func (s *server) handle(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// writeError answers err in the service's error shape. A request whose
// client hung up is answered (to no one) and logged as such, whatever
// err is. Errors outside the table are logged and answered as a bare 500.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(r.Context().Err(), context.Canceled) {
		err = fmt.Errorf("%w: %w", errClientClosed, err)
	}
	p, fields, ok := lookup(err)
	switch {
	case !ok:
		s.log.ErrorContext(r.Context(), "request failed", "request_id", info(r.Context()).id, "method", r.Method, "path", r.URL.Path, "err", err)
		encode(w, http.StatusInternalServerError, ErrorResponse{Detail: "Internal Server Error"})
	case fields != nil:
		encode(w, p.status, ValidationError{Detail: fields})
	default:
		if p.status == http.StatusUnauthorized {
			challenge(w, r, err)
		}
		if p.retry {
			w.Header().Set("Retry-After", "1")
		}
		encode(w, p.status, ErrorResponse{Detail: p.detail})
	}
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
	{security.ErrSessionOver, "session_over", "The session is over (JWT_MAX_SESSION since its login); log in again"},
	{security.ErrTokenExpired, "token_expired", "The access token expired"},
	{security.ErrInvalidToken, "token_invalid", "The access token is malformed or its signature is not valid"},
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

// Package service holds the business rules: signing up and managing
// organizations, and authenticating their admins. It knows nothing of HTTP.
package service

import (
	"errors"

	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/security"
)

// The domain's errors. The HTTP layer maps each to a status and a message in
// one place; any other error is internal.
var (
	ErrOrgExists          = errors.New("organization already exists")
	ErrOrgNotFound        = errors.New("organization not found")
	ErrNameConflict       = errors.New("organization name conflict")
	ErrEmailTaken         = errors.New("email already registered")
	ErrNotOwnerUpdate     = errors.New("not authorized to update")
	ErrNotOwnerDelete     = errors.New("not authorized to delete")
	ErrInvalidCredentials = errors.New("invalid credentials")
	// A token that fails verification is security.ErrInvalidToken (or
	// ErrTokenExpired, ErrSessionOver, which wrap it); these are genuine
	// tokens the records refuse.
	ErrAdminNotFound = errors.New("admin not found")
	ErrOrgMismatch   = errors.New("admin organization mismatch")
	ErrTokenRevoked  = errors.New("token revoked")
	// ErrOrgGone: the token's admin is there, its organization is not.
	ErrOrgGone = errors.New("token's organization not found")

	// Teams.
	ErrForbidden      = errors.New("role does not allow this")
	ErrLastOwner      = errors.New("an organization needs at least one owner")
	ErrMemberNotFound = errors.New("member not found")
	ErrNotMember      = errors.New("not a member of that organization")

	// ErrUnavailable: the database could not be reached; retry later.
	ErrUnavailable = repository.ErrUnavailable
	// ErrBusy: every password worker is busy and the queue is full.
	ErrBusy = security.ErrBusy
	// ErrPasswordTooLong: over bcrypt's 72 bytes.
	ErrPasswordTooLong = security.ErrPasswordTooLong
)

// InvalidError is a request that breaks a rule only the service can check
// (for example, a name whose slug is empty). Field names the input, In
// where it came from: "body" (the default) or "query".
type InvalidError struct {
	In      string
	Field   string
	Message string
	Type    string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }

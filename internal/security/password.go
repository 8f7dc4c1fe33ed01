// Package security issues and verifies tokens and hashes passwords.
package security

import (
	"errors"

	"golang.org/x/crypto/bcrypt"
)

// MaxPasswordBytes is bcrypt's input limit; longer passwords are refused
// rather than silently truncated.
const MaxPasswordBytes = 72

// ErrPasswordTooLong is returned for a password bcrypt would truncate.
var ErrPasswordTooLong = errors.New("password longer than 72 bytes")

// Passwords hashes and checks passwords with bcrypt at a fixed cost.
type Passwords struct {
	cost  int
	dummy []byte
}

// NewPasswords prepares a hasher at the given bcrypt cost. It computes a
// dummy hash once so that checking an unknown account costs as much as
// checking a known one.
func NewPasswords(cost int) (*Passwords, error) {
	dummy, err := bcrypt.GenerateFromPassword([]byte("orgsvc-dummy-password"), cost)
	if err != nil {
		return nil, err
	}
	return &Passwords{cost: cost, dummy: dummy}, nil
}

// Hash returns the bcrypt hash of password.
func (p *Passwords) Hash(password string) (string, error) {
	if len(password) > MaxPasswordBytes {
		return "", ErrPasswordTooLong
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), p.cost)
	return string(h), err
}

// Check reports whether password matches hash. An empty hash stands for an
// unknown account: the comparison runs against the dummy hash and fails, so
// the caller spends the same time either way. Passwords over 72 bytes never
// match.
func (p *Passwords) Check(hash, password string) bool {
	h := []byte(hash)
	if hash == "" {
		h = p.dummy
	}
	candidate := []byte(password)
	if len(candidate) > MaxPasswordBytes {
		candidate = candidate[:MaxPasswordBytes]
		_ = bcrypt.CompareHashAndPassword(h, candidate)
		return false
	}
	ok := bcrypt.CompareHashAndPassword(h, candidate) == nil
	return ok && hash != ""
}

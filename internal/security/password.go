// Package security issues and verifies tokens and hashes passwords.
package security

import (
	"context"
	"errors"
	"runtime"

	"golang.org/x/crypto/bcrypt"
)

// MaxPasswordBytes is bcrypt's input limit; longer passwords are refused
// rather than silently truncated.
const MaxPasswordBytes = 72

var (
	// ErrPasswordTooLong is returned for a password bcrypt would truncate.
	ErrPasswordTooLong = errors.New("password longer than 72 bytes")
	// ErrBusy is returned when every bcrypt worker is busy and the queue
	// is full: the caller should answer at once and let the client retry.
	ErrBusy = errors.New("password hashing is saturated")
)

// Passwords hashes and checks passwords with bcrypt at a fixed cost, on a
// bounded pool: at most workers at a time, with at most queue more waiting.
// A flood of logins is turned away quickly instead of taking every core.
type Passwords struct {
	cost  int
	dummy []byte
	admit chan struct{} // held while queued or running
	run   chan struct{} // held while running
}

// NewPasswords prepares a hasher at the given bcrypt cost, with workers
// concurrent hashes (one per core when 0) and a queue of queue more. It
// computes a dummy hash once so that checking an unknown account costs as
// much as checking a known one.
func NewPasswords(cost, workers, queue int) (*Passwords, error) {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("orgsvc-dummy-password"), cost)
	if err != nil {
		return nil, err
	}
	return &Passwords{
		cost:  cost,
		dummy: dummy,
		admit: make(chan struct{}, workers+queue),
		run:   make(chan struct{}, workers),
	}, nil
}

// Waiting is how many bcrypt calls wait for a worker.
func (p *Passwords) Waiting() int { return max(len(p.admit)-len(p.run), 0) }

// Running is how many bcrypt calls are running.
func (p *Passwords) Running() int { return len(p.run) }

// do runs fn on the pool: ErrBusy at once when the queue is full, the
// context's error when it ends while waiting.
func (p *Passwords) do(ctx context.Context, fn func()) error {
	select {
	case p.admit <- struct{}{}:
	default:
		return ErrBusy
	}
	defer func() { <-p.admit }()
	select {
	case p.run <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.run }()
	fn()
	return nil
}

// Hash returns the bcrypt hash of password.
func (p *Passwords) Hash(ctx context.Context, password string) (string, error) {
	if len(password) > MaxPasswordBytes {
		return "", ErrPasswordTooLong
	}
	var h []byte
	var herr error
	if err := p.do(ctx, func() { h, herr = bcrypt.GenerateFromPassword([]byte(password), p.cost) }); err != nil {
		return "", err
	}
	return string(h), herr
}

// Check reports whether password matches hash. An empty hash stands for an
// unknown account: the comparison runs against the dummy hash and fails, so
// the caller spends the same time either way. Passwords over 72 bytes never
// match, after the same work. The error is ErrBusy or the context's.
func (p *Passwords) Check(ctx context.Context, hash, password string) (bool, error) {
	h := []byte(hash)
	if hash == "" {
		h = p.dummy
	}
	candidate := []byte(password)
	tooLong := len(candidate) > MaxPasswordBytes
	if tooLong {
		candidate = candidate[:MaxPasswordBytes]
	}
	var match bool
	if err := p.do(ctx, func() { match = bcrypt.CompareHashAndPassword(h, candidate) == nil }); err != nil {
		return false, err
	}
	return match && hash != "" && !tooLong, nil
}

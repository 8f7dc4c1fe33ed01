package service

import (
	"context"
	"errors"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// AdoptAdmins turns each account written before teams (one admin per
// organization) into the owner membership of its organization, and marks
// it adopted; it returns how many it adopted. The membership is a unique
// insert and the mark comes after it, so a run cut short anywhere, or two
// instances running it at once, leave one membership per account. A
// sign-up still under way is left to its operation.
func (s *OrgService) AdoptAdmins(ctx context.Context) (int, error) {
	admins, err := s.master.AllAdmins(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range admins {
		if a.Teams {
			continue
		}
		org, err := s.master.Organization(ctx, a.OrganizationID)
		if errors.Is(err, repository.ErrNotFound) || (err == nil && org.State == model.StateCreating) {
			continue // orgsvc check reports an account of no organization
		}
		if err != nil {
			return n, err
		}
		m := &model.Membership{AccountID: a.ID, OrgID: org.ID, Role: model.RoleOwner, JoinedAt: a.CreatedAt}
		if err := s.master.InsertMembership(ctx, m); err != nil && !errors.Is(err, repository.ErrDuplicate) {
			return n, err
		}
		if err := s.master.MarkAdopted(ctx, a.ID); err != nil {
			return n, err
		}
		s.forgetAdmin(a.ID)
		n++
	}
	return n, nil
}

package service

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/audit"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/security"
)

// OrgService signs organizations up and lets their admins change and
// delete them. Each of these is an operation of its runner (see
// runner.go); kinds.go lists them.
type OrgService struct {
	master    *repository.MasterRepository
	tenants   *repository.TenantRepository
	ops       *repository.OperationRepository
	passwords *security.Passwords
	auth      *AuthService
	log       *slog.Logger
	run       *Runner
	invites   InvitationSettings
	audit     *audit.Log    // nil: no audit log
	limits    Limits        // the server's tenant limits
	retention time.Duration // ORG_DELETE_RETENTION (see delete.go)
}

// SetTenantLimits sets the server's limits, which organizations' own
// override.
func (s *OrgService) SetTenantLimits(l Limits) { s.limits = l }

// SetAudit makes the service, and its runner, record events in log.
func (s *OrgService) SetAudit(log *audit.Log) {
	s.audit = log
	s.run.SetAudit(log)
	if log != nil {
		log.SetLocator(func(ctx context.Context, id bson.ObjectID) (string, error) {
			org, err := s.master.Organization(ctx, id)
			if err == nil {
				return org.TenantDB, nil
			}
			if !errors.Is(err, repository.ErrNotFound) {
				return "", err
			}
			// Deleted within its restore window: the archive keeps it.
			a, err := s.master.Archive(ctx, id)
			if err != nil {
				return "", err
			}
			return a.Org.TenantDB, nil
		})
	}
}

// NewOrgService builds an OrgService. Without passwords and auth (nil) it
// serves no requests: it runs, recovers and checks operations, as
// orgsvc check does.
func NewOrgService(master *repository.MasterRepository, tenants *repository.TenantRepository, ops *repository.OperationRepository, passwords *security.Passwords, auth *AuthService, log *slog.Logger, life Lifecycle) *OrgService {
	s := &OrgService{master: master, tenants: tenants, ops: ops, passwords: passwords, auth: auth, log: log, invites: InvitationSettings{TTL: 168 * time.Hour}}
	s.run = NewRunner(ops, log, life, s.kinds())
	return s
}

// forgetOrg drops what this instance caches of an organization (nothing
// without auth: orgsvc check and the operators' commands cache nothing).
func (s *OrgService) forgetOrg(id bson.ObjectID, slugs ...string) {
	if s.auth != nil {
		s.auth.orgs.forget(id, slugs...)
	}
}

// forgetAdmin drops what this instance caches of an admin.
func (s *OrgService) forgetAdmin(id bson.ObjectID) {
	if s.auth != nil {
		s.auth.Forget(id)
	}
}

// Runner returns the runner of the organizations' operations.
func (s *OrgService) Runner() *Runner { return s.run }

// Get returns the organization whose name is name (see byName). A name
// with a character names may not hold names none.
func (s *OrgService) Get(ctx context.Context, name string) (*model.Organization, error) {
	if model.HiddenInName(name) {
		return nil, ErrOrgNotFound
	}
	org, _, err := s.byNameCached(ctx, name)
	return org, err
}

// byName finds the organization named name (exactly, or once
// NFKC-normalized), through the claim on its slug: a lookup by _id, two
// when the name's slug before normalization differs (see LookupSlugs).
func (s *OrgService) byName(ctx context.Context, name string) (*model.Organization, error) {
	for _, slug := range model.LookupSlugs(name) {
		org, err := s.master.OrganizationBySlug(ctx, slug)
		if errors.Is(err, repository.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if model.SameName(org.Name, name) && org.State != model.StateCreating {
			return org, nil
		}
	}
	return nil, ErrOrgNotFound
}

// byNameCached is byName through the organization cache; cached says the
// record came from it. An organization read here at rest under its own
// slug is cached.
func (s *OrgService) byNameCached(ctx context.Context, name string) (_ *model.Organization, cached bool, _ error) {
	if !s.auth.orgs.enabled() {
		org, err := s.byName(ctx, name)
		return org, false, err
	}
	for _, slug := range model.LookupSlugs(name) {
		key := orgSlugKey(slug)
		org, _, ok := s.auth.orgs.get(key)
		if !ok {
			gen := s.auth.orgs.generation(key)
			// Concurrent misses share the read (see flights).
			found, err := s.auth.orgReads.do(ctx, orgReadKey{key, gen}, func(ctx context.Context) (model.Organization, error) {
				org, err := s.master.OrganizationBySlug(ctx, slug)
				if err != nil {
					return model.Organization{}, err
				}
				if org.Slug == slug {
					s.auth.orgs.put(key, org, gen)
				}
				return *org, nil
			})
			if errors.Is(err, repository.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, false, err
			}
			org = &found
		}
		if model.SameName(org.Name, name) && org.State != model.StateCreating {
			return org, ok, nil
		}
	}
	return nil, false, ErrOrgNotFound
}

// heldUnderLegacySlug answers taken when an organization made before names
// were normalized holds name under the slug it had then (see
// model.LookupSlugs): its claim is not on the name's slug now.
func (s *OrgService) heldUnderLegacySlug(ctx context.Context, name string, taken error) error {
	if len(model.LookupSlugs(name)) < 2 {
		return nil
	}
	_, err := s.byName(ctx, name)
	switch {
	case err == nil:
		return taken
	case errors.Is(err, ErrOrgNotFound):
		return nil
	}
	return err
}

// slugOf checks that a canonical name is allowed and has a usable slug.
func slugOf(name, field string) (string, error) {
	slug := model.Slug(name)
	switch {
	case model.HiddenInName(name):
		return "", &InvalidError{Field: field, Message: model.NameCharsMessage, Type: model.NameCharsType}
	case slug == "":
		return "", &InvalidError{Field: field, Message: "name must contain at least one non-space character", Type: "value_error.name.empty"}
	case len(slug) > model.MaxSlugBytes:
		return "", &InvalidError{Field: field, Message: "name is too long for a collection name", Type: "value_error.name.too_long"}
	}
	return slug, nil
}

func mapDuplicate(err, to error) error {
	if errors.Is(err, repository.ErrDuplicate) {
		return to
	}
	return err
}

// The documents' view of where organizations are (see locator).

func (s *OrgService) organization(ctx context.Context, id bson.ObjectID) (*model.Organization, error) {
	return s.master.Organization(ctx, id)
}

func (s *OrgService) operation(ctx context.Context, orgID bson.ObjectID) (*model.Operation, error) {
	return s.run.Operation(ctx, orgID)
}

func (s *OrgService) nudge(orgID bson.ObjectID) { s.run.nudge(orgID) }

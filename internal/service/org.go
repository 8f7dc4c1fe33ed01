package service

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/security"
)

// OrgService signs organizations up and lets their admins change and
// delete them.
type OrgService struct {
	master    *repository.MasterRepository
	tenants   *repository.TenantRepository
	passwords *security.Passwords
	auth      *AuthService
	log       *slog.Logger
}

// NewOrgService builds an OrgService.
func NewOrgService(master *repository.MasterRepository, tenants *repository.TenantRepository, passwords *security.Passwords, auth *AuthService, log *slog.Logger) *OrgService {
	return &OrgService{master: master, tenants: tenants, passwords: passwords, auth: auth, log: log}
}

// CreateOrg is a sign-up: a new organization and its admin.
type CreateOrg struct {
	Name     string
	Email    string
	Password string
}

// Create signs up an organization. The name's slug and the admin's e-mail
// are claimed first, by inserts the database refuses when taken, so two
// concurrent sign-ups can never both win.
func (s *OrgService) Create(ctx context.Context, in CreateOrg) (*model.Organization, error) {
	name := strings.TrimSpace(in.Name)
	slug, err := slugOf(name, "organization_name")
	if err != nil {
		return nil, err
	}
	email := model.NormalizeEmail(in.Email)
	hash, err := s.passwords.Hash(ctx, in.Password)
	if err != nil {
		return nil, err
	}
	orgID, adminID := bson.NewObjectID(), bson.NewObjectID()
	var undo undoStack
	defer undo.run(ctx, s.log)

	if err := s.master.ClaimName(ctx, slug, orgID); err != nil {
		return nil, mapDuplicate(err, ErrOrgExists)
	}
	undo.push("release name", func(ctx context.Context) error { return s.master.ReleaseName(ctx, slug, orgID) })

	if err := s.master.ClaimEmail(ctx, model.EmailKey(email), adminID); err != nil {
		return nil, mapDuplicate(err, ErrEmailTaken)
	}
	undo.push("release email", func(ctx context.Context) error {
		return s.master.ReleaseEmail(ctx, model.EmailKey(email), adminID)
	})

	if err := s.tenants.Create(ctx, slug); err != nil {
		return nil, err
	}
	undo.push("drop tenant collection", func(ctx context.Context) error { return s.tenants.Drop(ctx, slug) })

	now := time.Now().UTC().Truncate(time.Millisecond)
	admin := &model.Admin{
		ID: adminID, Email: email, PasswordHash: hash, OrganizationID: orgID,
		Role: model.RoleAdmin, CreatedAt: now, UpdatedAt: now,
	}
	if err := s.master.InsertAdmin(ctx, admin); err != nil {
		return nil, err
	}
	undo.push("delete admin", func(ctx context.Context) error { return s.master.DeleteAdmin(ctx, adminID) })

	org := &model.Organization{
		ID: orgID, Name: name, Slug: slug, CollectionName: repository.CollectionName(slug),
		AdminID: adminID, CreatedAt: now, UpdatedAt: now,
	}
	if err := s.master.InsertOrganization(ctx, org); err != nil {
		return nil, mapDuplicate(err, ErrOrgExists)
	}
	undo.done()
	return org, nil
}

// Get returns the organization whose name is exactly name.
func (s *OrgService) Get(ctx context.Context, name string) (*model.Organization, error) {
	return s.byName(ctx, name)
}

// UpdateOrg is what an admin may change on its organization; nil fields
// stay as they are.
type UpdateOrg struct {
	Name     string
	NewName  *string
	Email    *string
	Password *string
}

// Update changes the caller's own organization: its name (moving the
// tenant collection on the server), the admin's e-mail or password. Any
// change ends the admin's earlier tokens; the answer is a fresh token.
func (s *OrgService) Update(ctx context.Context, p Principal, in UpdateOrg) (string, error) {
	org, err := s.byName(ctx, in.Name)
	if err != nil {
		return "", err
	}
	if org.ID != p.OrgID || org.AdminID != p.AdminID {
		return "", ErrNotOwnerUpdate
	}
	admin, err := s.master.Admin(ctx, p.AdminID)
	if err != nil {
		return "", err
	}

	// Everything that can be refused is checked before anything is written.
	var change repository.AdminChange
	if in.Password != nil {
		hash, err := s.passwords.Hash(ctx, *in.Password)
		if err != nil {
			return "", err
		}
		change.PasswordHash = &hash
	}
	var newName, newSlug string
	if in.NewName != nil {
		newName = strings.TrimSpace(*in.NewName)
		if newName == org.Name {
			return "", ErrNameConflict
		}
		if newSlug, err = slugOf(newName, "new_organization_name"); err != nil {
			return "", err
		}
	}

	var undo undoStack
	defer undo.run(ctx, s.log)

	oldEmailKey := model.EmailKey(admin.Email)
	var releaseOldEmail bool
	if in.Email != nil {
		email := model.NormalizeEmail(*in.Email)
		change.Email = &email
		if key := model.EmailKey(email); key != oldEmailKey {
			if err := s.master.ClaimEmail(ctx, key, admin.ID); err != nil {
				return "", mapDuplicate(err, ErrEmailTaken)
			}
			undo.push("release new email", func(ctx context.Context) error { return s.master.ReleaseEmail(ctx, key, admin.ID) })
			releaseOldEmail = true
		}
	}

	if in.NewName != nil {
		if err := s.rename(ctx, org, newName, newSlug, &undo); err != nil {
			return "", err
		}
	}

	change.BumpVersion = in.NewName != nil || change.Email != nil || change.PasswordHash != nil
	if change.BumpVersion {
		// Forget before and after: a request checked in between must not
		// leave the old version cached on this instance.
		s.auth.Forget(admin.ID)
		defer s.auth.Forget(admin.ID)
		if admin, err = s.master.UpdateAdmin(ctx, admin.ID, change); err != nil {
			return "", err
		}
	}
	undo.done()
	if releaseOldEmail {
		if err := s.master.ReleaseEmail(ctx, oldEmailKey, admin.ID); err != nil {
			s.log.Error("release old email claim", "err", err, "admin_id", admin.ID.Hex())
		}
	}
	return s.auth.issue(admin, org)
}

// rename gives org a new name. A new slug is claimed first; the tenant
// collection then moves with renameCollection, so every document keeps its
// _id and nothing is copied. org is updated in place.
func (s *OrgService) rename(ctx context.Context, org *model.Organization, name, slug string, undo *undoStack) error {
	oldSlug := org.Slug
	if slug != oldSlug {
		if err := s.master.ClaimName(ctx, slug, org.ID); err != nil {
			return mapDuplicate(err, ErrNameConflict)
		}
		undo.push("release new name", func(ctx context.Context) error { return s.master.ReleaseName(ctx, slug, org.ID) })
		if err := s.tenants.Rename(ctx, oldSlug, slug); err != nil {
			return err
		}
		undo.push("move tenant collection back", func(ctx context.Context) error { return s.tenants.Rename(ctx, slug, oldSlug) })
	}
	collection := repository.CollectionName(slug)
	if err := s.master.RenameOrganization(ctx, org.ID, name, slug, collection); err != nil {
		return mapDuplicate(err, ErrNameConflict)
	}
	org.Name, org.Slug, org.CollectionName = name, slug, collection
	if slug != oldSlug {
		if err := s.master.ReleaseName(ctx, oldSlug, org.ID); err != nil {
			s.log.Error("release old name claim", "err", err, "organization_id", org.ID.Hex())
		}
	}
	return nil
}

// Delete removes the caller's own organization: its tenant collection, its
// admin and its metadata.
func (s *OrgService) Delete(ctx context.Context, p Principal, name string) error {
	org, err := s.byName(ctx, name)
	if err != nil {
		return err
	}
	if org.ID != p.OrgID || org.AdminID != p.AdminID {
		return ErrNotOwnerDelete
	}
	defer s.auth.Forget(org.AdminID)
	if err := s.tenants.Drop(ctx, org.Slug); err != nil {
		return err
	}
	admin, err := s.master.Admin(ctx, org.AdminID)
	switch {
	case err == nil:
		if err := s.master.DeleteAdmin(ctx, admin.ID); err != nil {
			return err
		}
		if err := s.master.ReleaseEmail(ctx, model.EmailKey(admin.Email), admin.ID); err != nil {
			return err
		}
	case !errors.Is(err, repository.ErrNotFound):
		return err
	}
	if err := s.master.DeleteOrganization(ctx, org.ID); err != nil {
		return err
	}
	return s.master.ReleaseName(ctx, org.Slug, org.ID)
}

// byName finds the organization named exactly name, through the claim on
// its slug: a lookup by _id.
func (s *OrgService) byName(ctx context.Context, name string) (*model.Organization, error) {
	slug := model.Slug(name)
	if slug == "" {
		return nil, ErrOrgNotFound
	}
	org, err := s.master.OrganizationBySlug(ctx, slug)
	if errors.Is(err, repository.ErrNotFound) {
		return nil, ErrOrgNotFound
	}
	if err != nil {
		return nil, err
	}
	if org.Name != name {
		return nil, ErrOrgNotFound
	}
	return org, nil
}

// slugOf checks that a trimmed name has a usable slug.
func slugOf(name, field string) (string, error) {
	slug := model.Slug(name)
	switch {
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

// undoStack collects compensating steps for a multi-step change; unless
// done is called they run, newest first, when the change returns.
type undoStack struct {
	steps []undoStep
}

type undoStep struct {
	name string
	fn   func(context.Context) error
}

func (u *undoStack) push(name string, fn func(context.Context) error) {
	u.steps = append(u.steps, undoStep{name, fn})
}

func (u *undoStack) done() { u.steps = nil }

func (u *undoStack) run(ctx context.Context, log *slog.Logger) {
	ctx = context.WithoutCancel(ctx)
	for i := len(u.steps) - 1; i >= 0; i-- {
		if err := u.steps[i].fn(ctx); err != nil {
			log.Error("undo step failed", "step", u.steps[i].name, "err", err)
		}
	}
}

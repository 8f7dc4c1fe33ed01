package repository

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/orgsvc/orgsvc/internal/model"
)

// MasterRepository reads and writes the master database: organizations,
// admins, and the name and e-mail claims that keep them unique. Every lookup
// made on a request path is by _id.
type MasterRepository struct {
	orgs   *mongo.Collection
	admins *mongo.Collection
	names  *mongo.Collection
	emails *mongo.Collection
	// members holds the memberships (memberships.go), invites and
	// inviteClaims the invitations (invitations.go).
	members      *mongo.Collection
	invites      *mongo.Collection
	inviteClaims *mongo.Collection
	// idFiltersOnly: the database evaluates no filter but a lone _id
	// equality itself (see release).
	idFiltersOnly bool
}

// NewMasterRepository returns a repository over db. idFiltersOnly says
// that the database reads the whole collection for any filter other than
// a lone _id equality, as the embedded store does (store.IDFiltersOnly).
func NewMasterRepository(db *mongo.Database, idFiltersOnly bool) *MasterRepository {
	return &MasterRepository{
		orgs:          db.Collection(model.Organizations),
		admins:        db.Collection(model.Admins),
		names:         db.Collection(model.NameClaims),
		emails:        db.Collection(model.EmailClaims),
		members:       db.Collection(model.Memberships),
		invites:       db.Collection(model.Invitations),
		inviteClaims:  db.Collection(model.InvitationClaims),
		idFiltersOnly: idFiltersOnly,
	}
}

// ClaimName reserves slug for an organization; ErrDuplicate when taken.
func (r *MasterRepository) ClaimName(ctx context.Context, slug string, orgID bson.ObjectID) error {
	return insert(ctx, r.names, model.NameClaim{Slug: slug, OrganizationID: orgID, CreatedAt: model.Now()})
}

// ClaimNameToSweep reserves slug for a sweep (see model.NameClaim.Sweep).
func (r *MasterRepository) ClaimNameToSweep(ctx context.Context, slug string, sweepID bson.ObjectID) error {
	return insert(ctx, r.names, model.NameClaim{Slug: slug, OrganizationID: sweepID, CreatedAt: model.Now(), Sweep: true})
}

// NameClaim returns the claim on slug.
func (r *MasterRepository) NameClaim(ctx context.Context, slug string) (*model.NameClaim, error) {
	var c model.NameClaim
	if err := findByID(ctx, r.names, slug, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// ReleaseName drops the claim on slug if orgID holds it.
func (r *MasterRepository) ReleaseName(ctx context.Context, slug string, orgID bson.ObjectID) error {
	return r.release(ctx, r.names, slug, "organization_id", orgID)
}

// OrganizationBySlug returns the organization holding the claim on slug:
// two lookups by _id.
func (r *MasterRepository) OrganizationBySlug(ctx context.Context, slug string) (*model.Organization, error) {
	c, err := r.NameClaim(ctx, slug)
	if err != nil {
		return nil, err
	}
	return r.Organization(ctx, c.OrganizationID)
}

// ClaimEmail reserves an e-mail key for an admin; ErrDuplicate when taken.
func (r *MasterRepository) ClaimEmail(ctx context.Context, key string, adminID bson.ObjectID) error {
	return insert(ctx, r.emails, model.EmailClaim{Key: key, AdminID: adminID, CreatedAt: model.Now()})
}

// EmailClaimsOf returns the e-mail claims naming adminID: one command (a
// scan on the embedded store; only a clean-up after a crash asks).
func (r *MasterRepository) EmailClaimsOf(ctx context.Context, adminID bson.ObjectID) ([]model.EmailClaim, error) {
	return find[model.EmailClaim](ctx, r.emails, bson.D{{Key: "admin_id", Value: adminID}}, nil)
}

// ReleaseEmail drops the claim on key if adminID holds it.
func (r *MasterRepository) ReleaseEmail(ctx context.Context, key string, adminID bson.ObjectID) error {
	return r.release(ctx, r.emails, key, "admin_id", adminID)
}

// release deletes the claim id of c if its field names owner.
func (r *MasterRepository) release(ctx context.Context, c *mongo.Collection, id any, field string, owner bson.ObjectID) error {
	filter, err := ownedBy(ctx, c, r.idFiltersOnly, id, field, owner)
	if err != nil || filter == nil {
		return err
	}
	_, err = c.DeleteOne(ctx, filter)
	return wrap(err)
}

// ownedBy returns the filter that selects document id of c only if its
// field holds owner; nil when it does not (or is gone). MongoDB takes a
// filter that carries both, served by the _id index. A database that
// evaluates only a lone _id equality itself would read every document of
// c to match that filter: there the document is read by _id and, if
// owner holds it, the filter is the lone _id. That is what such a
// database does with the two-field filter anyway (FerretDB finds the
// matching documents, then acts on them by _id), so nothing is less
// atomic than it was.
func ownedBy(ctx context.Context, c *mongo.Collection, idFiltersOnly bool, id any, field string, owner bson.ObjectID) (bson.D, error) {
	if !idFiltersOnly {
		return bson.D{{Key: "_id", Value: id}, {Key: field, Value: owner}}, nil
	}
	var doc bson.Raw
	err := findByID(ctx, c, id, &doc)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if held, ok := doc.Lookup(field).ObjectIDOK(); !ok || held != owner {
		return nil, nil
	}
	return bson.D{{Key: "_id", Value: id}}, nil
}

// AdminByEmailKey returns the admin holding the claim on an e-mail key:
// two lookups by _id.
func (r *MasterRepository) AdminByEmailKey(ctx context.Context, key string) (*model.Admin, error) {
	var c model.EmailClaim
	if err := findByID(ctx, r.emails, key, &c); err != nil {
		return nil, err
	}
	return r.Admin(ctx, c.AdminID)
}

// InsertAdmin stores a new admin.
func (r *MasterRepository) InsertAdmin(ctx context.Context, a *model.Admin) error {
	return insert(ctx, r.admins, a)
}

// Admin returns the admin with the given id.
func (r *MasterRepository) Admin(ctx context.Context, id bson.ObjectID) (*model.Admin, error) {
	var a model.Admin
	if err := findByID(ctx, r.admins, id, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// AdminChange is what an update may set on an admin; nil fields stay.
type AdminChange struct {
	Email        *string
	PasswordHash *string
	// BumpVersion ends every token issued to the admin so far; Version,
	// when set, sets the token version instead (a step that may be
	// repeated).
	BumpVersion bool
	Version     *int64
}

// UpdateAdmin applies change to the admin and returns it as it now is.
func (r *MasterRepository) UpdateAdmin(ctx context.Context, id bson.ObjectID, change AdminChange) (*model.Admin, error) {
	set := bson.D{{Key: "updated_at", Value: model.Now()}}
	if change.Email != nil {
		set = append(set, bson.E{Key: "email", Value: *change.Email})
	}
	if change.PasswordHash != nil {
		set = append(set, bson.E{Key: "password_hash", Value: *change.PasswordHash})
	}
	if change.Version != nil {
		set = append(set, bson.E{Key: "token_version", Value: *change.Version})
	}
	update := bson.D{{Key: "$set", Value: set}}
	if change.BumpVersion && change.Version == nil {
		update = append(update, bson.E{Key: "$inc", Value: bson.D{{Key: "token_version", Value: int64(1)}}})
	}
	res, err := r.admins.UpdateByID(ctx, id, update)
	if err != nil {
		return nil, wrap(err)
	}
	if res.MatchedCount == 0 {
		return nil, ErrNotFound
	}
	return r.Admin(ctx, id)
}

// MarkAdopted records that an account's organizations are its memberships.
func (r *MasterRepository) MarkAdopted(ctx context.Context, id bson.ObjectID) error {
	_, err := r.admins.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "teams", Value: true}}}})
	return wrap(err)
}

// DeleteAdmin removes an admin.
func (r *MasterRepository) DeleteAdmin(ctx context.Context, id bson.ObjectID) error {
	_, err := r.admins.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	return wrap(err)
}

// InsertOrganization stores a new organization.
func (r *MasterRepository) InsertOrganization(ctx context.Context, o *model.Organization) error {
	return insert(ctx, r.orgs, o)
}

// Organization returns the organization with the given id.
func (r *MasterRepository) Organization(ctx context.Context, id bson.ObjectID) (*model.Organization, error) {
	var o model.Organization
	if err := findByID(ctx, r.orgs, id, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// SetOrganizationState marks an organization as changed by an operation
// (state and operation id), or as at rest (empty state).
func (r *MasterRepository) SetOrganizationState(ctx context.Context, id bson.ObjectID, state string, opID bson.ObjectID) error {
	var update bson.D
	if state == "" {
		update = bson.D{{Key: "$unset", Value: bson.D{{Key: "state", Value: ""}, {Key: "operation_id", Value: ""}}}}
	} else {
		update = bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: state}, {Key: "operation_id", Value: opID}}}}
	}
	return r.updateOrganization(ctx, id, update)
}

// SetSuspended suspends or resumes an organization.
func (r *MasterRepository) SetSuspended(ctx context.Context, id bson.ObjectID, suspended bool) error {
	update := bson.D{{Key: "$unset", Value: bson.D{{Key: "suspended", Value: ""}}}}
	if suspended {
		update = bson.D{{Key: "$set", Value: bson.D{{Key: "suspended", Value: true}}}}
	}
	return r.updateOrganization(ctx, id, update)
}

// SetLimits records an organization's own limits (nil: the server's).
func (r *MasterRepository) SetLimits(ctx context.Context, id bson.ObjectID, l *model.OrgLimits) error {
	update := bson.D{{Key: "$unset", Value: bson.D{{Key: "limits", Value: ""}}}}
	if l != nil {
		update = bson.D{{Key: "$set", Value: bson.D{{Key: "limits", Value: l}}}}
	}
	return r.updateOrganization(ctx, id, update)
}

// SetOrganizationAdmin records the account an organization's answers
// name as its admin.
func (r *MasterRepository) SetOrganizationAdmin(ctx context.Context, id, admin bson.ObjectID) error {
	return r.updateOrganization(ctx, id, bson.D{{Key: "$set", Value: bson.D{{Key: "admin_id", Value: admin}}}})
}

// FinishCreate puts a new organization at rest and records the identity
// of its tenant collection (unless uuid is empty), in one update.
func (r *MasterRepository) FinishCreate(ctx context.Context, id bson.ObjectID, uuid string) error {
	update := bson.D{{Key: "$unset", Value: bson.D{{Key: "state", Value: ""}, {Key: "operation_id", Value: ""}}}}
	if uuid != "" {
		update = append(update, bson.E{Key: "$set", Value: bson.D{{Key: "collection_uuid", Value: uuid}}})
	}
	return r.updateOrganization(ctx, id, update)
}

// FinishRename gives an organization its new name, slug and collection and
// puts it at rest, in one update.
func (r *MasterRepository) FinishRename(ctx context.Context, id bson.ObjectID, name, slug, previous string) error {
	return r.updateOrganization(ctx, id, bson.D{
		{Key: "$set", Value: bson.D{
			{Key: "organization_name", Value: name},
			{Key: "slug", Value: slug},
			{Key: "collection_name", Value: CollectionName(slug)},
			{Key: "previous_name", Value: previous},
			{Key: "updated_at", Value: model.Now()},
		}},
		{Key: "$unset", Value: bson.D{{Key: "state", Value: ""}, {Key: "operation_id", Value: ""}}},
	})
}

// updateOrganization applies update to organization id; ErrNotFound when
// there is none.
func (r *MasterRepository) updateOrganization(ctx context.Context, id bson.ObjectID, update bson.D) error {
	res, err := r.orgs.UpdateByID(ctx, id, update)
	if err != nil {
		return wrap(err)
	}
	if res.MatchedCount == 0 {
		return ErrNotFound
	}
	return nil
}

// SetCollectionUUID records the identity of an organization's tenant
// collection.
func (r *MasterRepository) SetCollectionUUID(ctx context.Context, id bson.ObjectID, uuid string) error {
	_, err := r.orgs.UpdateByID(ctx, id, bson.D{{Key: "$set", Value: bson.D{{Key: "collection_uuid", Value: uuid}}}})
	return wrap(err)
}

// DeleteOrganization removes an organization's document.
func (r *MasterRepository) DeleteOrganization(ctx context.Context, id bson.ObjectID) error {
	_, err := r.orgs.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	return wrap(err)
}

func insert(ctx context.Context, c *mongo.Collection, doc any) error {
	_, err := c.InsertOne(ctx, doc)
	return wrap(err)
}

func findByID(ctx context.Context, c *mongo.Collection, id, out any) error {
	return wrap(reread(ctx, func() error {
		return c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(out)
	}))
}

// wrap turns driver errors into this package's vocabulary.
func wrap(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return ErrNotFound
	case mongo.IsDuplicateKeyError(err):
		return fmt.Errorf("%w: %v", ErrDuplicate, err)
	case unavailable(err):
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	default:
		return err
	}
}

// unavailable reports whether err means the database could not be reached
// (down, unreachable, or too slow for the request's deadline).
func unavailable(err error) bool {
	var sel topology.ServerSelectionError
	return errors.As(err, &sel) || mongo.IsNetworkError(err) || mongo.IsTimeout(err) ||
		errors.Is(err, mongo.ErrClientDisconnected) || errors.Is(err, context.Canceled)
}

// Everything, for the consistency check: these read whole collections.

// AllOrganizations returns every organization.
func (r *MasterRepository) AllOrganizations(ctx context.Context) ([]model.Organization, error) {
	return all[model.Organization](ctx, r.orgs)
}

// AllAdmins returns every admin.
func (r *MasterRepository) AllAdmins(ctx context.Context) ([]model.Admin, error) {
	return all[model.Admin](ctx, r.admins)
}

// AllNameClaims returns every name claim.
func (r *MasterRepository) AllNameClaims(ctx context.Context) ([]model.NameClaim, error) {
	return all[model.NameClaim](ctx, r.names)
}

// SweepClaims returns the name claims sweepers hold (see
// model.NameClaim.Sweep).
func (r *MasterRepository) SweepClaims(ctx context.Context) ([]model.NameClaim, error) {
	return find[model.NameClaim](ctx, r.names, bson.D{{Key: "sweep", Value: true}}, nil)
}

// AllEmailClaims returns every e-mail claim.
func (r *MasterRepository) AllEmailClaims(ctx context.Context) ([]model.EmailClaim, error) {
	return all[model.EmailClaim](ctx, r.emails)
}

func all[T any](ctx context.Context, c *mongo.Collection) ([]T, error) {
	return find[T](ctx, c, bson.D{}, nil)
}

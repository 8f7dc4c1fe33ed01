package repository

import (
	"context"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgsvc/orgsvc/internal/model"
)

// TrashPrefix begins the name of the collection a deleted organization's
// documents wait in for a restore: "trash_" + the organization's id. It
// does not start with "org_".
const TrashPrefix = "trash_"

// TrashName is the trash collection of organization org.
func TrashName(org bson.ObjectID) string { return TrashPrefix + org.Hex() }

// TrashOrg is the organization whose trash collection is named name.
func TrashOrg(name string) (bson.ObjectID, bool) {
	hex, ok := strings.CutPrefix(name, TrashPrefix)
	if !ok {
		return bson.ObjectID{}, false
	}
	id, err := bson.ObjectIDFromHex(hex)
	return id, err == nil
}

// MoveToTrash moves the tenant collection t, the one with the given UUID,
// to the trash collection trash of its database, on the server: done when
// trash holds it, so it may run again.
func (r *TenantRepository) MoveToTrash(ctx context.Context, t model.Tenant, uuid, trash string) error {
	return r.move(ctx, t.DB, CollectionName(t.Slug), trash, uuid, "tenant collection ")
}

// MoveFromTrash moves the trash collection trash, the one with the given
// UUID, back to the tenant collection t of the same database; a
// collection under t's name that is not it is dropped first.
func (r *TenantRepository) MoveFromTrash(ctx context.Context, trash, uuid string, t model.Tenant) error {
	return r.move(ctx, t.DB, trash, CollectionName(t.Slug), uuid, "trash collection ")
}

// TrashUUID is the UUID of the trash collection trash of database db; ""
// when it does not exist.
func (r *TenantRepository) TrashUUID(ctx context.Context, db, trash string) (string, error) {
	uuids, err := r.uuidsOf(ctx, db, []string{trash})
	return uuids[0], err
}

// DropTrash removes a trash collection; a missing one is no error.
func (r *TenantRepository) DropTrash(ctx context.Context, db, trash string) error {
	if _, ok := TrashOrg(trash); !ok {
		return fmt.Errorf("drop trash collection: %q is not one", trash)
	}
	return r.dropNamed(ctx, db, trash)
}

// TrashStats counts a trash collection: one command.
func (r *TenantRepository) TrashStats(ctx context.Context, db, trash string) (Stats, error) {
	return r.statsOf(ctx, db, trash)
}

// Trashes lists the trash collections of every database holding tenant
// collections, as database and name.
func (r *TenantRepository) Trashes(ctx context.Context) ([][2]string, error) {
	return r.prefixed(ctx, TrashPrefix)
}

// DescribeIn names collection name of database db for people.
func (r *TenantRepository) DescribeIn(db, name string) string {
	return r.database(db).Name() + "." + name
}

// The archives of deleted organizations, in the master database.

func (r *MasterRepository) archives() *mongo.Collection {
	return r.orgs.Database().Collection(model.DeletedOrgs)
}

// InsertArchive records a deleted organization's archive; ErrDuplicate
// when it has one.
func (r *MasterRepository) InsertArchive(ctx context.Context, d *model.DeletedOrg) error {
	return insert(ctx, r.archives(), d)
}

// Archive returns the archive of deleted organization id.
func (r *MasterRepository) Archive(ctx context.Context, id bson.ObjectID) (*model.DeletedOrg, error) {
	var d model.DeletedOrg
	if err := findByID(ctx, r.archives(), id, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// AllArchives returns every archive: one command (a scan; only the purge
// sweeper, the operators' commands and the check read it).
func (r *MasterRepository) AllArchives(ctx context.Context) ([]model.DeletedOrg, error) {
	return all[model.DeletedOrg](ctx, r.archives())
}

// DeleteArchive removes the archive of organization id left by the
// deletion deletion (not a later one's).
func (r *MasterRepository) DeleteArchive(ctx context.Context, id, deletion bson.ObjectID) error {
	return r.release(ctx, r.archives(), id, "deletion_id", deletion)
}

// EmailClaim returns the claim on an e-mail key.
func (r *MasterRepository) EmailClaim(ctx context.Context, key string) (*model.EmailClaim, error) {
	var c model.EmailClaim
	if err := findByID(ctx, r.emails, key, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

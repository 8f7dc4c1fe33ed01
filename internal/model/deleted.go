package model

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// DeletedOrgs is the master collection of deleted organizations' archives,
// kept while they may be restored (ORG_DELETE_RETENTION).
const DeletedOrgs = "deleted_orgs"

// Operation kinds of the restore window.
const (
	// OpPurge drops a deleted organization's trash collection and its
	// archive once the restore window has passed.
	OpPurge = "purge"
	// OpRestore brings a deleted organization back from its archive.
	OpRestore = "restore"
)

// DeletedOrg is the archive of an organization deleted with a restore
// window: what a restore needs, beside the trash collection that holds
// its documents. Its _id is the organization's.
type DeletedOrg struct {
	ID bson.ObjectID `bson:"_id"`
	// DeletionID is the deletion's operation id. A purge or a restore is
	// an operation keyed by it, so that the two exclude each other while
	// the deletion's receipt keeps the organization's id.
	DeletionID bson.ObjectID `bson:"deletion_id"`
	// Org is the organization as it was, at rest.
	Org Organization `bson:"organization"`
	// Members are its memberships; Accounts the accounts the deletion
	// removed because they were in no other organization.
	Members  []Membership `bson:"members"`
	Accounts []Admin      `bson:"accounts"`
	// Trash is the collection, in Org.TenantDB, holding the documents.
	Trash     string    `bson:"trash"`
	DeletedAt time.Time `bson:"deleted_at"`
	// PurgeAt ends the restore window.
	PurgeAt time.Time `bson:"purge_at"`
	// DeletedBy is who deleted it.
	DeletedBy Actor `bson:"deleted_by"`
}

// Account returns the archived account id, if the deletion removed it.
func (d *DeletedOrg) Account(id bson.ObjectID) (*Admin, bool) {
	for i := range d.Accounts {
		if d.Accounts[i].ID == id {
			return &d.Accounts[i], true
		}
	}
	return nil, false
}

// TrashPlan is what a deletion with a restore window, a purge or a
// restore does with the archive and trash collection.
type TrashPlan struct {
	// Org is the deleted organization's id (the archive's _id).
	Org bson.ObjectID `bson:"org"`
	// Trash is the trash collection's name, in the plan's TenantDB.
	Trash string `bson:"trash"`
	// PurgeAt: a deletion's end of the restore window.
	PurgeAt time.Time `bson:"purge_at,omitempty"`
	// Members are the memberships a restore makes (each with a new grant,
	// so that tokens of before the deletion stay ended); NewAccounts the
	// archived accounts it makes anew.
	Members     []Membership    `bson:"members,omitempty"`
	NewAccounts []bson.ObjectID `bson:"new_accounts,omitempty"`
	NewEmails   []string        `bson:"new_emails,omitempty"`
}

// Name is the deleted organization's name.
func (d *DeletedOrg) Name() string { return d.Org.Name }

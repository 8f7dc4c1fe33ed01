// Package model holds the documents the service stores in MongoDB.
package model

import (
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The master collections. None starts with "org_", which belongs to tenant
// collections alone.
const (
	Organizations = "organizations"
	Admins        = "admins"
	NameClaims    = "names"
	EmailClaims   = "emails"
	// Operations holds one record per organization with a lifecycle
	// operation under way (and, for a deleted organization, the record of
	// its deletion); Leases and Outcomes belong to those operations.
	Operations = "operations"
	Leases     = "leases"
	Outcomes   = "outcomes"
	// IdempotencyKeys holds the Idempotency-Key of each keyed document
	// create, for IdempotencyTTL.
	IdempotencyKeys = "idempotency_keys"
	// Memberships joins accounts (the admins collection) to organizations.
	Memberships = "memberships"
)

// MasterCollections are every collection of the master metadata.
var MasterCollections = []string{Organizations, Admins, NameClaims, EmailClaims, Operations, Leases, Outcomes, IdempotencyKeys, Memberships, Invitations, InvitationClaims, Outbox, OutboxAttempts, DeletedOrgs}

// Organization is a document of the master collection "organizations".
type Organization struct {
	ID             bson.ObjectID `bson:"_id"`
	Name           string        `bson:"organization_name"`
	Slug           string        `bson:"slug"`
	CollectionName string        `bson:"collection_name"`
	AdminID        bson.ObjectID `bson:"admin_id"`
	CreatedAt      time.Time     `bson:"created_at"`
	UpdatedAt      time.Time     `bson:"updated_at"`
	// State is empty for an organization at rest; otherwise an operation
	// (OperationID) is creating, renaming or deleting it.
	State       string        `bson:"state,omitempty"`
	OperationID bson.ObjectID `bson:"operation_id,omitempty"`
	// PreviousName is the name before the last rename, so that a client
	// retrying a rename that already happened is answered as it would
	// have been.
	PreviousName string `bson:"previous_name,omitempty"`
	// CollectionUUID identifies the tenant collection itself: a rename
	// keeps it, and a collection re-created under the old name by a late
	// write has another.
	CollectionUUID string `bson:"collection_uuid,omitempty"`
	// TenantDB is the database holding the tenant collection, chosen when
	// the organization is made and kept for its life; empty is the master
	// database (where the original service kept every tenant collection).
	TenantDB string `bson:"tenant_db,omitempty"`
	// Suspended organizations answer 403 to their members (orgsvc org
	// suspend); their data and members are kept.
	Suspended bool `bson:"suspended,omitempty"`
	// Limits are an operator's overrides of the organization's limits
	// (orgsvc org limits); nil fields take the server's settings.
	Limits *OrgLimits `bson:"limits,omitempty"`
	// RestoredAt is when an operator last restored it after a deletion
	// (orgsvc org restore), so that a retried restore is answered.
	RestoredAt time.Time `bson:"restored_at,omitempty"`
}

// OrgLimits are one organization's limits; a nil field is the server's
// setting, and 0 is no limit.
type OrgLimits struct {
	MaxDocuments  *int64   `bson:"max_documents,omitempty" json:"max_documents,omitempty"`
	MaxBytes      *int64   `bson:"max_bytes,omitempty" json:"max_bytes,omitempty"`
	RatePerSecond *float64 `bson:"rate_per_second,omitempty" json:"rate_per_second,omitempty"`
	RateBurst     *int     `bson:"rate_burst,omitempty" json:"rate_burst,omitempty"`
}

// Tenant is where the organization's documents are.
func (o *Organization) Tenant() Tenant { return Tenant{DB: o.TenantDB, Slug: o.Slug} }

// Tenant locates a tenant collection: "org_" + Slug in the database DB
// ("" is the master database).
type Tenant struct {
	DB   string
	Slug string
}

// TenantDatabase is the name of the i-th tenant database beside the master
// database master: master + "_t" + at least three digits.
func TenantDatabase(master string, i int) string { return fmt.Sprintf("%s_t%03d", master, i) }

// IsTenantDatabase reports whether db is a tenant database of master.
func IsTenantDatabase(master, db string) bool {
	n, ok := strings.CutPrefix(db, master+"_t")
	return ok && n != "" && strings.Trim(n, "0123456789") == ""
}

// Organization states; the zero value is an organization at rest.
const (
	StateCreating = "creating"
	StateRenaming = "renaming"
	StateDeleting = "deleting"
	// StateImporting: an import is swapping or merging data in.
	StateImporting = "importing"
)

// Admin is a document of the master collection "admins".
type Admin struct {
	ID             bson.ObjectID `bson:"_id"`
	Email          string        `bson:"email"`
	PasswordHash   string        `bson:"password_hash"`
	OrganizationID bson.ObjectID `bson:"organization_id"`
	Role           string        `bson:"role"`
	// TokenVersion is carried in every token issued to the admin; bumping it
	// ends every token issued before.
	TokenVersion int64     `bson:"token_version"`
	CreatedAt    time.Time `bson:"created_at"`
	UpdatedAt    time.Time `bson:"updated_at"`
	// Teams says the account's organizations are its memberships. An
	// account written before teams has none until start-up adopts it
	// (OrgService.AdoptAdmins): its OrganizationID is its organization.
	Teams bool `bson:"teams,omitempty"`
}

// RoleAdmin is the role field of every account record, kept from the
// version before teams; an account's rights come from its memberships.
const RoleAdmin = "admin"

// NameClaim reserves an organization slug: its _id is the slug, so the
// database itself keeps two organizations from sharing a slug (and so a name
// or a tenant collection).
type NameClaim struct {
	Slug           string        `bson:"_id"`
	OrganizationID bson.ObjectID `bson:"organization_id"`
	CreatedAt      time.Time     `bson:"created_at"`
	// Sweep marks a claim held for a moment by a sweeper, to drop a
	// collection that belongs to nobody; OrganizationID then names the
	// sweep, not an organization.
	Sweep bool `bson:"sweep,omitempty"`
}

// EmailClaim reserves an admin e-mail address: its _id is the address in
// lower case, so addresses are unique without regard to case.
type EmailClaim struct {
	Key       string        `bson:"_id"`
	AdminID   bson.ObjectID `bson:"admin_id"`
	CreatedAt time.Time     `bson:"created_at"`
}

// Document is one client document in an organization's tenant collection.
// The client's JSON is kept as text, exactly as sent, because no BSON
// encoding round-trips every JSON value on both MongoDB and FerretDB
// (arrays directly inside arrays, integers beyond int64, -0). Fields holds
// the top-level scalar members again, for equality filters; they are
// stored as an array (see MarshalBSON).
//
// Org is the organization the document belongs to, set on every insert
// and replace and checked on every access: a collection's name can move
// to another organization, a document's Org cannot. It is zero for a
// document stored before documents carried it. It is never sent to
// clients.
type Document struct {
	ID        bson.ObjectID `bson:"_id"`
	Org       bson.ObjectID `bson:"_org,omitempty"`
	JSON      string        `bson:"data_json"`
	Fields    bson.D        `bson:"-"`
	CreatedAt time.Time     `bson:"created_at"`
	UpdatedAt time.Time     `bson:"updated_at"`
}

// Now is the current time at the millisecond precision MongoDB stores.
func Now() time.Time { return At(time.Now()) }

// At is t in UTC at the millisecond precision MongoDB stores.
func At(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// IdempotencyKey records a document create made with an Idempotency-Key:
// its _id is "<organization id>:<key>", so inserting it is the right to
// make that document, whose id and time are fixed here before it is
// written. Done is set once the create was answered.
type IdempotencyKey struct {
	ID        string        `bson:"_id"`
	Org       bson.ObjectID `bson:"org"`
	BodyHash  string        `bson:"body_sha256"`
	DocID     bson.ObjectID `bson:"document_id"`
	CreatedAt time.Time     `bson:"created_at"`
	Done      bool          `bson:"done"`
}

// Operation is a lifecycle change of one organization under way: its _id is
// the organization's, so inserting it is the exclusive right to change that
// organization. It carries the whole plan, so whoever finishes it (the
// instance that started it, or another one after the lease ran out) does
// exactly the same thing.
type Operation struct {
	OrgID bson.ObjectID `bson:"_id"`
	ID    bson.ObjectID `bson:"operation_id"`
	Kind  string        `bson:"kind"`
	Plan  OperationPlan `bson:"plan"`
	// ExpiresAt ends the lease of the instance that started it (epoch 0);
	// a later driver holds a Lease of a higher epoch.
	ExpiresAt time.Time `bson:"expires_at"`
	Holder    string    `bson:"holder"`
	StartedAt time.Time `bson:"started_at"`
	// DoneAt is set when a deletion has finished: the record stays, until
	// the deleted admin's tokens have expired, so a retried delete is
	// answered as the first one was.
	DoneAt time.Time `bson:"done_at,omitempty"`
}

// Operation kinds.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
	// OpMember changes one membership: a role, a removal, a leave.
	OpMember = "member"
	// OpAccept accepts an invitation: the account, if new, and the
	// membership.
	OpAccept = "accept"
	// OpImport puts an import's staged documents in the tenant collection:
	// in its place, or merged into it.
	OpImport = "import"
)

// OperationPlan is everything an operation will do, fixed when it starts.
type OperationPlan struct {
	AdminID bson.ObjectID `bson:"admin_id"`
	// Name and Slug are the organization's name after the operation;
	// OldName and OldSlug before it (update and delete).
	Name    string `bson:"name,omitempty"`
	Slug    string `bson:"slug,omitempty"`
	OldName string `bson:"old_name,omitempty"`
	OldSlug string `bson:"old_slug,omitempty"`
	// Email is the admin's address after the operation, OldEmail before.
	Email        string `bson:"email,omitempty"`
	OldEmail     string `bson:"old_email,omitempty"`
	PasswordHash string `bson:"password_hash,omitempty"`
	// TokenVersion is the admin's token version when the operation began;
	// an update that changes the e-mail or password sets it one higher.
	TokenVersion int64 `bson:"token_version"`
	// CollectionUUID is the tenant collection's, once known.
	CollectionUUID string `bson:"collection_uuid,omitempty"`
	// TenantDB is the database of the tenant collection (see
	// Organization.TenantDB); a rename keeps the collection in it.
	TenantDB string `bson:"tenant_db,omitempty"`
	// Grant is the new grant of the membership a sign-up or a change of
	// members makes (see Membership.Grant).
	Grant bson.ObjectID `bson:"grant,omitempty"`
	// Member is the account a change of members is about, and Role its
	// role after it ("" when it leaves or is removed); OldRole before.
	Member  bson.ObjectID `bson:"member,omitempty"`
	Role    string        `bson:"role,omitempty"`
	OldRole string        `bson:"old_role,omitempty"`
	// Invitation is the invitation an accept settles; NewAccount says the
	// accept makes the account (Member) with PasswordHash.
	Invitation bson.ObjectID `bson:"invitation,omitempty"`
	NewAccount bool          `bson:"new_account,omitempty"`
	// Staging is the collection an import loaded (StagingUUID its UUID),
	// and Mode how it goes in: "replace" or "merge".
	Staging     string `bson:"staging,omitempty"`
	StagingUUID string `bson:"staging_uuid,omitempty"`
	Mode        string `bson:"mode,omitempty"`
	// Events are recorded in the audit logs once the operation commits.
	Events []PlannedEvent `bson:"events,omitempty"`
	// Trash, set on a deletion with a restore window, a purge and a
	// restore, says where the archived organization goes or comes from.
	Trash *TrashPlan `bson:"trash,omitempty"`
}

// Tenant is the organization's tenant collection after the operation.
func (p OperationPlan) Tenant() Tenant { return Tenant{DB: p.TenantDB, Slug: p.Slug} }

// OldTenant is the organization's tenant collection before the operation.
func (p OperationPlan) OldTenant() Tenant { return Tenant{DB: p.TenantDB, Slug: p.OldSlug} }

// Lease lets a driver that took over a stale operation finish it alone:
// its _id is "<operation id>:<epoch>", so of several instances taking over
// at once, one insert wins.
type Lease struct {
	ID        string    `bson:"_id"`
	Holder    string    `bson:"holder"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// Outcome decides, once, whether an operation goes through: its _id is the
// operation's, so the driver committing it and a driver rolling it back
// cannot both win.
type Outcome struct {
	ID        bson.ObjectID `bson:"_id"`
	Commit    bool          `bson:"commit"`
	DecidedAt time.Time     `bson:"decided_at"`
}

// Package model holds the documents the service stores in MongoDB.
package model

import (
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
)

// Organization is a document of the master collection "organizations".
type Organization struct {
	ID             bson.ObjectID `bson:"_id"`
	Name           string        `bson:"organization_name"`
	Slug           string        `bson:"slug"`
	CollectionName string        `bson:"collection_name"`
	AdminID        bson.ObjectID `bson:"admin_id"`
	CreatedAt      time.Time     `bson:"created_at"`
	UpdatedAt      time.Time     `bson:"updated_at"`
}

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
}

// RoleAdmin is the only role an admin has.
const RoleAdmin = "admin"

// NameClaim reserves an organization slug: its _id is the slug, so the
// database itself keeps two organizations from sharing a slug (and so a name
// or a tenant collection).
type NameClaim struct {
	Slug           string        `bson:"_id"`
	OrganizationID bson.ObjectID `bson:"organization_id"`
	CreatedAt      time.Time     `bson:"created_at"`
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
// the top-level scalar members again, for equality filters.
type Document struct {
	ID        bson.ObjectID `bson:"_id"`
	JSON      string        `bson:"data_json"`
	Fields    bson.D        `bson:"fields"`
	CreatedAt time.Time     `bson:"created_at"`
	UpdatedAt time.Time     `bson:"updated_at"`
}

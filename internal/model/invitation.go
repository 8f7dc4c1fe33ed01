package model

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The collections of invitations: the invitations themselves, and the
// claims that keep one pending invitation per e-mail and organization.
const (
	Invitations      = "invitations"
	InvitationClaims = "invitation_claims"
)

// The states of an invitation; "expired" is a pending one past its
// ExpiresAt, never stored.
const (
	InvitePending  = "pending"
	InviteAccepted = "accepted"
	InviteRevoked  = "revoked"
	InviteExpired  = "expired"
)

// Invitation asks an e-mail address to join an organization with a role.
// Its token is stored only as TokenHash (SHA-256, hex); the mail carrying
// it waits in the outbox under the invitation's id.
type Invitation struct {
	ID         bson.ObjectID `bson:"_id"`
	OrgID      bson.ObjectID `bson:"org_id"`
	Email      string        `bson:"email"`
	Role       string        `bson:"role"`
	Status     string        `bson:"status"`
	TokenHash  string        `bson:"token_hash"`
	InvitedBy  bson.ObjectID `bson:"invited_by"`
	CreatedAt  time.Time     `bson:"created_at"`
	ExpiresAt  time.Time     `bson:"expires_at"`
	AcceptedBy bson.ObjectID `bson:"accepted_by,omitempty"`
	// ExpiryRecorded says its expiry is in the audit log.
	ExpiryRecorded bool `bson:"expiry_recorded,omitempty"`
}

// State is the invitation's status at now: a pending one past its expiry
// is expired.
func (i Invitation) State(now time.Time) string {
	if i.Status == InvitePending && !now.Before(i.ExpiresAt) {
		return InviteExpired
	}
	return i.Status
}

// InvitationClaim reserves the one pending invitation of an e-mail key to
// an organization: its _id is InvitationClaimID's.
type InvitationClaim struct {
	ID           string        `bson:"_id"`
	InvitationID bson.ObjectID `bson:"invitation_id"`
}

// InvitationClaimID is the _id of the claim of emailKey's invitation to org.
func InvitationClaimID(org bson.ObjectID, emailKey string) string {
	return org.Hex() + ":" + emailKey
}

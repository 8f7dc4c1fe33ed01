package model

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The roles of a membership, from most to least power.
const (
	RoleOwner  = "owner"
	RoleMember = "member"
	RoleViewer = "viewer"
	// RoleAdmin ("admin") is the second.
)

// Roles lists the roles, most power first.
var Roles = []string{RoleOwner, RoleAdmin, RoleMember, RoleViewer}

// RoleRank orders roles: the owner's is highest; 0 for no role.
func RoleRank(role string) int {
	for i, r := range Roles {
		if r == role {
			return len(Roles) - i
		}
	}
	return 0
}

// Membership joins one account (a document of "admins") to one
// organization with one role. Its _id is MembershipID's, so an account
// joins an organization once: the insert is the exclusive right.
type Membership struct {
	ID        string        `bson:"_id"`
	AccountID bson.ObjectID `bson:"account_id"`
	OrgID     bson.ObjectID `bson:"org_id"`
	Role      string        `bson:"role"`
	// Grant changes with every role change; a token names the grant it was
	// issued under, so a change ends the tokens issued before it. Zero for
	// a membership made from the version before teams, whose tokens name
	// none.
	Grant    bson.ObjectID `bson:"grant"`
	JoinedAt time.Time     `bson:"joined_at"`
}

// MembershipID is the _id of account's membership of org.
func MembershipID(account, org bson.ObjectID) string {
	return account.Hex() + ":" + org.Hex()
}

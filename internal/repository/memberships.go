package repository

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgsvc/orgsvc/internal/model"
)

// InsertMembership joins an account to an organization; ErrDuplicate when
// it is a member already.
func (r *MasterRepository) InsertMembership(ctx context.Context, m *model.Membership) error {
	m.ID = model.MembershipID(m.AccountID, m.OrgID)
	return insert(ctx, r.members, m)
}

// Membership returns account's membership of org.
func (r *MasterRepository) Membership(ctx context.Context, account, org bson.ObjectID) (*model.Membership, error) {
	var m model.Membership
	if err := findByID(ctx, r.members, model.MembershipID(account, org), &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// MembershipsOf returns account's memberships, the first joined first:
// one command.
func (r *MasterRepository) MembershipsOf(ctx context.Context, account bson.ObjectID) ([]model.Membership, error) {
	return r.findMembers(ctx, bson.D{{Key: "account_id", Value: account}},
		options.Find().SetSort(bson.D{{Key: "joined_at", Value: 1}, {Key: "_id", Value: 1}}))
}

// Members returns up to limit of org's memberships with account ids above
// after (all when after is zero), in account id order.
func (r *MasterRepository) Members(ctx context.Context, org, after bson.ObjectID, limit int) ([]model.Membership, error) {
	filter := bson.D{{Key: "org_id", Value: org}}
	if !after.IsZero() {
		filter = append(filter, bson.E{Key: "account_id", Value: bson.D{{Key: "$gt", Value: after}}})
	}
	return r.findMembers(ctx, filter, options.Find().SetSort(bson.D{{Key: "account_id", Value: 1}}).SetLimit(int64(limit)))
}

// Owners returns org's owner memberships.
func (r *MasterRepository) Owners(ctx context.Context, org bson.ObjectID) ([]model.Membership, error) {
	return r.findMembers(ctx, bson.D{{Key: "org_id", Value: org}, {Key: "role", Value: model.RoleOwner}},
		options.Find().SetSort(bson.D{{Key: "joined_at", Value: 1}, {Key: "_id", Value: 1}}))
}

// SetMembershipRole gives a membership a role, under a new grant.
func (r *MasterRepository) SetMembershipRole(ctx context.Context, id, role string, grant bson.ObjectID) error {
	_, err := r.members.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "role", Value: role}, {Key: "grant", Value: grant}}}})
	return wrap(err)
}

// DeleteMembership removes a membership.
func (r *MasterRepository) DeleteMembership(ctx context.Context, id string) error {
	_, err := r.members.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	return wrap(err)
}

// AllMemberships returns every membership.
func (r *MasterRepository) AllMemberships(ctx context.Context) ([]model.Membership, error) {
	return all[model.Membership](ctx, r.members)
}

func (r *MasterRepository) findMembers(ctx context.Context, filter bson.D, opts *options.FindOptionsBuilder) ([]model.Membership, error) {
	return find[model.Membership](ctx, r.members, filter, opts)
}

// find returns the documents of c that match filter: one command, sent
// again if the embedded store interrupts it.
func find[T any](ctx context.Context, c *mongo.Collection, filter bson.D, opts *options.FindOptionsBuilder) ([]T, error) {
	var out []T
	err := reread(ctx, func() error {
		cur, err := c.Find(ctx, filter, opts)
		if err != nil {
			return err
		}
		out = out[:0]
		return cur.All(ctx, &out)
	})
	if err != nil {
		return nil, wrap(err)
	}
	return out, nil
}

package repository

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgsvc/orgsvc/internal/model"
)

// InsertInvitation stores a new invitation.
func (r *MasterRepository) InsertInvitation(ctx context.Context, i *model.Invitation) error {
	return insert(ctx, r.invites, i)
}

// Invitation returns the invitation id.
func (r *MasterRepository) Invitation(ctx context.Context, id bson.ObjectID) (*model.Invitation, error) {
	var i model.Invitation
	if err := findByID(ctx, r.invites, id, &i); err != nil {
		return nil, err
	}
	return &i, nil
}

// InvitationsOf returns org's invitations, the oldest first.
func (r *MasterRepository) InvitationsOf(ctx context.Context, org bson.ObjectID) ([]model.Invitation, error) {
	return find[model.Invitation](ctx, r.invites, bson.D{{Key: "org_id", Value: org}},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}))
}

// SetInvitationStatus records an invitation's new status, and who accepted
// it when accepted is set.
func (r *MasterRepository) SetInvitationStatus(ctx context.Context, id bson.ObjectID, status string, accepted bson.ObjectID) error {
	set := bson.D{{Key: "status", Value: status}}
	if !accepted.IsZero() {
		set = append(set, bson.E{Key: "accepted_by", Value: accepted})
	}
	_, err := r.invites.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: set}})
	return wrap(err)
}

// RenewInvitation gives an invitation a new token and expiry.
func (r *MasterRepository) RenewInvitation(ctx context.Context, id bson.ObjectID, tokenHash string, expires time.Time) error {
	_, err := r.invites.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "token_hash", Value: tokenHash}, {Key: "expires_at", Value: model.At(expires)}}}})
	return wrap(err)
}

// MarkExpiryRecorded notes that an invitation's expiry is in the audit log.
func (r *MasterRepository) MarkExpiryRecorded(ctx context.Context, id bson.ObjectID) error {
	_, err := r.invites.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expiry_recorded", Value: true}}}})
	return wrap(err)
}

// DeleteInvitation removes an invitation.
func (r *MasterRepository) DeleteInvitation(ctx context.Context, id bson.ObjectID) error {
	_, err := r.invites.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	return wrap(err)
}

// AllInvitations returns every invitation.
func (r *MasterRepository) AllInvitations(ctx context.Context) ([]model.Invitation, error) {
	return all[model.Invitation](ctx, r.invites)
}

// ClaimInvitation reserves the pending invitation of an e-mail key to an
// organization; ErrDuplicate when one holds it.
func (r *MasterRepository) ClaimInvitation(ctx context.Context, id string, invitation bson.ObjectID) error {
	return insert(ctx, r.inviteClaims, model.InvitationClaim{ID: id, InvitationID: invitation})
}

// InvitationClaim returns the claim id.
func (r *MasterRepository) InvitationClaim(ctx context.Context, id string) (*model.InvitationClaim, error) {
	var c model.InvitationClaim
	if err := findByID(ctx, r.inviteClaims, id, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// ReleaseInvitation drops the claim id if invitation holds it.
func (r *MasterRepository) ReleaseInvitation(ctx context.Context, id string, invitation bson.ObjectID) error {
	return r.release(ctx, r.inviteClaims, id, "invitation_id", invitation)
}

// AllInvitationClaims returns every invitation claim.
func (r *MasterRepository) AllInvitationClaims(ctx context.Context) ([]model.InvitationClaim, error) {
	return all[model.InvitationClaim](ctx, r.inviteClaims)
}

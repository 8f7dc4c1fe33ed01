package repository

import (
	"context"
	"errors"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgsvc/orgsvc/internal/jsondoc"
	"github.com/orgsvc/orgsvc/internal/model"
)

// InsertDocument stores a new document.
func (r *TenantRepository) InsertDocument(ctx context.Context, t model.Tenant, d *model.Document) error {
	err := insert(ctx, r.collection(t), d)
	if droppedUnder(err) {
		return ErrCollectionGone
	}
	return err
}

// droppedUnder reports the embedded store's answer to a command that met
// its collection's table being dropped or renamed under it: the command
// did nothing. MongoDB has no such answer.
func droppedUnder(err error) bool {
	var ce mongo.CommandError
	return errors.As(err, &ce) && strings.Contains(ce.Message, "no such table")
}

// Document returns one document by id.
func (r *TenantRepository) Document(ctx context.Context, t model.Tenant, id bson.ObjectID) (*model.Document, error) {
	var d model.Document
	if err := findByID(ctx, r.collection(t), id, &d); err != nil {
		if droppedUnder(err) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	return &d, nil
}

// SetDocument replaces a document's data and returns it as it now is.
// When ifUpdatedAt is not zero, the change applies only if the document was
// not changed since.
func (r *TenantRepository) SetDocument(ctx context.Context, t model.Tenant, d *model.Document, ifUpdatedAt bson.DateTime) (*model.Document, error) {
	filter := bson.D{{Key: "_id", Value: d.ID}}
	if ifUpdatedAt != 0 {
		filter = append(filter, bson.E{Key: "updated_at", Value: ifUpdatedAt})
	}
	update := bson.D{{Key: "$set", Value: bson.D{
		{Key: "data_json", Value: d.JSON},
		{Key: "fields", Value: d.Fields},
		{Key: "updated_at", Value: d.UpdatedAt},
	}}}
	var out model.Document
	err := r.collection(t).FindOneAndUpdate(ctx, filter, update, options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&out)
	if droppedUnder(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, wrap(err)
	}
	return &out, nil
}

// DeleteDocument removes a document; ErrNotFound when there was none.
func (r *TenantRepository) DeleteDocument(ctx context.Context, t model.Tenant, id bson.ObjectID) error {
	res, err := r.collection(t).DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if droppedUnder(err) {
		return ErrNotFound
	}
	if err != nil {
		return wrap(err)
	}
	if res.DeletedCount == 0 {
		return ErrNotFound
	}
	return nil
}

// ListDocuments returns up to limit documents with ids above after (all
// when after is zero) that match every condition, in id order.
func (r *TenantRepository) ListDocuments(ctx context.Context, t model.Tenant, after bson.ObjectID, where []jsondoc.Condition, limit int) ([]model.Document, error) {
	filter := bson.D{}
	if !after.IsZero() {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}})
	}
	for _, c := range where {
		var cond any = c.Value
		if c.Value == nil {
			// {field: null} would also match documents without the field.
			cond = bson.D{{Key: "$type", Value: "null"}}
		}
		filter = append(filter, bson.E{Key: "fields." + c.Field, Value: cond})
	}
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit))
	out := make([]model.Document, 0, limit)
	cur, err := r.collection(t).Find(ctx, filter, opts)
	if droppedUnder(err) {
		return out, nil
	}
	if err != nil {
		return nil, wrap(err)
	}
	if err := cur.All(ctx, &out); err != nil {
		if droppedUnder(err) {
			return out[:0], nil
		}
		return nil, wrap(err)
	}
	return out, nil
}

package repository

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgsvc/orgsvc/internal/model"
)

// ErrUnowned is returned, with the document, for a document stored before
// documents carried their organization (model.Document.Org is zero):
// nothing in it says whose it is, so the caller must confirm that the
// collection is the organization's before using it.
var ErrUnowned = errors.New("document carries no organization")

// Every document call names the organization it acts for, and a document
// whose _org is another's is not found. MongoDB checks _org in the filter,
// served by the _id index. FerretDB evaluates only a lone _id equality
// itself and reads the whole collection for any other filter: there a
// document is read by _id and its _org checked here, and writes go by _id
// after that check (see SetDocument).

// noScalars leaves a document's scalars (model.Document.Fields) out of a
// read: only writes and filters use them.
var noScalars = bson.D{{Key: model.ScalarsKey, Value: 0}, {Key: model.LegacyFieldsKey, Value: 0}}

// orgOrNone matches documents of org and those stored without _org.
func orgOrNone(org bson.ObjectID) bson.E {
	return bson.E{Key: "_org", Value: bson.D{{Key: "$in", Value: bson.A{org, nil}}}}
}

// noOrg matches documents stored without _org.
var noOrg = bson.E{Key: "_org", Value: bson.D{{Key: "$exists", Value: false}}}

// owned checks d against org: d itself when it is org's, d and ErrUnowned
// when it carries no organization, ErrNotFound when it is another's.
func owned(d *model.Document, org bson.ObjectID) (*model.Document, error) {
	switch d.Org {
	case org:
		return d, nil
	case bson.ObjectID{}:
		return d, ErrUnowned
	}
	return nil, ErrNotFound
}

// InsertDocument stores a new document of org.
func (r *TenantRepository) InsertDocument(ctx context.Context, t model.Tenant, org bson.ObjectID, d *model.Document) error {
	if org.IsZero() {
		return errors.New("insert document: no organization")
	}
	d.Org = org
	err := insert(ctx, r.collection(t), d)
	if droppedUnder(err) {
		return ErrCollectionGone
	}
	return err
}

// readAttempts bounds how often a read interrupted under it is sent again;
// the n-th retry waits n² ms. (SQLite drivers before modernc.org/sqlite
// v1.62 could also leave a connection interrupting every later command.)
const readAttempts = 6

// interruptedUnder reports the embedded store's answer to a read whose
// SQLite query was interrupted although its own context is live: FerretDB
// can interrupt a pooled connection for another command's cancelled
// context. Nothing was read; the read may be sent again.
func interruptedUnder(ctx context.Context, err error) bool {
	var ce mongo.CommandError
	return err != nil && ctx.Err() == nil && errors.As(err, &ce) && strings.Contains(ce.Message, "interrupted (9)")
}

// reread runs read and sends it again while the store interrupts it under
// a live context, up to readAttempts in all.
func reread(ctx context.Context, read func() error) error {
	err := read()
	for attempt := 1; interruptedUnder(ctx, err) && attempt < readAttempts; attempt++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt*attempt) * time.Millisecond):
		}
		err = read()
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

// Document returns org's document id: ErrNotFound when t holds none of
// org's, the document and ErrUnowned when it carries no organization.
func (r *TenantRepository) Document(ctx context.Context, t model.Tenant, org, id bson.ObjectID) (*model.Document, error) {
	idOnly, err := r.idFiltersOnly(ctx)
	if err != nil {
		return nil, err
	}
	filter := bson.D{{Key: "_id", Value: id}}
	if !idOnly {
		filter = append(filter, orgOrNone(org))
	}
	var d model.Document
	err = reread(ctx, func() error {
		return r.collection(t).FindOne(ctx, filter, options.FindOne().SetProjection(noScalars)).Decode(&d)
	})
	if err != nil {
		if droppedUnder(err) {
			return nil, ErrNotFound
		}
		return nil, wrap(err)
	}
	return owned(&d, org)
}

// SetDocument replaces the data of org's document d.ID with d's, records
// org on it, and returns it as it now is; ErrNotFound when t holds none of
// org's. base is the document as Document returned it to org (nil: it is
// read here); one without _org is written only while it still has none,
// and only when given as base, its owner confirmed by the caller. With
// ifUnchanged, the change applies only if the document was not changed
// since base.
//
// Between the check of base and the write, t's name may pass to another
// organization's collection. The write is by _id, which the service makes
// once per document: what it can meet there is that same document of
// org's, or a copy of it left by a create that raced a rename, never a
// document of another organization. On MongoDB the filter also carries
// _org, so even that cannot match.
func (r *TenantRepository) SetDocument(ctx context.Context, t model.Tenant, org bson.ObjectID, base, d *model.Document, ifUnchanged bool) (*model.Document, error) {
	idOnly, err := r.idFiltersOnly(ctx)
	if err != nil {
		return nil, err
	}
	if base == nil {
		if base, err = r.Document(ctx, t, org, d.ID); err != nil {
			return nil, err
		}
	}
	if base.ID != d.ID || (base.Org != org && !base.Org.IsZero()) {
		return nil, ErrNotFound
	}
	owner := bson.E{Key: "_org", Value: org}
	if base.Org.IsZero() {
		owner = noOrg
	}
	filter := bson.D{{Key: "_id", Value: d.ID}}
	if ifUnchanged {
		// FerretDB reads the whole collection for this filter, as it did
		// before _org was added to it.
		filter = append(filter, bson.E{Key: "updated_at", Value: base.UpdatedAt}, owner)
	} else if !idOnly {
		filter = append(filter, owner)
	}
	update := bson.D{
		{Key: "$set", Value: bson.D{
			{Key: "_org", Value: org},
			{Key: "data_json", Value: d.JSON},
			{Key: model.ScalarsKey, Value: model.Scalars(d.Fields)},
			{Key: "updated_at", Value: d.UpdatedAt},
		}},
		{Key: "$unset", Value: bson.D{{Key: model.LegacyFieldsKey, Value: ""}}},
	}
	var out model.Document
	// (The embedded store takes no projection here.)
	err = r.collection(t).FindOneAndUpdate(ctx, filter, update, options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&out)
	if droppedUnder(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, wrap(err)
	}
	if out.Org != org {
		return nil, ErrNotFound
	}
	return &out, nil
}

// DeleteDocument removes org's document id; ErrNotFound when t holds none
// of org's, ErrUnowned (nothing removed) when it carries no organization.
// base is as for SetDocument: a document without _org is removed only when
// given as base, and only while it still has none. The window between
// check and write is the one SetDocument describes.
func (r *TenantRepository) DeleteDocument(ctx context.Context, t model.Tenant, org, id bson.ObjectID, base *model.Document) error {
	idOnly, err := r.idFiltersOnly(ctx)
	if err != nil {
		return err
	}
	if base != nil && (base.ID != id || (base.Org != org && !base.Org.IsZero())) {
		return ErrNotFound
	}
	filter := bson.D{{Key: "_id", Value: id}}
	switch {
	case base != nil && base.Org.IsZero():
		if !idOnly {
			filter = append(filter, noOrg, bson.E{Key: "updated_at", Value: base.UpdatedAt})
		}
	case !idOnly:
		filter = append(filter, bson.E{Key: "_org", Value: org})
	case base == nil:
		if _, err := r.Document(ctx, t, org, id); err != nil {
			return err
		}
	}
	res, err := r.collection(t).DeleteOne(ctx, filter)
	if droppedUnder(err) {
		return ErrNotFound
	}
	if err != nil {
		return wrap(err)
	}
	if res.DeletedCount > 0 {
		return nil
	}
	if !idOnly && base == nil {
		// Not org's, or stored without _org: the caller must know which.
		if _, err := r.Document(ctx, t, org, id); errors.Is(err, ErrUnowned) {
			return err
		}
	}
	return ErrNotFound
}

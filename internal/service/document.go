package service

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/jsondoc"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// Document errors.
var (
	ErrDocumentNotFound = errors.New("document not found")
	ErrDocumentTooLarge = errors.New("document too large")
	ErrDocumentChanged  = errors.New("document changed concurrently")
)

// ProblemsError refuses a document or a filter; Where says which ("body" or
// "query") and each problem's path leads into it.
type ProblemsError struct {
	Where    []any
	Problems []jsondoc.Problem
}

func (e *ProblemsError) Error() string { return "invalid document: " + e.Problems[0].Msg }

// DocumentService keeps each organization's own documents in its tenant
// collection. Every method takes the caller's principal: the organization
// is always the token's, never a parameter.
type DocumentService struct {
	tenants  *repository.TenantRepository
	maxBytes int
}

// NewDocumentService builds a DocumentService; maxBytes bounds a stored
// document (after a merge patch too).
func NewDocumentService(tenants *repository.TenantRepository, maxBytes int) *DocumentService {
	return &DocumentService{tenants: tenants, maxBytes: maxBytes}
}

// Create stores a new document.
func (s *DocumentService) Create(ctx context.Context, p Principal, doc jsondoc.Doc) (*model.Document, error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	d := &model.Document{ID: bson.NewObjectID(), JSON: string(doc.JSON), Fields: doc.Fields, CreatedAt: now, UpdatedAt: now}
	if err := s.tenants.InsertDocument(ctx, p.Slug, d); err != nil {
		return nil, err
	}
	return d, nil
}

// Get returns one of the caller's documents. An id that is malformed, or
// that is another organization's, is simply not found.
func (s *DocumentService) Get(ctx context.Context, p Principal, id string) (*model.Document, error) {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return nil, ErrDocumentNotFound
	}
	d, err := s.tenants.Document(ctx, p.Slug, oid)
	return d, notFound(err)
}

// Replace sets a document's data; created_at stays.
func (s *DocumentService) Replace(ctx context.Context, p Principal, id string, doc jsondoc.Doc) (*model.Document, error) {
	cur, err := s.Get(ctx, p, id)
	if err != nil {
		return nil, err
	}
	return s.set(ctx, p, cur, doc, 0)
}

// Patch applies a JSON Merge Patch (RFC 7396) to a document's data. The
// change applies only if the document did not change since it was read.
func (s *DocumentService) Patch(ctx context.Context, p Principal, id string, patch []byte) (*model.Document, error) {
	cur, err := s.Get(ctx, p, id)
	if err != nil {
		return nil, err
	}
	doc, problems := jsondoc.Merge([]byte(cur.JSON), patch)
	if len(problems) > 0 {
		return nil, &ProblemsError{Where: []any{"body"}, Problems: problems}
	}
	if len(doc.JSON) > s.maxBytes {
		return nil, ErrDocumentTooLarge
	}
	d, err := s.set(ctx, p, cur, doc, bson.NewDateTimeFromTime(cur.UpdatedAt))
	if errors.Is(err, ErrDocumentNotFound) {
		return nil, ErrDocumentChanged
	}
	return d, err
}

func (s *DocumentService) set(ctx context.Context, p Principal, cur *model.Document, doc jsondoc.Doc, ifUpdatedAt bson.DateTime) (*model.Document, error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	if !now.After(cur.UpdatedAt) {
		now = cur.UpdatedAt.Add(time.Millisecond) // updated_at always moves
	}
	d := &model.Document{ID: cur.ID, JSON: string(doc.JSON), Fields: doc.Fields, CreatedAt: cur.CreatedAt, UpdatedAt: now}
	out, err := s.tenants.SetDocument(ctx, p.Slug, d, ifUpdatedAt)
	return out, notFound(err)
}

// Delete removes one of the caller's documents.
func (s *DocumentService) Delete(ctx context.Context, p Principal, id string) error {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return ErrDocumentNotFound
	}
	return notFound(s.tenants.DeleteDocument(ctx, p.Slug, oid))
}

// Page is one page of a listing; Next is the cursor of the following page,
// empty on the last.
type Page struct {
	Items []model.Document
	Next  string
}

// List returns the caller's documents in id order, limit at a time, after
// the cursor (the previous page's Next) and matching every condition.
func (s *DocumentService) List(ctx context.Context, p Principal, after string, where []jsondoc.Condition, limit int) (Page, error) {
	var cursor bson.ObjectID
	if after != "" {
		var err error
		if cursor, err = bson.ObjectIDFromHex(after); err != nil {
			return Page{}, &InvalidError{In: "query", Field: "after", Message: "not a cursor returned as next", Type: "value_error.cursor"}
		}
	}
	docs, err := s.tenants.ListDocuments(ctx, p.Slug, cursor, where, limit+1)
	if err != nil {
		return Page{}, err
	}
	page := Page{Items: docs}
	if len(docs) > limit {
		page.Items = docs[:limit]
		page.Next = docs[limit-1].ID.Hex()
	}
	return page, nil
}

func notFound(err error) error {
	if errors.Is(err, repository.ErrNotFound) {
		return ErrDocumentNotFound
	}
	return err
}

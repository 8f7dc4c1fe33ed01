package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/audit"
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
//
// A rename moves the tenant collection while requests are in flight, and a
// principal names the collection as it was when the token was checked
// (up to AUTH_CACHE_TTL ago): by then the name may be another
// organization's. So every document carries its organization (_org), and
// the repository finds, changes and removes only the caller's, checked
// before anything is answered or written. Every change, and every answer
// that depends on the collection being the right one (not found, a
// listing), is also confirmed afterwards against the organization's
// record: it stands only if the organization was at rest, under the same
// slug, after it was made. Otherwise it is checked against the collection
// the organization has now, and, if it did not land there, undone and made
// again there.
//
// A document stored before documents carried _org is the caller's only if
// it was read while the organization's record said, before and after, that
// the organization was at rest in that collection (see confirmUnowned).
type DocumentService struct {
	tenants  *repository.TenantRepository
	orgs     locator
	log      *slog.Logger
	maxBytes int
	// limits bound a page and a document's keys (SetLimits).
	limits DocumentLimits
	// keys, when set, keeps Idempotency-Keys (KeepKeys).
	keys *repository.KeyRepository
	// afterInsert, when set (by tests), runs after each document insert.
	afterInsert func(context.Context)
	// audit, when set (AUDIT_DOCUMENTS), records every document write.
	audit *audit.Log
	// tenantLimits are the server's limits; usage counts what
	// organizations with a storage quota store.
	tenantLimits Limits
	usage        usage
}

// RecordWrites makes the service record every document write in log.
func (s *DocumentService) RecordWrites(log *audit.Log) { s.audit = log }

// recordWrite records a document write; source, when set, makes it once.
func (s *DocumentService) recordWrite(ctx context.Context, p Principal, action string, id bson.ObjectID, source string) error {
	return record(ctx, s.audit, p.OrgID, model.Event{Action: action, Actor: p.actor(), Source: source,
		Targets: []model.Target{{Type: model.TargetDocument, ID: id.Hex()}}})
}

// NewDocumentService builds a DocumentService; maxBytes bounds a stored
// document (after a merge patch too).
func NewDocumentService(tenants *repository.TenantRepository, orgs *OrgService, maxBytes int) *DocumentService {
	return &DocumentService{tenants: tenants, orgs: orgs, log: orgs.log, maxBytes: maxBytes}
}

// locator is what documents need to know of their organizations: where
// each is now, and what is under way on it.
type locator interface {
	organization(ctx context.Context, id bson.ObjectID) (*model.Organization, error)
	// operation is the organization's operation record, if any.
	operation(ctx context.Context, orgID bson.ObjectID) (*model.Operation, error)
	// nudge has a stale operation on the organization recovered.
	nudge(orgID bson.ObjectID)
	// dropLeft drops a collection org wrote to after it had left it, if
	// nobody else's (see OrgService.dropLeft).
	dropLeft(ctx context.Context, org bson.ObjectID, t model.Tenant) error
}

// attempts bounds how often a request follows its organization's
// collection to a new name.
const attempts = 3

// settleWait is how long a request waits for an operation under way on its
// organization before it answers ErrOrgBusy.
const settleWait = 2 * time.Second

// where returns the tenant collection the organization has now, waiting
// for an operation under way to end; stable is true when the organization
// was at rest in p.Tenant all along (no wait, same collection: same name,
// and the same collection under it, which an import's swap changes).
func (s *DocumentService) where(ctx context.Context, p *Principal) (now model.Tenant, stable bool, err error) {
	deadline := time.Now().Add(settleWait)
	waited := false
	for {
		org, err := s.orgs.organization(ctx, p.OrgID)
		switch {
		case errors.Is(err, repository.ErrNotFound):
			return model.Tenant{}, false, ErrTokenRevoked
		case err != nil:
			return model.Tenant{}, false, err
		case org.State == "":
			same := p.CollectionUUID == org.CollectionUUID || p.CollectionUUID == ""
			p.CollectionUUID = org.CollectionUUID
			return org.Tenant(), !waited && same && org.Tenant() == p.Tenant, nil
		case time.Now().After(deadline):
			s.orgs.nudge(p.OrgID)
			return model.Tenant{}, false, ErrOrgBusy
		}
		waited = true
		select {
		case <-ctx.Done():
			return model.Tenant{}, false, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// follow runs one document call against the organization's collection,
// following the organization when a rename moved it meanwhile. act works
// in p.Tenant (and may move p, as get does); final says its answer stands
// as it is. Otherwise settle is told where the organization is now (stable:
// at rest in p.Tenant all along) and says whether act's answer stands
// there, or act is to run again where the organization is now.
func (s *DocumentService) follow(ctx context.Context, p *Principal, act func(p *Principal) (final bool, err error), settle func(p Principal, now model.Tenant, stable bool) (done bool, err error)) error {
	for range attempts {
		if final, err := act(p); final {
			return err
		}
		now, stable, err := s.where(ctx, p)
		if err != nil {
			return err
		}
		if done, err := settle(*p, now, stable); done {
			return err
		}
		p.Tenant = now
	}
	return ErrOrgBusy
}

// errUnconfirmed: a document without _org was found, but whose it is
// could not be confirmed; the request looks again rather than answer.
var errUnconfirmed = errors.New("document without _org not confirmed")

// settled reads the organization's record once: ok when it is at rest in
// p.Tenant; at is its updated_at, which every rename moves.
func (s *DocumentService) settled(ctx context.Context, p Principal) (at time.Time, ok bool, err error) {
	org, err := s.orgs.organization(ctx, p.OrgID)
	if errors.Is(err, repository.ErrNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	return org.UpdatedAt, org.State == "" && org.Tenant() == p.Tenant, nil
}

// confirmUnowned runs read, which reads documents without _org from
// p.Tenant, between two readings of the organization's record, and
// reports whether both found it at rest there and unchanged. A rename
// changes the record before it gives up the old name, and no other
// organization can move a collection to a name it does not hold: so all
// along the collection of that name was p's (or gone), and what read
// found is p's. It costs two reads, for such documents only.
func (s *DocumentService) confirmUnowned(ctx context.Context, p Principal, read func() error) (bool, error) {
	before, ok, err := s.settled(ctx, p)
	if err != nil || !ok {
		return false, err
	}
	if err := read(); err != nil {
		return false, err
	}
	after, ok, err := s.settled(ctx, p)
	return ok && after.Equal(before), err
}

// unowned reads document id, found without _org in p.Tenant, again, and
// returns it if it is confirmed p's (or was given p's _org meanwhile);
// ErrNotFound when it is gone or another's, errUnconfirmed when unsure.
func (s *DocumentService) unowned(ctx context.Context, p Principal, id bson.ObjectID) (*model.Document, error) {
	var d *model.Document
	rerr := errUnconfirmed // until read runs
	ok, err := s.confirmUnowned(ctx, p, func() error {
		d, rerr = s.tenants.Document(ctx, p.Tenant, p.OrgID, id)
		if rerr == nil || errors.Is(rerr, repository.ErrUnowned) || errors.Is(rerr, repository.ErrNotFound) {
			return nil
		}
		return rerr
	})
	switch {
	case err != nil:
		return nil, err
	case rerr == nil:
		return d, nil
	case errors.Is(rerr, repository.ErrNotFound):
		return nil, repository.ErrNotFound
	case ok && errors.Is(rerr, repository.ErrUnowned):
		return d, nil
	}
	return nil, errUnconfirmed
}

// Create stores a new document.
func (s *DocumentService) Create(ctx context.Context, p Principal, doc jsondoc.Doc) (*model.Document, error) {
	if err := s.fits(ctx, p, 1, int64(len(doc.JSON))); err != nil {
		return nil, err
	}
	now := model.Now()
	d := &model.Document{ID: bson.NewObjectID(), Org: p.OrgID, JSON: string(doc.JSON), Fields: doc.Fields, CreatedAt: now, UpdatedAt: now}
	return s.create(ctx, p, d, false)
}

// create writes d; planned: d's id was fixed by an Idempotency-Key, so an
// earlier attempt may have written it already. A create that is not
// acknowledged is withdrawn, whatever went wrong.
func (s *DocumentService) create(ctx context.Context, p Principal, d *model.Document, planned bool) (*model.Document, error) {
	var gone bool
	err := s.follow(ctx, &p, func(p *Principal) (bool, error) {
		err := s.tenants.InsertDocument(ctx, p.Tenant, p.OrgID, d)
		if planned && errors.Is(err, repository.ErrDuplicate) {
			err = nil // the earlier attempt's write, confirmed below like this one
		}
		if gone = errors.Is(err, repository.ErrCollectionGone); err != nil && !gone {
			return true, err // a timeout may come after the write was stored
		}
		if s.afterInsert != nil {
			s.afterInsert(ctx)
		}
		return false, nil
	}, func(p Principal, now model.Tenant, stable bool) (bool, error) {
		switch {
		case stable && !gone:
			return true, nil
		case gone && now == p.Tenant:
			return false, nil // the collection went while the organization stayed: write again
		}
		if _, err := s.tenants.Document(ctx, now, p.OrgID, d.ID); !errors.Is(err, repository.ErrNotFound) {
			return true, err // nil: it moved with the collection
		}
		// A stray: withdrawn if still where it was written; if another
		// organization's rename took it along, its _org keeps it from
		// them, and orgsvc check reports it.
		s.unwrite(ctx, p.OrgID, p.Tenant, d.ID)
		return false, nil
	})
	if err != nil {
		s.withdraw(ctx, p, d.ID)
		return nil, err
	}
	s.wrote(p, 1, int64(len(d.JSON)))
	if err := s.recordWrite(ctx, p, ActDocumentCreated, d.ID, "doc:"+d.ID.Hex()+":created"); err != nil {
		return nil, err
	}
	return d, nil
}

// withdraw removes a new document that will not be acknowledged, so that
// the client's retry does not make a second one: from the collection it
// was written to and, since an operation under way may move that
// collection in between, from where the operation moves it.
// It runs whatever went wrong, with a deadline of its own: a write
// answered with a timeout may still have been stored.
func (s *DocumentService) withdraw(ctx context.Context, p Principal, id bson.ObjectID) {
	ctx, cancel := cleanup(ctx)
	defer cancel()
	s.unwrite(ctx, p.OrgID, p.Tenant, id)
	if op, err := s.orgs.operation(ctx, p.OrgID); err == nil && op.Plan.Slug != "" && op.Plan.Tenant() != p.Tenant {
		if err := s.tenants.DeleteDocument(ctx, op.Plan.Tenant(), p.OrgID, id, nil); err != nil && !errors.Is(err, repository.ErrNotFound) {
			s.log.Error("remove a document written during a rename", "slug", op.Plan.Slug, "err", err)
		}
	}
}

// unwrite removes org's document written to a collection the
// organization had already left (nothing of anyone else's: only a
// document whose _org is org's). If that write made the collection anew
// and nobody claims its name, the collection goes too.
func (s *DocumentService) unwrite(ctx context.Context, org bson.ObjectID, t model.Tenant, id bson.ObjectID) {
	ctx, cancel := cleanup(ctx)
	defer cancel()
	if err := s.tenants.DeleteDocument(ctx, t, org, id, nil); err != nil && !errors.Is(err, repository.ErrNotFound) {
		s.log.Error("remove a document written to a former collection", "slug", t.Slug, "err", err)
		return
	}
	if err := s.orgs.dropLeft(ctx, org, t); err != nil {
		s.log.Error("drop a former collection", "slug", t.Slug, "err", err)
	}
}

// cleanupWait bounds the clean-up of a request that failed or moved.
const cleanupWait = 5 * time.Second

// cleanup is the context of a request's clean-up: it goes on when the
// request's own context ends, for at most cleanupWait.
func cleanup(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupWait)
}

// Get returns one of the caller's documents. An id that is malformed, or
// that is another organization's, is simply not found.
func (s *DocumentService) Get(ctx context.Context, p Principal, id string) (*model.Document, error) {
	d, _, err := s.get(ctx, p, id)
	return d, err
}

// get finds a document, following the organization to its current
// collection if it is not where p says; it returns p as it was found.
func (s *DocumentService) get(ctx context.Context, p Principal, id string) (*model.Document, Principal, error) {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return nil, p, ErrDocumentNotFound
	}
	var d *model.Document
	var unsure bool
	err = s.follow(ctx, &p, func(p *Principal) (bool, error) {
		var err error
		d, err = s.tenants.Document(ctx, p.Tenant, p.OrgID, oid)
		if errors.Is(err, repository.ErrUnowned) {
			d, err = s.unowned(ctx, *p, oid)
		}
		unsure = errors.Is(err, errUnconfirmed)
		return !unsure && !errors.Is(err, repository.ErrNotFound), err
	}, func(p Principal, now model.Tenant, stable bool) (bool, error) {
		return !unsure && stable, ErrDocumentNotFound
	})
	return d, p, err
}

// Replace sets a document's data; created_at stays.
func (s *DocumentService) Replace(ctx context.Context, p Principal, id string, doc jsondoc.Doc) (*model.Document, error) {
	return s.change(ctx, p, id, false, ActDocumentReplaced, func(*model.Document) (jsondoc.Doc, error) { return doc, nil })
}

// Patch applies a JSON Merge Patch (RFC 7396) to a document's data. The
// change applies only if the document did not change since it was read.
func (s *DocumentService) Patch(ctx context.Context, p Principal, id string, patch []byte) (*model.Document, error) {
	return s.change(ctx, p, id, true, ActDocumentPatched, func(cur *model.Document) (jsondoc.Doc, error) {
		doc, problems := jsondoc.Limits{MaxKeys: s.maxKeys()}.Merge([]byte(cur.JSON), patch)
		if len(problems) > 0 {
			return doc, &ProblemsError{Where: []any{"body"}, Problems: problems}
		}
		if len(doc.JSON) > s.maxBytes {
			return doc, ErrDocumentTooLarge
		}
		return doc, nil
	})
}

// change gives a document the data next makes of it as found, and confirms
// that the change stands; with ifUnchanged, only if the document was not
// changed since it was read (else ErrDocumentChanged).
func (s *DocumentService) change(ctx context.Context, p Principal, id string, ifUnchanged bool, action string, next func(cur *model.Document) (jsondoc.Doc, error)) (*model.Document, error) {
	var cur, out *model.Document
	var setErr error
	var when time.Time // the changed document's updated_at
	err := s.follow(ctx, &p, func(p *Principal) (bool, error) {
		var err error
		if cur, *p, err = s.get(ctx, *p, id); err != nil {
			return true, err
		}
		doc, err := next(cur)
		if err != nil {
			return true, err
		}
		if grows := int64(len(doc.JSON) - len(cur.JSON)); grows > 0 {
			if err := s.fits(ctx, *p, 0, grows); err != nil {
				return true, err
			}
		}
		if when = model.Now(); !when.After(cur.UpdatedAt) {
			when = cur.UpdatedAt.Add(time.Millisecond) // updated_at always moves
		}
		d := &model.Document{ID: cur.ID, Org: p.OrgID, JSON: string(doc.JSON), Fields: doc.Fields, CreatedAt: cur.CreatedAt, UpdatedAt: when}
		out, setErr = s.tenants.SetDocument(ctx, p.Tenant, p.OrgID, cur, d, ifUnchanged)
		return setErr != nil && !errors.Is(setErr, repository.ErrNotFound), setErr
	}, func(p Principal, now model.Tenant, stable bool) (bool, error) {
		if stable {
			if ifUnchanged && errors.Is(setErr, repository.ErrNotFound) {
				return true, ErrDocumentChanged
			}
			return true, notFound(setErr)
		}
		moved, err := s.tenants.Document(ctx, now, p.OrgID, cur.ID)
		if err == nil && setErr == nil && moved.UpdatedAt.Equal(when) {
			out = moved // it moved with the collection
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	s.wrote(p, 0, int64(len(out.JSON)-len(cur.JSON)))
	source := fmt.Sprintf("doc:%s:%d", out.ID.Hex(), out.UpdatedAt.UnixMilli())
	if err := s.recordWrite(ctx, p, action, out.ID, source); err != nil {
		return nil, err
	}
	return out, nil
}

// Delete removes one of the caller's documents.
func (s *DocumentService) Delete(ctx context.Context, p Principal, id string) error {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return ErrDocumentNotFound
	}
	var removed error
	var unsure bool
	err = s.follow(ctx, &p, func(p *Principal) (bool, error) {
		removed = s.remove(ctx, *p, oid)
		unsure = errors.Is(removed, errUnconfirmed)
		return removed != nil && !unsure && !errors.Is(removed, repository.ErrNotFound), removed
	}, func(p Principal, now model.Tenant, stable bool) (bool, error) {
		if !unsure && (stable || (now == p.Tenant && removed != nil)) {
			return true, notFound(removed)
		}
		if removed != nil {
			return false, nil
		}
		// Deleted before the move, or from a collection left behind:
		// either way it must not be in the current one.
		p.Tenant = now
		err := s.remove(ctx, p, oid)
		switch {
		case errors.Is(err, errUnconfirmed):
			return true, ErrOrgBusy
		case errors.Is(err, repository.ErrNotFound):
			return true, nil
		}
		return true, err
	})
	if err != nil {
		return err
	}
	s.wrote(p, -1, 0) // its bytes are counted again at the next collStats
	return s.recordWrite(ctx, p, ActDocumentDeleted, oid, "")
}

// remove deletes p's document id from p.Tenant: one of p's, or one without
// _org confirmed p's.
func (s *DocumentService) remove(ctx context.Context, p Principal, id bson.ObjectID) error {
	err := s.tenants.DeleteDocument(ctx, p.Tenant, p.OrgID, id, nil)
	if !errors.Is(err, repository.ErrUnowned) {
		return err
	}
	d, err := s.unowned(ctx, p, id)
	if err != nil {
		return err
	}
	return s.tenants.DeleteDocument(ctx, p.Tenant, p.OrgID, id, d)
}

// Page is one page of a listing; Next is the cursor of the following page,
// empty on the last.
type Page struct {
	Items []model.Document
	Next  string
}

// List returns the caller's documents in id order, limit at a time and
// fewer when their data passes the page's byte budget (see SetLimits),
// after the cursor (the previous page's Next) and matching every
// condition.
func (s *DocumentService) List(ctx context.Context, p Principal, after string, where []jsondoc.Condition, limit int) (Page, error) {
	var cursor bson.ObjectID
	if after != "" {
		var err error
		if cursor, err = bson.ObjectIDFromHex(after); err != nil {
			return Page{}, &InvalidError{In: "query", Field: "after", Message: "not a cursor returned as next", Type: "value_error.cursor"}
		}
	}
	list := func(t model.Tenant) ([]model.Document, bool, error) {
		return s.tenants.ListDocuments(ctx, t, p.OrgID, cursor, where, limit, s.pageBytes())
	}
	var page Page
	var unsure bool
	err := s.follow(ctx, &p, func(p *Principal) (bool, error) {
		docs, more, err := list(p.Tenant)
		if err != nil {
			return true, err
		}
		unsure = slices.ContainsFunc(docs, func(d model.Document) bool { return d.Org.IsZero() })
		if unsure {
			ok, err := s.confirmUnowned(ctx, *p, func() (err error) {
				docs, more, err = list(p.Tenant)
				return err
			})
			if err != nil || !ok {
				return err != nil, err
			}
		}
		page = Page{Items: docs}
		if more {
			page.Next = docs[len(docs)-1].ID.Hex()
		}
		return unsure, nil
	}, func(p Principal, now model.Tenant, stable bool) (bool, error) {
		return !unsure && stable, nil
	})
	if err != nil {
		return Page{}, err
	}
	return page, nil
}

func notFound(err error) error {
	if errors.Is(err, repository.ErrNotFound) {
		return ErrDocumentNotFound
	}
	return err
}

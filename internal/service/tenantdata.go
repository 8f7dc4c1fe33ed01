package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/failpoint"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// Tenant data actions of the audit log.
const (
	ActTenantExported = "tenant.exported"
	ActTenantImported = "tenant.imported"
)

// Export calls header with the principal's organization, then fn with each
// of its documents in id order, once the export is in the audit log.
// Owners and admins only; ErrOrgBusy while the organization is being
// renamed or deleted.
func (s *OrgService) Export(ctx context.Context, p Principal, header func(*model.Organization) error, fn func(*model.Document) error) error {
	if !p.Can(model.RoleAdmin) {
		return ErrForbidden
	}
	org, err := s.master.Organization(ctx, p.OrgID)
	if err != nil {
		return err
	}
	if org.State != "" {
		s.run.nudge(org.ID)
		return ErrOrgBusy
	}
	ev := model.Event{Action: ActTenantExported, Actor: p.actor(), Targets: []model.Target{orgTarget(org.ID, org.Name)}}
	if err := record(ctx, s.audit, org.ID, ev); err != nil {
		return err
	}
	if err := header(org); err != nil {
		return err
	}
	return s.tenants.ScanDocuments(ctx, org.Tenant(), org.ID, fn)
}

// Import modes.
const (
	ImportReplace = "replace"
	ImportMerge   = "merge"
)

// importLease is an import's operation lease: its swap or merge takes as
// long as the data it moves.
const importLease = 10 * time.Minute

// stageBatch is how many documents a staging insert carries.
const stageBatch = 1000

// LineProblem is what is wrong with one line of an import (the header is
// line 1); Loc is where in the line, e.g. ["data", "a"].
type LineProblem struct {
	Line int
	Loc  []any
	Msg  string
	Type string
}

// MaxLineProblems is how many problems an import reports at most.
const MaxLineProblems = 100

// ImportProblemsError refuses an import with bad lines: nothing changed.
type ImportProblemsError struct {
	Problems []LineProblem // the first MaxLineProblems, by line
	Total    int
}

func (e *ImportProblemsError) Error() string {
	return fmt.Sprintf("import refused: %d bad lines", e.Total)
}

// ImportDoc is one valid document line of an import.
type ImportDoc struct {
	Line int
	Doc  model.Document
}

// ImportResult is what an import did.
type ImportResult struct {
	Mode      string
	Documents int64
}

// Import loads documents, as next yields them (io.EOF at the end, or an
// *ImportProblemsError once it has read every line), into a staging
// collection, then puts them in the principal's organization's tenant
// collection in one operation: in place of its documents (replace, by two
// renames) or upserted into them by id (merge). A bad line, a duplicate id
// or any error before the operation leaves everything as it was. Owners
// only.
func (s *OrgService) Import(ctx context.Context, p Principal, mode string, next func() (*ImportDoc, error)) (*ImportResult, error) {
	if p.Role != model.RoleOwner {
		return nil, ErrForbidden
	}
	org, err := s.master.Organization(ctx, p.OrgID)
	if err != nil {
		return nil, err
	}
	if org.State != "" {
		s.run.nudge(org.ID)
		return nil, ErrOrgBusy
	}
	staging := repository.StagingName(bson.NewObjectID())
	uuid, err := s.tenants.CreateStaging(ctx, org.TenantDB, staging)
	if err != nil {
		return nil, err
	}
	keep := false
	defer func() {
		if !keep {
			cctx, cancel := cleanup(ctx)
			defer cancel()
			if err := s.tenants.DropStaging(cctx, org.TenantDB, staging); err != nil {
				s.log.Error("drop an import's staging collection", "collection", staging, "err", err)
			}
		}
	}()
	n, bytes, err := s.stage(ctx, org, staging, next)
	if err != nil {
		return nil, err
	}
	if err := s.importFits(ctx, org, mode, n, bytes); err != nil {
		return nil, err
	}
	count := strconv.FormatInt(n, 10)
	plan := model.OperationPlan{
		Slug: org.Slug, OldSlug: org.Slug, TenantDB: org.TenantDB, CollectionUUID: org.CollectionUUID,
		Staging: staging, StagingUUID: uuid, Mode: mode,
		Events: []model.PlannedEvent{planned(ctx, org.ID, "imported", ActTenantImported, p.actor(),
			[]model.Target{orgTarget(org.ID, org.Name)},
			map[string]model.Change{"mode": {To: &mode}, "documents": {To: &count}})},
	}
	r, ctx, cancel, err := s.run.Begin(ctx, model.OpImport, org.ID, plan)
	if err != nil {
		return nil, err
	}
	defer cancel()
	keep = true // the operation's now: its undo or its completion drops it
	committed, err := s.run.Drive(ctx, r)
	if !committed {
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	return &ImportResult{Mode: mode, Documents: n}, nil
}

// stage writes next's documents to the staging collection, as org's, and
// returns how many; an *ImportProblemsError when lines were bad or ids
// repeated.
func (s *OrgService) stage(ctx context.Context, org *model.Organization, staging string, next func() (*ImportDoc, error)) (n, bytes int64, err error) {
	var problems []LineProblem
	total := 0
	batch := make([]*model.Document, 0, stageBatch)
	lines := make([]int, 0, stageBatch)
	flush := func() error {
		dups, err := s.tenants.InsertStaged(ctx, org.TenantDB, staging, batch)
		if err != nil {
			return err
		}
		n += int64(len(batch) - len(dups))
		for _, i := range dups {
			total++
			if len(problems) < MaxLineProblems {
				problems = append(problems, LineProblem{Line: lines[i], Loc: []any{"id"}, Msg: "this id is on an earlier line", Type: "value_error.import.duplicate_id"})
			}
		}
		batch, lines = batch[:0], lines[:0]
		return nil
	}
	for {
		d, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		var bad *ImportProblemsError
		if errors.As(err, &bad) {
			// Every line read: merge what the store found with the rest.
			if err := flush(); err != nil {
				return 0, 0, err
			}
			bad.Problems = append(bad.Problems, problems...)
			sort.SliceStable(bad.Problems, func(i, j int) bool { return bad.Problems[i].Line < bad.Problems[j].Line })
			if len(bad.Problems) > MaxLineProblems {
				bad.Problems = bad.Problems[:MaxLineProblems]
			}
			bad.Total += total
			return 0, 0, bad
		}
		if err != nil {
			return 0, 0, err
		}
		doc := d.Doc
		doc.Org = org.ID
		bytes += int64(len(doc.JSON))
		batch, lines = append(batch, &doc), append(lines, d.Line)
		if len(batch) == stageBatch {
			if err := flush(); err != nil {
				return 0, 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return 0, 0, err
	}
	if total > 0 {
		return 0, 0, &ImportProblemsError{Problems: problems, Total: total}
	}
	return n, bytes, nil
}

// prepareImport marks the organization importing, if it is still as the
// import found it: document requests then wait for the operation.
func (s *OrgService) prepareImport(ctx context.Context, r *Run) error {
	p := r.Op.Plan
	org, err := s.master.Organization(ctx, r.Op.OrgID)
	if err != nil {
		return err
	}
	if org.State != "" || org.Slug != p.Slug || org.TenantDB != p.TenantDB {
		return ErrOrgBusy
	}
	return s.master.SetOrganizationState(ctx, r.Op.OrgID, model.StateImporting, r.Op.ID)
}

// completeImport swaps the staged collection in (replace) or upserts its
// documents (merge), then puts the organization at rest.
func (s *OrgService) completeImport(ctx context.Context, r *Run) error {
	p := r.Op.Plan
	defer s.forgetOrg(r.Op.OrgID, p.Slug)
	if p.Mode == ImportMerge {
		failpoint.Reach("import:before-merge")
		if _, err := s.tenants.Merge(ctx, p.Tenant(), p.Staging, r.Op.OrgID); err != nil {
			return err
		}
		failpoint.Reach("import:after-merge")
		if err := s.tenants.DropStaging(ctx, p.TenantDB, p.Staging); err != nil {
			return err
		}
		return s.atRest(ctx, r)
	}
	failpoint.Reach("import:before-swap")
	if err := s.tenants.Swap(ctx, p.Tenant(), p.Staging, p.StagingUUID, p.CollectionUUID, repository.ParkedName(r.Op.ID)); err != nil {
		return err
	}
	failpoint.Reach("import:after-swap")
	// The new collection's identity, and at rest, in one update.
	return s.master.FinishCreate(ctx, r.Op.OrgID, p.StagingUUID)
}

// undoImport drops the staging collection and puts the organization back
// at rest.
func (s *OrgService) undoImport(ctx context.Context, r *Run) error {
	if err := s.tenants.DropStaging(ctx, r.Op.Plan.TenantDB, r.Op.Plan.Staging); err != nil {
		return err
	}
	org, err := s.master.Organization(ctx, r.Op.OrgID)
	if errors.Is(err, repository.ErrNotFound) || (err == nil && org.OperationID != r.Op.ID) {
		return nil // not marked by this operation
	}
	if err != nil {
		return err
	}
	return s.atRest(ctx, r)
}

// stagingAge is how old a staging collection no operation names must be
// before the sweep drops it: its import may still be loading it.
const stagingAge = 2 * importLease

// sweepStagings drops the staging collections a crash left: an import's
// that no operation names, once older than stagingAge, and the parked data
// of a swap whose operation is over.
func (s *OrgService) sweepStagings(ctx context.Context) (int, error) {
	found, err := s.tenants.Stagings(ctx)
	if err != nil || len(found) == 0 {
		return 0, err
	}
	ops, err := s.ops.All(ctx)
	if err != nil {
		return 0, err
	}
	held := map[string]bool{}
	for _, op := range ops {
		if op.Kind == model.OpImport && op.DoneAt.IsZero() {
			held[op.Plan.Staging] = true
			held[repository.ParkedName(op.ID)] = true
		}
	}
	dropped := 0
	for _, f := range found {
		db, name := f[0], f[1]
		if held[name] {
			continue
		}
		if id, err := bson.ObjectIDFromHex(name[len(repository.StagingPrefix):]); err == nil && time.Since(id.Timestamp()) < stagingAge {
			continue // an import may be loading it
		}
		if err := s.tenants.DropStaging(ctx, db, name); err != nil {
			return dropped, err
		}
		s.log.Info("dropped a staging collection left by an import", "collection", name)
		dropped++
	}
	return dropped, nil
}

// importFits refuses an import that would take the organization past a
// storage quota: a replace by what it holds, a merge by that and what is
// there now (ids in both counted twice: an upper bound).
func (s *OrgService) importFits(ctx context.Context, org *model.Organization, mode string, docs, bytes int64) error {
	l := s.limits.With(org.Limits)
	if l.MaxDocuments <= 0 && l.MaxBytes <= 0 {
		return nil
	}
	if mode == ImportMerge {
		now, err := s.tenants.Stats(ctx, org.Tenant())
		if err != nil {
			return err
		}
		docs, bytes = docs+now.Documents, bytes+now.Bytes
	}
	if (l.MaxDocuments > 0 && docs > l.MaxDocuments) || (l.MaxBytes > 0 && bytes > l.MaxBytes) {
		return ErrQuotaExceeded
	}
	return nil
}

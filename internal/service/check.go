package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/audit"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// Finding is one way the master metadata and the tenant collections
// disagree.
type Finding struct {
	// Kind names the broken invariant, e.g. "missing-collection".
	Kind string
	// Subject is what it is about: an organization, admin, claim,
	// collection or operation.
	Subject string
	Detail  string

	repair func(context.Context) error
}

func (f Finding) String() string { return f.Kind + " " + f.Subject + ": " + f.Detail }

// Repairable reports whether Repair knows how to fix the finding.
func (f Finding) Repairable() bool { return f.repair != nil }

// Checker scans the master metadata against the tenant collections, and
// repairs what it can.
type Checker struct {
	master  *repository.MasterRepository
	tenants *repository.TenantRepository
	ops     *repository.OperationRepository
	orgs    *OrgService
}

// NewChecker builds a Checker over the OrgService's repositories.
func NewChecker(orgs *OrgService) *Checker {
	return &Checker{master: orgs.master, tenants: orgs.tenants, ops: orgs.ops, orgs: orgs}
}

// snapshot is everything the check reads, once.
type snapshot struct {
	orgs     []model.Organization
	admins   []model.Admin
	names    []model.NameClaim
	emails   []model.EmailClaim
	ops      []model.Operation
	leases   []model.Lease
	outcomes []model.Outcome
	tenants  []model.Tenant
	members  []model.Membership
	invites  []model.Invitation
	mails    []model.OutboxEntry
	archives []model.DeletedOrg
	trashes  [][2]string // database, name
}

func (c *Checker) read(ctx context.Context) (*snapshot, error) {
	var s snapshot
	var err error
	if s.orgs, err = c.master.AllOrganizations(ctx); err != nil {
		return nil, err
	}
	if s.admins, err = c.master.AllAdmins(ctx); err != nil {
		return nil, err
	}
	if s.names, err = c.master.AllNameClaims(ctx); err != nil {
		return nil, err
	}
	if s.emails, err = c.master.AllEmailClaims(ctx); err != nil {
		return nil, err
	}
	if s.ops, err = c.ops.All(ctx); err != nil {
		return nil, err
	}
	if s.leases, err = c.ops.AllLeases(ctx); err != nil {
		return nil, err
	}
	if s.outcomes, err = c.ops.AllOutcomes(ctx); err != nil {
		return nil, err
	}
	if s.tenants, err = c.tenants.Tenants(ctx); err != nil {
		return nil, err
	}
	if s.members, err = c.master.AllMemberships(ctx); err != nil {
		return nil, err
	}
	if s.invites, err = c.master.AllInvitations(ctx); err != nil {
		return nil, err
	}
	// The trash before the archives: a deletion writes its archive before
	// it moves the collection, so a trash listed has its archive listed.
	if s.trashes, err = c.tenants.Trashes(ctx); err != nil {
		return nil, err
	}
	if s.archives, err = c.master.AllArchives(ctx); err != nil {
		return nil, err
	}
	if mails := c.orgs.invites.Mails; mails != nil {
		if s.mails, err = mails.All(ctx); err != nil {
			return nil, err
		}
	}
	return &s, nil
}

// Check reads everything once and reports every broken invariant: each
// organization has its tenant collection, its name claim and its admin;
// each tenant collection, admin and claim belongs to an existing
// organization or admin; every document of an organization's collection
// carries that organization's _org; no operation is left unfinished. What
// an unfinished operation holds is reported as that operation alone. It
// changes nothing.
func (c *Checker) Check(ctx context.Context) ([]Finding, error) {
	s, err := c.read(ctx)
	if err != nil {
		return nil, err
	}

	// What operations under way hold is theirs to settle.
	busyOrg := map[bson.ObjectID]bool{}
	busySlug := map[string]bool{}
	busyAdmin := map[bson.ObjectID]bool{}
	busyEmail := map[string]bool{}
	liveOp := map[string]bool{} // operation ids, hex
	busyTrash := map[bson.ObjectID]bool{}
	var out []Finding
	add := func(kind, subject string, repair func(context.Context) error, format string, args ...any) {
		out = append(out, Finding{Kind: kind, Subject: subject, Detail: fmt.Sprintf(format, args...), repair: repair})
	}
	for _, op := range s.ops {
		if !op.DoneAt.IsZero() {
			continue // the receipt of a deletion
		}
		liveOp[op.ID.Hex()] = true
		busyOrg[op.OrgID] = true
		busyAdmin[op.Plan.AdminID] = true
		busyAdmin[op.Plan.Member] = true
		for _, slug := range []string{op.Plan.Slug, op.Plan.OldSlug} {
			if slug != "" {
				busySlug[slug] = true
			}
		}
		for _, e := range []string{op.Plan.Email, op.Plan.OldEmail} {
			if e != "" {
				busyEmail[model.EmailKey(e)] = true
			}
		}
		shown := op.OrgID
		if t := op.Plan.Trash; t != nil {
			// A purge or restore is keyed by the deletion, not the organization.
			shown, busyOrg[t.Org], busyTrash[t.Org] = t.Org, true, true
			for _, m := range t.Members {
				busyAdmin[m.AccountID] = true
			}
			for _, e := range t.NewEmails {
				busyEmail[model.EmailKey(e)] = true
			}
		}
		orgID := op.OrgID
		add("unfinished-operation", fmt.Sprintf("operation %s (%s of organization %s)", op.ID.Hex(), op.Kind, shown.Hex()),
			func(ctx context.Context) error { return c.orgs.run.Recover(ctx, orgID, c.orgs.run.life.AllStale) },
			"started %s, its first lease ends %s", op.StartedAt.Format(time.RFC3339), op.ExpiresAt.Format(time.RFC3339))
	}

	orgByID := map[bson.ObjectID]model.Organization{}
	orgByTenant := map[model.Tenant]model.Organization{}
	for _, o := range s.orgs {
		orgByID[o.ID] = o
		orgByTenant[o.Tenant()] = o
	}
	adminByID := map[bson.ObjectID]model.Admin{}
	for _, a := range s.admins {
		adminByID[a.ID] = a
	}
	memberOf := map[string]model.Membership{}
	ownerCount := map[bson.ObjectID]int{}
	joinedCount := map[bson.ObjectID]int{}
	for _, m := range s.members {
		memberOf[m.ID] = m
		joinedCount[m.AccountID]++
		if m.Role == model.RoleOwner {
			ownerCount[m.OrgID]++
		}
	}
	// inOrg says whether account a belongs to org o: by a membership, or,
	// for an account from before teams, by its organization_id.
	inOrg := func(a model.Admin, o bson.ObjectID) bool {
		if !a.Teams {
			return a.OrganizationID == o
		}
		_, ok := memberOf[model.MembershipID(a.ID, o)]
		return ok
	}
	nameOwner := map[string]bson.ObjectID{}
	for _, n := range s.names {
		nameOwner[n.Slug] = n.OrganizationID
	}
	emailOwner := map[string]bson.ObjectID{}
	for _, e := range s.emails {
		emailOwner[e.Key] = e.AdminID
	}

	for _, o := range s.orgs {
		if busyOrg[o.ID] {
			continue
		}
		o := o
		subject := fmt.Sprintf("organization %s (%q)", o.ID.Hex(), o.Name)
		if o.State != "" {
			add("stuck-state", subject, func(ctx context.Context) error {
				return c.master.SetOrganizationState(ctx, o.ID, "", bson.ObjectID{})
			}, "marked %q with no operation under way", o.State)
		}
		if !slices.Contains(s.tenants, o.Tenant()) {
			add("missing-collection", subject, func(ctx context.Context) error {
				uuid, err := c.tenants.Create(ctx, o.Tenant())
				if err != nil {
					return err
				}
				return c.master.SetCollectionUUID(ctx, o.ID, uuid)
			}, "its tenant collection %s does not exist (repair makes it anew, empty)", c.tenants.Describe(o.Tenant()))
		} else if o.CollectionUUID != "" {
			if uuid, err := c.tenants.UUID(ctx, o.Tenant()); err != nil {
				return nil, err
			} else if uuid != o.CollectionUUID && uuid != "-" {
				add("replaced-collection", subject, nil, "%s is not the collection it was given (uuid %s, recorded %s)", c.tenants.Describe(o.Tenant()), uuid, o.CollectionUUID)
			}
		}
		if o.CollectionName != repository.CollectionName(o.Slug) {
			add("wrong-collection-name", subject, nil, "collection_name is %s, its slug says %s", o.CollectionName, repository.CollectionName(o.Slug))
		}
		if owner, ok := nameOwner[o.Slug]; !ok || owner != o.ID {
			var repair func(context.Context) error
			if !ok {
				repair = func(ctx context.Context) error { return c.master.ClaimName(ctx, o.Slug, o.ID) }
			}
			add("missing-name-claim", subject, repair, "the claim on slug %q does not name it", o.Slug)
		}
		if a, ok := adminByID[o.AdminID]; !ok || !inOrg(a, o.ID) {
			add("missing-admin", subject, nil, "its admin %s does not exist or is not a member", o.AdminID.Hex())
		}
		if a, ok := adminByID[o.AdminID]; ok && a.Teams && ownerCount[o.ID] == 0 {
			add("no-owner", subject, nil, "no member is an owner")
		}
	}
	for _, t := range s.tenants {
		if _, ok := orgByTenant[t]; !ok && !busySlug[t.Slug] {
			t := t
			add("orphan-collection", c.tenants.Describe(t), func(ctx context.Context) error {
				return c.orgs.DropOrphan(ctx, t)
			}, "no organization has the slug %q in this database", t.Slug)
		}
	}
	for _, t := range s.tenants {
		o, ok := orgByTenant[t]
		if !ok || busyOrg[o.ID] || busySlug[t.Slug] {
			continue
		}
		found, err := c.documents(ctx, o)
		if err != nil {
			return nil, err
		}
		if found == nil {
			continue // changed since it was read: not this check's to judge
		}
		if ids := found.strays; len(ids) > 0 {
			add("foreign-documents", c.tenants.Describe(t), func(ctx context.Context) error {
				return c.whileOwner(ctx, o, func() error {
					_, err := c.tenants.DeleteStrays(ctx, t, o.ID, ids)
					return err
				})
			}, "%d documents whose _org is not its organization %s's, but %s (%s); they are invisible to everyone, repair deletes them",
				len(ids), o.ID.Hex(), strings.Join(found.writers, ", "), sample(ids))
		}
		if ids := found.unowned; len(ids) > 0 {
			add("unowned-documents", c.tenants.Describe(t), func(ctx context.Context) error {
				return c.whileOwner(ctx, o, func() error {
					_, err := c.tenants.RecordOwner(ctx, t, o.ID, ids)
					return err
				})
			}, "%d documents stored without _org (%s); repair records organization %s on them", len(ids), sample(ids), o.ID.Hex())
		}
	}
	out = append(out, c.checkTrash(s, busyTrash)...)
	for _, a := range s.admins {
		if busyAdmin[a.ID] {
			continue
		}
		a := a
		subject := fmt.Sprintf("admin %s (%s)", a.ID.Hex(), a.Email)
		if o, ok := orgByID[a.OrganizationID]; !a.Teams && (!ok || o.AdminID != a.ID) || a.Teams && joinedCount[a.ID] == 0 {
			var repair func(context.Context) error
			if !ok || a.Teams {
				repair = func(ctx context.Context) error {
					if err := c.master.DeleteAdmin(ctx, a.ID); err != nil {
						return err
					}
					return c.master.ReleaseEmail(ctx, model.EmailKey(a.Email), a.ID)
				}
			}
			add("orphan-admin", subject, repair, "it belongs to no organization (organization_id %s)", a.OrganizationID.Hex())
		}
		if owner, ok := emailOwner[model.EmailKey(a.Email)]; !ok || owner != a.ID {
			var repair func(context.Context) error
			if !ok {
				repair = func(ctx context.Context) error { return c.master.ClaimEmail(ctx, model.EmailKey(a.Email), a.ID) }
			}
			add("missing-email-claim", subject, repair, "the claim on its e-mail does not name it")
		}
	}
	for _, m := range s.members {
		if busyOrg[m.OrgID] || busyAdmin[m.AccountID] {
			continue
		}
		_, hasOrg := orgByID[m.OrgID]
		_, hasAccount := adminByID[m.AccountID]
		if !hasOrg || !hasAccount {
			m := m
			add("orphan-membership", fmt.Sprintf("membership %s", m.ID), func(ctx context.Context) error {
				return c.master.DeleteMembership(ctx, m.ID)
			}, "its organization (%t) or its account (%t) is missing", hasOrg, hasAccount)
		}
	}
	for _, inv := range s.invites {
		if _, ok := orgByID[inv.OrgID]; ok || busyOrg[inv.OrgID] {
			continue
		}
		inv := inv
		add("orphan-invitation", fmt.Sprintf("invitation %s (%s)", inv.ID.Hex(), inv.Email), func(ctx context.Context) error {
			if err := c.orgs.endInvitation(ctx, &inv); err != nil {
				return err
			}
			return c.master.DeleteInvitation(ctx, inv.ID)
		}, "its organization %s does not exist", inv.OrgID.Hex())
	}
	for _, m := range s.mails {
		if _, ok := orgByID[m.OrgID]; ok || busyOrg[m.OrgID] {
			continue
		}
		m := m
		add("orphan-mail", fmt.Sprintf("outbox entry %s (to %s)", m.ID.Hex(), m.To), func(ctx context.Context) error {
			return c.orgs.invites.Mails.Delete(ctx, m.ID)
		}, "its organization %s does not exist", m.OrgID.Hex())
	}
	for _, n := range s.names {
		if busySlug[n.Slug] || busyOrg[n.OrganizationID] || n.Sweep && !c.orgs.deadSweep(&n) {
			continue // a live sweeper's claim goes within half a lease
		}
		if o, ok := orgByID[n.OrganizationID]; !ok || o.Slug != n.Slug {
			n := n
			add("stale-name-claim", fmt.Sprintf("name claim %q", n.Slug), func(ctx context.Context) error {
				return c.master.ReleaseName(ctx, n.Slug, n.OrganizationID)
			}, "organization %s does not exist or has another slug", n.OrganizationID.Hex())
		}
	}
	for _, e := range s.emails {
		if busyEmail[e.Key] || busyAdmin[e.AdminID] {
			continue
		}
		if a, ok := adminByID[e.AdminID]; !ok || model.EmailKey(a.Email) != e.Key {
			e := e
			add("stale-email-claim", fmt.Sprintf("e-mail claim %q", e.Key), func(ctx context.Context) error {
				return c.master.ReleaseEmail(ctx, e.Key, e.AdminID)
			}, "admin %s does not exist or has another e-mail", e.AdminID.Hex())
		}
	}
	// Leases and outcomes whose operation is over are not findings: an
	// operation's record goes first when it ends, so they are what every
	// kill during that clean-up leaves, and inert (RecoverAll removes them).
	if c.orgs.audit != nil {
		err := c.orgs.audit.VerifyAll(ctx, func(org bson.ObjectID, _ int64, err error) {
			var broken *audit.Broken
			if errors.As(err, &broken) {
				add("broken-audit-chain", "audit log of organization "+org.Hex(), nil, "event %d: %s", broken.Seq, broken.Reason)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Repair finishes or rolls back every unfinished operation it may take
// over, then fixes what else it can, and reports each thing it did. What
// is left is in the findings of a Check that follows.
func (c *Checker) Repair(ctx context.Context) ([]string, error) {
	var done []string
	var errs []error
	// Operations first: settling them settles most of the rest.
	for pass := 0; pass < 2; pass++ {
		findings, err := c.Check(ctx)
		if err != nil {
			return done, err
		}
		for _, f := range findings {
			if f.repair == nil || (pass == 0) != (f.Kind == "unfinished-operation") {
				continue
			}
			switch err := f.repair(ctx); {
			case err == nil:
				done = append(done, "repaired "+f.String())
			case errors.Is(err, ErrOrgBusy):
				done = append(done, "left alone (held by a live instance) "+f.String())
			default:
				errs = append(errs, fmt.Errorf("%s: %w", f, err))
			}
		}
	}
	return done, errors.Join(errs...)
}

// checkTrash finds trash collections without their archive, and archives
// without their trash collection, of deletions no operation is working on.
// Either cannot be restored whole: the repair finishes what the purge
// would have done, dropping the one or purging the other.
func (c *Checker) checkTrash(s *snapshot, busy map[bson.ObjectID]bool) []Finding {
	var out []Finding
	archived := trashOf(s.archives)
	trashed := map[[2]string]bool{}
	for _, t := range s.trashes {
		db, name := t[0], t[1]
		trashed[t] = true
		org, ok := repository.TrashOrg(name)
		if archived[t] || (ok && busy[org]) {
			continue
		}
		out = append(out, Finding{Kind: "orphan-trash", Subject: c.tenants.DescribeIn(db, name),
			Detail: "a deleted organization's documents with no archive to restore them from; repair drops them, as the purge would",
			repair: func(ctx context.Context) error {
				if _, err := c.master.Archive(ctx, org); !errors.Is(err, repository.ErrNotFound) {
					return ErrOrgBusy // archived since, or unreadable: not this repair's
				}
				return c.tenants.DropTrash(ctx, db, name)
			}})
	}
	for _, d := range s.archives {
		if busy[d.ID] || trashed[[2]string{d.Org.TenantDB, d.Trash}] {
			continue
		}
		d := d
		out = append(out, Finding{Kind: "archive-without-trash", Subject: fmt.Sprintf("deleted organization %s (%q)", d.ID.Hex(), d.Name()),
			Detail: fmt.Sprintf("its trash collection %s does not exist, so its documents are gone; repair purges the archive", c.tenants.DescribeIn(d.Org.TenantDB, d.Trash)),
			repair: func(ctx context.Context) error { return mapGone(c.orgs.purge(ctx, &d)) }})
	}
	return out
}

// mapGone is nil for errArchiveGone: what the repair was to remove is gone.
func mapGone(err error) error {
	if errors.Is(err, errArchiveGone) {
		return nil
	}
	return err
}

// ownership is what the documents of an organization's collection say of
// their _org.
type ownership struct {
	strays  []bson.ObjectID // another organization's _org
	writers []string        // those organizations, hex
	unowned []bson.ObjectID // no _org
}

// documents reads the _org of every document of o's collection; nil when
// o changed since the check read it (then the collection may not have
// been o's all along).
func (c *Checker) documents(ctx context.Context, o model.Organization) (*ownership, error) {
	docs, err := c.tenants.DocumentOwners(ctx, o.Tenant())
	if err != nil {
		return nil, err
	}
	if err := c.whileOwner(ctx, o, func() error { return nil }); errors.Is(err, ErrOrgBusy) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var out ownership
	for _, d := range docs {
		switch d.Org {
		case o.ID:
		case bson.ObjectID{}:
			out.unowned = append(out.unowned, d.ID)
		default:
			out.strays = append(out.strays, d.ID)
			if w := d.Org.Hex(); !slices.Contains(out.writers, w) {
				out.writers = append(out.writers, w)
			}
		}
	}
	return &out, nil
}

// whileOwner runs f, a change to o's collection, only if o is still as the
// check read it: at rest in that collection, not renamed since (the same
// updated_at). A rename changes the record before it gives up the old
// name, so the collection under that name has been o's since the check
// read it, and the ids read from it are o's collection's. What remains is
// a rename of o, and another organization's rename to the freed name,
// both completed between this read and f's command: run repairs with the
// servers stopped, or at least not while o is being renamed.
func (c *Checker) whileOwner(ctx context.Context, o model.Organization, f func() error) error {
	now, err := c.master.Organization(ctx, o.ID)
	if errors.Is(err, repository.ErrNotFound) {
		return ErrOrgBusy
	}
	if err != nil {
		return err
	}
	if now.State != "" || now.Tenant() != o.Tenant() || !now.UpdatedAt.Equal(o.UpdatedAt) {
		return ErrOrgBusy
	}
	return f()
}

// sample names up to three of ids.
func sample(ids []bson.ObjectID) string {
	var hex []string
	for _, id := range ids[:min(3, len(ids))] {
		hex = append(hex, id.Hex())
	}
	if len(ids) > 3 {
		hex = append(hex, "...")
	}
	return strings.Join(hex, ", ")
}

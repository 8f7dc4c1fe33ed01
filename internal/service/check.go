package service

import (
	"context"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// Finding is one way the master metadata and the tenant collections
// disagree.
type Finding struct {
	// Kind names the broken invariant, e.g. "missing-collection".
	Kind string
	// Subject is what it is about: an organization, admin, claim or
	// collection.
	Subject string
	Detail  string
}

func (f Finding) String() string { return f.Kind + " " + f.Subject + ": " + f.Detail }

// Checker scans the master metadata against the tenant collections.
type Checker struct {
	master  *repository.MasterRepository
	tenants *repository.TenantRepository
}

// NewChecker builds a Checker.
func NewChecker(master *repository.MasterRepository, tenants *repository.TenantRepository) *Checker {
	return &Checker{master: master, tenants: tenants}
}

// Check reads everything once and reports every broken invariant: each
// organization has its tenant collection, its name claim and its admin;
// each tenant collection, admin and claim belongs to an existing
// organization or admin. It changes nothing.
func (c *Checker) Check(ctx context.Context) ([]Finding, error) {
	orgs, err := c.master.AllOrganizations(ctx)
	if err != nil {
		return nil, err
	}
	admins, err := c.master.AllAdmins(ctx)
	if err != nil {
		return nil, err
	}
	names, err := c.master.AllNameClaims(ctx)
	if err != nil {
		return nil, err
	}
	emails, err := c.master.AllEmailClaims(ctx)
	if err != nil {
		return nil, err
	}
	slugs, err := c.tenants.Slugs(ctx)
	if err != nil {
		return nil, err
	}

	orgByID := map[bson.ObjectID]model.Organization{}
	orgBySlug := map[string]model.Organization{}
	for _, o := range orgs {
		orgByID[o.ID] = o
		orgBySlug[o.Slug] = o
	}
	adminByID := map[bson.ObjectID]model.Admin{}
	for _, a := range admins {
		adminByID[a.ID] = a
	}
	nameOwner := map[string]bson.ObjectID{}
	for _, n := range names {
		nameOwner[n.Slug] = n.OrganizationID
	}
	emailOwner := map[string]bson.ObjectID{}
	for _, e := range emails {
		emailOwner[e.Key] = e.AdminID
	}

	var out []Finding
	add := func(kind, subject, format string, args ...any) {
		out = append(out, Finding{Kind: kind, Subject: subject, Detail: fmt.Sprintf(format, args...)})
	}
	for _, o := range orgs {
		subject := fmt.Sprintf("organization %s (%q)", o.ID.Hex(), o.Name)
		if !slices.Contains(slugs, o.Slug) {
			add("missing-collection", subject, "its tenant collection %s does not exist", repository.CollectionName(o.Slug))
		}
		if o.CollectionName != repository.CollectionName(o.Slug) {
			add("wrong-collection-name", subject, "collection_name is %s, its slug says %s", o.CollectionName, repository.CollectionName(o.Slug))
		}
		if owner, ok := nameOwner[o.Slug]; !ok || owner != o.ID {
			add("missing-name-claim", subject, "the claim on slug %q does not name it", o.Slug)
		}
		if a, ok := adminByID[o.AdminID]; !ok || a.OrganizationID != o.ID {
			add("missing-admin", subject, "its admin %s does not exist or belongs elsewhere", o.AdminID.Hex())
		}
	}
	for _, slug := range slugs {
		if _, ok := orgBySlug[slug]; !ok {
			add("orphan-collection", repository.CollectionName(slug), "no organization has the slug %q", slug)
		}
	}
	for _, a := range admins {
		subject := fmt.Sprintf("admin %s (%s)", a.ID.Hex(), a.Email)
		if o, ok := orgByID[a.OrganizationID]; !ok || o.AdminID != a.ID {
			add("orphan-admin", subject, "its organization %s does not exist or has another admin", a.OrganizationID.Hex())
		}
		if owner, ok := emailOwner[model.EmailKey(a.Email)]; !ok || owner != a.ID {
			add("missing-email-claim", subject, "the claim on its e-mail does not name it")
		}
	}
	for _, n := range names {
		if o, ok := orgByID[n.OrganizationID]; !ok || o.Slug != n.Slug {
			add("stale-name-claim", fmt.Sprintf("name claim %q", n.Slug), "organization %s does not exist or has another slug", n.OrganizationID.Hex())
		}
	}
	for _, e := range emails {
		if a, ok := adminByID[e.AdminID]; !ok || model.EmailKey(a.Email) != e.Key {
			add("stale-email-claim", fmt.Sprintf("e-mail claim %q", e.Key), "admin %s does not exist or has another e-mail", e.AdminID.Hex())
		}
	}
	return out, nil
}

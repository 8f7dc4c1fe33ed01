package service

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// Tenant limits' errors.
var (
	// ErrOrgSuspended: an operator suspended the organization.
	ErrOrgSuspended = errors.New("organization suspended")
	// ErrQuotaExceeded: the write would take the organization past its
	// storage quota.
	ErrQuotaExceeded = errors.New("organization storage quota exceeded")
)

// Limits are an organization's limits in force; 0 is none.
type Limits struct {
	MaxDocuments  int64   `json:"max_documents"`
	MaxBytes      int64   `json:"max_bytes"`
	RatePerSecond float64 `json:"rate_per_second"`
	RateBurst     int     `json:"rate_burst"`
}

// With is l with the organization's own overrides.
func (l Limits) With(o *model.OrgLimits) Limits {
	if o == nil {
		return l
	}
	if o.MaxDocuments != nil {
		l.MaxDocuments = *o.MaxDocuments
	}
	if o.MaxBytes != nil {
		l.MaxBytes = *o.MaxBytes
	}
	if o.RatePerSecond != nil {
		l.RatePerSecond = *o.RatePerSecond
	}
	if o.RateBurst != nil {
		l.RateBurst = *o.RateBurst
	}
	return l
}

// usageTTL is how long an instance counts an organization's documents and
// bytes from its last collStats plus its own writes since, before asking
// the store again.
const usageTTL = 5 * time.Second

// usage tracks, per instance, what each organization with a storage quota
// stores: a collStats at most every usageTTL, plus this instance's writes
// since. Writes through other instances since the last collStats are not
// seen: an organization may pass its quota by what they wrote in that time.
type usage struct {
	mu   sync.Mutex
	orgs map[bson.ObjectID]*orgUsage
}

type orgUsage struct {
	read        time.Time
	base, delta repository.Stats
}

// SetLimits sets the server's limits, which organizations' own override.
func (s *DocumentService) SetTenantLimits(l Limits) { s.tenantLimits = l }

// TenantLimits are the server's limits.
func (s *DocumentService) TenantLimits() Limits { return s.tenantLimits }

// fits refuses a write that would take p's organization past a storage
// quota: docs more documents and bytes more bytes. It costs nothing
// without a quota, and a collStats every usageTTL with one.
func (s *DocumentService) fits(ctx context.Context, p Principal, docs, bytes int64) error {
	l := s.tenantLimits.With(p.Limits)
	if l.MaxDocuments <= 0 && l.MaxBytes <= 0 {
		return nil
	}
	now, err := s.usage.of(ctx, s.tenants, p, time.Now())
	if err != nil {
		return err
	}
	if (l.MaxDocuments > 0 && docs > 0 && now.Documents+docs > l.MaxDocuments) || (l.MaxBytes > 0 && bytes > 0 && now.Bytes+bytes > l.MaxBytes) {
		return ErrQuotaExceeded
	}
	return nil
}

// wrote counts a write of this instance: docs documents and bytes bytes
// more (or fewer).
func (s *DocumentService) wrote(p Principal, docs, bytes int64) {
	s.usage.mu.Lock()
	defer s.usage.mu.Unlock()
	if u := s.usage.orgs[p.OrgID]; u != nil {
		u.delta.Documents += docs
		u.delta.Bytes += bytes
	}
}

// of is what p's organization stores, as this instance counts it.
func (u *usage) of(ctx context.Context, tenants *repository.TenantRepository, p Principal, now time.Time) (repository.Stats, error) {
	u.mu.Lock()
	e := u.orgs[p.OrgID]
	if e != nil && now.Sub(e.read) < usageTTL {
		out := repository.Stats{Documents: e.base.Documents + e.delta.Documents, Bytes: e.base.Bytes + e.delta.Bytes}
		u.mu.Unlock()
		return out, nil
	}
	u.mu.Unlock()
	st, err := tenants.Stats(ctx, p.Tenant)
	if err != nil {
		return st, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.orgs == nil || len(u.orgs) > 100_000 {
		u.orgs = map[bson.ObjectID]*orgUsage{}
	}
	u.orgs[p.OrgID] = &orgUsage{read: now, base: st}
	return st, nil
}

// Usage is what an organization stores and uses, for GET /org/usage.
type Usage struct {
	Documents int64
	Bytes     int64
	Limits    Limits
}

// Usage counts the principal's organization's documents and bytes (one
// collStats), with its limits.
func (s *DocumentService) Usage(ctx context.Context, p Principal) (*Usage, error) {
	st, err := s.tenants.Stats(ctx, p.Tenant)
	if err != nil {
		return nil, err
	}
	return &Usage{Documents: st.Documents, Bytes: st.Bytes, Limits: s.tenantLimits.With(p.Limits)}, nil
}

// Operators' audit actions.
const (
	ActOrgSuspended     = "org.suspended"
	ActOrgResumed       = "org.resumed"
	ActOrgLimitsChanged = "org.limits_changed"
)

// Suspend suspends (or resumes) an organization, for operators: its
// members' requests are refused at once on this instance, and on the
// others within AUTH_CACHE_TTL and ORG_CACHE_TTL.
func (s *OrgService) Suspend(ctx context.Context, org *model.Organization, suspended bool, command string) error {
	if org.Suspended == suspended {
		return nil
	}
	if err := s.master.SetSuspended(ctx, org.ID, suspended); err != nil {
		return err
	}
	s.forgetOrg(org.ID, org.Slug)
	action := ActOrgResumed
	if suspended {
		action = ActOrgSuspended
	}
	return record(ctx, s.audit, org.ID, model.Event{Action: action, Actor: model.Actor{Type: model.ActorSystem, ID: command},
		Targets: []model.Target{orgTarget(org.ID, org.Name)}})
}

// SetOrgLimits records an organization's own limits, for operators (nil:
// the server's again).
func (s *OrgService) SetOrgLimits(ctx context.Context, org *model.Organization, l *model.OrgLimits, command string) error {
	if err := s.master.SetLimits(ctx, org.ID, l); err != nil {
		return err
	}
	s.forgetOrg(org.ID, org.Slug)
	return record(ctx, s.audit, org.ID, model.Event{Action: ActOrgLimitsChanged, Actor: model.Actor{Type: model.ActorSystem, ID: command},
		Targets: []model.Target{orgTarget(org.ID, org.Name)}})
}

// OrgSummary is an organization with what it stores, for orgsvc org list.
type OrgSummary struct {
	Org   model.Organization
	Stats repository.Stats
}

// ListOrgs returns up to limit organizations whose slug begins with the
// slug of prefix and comes after after's, in slug order, with their
// documents and bytes (a collStats each), and whether more follow.
func (s *OrgService) ListOrgs(ctx context.Context, prefix, after string, limit int) ([]OrgSummary, bool, error) {
	all, err := s.master.AllOrganizations(ctx)
	if err != nil {
		return nil, false, err
	}
	p, a := model.Slug(prefix), model.Slug(after)
	var picked []model.Organization
	for _, o := range all {
		if o.State == model.StateCreating || !strings.HasPrefix(o.Slug, p) || (after != "" && o.Slug <= a) {
			continue
		}
		picked = append(picked, o)
	}
	slices.SortFunc(picked, func(x, y model.Organization) int { return strings.Compare(x.Slug, y.Slug) })
	more := len(picked) > limit
	if more {
		picked = picked[:limit]
	}
	out := make([]OrgSummary, 0, len(picked))
	for _, o := range picked {
		st, err := s.tenants.Stats(ctx, o.Tenant())
		if err != nil {
			return nil, false, err
		}
		out = append(out, OrgSummary{Org: o, Stats: st})
	}
	return out, more, nil
}

// TenantLimits are the server's limits.
func (s *OrgService) TenantLimits() Limits { return s.limits }

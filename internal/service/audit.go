package service

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/audit"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// Audit actions.
const (
	ActOrgCreated         = "org.created"
	ActOrgRenamed         = "org.renamed"
	ActOrgEmailChanged    = "org.email_changed"
	ActOrgPasswordChanged = "org.password_changed"
	ActOrgDeleted         = "org.deleted"
	ActLoginSucceeded     = "auth.login_succeeded"
	ActLoginFailed        = "auth.login_failed"
	ActLogout             = "auth.logout"
	ActSwitch             = "auth.switch"
	ActInvitationCreated  = "invitation.created"
	ActInvitationRevoked  = "invitation.revoked"
	ActInvitationResent   = "invitation.resent"
	ActInvitationAccepted = "invitation.accepted"
	ActInvitationExpired  = "invitation.expired"
	ActMemberRoleChanged  = "member.role_changed"
	ActMemberRemoved      = "member.removed"
	ActMemberLeft         = "member.left"
	ActAuditExported      = "audit.exported"
	ActDocumentCreated    = "document.created"
	ActDocumentReplaced   = "document.replaced"
	ActDocumentPatched    = "document.patched"
	ActDocumentDeleted    = "document.deleted"
)

// Actions are every audit action, for validating a listing's filter.
var Actions = []string{
	ActOrgCreated, ActOrgRenamed, ActOrgEmailChanged, ActOrgPasswordChanged, ActOrgDeleted,
	ActLoginSucceeded, ActLoginFailed, ActLogout, ActSwitch,
	ActInvitationCreated, ActInvitationRevoked, ActInvitationResent, ActInvitationAccepted, ActInvitationExpired,
	ActMemberRoleChanged, ActMemberRemoved, ActMemberLeft, ActAuditExported,
	ActDocumentCreated, ActDocumentReplaced, ActDocumentPatched, ActDocumentDeleted,
}

func accountActor(id bson.ObjectID, email string) model.Actor {
	return model.Actor{Type: model.ActorAccount, ID: id.Hex(), Email: email}
}

func (p Principal) actor() model.Actor {
	if p.Operator != "" {
		return model.Actor{Type: model.ActorSystem, ID: p.Operator}
	}
	return accountActor(p.AdminID, p.Email)
}

// OperatorPrincipal is the principal of an operator's command acting on
// org with an owner's rights.
func OperatorPrincipal(org *model.Organization, command string) Principal {
	return Principal{OrgID: org.ID, Tenant: org.Tenant(), CollectionUUID: org.CollectionUUID, Role: model.RoleOwner, Operator: command}
}

var systemActor = model.Actor{Type: model.ActorSystem, ID: "orgsvc"}

func orgTarget(id bson.ObjectID, name string) model.Target {
	return model.Target{Type: model.TargetOrganization, ID: id.Hex(), Name: name}
}

func accountTarget(id bson.ObjectID, email string) model.Target {
	return model.Target{Type: model.TargetAccount, ID: id.Hex(), Name: email}
}

func invitationTarget(id bson.ObjectID, email string) model.Target {
	return model.Target{Type: model.TargetInvitation, ID: id.Hex(), Name: email}
}

// change is a field's change from one value to another.
func change(from, to string) model.Change { return model.Change{From: &from, To: &to} }

// planned is an event an operation on org records when it commits.
func planned(ctx context.Context, org bson.ObjectID, key, action string, actor model.Actor, targets []model.Target, changes map[string]model.Change) model.PlannedEvent {
	return model.PlannedEvent{Org: org, Key: key, Action: action, Actor: actor, Targets: targets, Changes: changes, Context: audit.Request(ctx)}
}

// record appends an event that no operation plans (a login, an
// invitation sent) to org's log; nothing without a log.
func record(ctx context.Context, log *audit.Log, org bson.ObjectID, ev model.Event) error {
	if log == nil {
		return nil
	}
	ev.Context = audit.Request(ctx)
	return log.Append(ctx, org, &ev)
}

// orgUpdateEvents are the events of an /org/update: a rename, a new
// e-mail, a new password, each its own. The e-mail and the password are
// the account's: they are recorded in each of its organizations' logs, as
// a change through PATCH /me is.
func (s *OrgService) orgUpdateEvents(ctx context.Context, p Principal, org *model.Organization, plan model.OperationPlan, password bool) ([]model.PlannedEvent, error) {
	var evs []model.PlannedEvent
	if plan.Name != plan.OldName {
		evs = append(evs, planned(ctx, org.ID, "renamed", ActOrgRenamed, p.actor(), []model.Target{orgTarget(org.ID, plan.Name)},
			map[string]model.Change{"organization_name": change(plan.OldName, plan.Name)}))
	}
	if plan.Email == plan.OldEmail && !password {
		return evs, nil
	}
	named := *org
	named.Name = plan.Name
	more, err := s.accountEvents(ctx, p, &named, plan, password)
	return append(evs, more...), err
}

// credentialEvents are the events of an account's new e-mail or password,
// in one organization's log.
func credentialEvents(ctx context.Context, p Principal, org bson.ObjectID, target model.Target, plan model.OperationPlan, password bool) []model.PlannedEvent {
	var evs []model.PlannedEvent
	account := accountTarget(plan.AdminID, plan.Email)
	if plan.Email != plan.OldEmail {
		evs = append(evs, planned(ctx, org, "email", ActOrgEmailChanged, p.actor(), []model.Target{target, account},
			map[string]model.Change{"email": change(plan.OldEmail, plan.Email)}))
	}
	if password {
		evs = append(evs, planned(ctx, org, "password", ActOrgPasswordChanged, p.actor(), []model.Target{target, account}, nil))
	}
	return evs
}

// accountEvents are the events of a change of an account's own e-mail or
// password (PATCH /me): in the log of each of its organizations.
func (s *OrgService) accountEvents(ctx context.Context, p Principal, current *model.Organization, plan model.OperationPlan, password bool) ([]model.PlannedEvent, error) {
	if s.audit == nil {
		return nil, nil
	}
	members, err := s.master.MembershipsOf(ctx, p.AdminID)
	if err != nil {
		return nil, err
	}
	var evs []model.PlannedEvent
	for _, m := range members {
		target := model.Target{Type: model.TargetOrganization, ID: m.OrgID.Hex()}
		if m.OrgID == current.ID {
			target.Name = current.Name // the others' names are not read for this
		}
		evs = append(evs, credentialEvents(ctx, p, m.OrgID, target, plan, password)...)
	}
	return evs, nil
}

// memberEvent is the event of a change of account's membership from role
// old to role ("": removed, or left when the account is the principal's);
// email is the account's.
func memberEvent(ctx context.Context, p Principal, account bson.ObjectID, email, old, role string) model.PlannedEvent {
	targets := []model.Target{accountTarget(account, email)}
	switch {
	case role != "":
		return planned(ctx, p.OrgID, "member", ActMemberRoleChanged, p.actor(), targets, map[string]model.Change{"role": change(old, role)})
	case account == p.AdminID:
		return planned(ctx, p.OrgID, "member", ActMemberLeft, p.actor(), targets, map[string]model.Change{"role": {From: &old}})
	default:
		return planned(ctx, p.OrgID, "member", ActMemberRemoved, p.actor(), targets, map[string]model.Change{"role": {From: &old}})
	}
}

// recordInvitation records an event of inv; a non-empty key makes its
// source the invitation's, so that it is recorded once whoever records it.
func (s *OrgService) recordInvitation(ctx context.Context, inv *model.Invitation, actor model.Actor, action, key string) error {
	ev := model.Event{Action: action, Actor: actor, Targets: []model.Target{invitationTarget(inv.ID, inv.Email)},
		Changes: map[string]model.Change{"role": {To: &inv.Role}}}
	if key != "" {
		ev.Source = "invitation:" + inv.ID.Hex() + ":" + key
	}
	return record(ctx, s.audit, inv.OrgID, ev)
}

// RecordExpired records the expiry of every invitation that expired since
// the last call, once; it returns how many.
func (s *OrgService) RecordExpired(ctx context.Context) (int, error) {
	if s.audit == nil {
		return 0, nil
	}
	all, err := s.master.AllInvitations(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	now := time.Now()
	for i := range all {
		inv := &all[i]
		if inv.ExpiryRecorded || inv.State(now) != model.InviteExpired {
			continue
		}
		if err := s.recordInvitation(ctx, inv, systemActor, ActInvitationExpired, "expired"); err != nil {
			return n, err
		}
		if err := s.master.MarkExpiryRecorded(ctx, inv.ID); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// loginFailed records a failed login of an existing account: in org's log
// when the account is a member of it, else in each of its organizations'.
func (s *AuthService) loginFailed(ctx context.Context, admin *model.Admin, org bson.ObjectID, reason string) error {
	if s.audit == nil {
		return nil
	}
	orgs, err := s.Organizations(ctx, admin.ID)
	if err != nil {
		return err
	}
	if i := slices.IndexFunc(orgs, func(j joined) bool { return j.org.ID == org }); i >= 0 {
		orgs = orgs[i : i+1]
	}
	for _, o := range orgs {
		ev := model.Event{Action: ActLoginFailed, Actor: accountActor(admin.ID, admin.Email),
			Targets: []model.Target{orgTarget(o.org.ID, o.org.Name)},
			Changes: map[string]model.Change{"reason": {To: &reason}}}
		if err := record(ctx, s.audit, o.org.ID, ev); err != nil {
			return err
		}
	}
	return nil
}

// refusalGap is how often a rate-limited login of one account is recorded
// at most, per instance: a flood of refused logins would otherwise be a
// flood of writes.
const refusalGap = 10 * time.Second

// refusals remembers when each address's rate-limited login was last
// recorded here.
type refusals struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// due reports whether a refusal of the e-mail key is to be recorded now.
func (r *refusals) due(key string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil || len(r.last) > 100_000 {
		r.last = map[string]time.Time{}
	}
	if now.Sub(r.last[key]) < refusalGap {
		return false
	}
	r.last[key] = now
	return true
}

// LoginRefused records a login refused by a rate limit, for an existing
// account, at most once per refusalGap per address: neither the lookup
// nor the write repeats for every refused attempt of a flood.
func (s *AuthService) LoginRefused(ctx context.Context, email string, org bson.ObjectID) error {
	email = model.NormalizeEmail(email)
	if s.audit == nil || !s.refusals.due(model.EmailKey(email), time.Now()) {
		return nil
	}
	admin, err := s.adminByEmail(ctx, email)
	if err != nil || admin == nil {
		return err
	}
	return s.loginFailed(ctx, admin, org, "rate_limited")
}

// AuditLog is the audit log the service records in; nil when it keeps none.
func (s *OrgService) AuditLog() *audit.Log { return s.audit }

// ErrAuditOff: this process keeps no audit log (a check, or a test).
var ErrAuditOff = errors.New("audit log not kept here")

// AuditPage returns a page of the principal's organization's audit log,
// newest first: up to limit events below seq before (0: from the newest)
// that match f, and whether more follow. Owners and admins only.
func (s *OrgService) AuditPage(ctx context.Context, p Principal, f repository.AuditFilter, before int64, limit int) ([]model.Event, bool, error) {
	if !p.Can(model.RoleAdmin) {
		return nil, false, ErrForbidden
	}
	if s.audit == nil {
		return nil, false, ErrAuditOff
	}
	return s.audit.Page(ctx, p.OrgID, f, before, limit)
}

// AuditExport calls fn with every event of the principal's organization's
// log that matches f, in sequence order, once the export itself is
// recorded (as its last event, included when f lets it through). Owners
// and admins only.
func (s *OrgService) AuditExport(ctx context.Context, p Principal, f repository.AuditFilter, fn func(*model.Event) error) error {
	if !p.Can(model.RoleAdmin) {
		return ErrForbidden
	}
	if s.audit == nil {
		return ErrAuditOff
	}
	ev := model.Event{Action: ActAuditExported, Actor: p.actor(), Targets: []model.Target{{Type: model.TargetOrganization, ID: p.OrgID.Hex()}}}
	if f.Since != "" || f.Until != "" {
		ev.Changes = map[string]model.Change{}
		if f.Since != "" {
			ev.Changes["since"] = model.Change{To: &f.Since}
		}
		if f.Until != "" {
			ev.Changes["until"] = model.Change{To: &f.Until}
		}
	}
	if err := record(ctx, s.audit, p.OrgID, ev); err != nil {
		return err
	}
	return s.audit.Scan(ctx, p.OrgID, f, fn)
}

// Exists reports whether the organization exists (for the audit sweeper:
// a deleted organization's log goes whole).
func (s *OrgService) Exists(ctx context.Context, id bson.ObjectID) (bool, error) {
	_, err := s.master.Organization(ctx, id)
	if errors.Is(err, repository.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Lookup returns the organization named name, or whose id is name (24 hex
// digits): for operators' commands.
func (s *OrgService) Lookup(ctx context.Context, name string) (*model.Organization, error) {
	if id, err := bson.ObjectIDFromHex(name); err == nil {
		org, err := s.master.Organization(ctx, id)
		if errors.Is(err, repository.ErrNotFound) {
			return nil, ErrOrgNotFound
		}
		return org, err
	}
	return s.byName(ctx, name)
}

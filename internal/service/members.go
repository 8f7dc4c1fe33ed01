package service

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/failpoint"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// Members returns up to limit of the principal's organization's members
// after the given account id, with their e-mails.
func (s *OrgService) Members(ctx context.Context, p Principal, after bson.ObjectID, limit int) ([]Member, error) {
	ms, err := s.master.Members(ctx, p.OrgID, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		a, err := s.master.Admin(ctx, m.AccountID)
		if errors.Is(err, repository.ErrNotFound) {
			continue // its removal under way
		}
		if err != nil {
			return nil, err
		}
		out = append(out, Member{AccountID: m.AccountID, Email: a.Email, Role: m.Role, JoinedAt: m.JoinedAt})
	}
	return out, nil
}

// Member is one member of an organization.
type Member struct {
	AccountID bson.ObjectID
	Email     string
	Role      string
	JoinedAt  time.Time
}

// ChangeRole gives a member of the principal's organization a new role.
// Admins manage admins, members and viewers; only owners make or unmake
// owners. The last owner keeps the role.
func (s *OrgService) ChangeRole(ctx context.Context, p Principal, account bson.ObjectID, role string) error {
	return s.changeMember(ctx, p, account, role)
}

// RemoveMember removes a member of the principal's organization, or, for
// the principal's own account, leaves it.
func (s *OrgService) RemoveMember(ctx context.Context, p Principal, account bson.ObjectID) error {
	return s.changeMember(ctx, p, account, "")
}

// changeMember runs a change of one membership (role "": removal) as an
// operation on the organization, so that changes of its owners are
// serialized: the operation's record is the exclusive right to change the
// organization, and the count of owners it checks cannot move under it.
func (s *OrgService) changeMember(ctx context.Context, p Principal, account bson.ObjectID, role string) error {
	leaving := account == p.AdminID && role == ""
	if !leaving && !p.Can(model.RoleAdmin) {
		return ErrForbidden
	}
	email := s.emailOf(ctx, p, account)
	target, err := s.master.Membership(ctx, account, p.OrgID)
	if errors.Is(err, repository.ErrNotFound) {
		return ErrMemberNotFound
	}
	if err != nil {
		return err
	}
	if !leaving && !p.Can(model.RoleOwner) && (target.Role == model.RoleOwner || role == model.RoleOwner) {
		return ErrForbidden
	}
	if role == target.Role {
		return nil
	}
	address, err := email()
	if err != nil {
		return err
	}
	ev := memberEvent(ctx, p, account, address, target.Role, role)
	r, ctx, cancel, err := s.run.Begin(ctx, model.OpMember, p.OrgID, model.OperationPlan{
		Member: account, Role: role, OldRole: target.Role, Grant: bson.NewObjectID(), Events: []model.PlannedEvent{ev},
	})
	if err != nil {
		return err
	}
	defer cancel()
	_, err = s.run.Drive(ctx, r)
	return err
}

// emailOf reads the e-mail of account, which names it in the audit log,
// beside the request's other reads: the answer waits in the function it
// returns ("" without a log, or when the account is gone).
func (s *OrgService) emailOf(ctx context.Context, p Principal, account bson.ObjectID) func() (string, error) {
	if account == p.AdminID {
		return func() (string, error) { return p.Email, nil }
	}
	if s.audit == nil {
		return func() (string, error) { return "", nil }
	}
	type answer struct {
		email string
		err   error
	}
	got := make(chan answer, 1)
	go func() {
		a, err := s.master.Admin(ctx, account)
		switch {
		case errors.Is(err, repository.ErrNotFound):
			got <- answer{}
		case err != nil:
			got <- answer{err: err}
		default:
			got <- answer{email: a.Email}
		}
	}()
	return func() (string, error) { a := <-got; return a.email, a.err }
}

// prepareMember refuses a change that would leave the organization
// without an owner, or whose member is gone. It marks nothing.
func (s *OrgService) prepareMember(ctx context.Context, r *Run) error {
	p := r.Op.Plan
	m, err := s.master.Membership(ctx, p.Member, r.Op.OrgID)
	if errors.Is(err, repository.ErrNotFound) {
		return ErrMemberNotFound
	}
	if err != nil {
		return err
	}
	if m.Role != p.OldRole {
		return ErrOrgBusy // changed since the request read it: retry
	}
	if m.Role == model.RoleOwner {
		owners, err := s.master.Owners(ctx, r.Op.OrgID)
		if err != nil {
			return err
		}
		if len(owners) <= 1 {
			return ErrLastOwner
		}
	}
	return nil
}

// completeMember makes the change: a new role under a new grant, or the
// membership removed (and the account, if that was its last one). The
// organization's admin_id follows its owners.
func (s *OrgService) completeMember(ctx context.Context, r *Run) error {
	p := r.Op.Plan
	id := model.MembershipID(p.Member, r.Op.OrgID)
	defer s.forgetAdmin(p.Member) // after the writes
	failpoint.Reach("member:before-change")
	if p.Role != "" {
		if err := s.master.SetMembershipRole(ctx, id, p.Role, p.Grant); err != nil {
			return err
		}
	} else {
		if err := s.dropIfAloneBut(ctx, p.Member, r.Op.OrgID); err != nil {
			return err
		}
		if err := s.master.DeleteMembership(ctx, id); err != nil {
			return err
		}
	}
	failpoint.Reach("member:after-change")
	return s.followOwners(ctx, r.Op.OrgID)
}

// undoMember has nothing to undo: phase one wrote nothing.
func (s *OrgService) undoMember(context.Context, *Run) error { return nil }

// followOwners keeps the organization's admin_id on a member: the account
// that signed it up while it is a member, else its oldest owner.
func (s *OrgService) followOwners(ctx context.Context, orgID bson.ObjectID) error {
	org, err := s.master.Organization(ctx, orgID)
	if err != nil {
		return err
	}
	if _, err := s.master.Membership(ctx, org.AdminID, orgID); err == nil || !errors.Is(err, repository.ErrNotFound) {
		return err
	}
	owners, err := s.master.Owners(ctx, orgID)
	if err != nil || len(owners) == 0 {
		return err
	}
	defer s.forgetOrg(orgID, org.Slug)
	return s.master.SetOrganizationAdmin(ctx, orgID, owners[0].AccountID)
}

// Member returns one member of the principal's organization.
func (s *OrgService) Member(ctx context.Context, p Principal, account bson.ObjectID) (*Member, error) {
	m, err := s.master.Membership(ctx, account, p.OrgID)
	if errors.Is(err, repository.ErrNotFound) {
		return nil, ErrMemberNotFound
	}
	if err != nil {
		return nil, err
	}
	a, err := s.master.Admin(ctx, account)
	if errors.Is(err, repository.ErrNotFound) {
		return nil, ErrMemberNotFound
	}
	if err != nil {
		return nil, err
	}
	return &Member{AccountID: account, Email: a.Email, Role: m.Role, JoinedAt: m.JoinedAt}, nil
}

// ErrWrongCurrentPassword: a change of one's own account without its
// current password.
var ErrWrongCurrentPassword = errors.New("current password is incorrect")

// AccountChange is a change of one's own account (PATCH /me).
type AccountChange struct {
	Email, Password *string
	CurrentPassword string
}

// ChangeAccount changes the principal's own e-mail or password, given its
// current password, and ends every token of the account; the answer is a
// fresh token for the principal's organization. It runs as an update
// operation recorded under the account's id: the e-mail is claimed
// before, and the old claim released after, as in /org/update, and the
// organization is not touched.
func (s *OrgService) ChangeAccount(ctx context.Context, p Principal, in AccountChange) (string, error) {
	admin, err := s.master.Admin(ctx, p.AdminID)
	if errors.Is(err, repository.ErrNotFound) {
		return "", ErrAdminNotFound
	}
	if err != nil {
		return "", err
	}
	ok, err := s.passwords.Check(ctx, admin.PasswordHash, in.CurrentPassword)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", ErrWrongCurrentPassword
	}
	org, err := s.master.Organization(ctx, p.OrgID)
	if err != nil {
		return "", err
	}
	plan := model.OperationPlan{
		AdminID: admin.ID, Email: admin.Email, OldEmail: admin.Email, TokenVersion: admin.TokenVersion,
	}
	if in.Email != nil {
		plan.Email = model.NormalizeEmail(*in.Email)
	}
	if plan.Email == plan.OldEmail && in.Password == nil {
		return s.auth.issue(admin, org, p.member(), p.SessionStart)
	}
	if plan.Events, err = s.accountEvents(ctx, p, org, plan, in.Password != nil); err != nil {
		return "", err
	}
	r, ctx, cancel, err := s.run.Begin(ctx, model.OpUpdate, admin.ID, plan)
	if err != nil {
		return "", err
	}
	defer cancel()
	if in.Password != nil {
		if err := s.hashPassword(ctx, r, *in.Password); err != nil {
			return "", err
		}
	}
	if _, err := s.run.Drive(ctx, r); err != nil {
		return "", err
	}
	admin.TokenVersion = plan.TokenVersion + 1
	return s.auth.issue(admin, org, p.member(), p.SessionStart)
}

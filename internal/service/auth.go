package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/audit"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/security"
)

// Principal is the admin a verified token speaks for.
type Principal struct {
	AdminID bson.ObjectID
	// Email is the account's address, as checked (for audit events).
	Email string
	// Operator, when set, names the operator's command acting for the
	// organization (orgsvc import, ...): the events' actor is the system.
	Operator string
	// Limits are the organization's own limits, as checked.
	Limits *model.OrgLimits
	OrgID  bson.ObjectID
	// Tenant is the organization's tenant collection, as it was when the
	// token was checked, and CollectionUUID its identity then.
	Tenant         model.Tenant
	CollectionUUID string
	// SessionStart is when the token's session began (its login); a
	// refreshed token keeps it.
	SessionStart time.Time
	// TokenVersion is the admin's token version the token was checked
	// against.
	TokenVersion int64
	// Role is the account's role in the organization, and Grant the
	// membership's grant, as checked.
	Role  string
	Grant bson.ObjectID
}

// member is the principal's membership as its token was checked.
func (p Principal) member() *model.Membership {
	return &model.Membership{AccountID: p.AdminID, OrgID: p.OrgID, Role: p.Role, Grant: p.Grant}
}

// Can reports whether the principal's role is at least role.
func (p Principal) Can(role string) bool { return model.RoleRank(p.Role) >= model.RoleRank(role) }

// AuthService logs admins in and verifies their tokens.
type AuthService struct {
	master    *repository.MasterRepository
	tokens    *security.Tokens
	passwords *security.Passwords
	cache     *principalCache
	orgs      *orgCache
	checks    flights[tokenCheckKey, checked]
	orgReads  flights[orgReadKey, model.Organization]
	audit     *audit.Log // nil: no audit log
	refusals  refusals
}

// SetAudit makes the service record logins, switches and logouts in log.
func (s *AuthService) SetAudit(log *audit.Log) { s.audit = log }

// tokenCheckKey and checked are a token check's shared database reads.
type tokenCheckKey struct {
	admin, org, grant bson.ObjectID
	version           int64
	gen               uint64
}

type checked struct {
	admin    model.Admin
	member   model.Membership
	org      model.Organization
	notAfter time.Time
}

// orgReadKey is a shared read of an organization record.
type orgReadKey struct {
	key string
	gen orgGen
}

// CacheOrganizations keeps organizations at rest for ttl (0: never) in
// an LRU shared with OrgService; hit and miss, when set, count lookups.
func (s *AuthService) CacheOrganizations(ttl time.Duration, hit, miss func()) {
	c := newOrgCache(ttl)
	c.hit, c.miss = hit, miss
	s.orgs = c
}

// organization reads the organization id, from the organization cache
// when it holds it; expires is when that entry ends (zero: read now).
func (s *AuthService) organization(ctx context.Context, id bson.ObjectID) (_ *model.Organization, expires time.Time, _ error) {
	key := orgIDKey(id)
	if org, exp, ok := s.orgs.get(key); ok {
		return org, exp, nil
	}
	gen := s.orgs.generation(key)
	if !s.orgs.enabled() {
		org, err := s.master.Organization(ctx, id)
		return org, time.Time{}, err
	}
	org, err := s.orgReads.do(ctx, orgReadKey{key, gen}, func(ctx context.Context) (model.Organization, error) {
		org, err := s.master.Organization(ctx, id)
		if err != nil {
			return model.Organization{}, err
		}
		s.orgs.put(key, org, gen)
		return *org, nil
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	return &org, time.Time{}, nil
}

// NewAuthService builds an AuthService. cacheTTL is how long a verified
// token's admin and organization are trusted without asking the database
// again (0: ask every time); see principalCache.
func NewAuthService(master *repository.MasterRepository, tokens *security.Tokens, passwords *security.Passwords, cacheTTL time.Duration) *AuthService {
	return &AuthService{master: master, tokens: tokens, passwords: passwords, cache: newPrincipalCache(cacheTTL)}
}

// Forget drops what this instance has cached about an admin and the
// organizations it administers, and keeps a check or read already under
// way from caching what it read. Every change to an admin's tokens,
// e-mail, password or organization calls it once the change is written.
func (s *AuthService) Forget(admin bson.ObjectID) {
	s.cache.forget(admin)
	s.orgs.forgetAdmin(admin)
}

// OrgRole is one organization of an account, with its role there.
type OrgRole struct {
	OrgID    bson.ObjectID
	Name     string
	Role     string
	JoinedAt time.Time
}

// LoginResult is a login's token, and the account's organizations when it
// is in more than one.
type LoginResult struct {
	Token         string
	Organizations []OrgRole
}

// Login checks an account's credentials and returns a token for org (zero:
// the organization the account joined first). An unknown address costs one
// bcrypt comparison, as a wrong password does; an organization the account
// is not in is the same refusal as a wrong password.
func (s *AuthService) Login(ctx context.Context, email, password string, org bson.ObjectID) (*LoginResult, error) {
	email = model.NormalizeEmail(email)
	admin, err := s.adminByEmail(ctx, email)
	if err != nil {
		return nil, err
	}
	hash := ""
	if admin != nil {
		hash = admin.PasswordHash
	}
	ok, err := s.passwords.Check(ctx, hash, password)
	if err != nil {
		return nil, err
	}
	if !ok {
		if admin != nil {
			if err := s.loginFailed(ctx, admin, org, "invalid_password"); err != nil {
				return nil, err
			}
		}
		return nil, ErrInvalidCredentials
	}
	orgs, err := s.Organizations(ctx, admin.ID)
	if err != nil {
		return nil, err
	}
	pick := -1
	for i, o := range orgs {
		if org.IsZero() || o.org.ID == org {
			pick = i
			break
		}
	}
	if pick < 0 {
		// A sign-up not finished yet, or not a member.
		if err := s.loginFailed(ctx, admin, org, "not_a_member"); err != nil {
			return nil, err
		}
		return nil, ErrInvalidCredentials
	}
	if orgs[pick].org.Suspended {
		return nil, ErrOrgSuspended
	}
	ev := model.Event{Action: ActLoginSucceeded, Actor: accountActor(admin.ID, admin.Email),
		Targets: []model.Target{orgTarget(orgs[pick].org.ID, orgs[pick].org.Name)}}
	if err := record(ctx, s.audit, orgs[pick].org.ID, ev); err != nil {
		return nil, err
	}
	token, err := s.issue(admin, &orgs[pick].org, &orgs[pick].member, time.Time{})
	if err != nil {
		return nil, err
	}
	res := &LoginResult{Token: token}
	if len(orgs) > 1 {
		for _, o := range orgs {
			res.Organizations = append(res.Organizations, o.role())
		}
	}
	return res, nil
}

// joined is one organization of an account.
type joined struct {
	member model.Membership
	org    model.Organization
}

func (j joined) role() OrgRole {
	return OrgRole{OrgID: j.org.ID, Name: j.org.Name, Role: j.member.Role, JoinedAt: j.member.JoinedAt}
}

// Organizations returns the organizations an account belongs to, the first
// joined first, leaving out those still being signed up.
func (s *AuthService) Organizations(ctx context.Context, account bson.ObjectID) ([]joined, error) {
	members, err := s.master.MembershipsOf(ctx, account)
	if err != nil {
		return nil, err
	}
	out := make([]joined, 0, len(members))
	for _, m := range members {
		org, _, err := s.organization(ctx, m.OrgID)
		if errors.Is(err, repository.ErrNotFound) || (err == nil && org.State == model.StateCreating) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, joined{member: m, org: *org})
	}
	return out, nil
}

// Switch returns a token for another organization of the principal's
// account, in the same session: no password, no bcrypt.
func (s *AuthService) Switch(ctx context.Context, p Principal, org *model.Organization) (string, error) {
	m, err := s.master.Membership(ctx, p.AdminID, org.ID)
	if errors.Is(err, repository.ErrNotFound) {
		return "", ErrNotMember
	}
	if err != nil {
		return "", err
	}
	ev := model.Event{Action: ActSwitch, Actor: p.actor(), Targets: []model.Target{
		orgTarget(org.ID, org.Name), {Type: model.TargetOrganization, ID: p.OrgID.Hex()},
	}}
	if err := record(ctx, s.audit, org.ID, ev); err != nil {
		return "", err
	}
	admin := &model.Admin{ID: p.AdminID, TokenVersion: p.TokenVersion}
	return s.issue(admin, org, m, p.SessionStart)
}

// Account is an account with its organizations, for GET /me.
type Account struct {
	ID            bson.ObjectID
	Email         string
	Organizations []OrgRole
}

// Me returns the principal's account and its organizations.
func (s *AuthService) Me(ctx context.Context, p Principal) (*Account, error) {
	admin, err := s.master.Admin(ctx, p.AdminID)
	if errors.Is(err, repository.ErrNotFound) {
		return nil, ErrAdminNotFound
	}
	if err != nil {
		return nil, err
	}
	orgs, err := s.Organizations(ctx, p.AdminID)
	if err != nil {
		return nil, err
	}
	a := &Account{ID: admin.ID, Email: admin.Email}
	for _, o := range orgs {
		a.Organizations = append(a.Organizations, o.role())
	}
	return a, nil
}

// adminByEmail finds the admin whose address is exactly email (the domain
// already lower-cased); nil when there is none.
func (s *AuthService) adminByEmail(ctx context.Context, email string) (*model.Admin, error) {
	admin, err := s.master.AdminByEmailKey(ctx, model.EmailKey(email))
	if errors.Is(err, repository.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// The claim is case-insensitive; the address itself, as in the
	// original service, matches exactly.
	if admin.Email != email {
		return nil, nil
	}
	return admin, nil
}

// Authenticate verifies a token and checks it against the master metadata:
// the admin exists and still belongs to the organization, and the token's
// version is the admin's current one. The principal names the
// organization's tenant collection as it is now: a rename does not end
// tokens.
func (s *AuthService) Authenticate(ctx context.Context, raw string) (Principal, error) {
	claims, err := s.tokens.Verify(raw)
	if err != nil {
		return Principal{}, err // security.ErrInvalidToken
	}
	adminID, err := bson.ObjectIDFromHex(claims.Subject)
	if err != nil {
		return Principal{}, ErrAdminNotFound
	}
	orgID, err := bson.ObjectIDFromHex(claims.OrgID)
	if err != nil {
		return Principal{}, ErrOrgMismatch
	}
	var grant bson.ObjectID
	if claims.Grant != "" {
		if grant, err = bson.ObjectIDFromHex(claims.Grant); err != nil {
			return Principal{}, ErrTokenRevoked
		}
	}
	if p, ok := s.cache.get(adminID, claims.Version, orgID, grant); ok {
		p.SessionStart, p.TokenVersion = claims.SessionStart(), claims.Version
		return p, nil
	}
	// Taken before the reads: a change of the admin meanwhile makes put
	// refuse what they found.
	gen := s.cache.generation(adminID)
	check := func(ctx context.Context) (checked, error) {
		admin, err := s.master.Admin(ctx, adminID)
		if errors.Is(err, repository.ErrNotFound) {
			return checked{}, ErrAdminNotFound
		}
		if err != nil {
			return checked{}, err
		}
		if admin.TokenVersion != claims.Version {
			return checked{}, ErrTokenRevoked
		}
		member, err := s.master.Membership(ctx, adminID, orgID)
		if errors.Is(err, repository.ErrNotFound) {
			return checked{}, ErrOrgMismatch
		}
		if err != nil {
			return checked{}, err
		}
		if member.Grant != grant {
			return checked{}, ErrTokenRevoked
		}
		// A cached record is at most ORG_CACHE_TTL old, and the principal
		// built on it lives no longer than that entry.
		org, notAfter, err := s.organization(ctx, orgID)
		if errors.Is(err, repository.ErrNotFound) || (err == nil && org.State == model.StateCreating) {
			return checked{}, ErrOrgGone
		}
		if err != nil {
			return checked{}, err
		}
		return checked{admin: *admin, member: *member, org: *org, notAfter: notAfter}, nil
	}
	var c checked
	if s.cache.ttl > 0 {
		// Concurrent checks of one token share the reads (see flights).
		c, err = s.checks.do(ctx, tokenCheckKey{adminID, orgID, grant, claims.Version, gen}, check)
	} else {
		c, err = check(ctx)
	}
	if err != nil {
		return Principal{}, err
	}
	if c.org.Suspended {
		return Principal{}, ErrOrgSuspended
	}
	p := Principal{AdminID: adminID, Email: c.admin.Email, OrgID: orgID, Tenant: c.org.Tenant(), CollectionUUID: c.org.CollectionUUID,
		Role: c.member.Role, Grant: c.member.Grant, Limits: c.org.Limits}
	s.cache.put(p, c.admin.TokenVersion, gen, c.notAfter)
	p.SessionStart, p.TokenVersion = claims.SessionStart(), claims.Version
	return p, nil
}

// Logout ends every token of the principal's admin, by moving its token
// version on.
func (s *AuthService) Logout(ctx context.Context, p Principal) error {
	defer s.Forget(p.AdminID)
	_, err := s.master.UpdateAdmin(ctx, p.AdminID, repository.AdminChange{BumpVersion: true})
	if errors.Is(err, repository.ErrNotFound) {
		return ErrAdminNotFound
	}
	if err != nil {
		return err
	}
	return record(ctx, s.audit, p.OrgID, model.Event{Action: ActLogout, Actor: p.actor(),
		Targets: []model.Target{{Type: model.TargetOrganization, ID: p.OrgID.Hex()}}})
}

// Claims verifies a token's signature and lifetime only, and returns the
// admin and organization it names; the error is security.ErrInvalidToken.
func (s *AuthService) Claims(raw string) (admin, org bson.ObjectID, err error) {
	claims, err := s.tokens.Verify(raw)
	if err != nil {
		return admin, org, err
	}
	admin, err1 := bson.ObjectIDFromHex(claims.Subject)
	org, err2 := bson.ObjectIDFromHex(claims.OrgID)
	if err1 != nil || err2 != nil {
		return admin, org, fmt.Errorf("%w: sub or org_id is not an id", security.ErrInvalidToken)
	}
	return admin, org, nil
}

// issue signs a token in the session begun at sessionStart (zero: a new
// session).
func (s *AuthService) issue(admin *model.Admin, org *model.Organization, m *model.Membership, sessionStart time.Time) (string, error) {
	g := security.Grant{
		AdminID: admin.ID.Hex(), OrgID: org.ID.Hex(), OrgSlug: org.Slug, Version: admin.TokenVersion,
		Role: m.Role, AuthTime: sessionStart,
	}
	if !m.Grant.IsZero() {
		g.MemberGrant = m.Grant.Hex()
	}
	return s.tokens.Issue(g)
}

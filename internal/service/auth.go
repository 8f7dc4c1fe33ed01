package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/security"
)

// Principal is the admin a verified token speaks for.
type Principal struct {
	AdminID bson.ObjectID
	OrgID   bson.ObjectID
	// Tenant is the organization's tenant collection, as it was when the
	// token was checked.
	Tenant model.Tenant
	// SessionStart is when the token's session began (its login); a
	// refreshed token keeps it.
	SessionStart time.Time
	// TokenVersion is the admin's token version the token was checked
	// against.
	TokenVersion int64
}

// AuthService logs admins in and verifies their tokens.
type AuthService struct {
	master    *repository.MasterRepository
	tokens    *security.Tokens
	passwords *security.Passwords
	cache     *principalCache
	orgs      *orgCache
	checks    flights[tokenCheckKey, checked]
	orgReads  flights[orgReadKey, model.Organization]
}

// tokenCheckKey and checked are a token check's shared database reads.
type tokenCheckKey struct {
	admin, org bson.ObjectID
	version    int64
	gen        uint64
}

type checked struct {
	admin    model.Admin
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

// Login checks an admin's credentials and returns a token. An unknown
// address costs one bcrypt comparison, as a wrong password does.
func (s *AuthService) Login(ctx context.Context, email, password string) (string, error) {
	email = model.NormalizeEmail(email)
	admin, err := s.adminByEmail(ctx, email)
	if err != nil {
		return "", err
	}
	hash := ""
	if admin != nil {
		hash = admin.PasswordHash
	}
	ok, err := s.passwords.Check(ctx, hash, password)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", ErrInvalidCredentials
	}
	org, _, err := s.organization(ctx, admin.OrganizationID)
	if errors.Is(err, repository.ErrNotFound) || (err == nil && org.State == model.StateCreating) {
		return "", ErrInvalidCredentials // a sign-up not finished yet
	}
	if err != nil {
		return "", err
	}
	return s.issue(admin, org, time.Time{})
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
	if p, ok := s.cache.get(adminID, claims.Version, orgID); ok {
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
		if admin.OrganizationID != orgID {
			return checked{}, ErrOrgMismatch
		}
		if admin.TokenVersion != claims.Version {
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
		return checked{admin: *admin, org: *org, notAfter: notAfter}, nil
	}
	var c checked
	if s.cache.ttl > 0 {
		// Concurrent checks of one token share the reads (see flights).
		c, err = s.checks.do(ctx, tokenCheckKey{adminID, orgID, claims.Version, gen}, check)
	} else {
		c, err = check(ctx)
	}
	if err != nil {
		return Principal{}, err
	}
	p := Principal{AdminID: adminID, OrgID: orgID, Tenant: c.org.Tenant()}
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
	return err
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
func (s *AuthService) issue(admin *model.Admin, org *model.Organization, sessionStart time.Time) (string, error) {
	return s.tokens.Issue(admin.ID.Hex(), org.ID.Hex(), org.Slug, admin.TokenVersion, sessionStart)
}

package security

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are the claims of an access token.
type Claims struct {
	// OrgID is the organization's id, as the original service called it.
	OrgID string `json:"org_id"`
	// Org is the organization's slug when the token was issued, for
	// clients; nothing reads it: a rename keeps tokens, so the tenant
	// collection comes from the organization's record, found by OrgID.
	Org string `json:"org"`
	// Version is the admin's token version when the token was issued.
	Version int64 `json:"ver"`
	// AuthTime is when the session began: the login. A refreshed token
	// keeps it. Tokens of earlier versions have none.
	AuthTime *jwt.NumericDate `json:"auth_time,omitempty"`
	// Role is the holder's role in the organization when the token was
	// issued, for clients; rights come from the membership.
	Role string `json:"role,omitempty"`
	// Grant names the membership's grant the token was issued under (none
	// for a membership made from the version before teams).
	Grant string `json:"grant,omitempty"`
	jwt.RegisteredClaims
}

// SessionStart is when the token's session began: auth_time, or iat for a
// token without one (no session can have begun later than that).
func (c *Claims) SessionStart() time.Time {
	if c.AuthTime != nil {
		return c.AuthTime.Time
	}
	return c.IssuedAt.Time
}

// ErrInvalidToken is the one error of a token that fails verification,
// in this package, the service and the API; ErrTokenExpired (a genuine
// token past its exp) and ErrSessionOver (past its session's end) wrap it.
var (
	ErrInvalidToken = errors.New("invalid token")
	ErrTokenExpired = fmt.Errorf("%w: expired", ErrInvalidToken)
	ErrSessionOver  = fmt.Errorf("%w: session over", ErrInvalidToken)
)

// Tokens issues and verifies HMAC-signed JWTs.
type Tokens struct {
	secret []byte
	method jwt.SigningMethod
	issuer string
	ttl    time.Duration
	// maxSession bounds a session from its start, refreshes included
	// (0: no bound).
	maxSession time.Duration
	parser     *jwt.Parser
	now        func() time.Time
}

// Leeway is the clock skew tolerated when checking exp and iat.
const Leeway = 30 * time.Second

// NewTokens builds a token service. alg is HS256, HS384 or HS512; only that
// algorithm is accepted when verifying. A token lives ttl.
func NewTokens(secret []byte, alg, issuer string, ttl time.Duration) (*Tokens, error) {
	method := jwt.GetSigningMethod(alg)
	if _, ok := method.(*jwt.SigningMethodHMAC); !ok {
		return nil, fmt.Errorf("unsupported JWT algorithm %q", alg)
	}
	t := &Tokens{secret: secret, method: method, issuer: issuer, ttl: ttl, now: time.Now}
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{alg}),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(func() time.Time { return t.now() }), // one clock for exp, iat and the session
	)
	return t, nil
}

// WithMaxSession bounds every session to d from its start, refreshes
// included (0: no bound), and returns t. Call it before t is used.
func (t *Tokens) WithMaxSession(d time.Duration) *Tokens {
	t.maxSession = d
	return t
}

// Grant is what a token says of its holder.
type Grant struct {
	AdminID, OrgID, OrgSlug string
	Version                 int64
	Role, MemberGrant       string
	// AuthTime is when the session began (zero: a new session, now).
	AuthTime time.Time
}

// Issue signs a token for an account in an organization. It expires after
// the TTL, or at the session's end if that comes first.
func (t *Tokens) Issue(g Grant) (string, error) {
	adminID, orgID, orgSlug, version, authTime := g.AdminID, g.OrgID, g.OrgSlug, g.Version, g.AuthTime
	now := t.now()
	if authTime.IsZero() {
		authTime = now
	}
	exp := now.Add(t.ttl)
	if end := authTime.Add(t.maxSession); t.maxSession > 0 && end.Before(exp) {
		exp = end
	}
	c := Claims{
		OrgID:    orgID,
		Org:      orgSlug,
		Version:  version,
		AuthTime: jwt.NewNumericDate(authTime),
		Role:     g.Role,
		Grant:    g.MemberGrant,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   adminID,
			Issuer:    t.issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
	}
	return jwt.NewWithClaims(t.method, c).SignedString(t.secret)
}

// Verify checks the signature, the algorithm, the issuer, exp, iat and the
// session's end, and returns the claims. Every failure is ErrInvalidToken.
func (t *Tokens) Verify(raw string) (*Claims, error) {
	var c Claims
	_, err := t.parser.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return t.secret, nil })
	// The signature was checked before exp: an expired token's claims are
	// genuine. The session's end has no leeway.
	genuine := err == nil || errors.Is(err, jwt.ErrTokenExpired)
	if genuine && t.maxSession > 0 && c.IssuedAt != nil && !t.now().Before(c.SessionStart().Add(t.maxSession)) {
		return nil, ErrSessionOver
	}
	if errors.Is(err, jwt.ErrTokenExpired) {
		return nil, fmt.Errorf("%w: %v", ErrTokenExpired, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if c.IssuedAt == nil || c.Subject == "" || c.OrgID == "" {
		return nil, fmt.Errorf("%w: missing claims", ErrInvalidToken)
	}
	return &c, nil
}

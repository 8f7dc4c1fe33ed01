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
	// Org is the organization's slug: its tenant collection is "org_" + Org.
	Org string `json:"org"`
	// Version is the admin's token version when the token was issued.
	Version int64 `json:"ver"`
	jwt.RegisteredClaims
}

// ErrInvalidToken covers every token that fails verification;
// ErrTokenExpired, one of them, a genuine token past its exp.
var (
	ErrInvalidToken = errors.New("invalid token")
	ErrTokenExpired = fmt.Errorf("%w: expired", ErrInvalidToken)
)

// Tokens issues and verifies HMAC-signed JWTs.
type Tokens struct {
	secret []byte
	method jwt.SigningMethod
	issuer string
	ttl    time.Duration
	parser *jwt.Parser
	now    func() time.Time
}

// Leeway is the clock skew tolerated when checking exp and iat.
const Leeway = 30 * time.Second

// NewTokens builds a token service. alg is HS256, HS384 or HS512; only that
// algorithm is accepted when verifying.
func NewTokens(secret []byte, alg, issuer string, ttl time.Duration) (*Tokens, error) {
	method := jwt.GetSigningMethod(alg)
	if _, ok := method.(*jwt.SigningMethodHMAC); !ok {
		return nil, fmt.Errorf("unsupported JWT algorithm %q", alg)
	}
	return &Tokens{
		secret: secret,
		method: method,
		issuer: issuer,
		ttl:    ttl,
		now:    time.Now,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{alg}),
			jwt.WithIssuer(issuer),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(Leeway),
		),
	}, nil
}

// Issue signs a token for an admin of an organization.
func (t *Tokens) Issue(adminID, orgID, orgSlug string, version int64) (string, error) {
	now := t.now()
	c := Claims{
		OrgID:   orgID,
		Org:     orgSlug,
		Version: version,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   adminID,
			Issuer:    t.issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
		},
	}
	return jwt.NewWithClaims(t.method, c).SignedString(t.secret)
}

// Verify checks the signature, the algorithm, the issuer, exp and iat, and
// returns the claims. Every failure is ErrInvalidToken.
func (t *Tokens) Verify(raw string) (*Claims, error) {
	var c Claims
	_, err := t.parser.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return t.secret, nil })
	if errors.Is(err, jwt.ErrTokenExpired) { // the signature was checked first
		return nil, fmt.Errorf("%w: %v", ErrTokenExpired, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if c.IssuedAt == nil || c.Subject == "" || c.OrgID == "" || c.Org == "" {
		return nil, fmt.Errorf("%w: missing claims", ErrInvalidToken)
	}
	return &c, nil
}

package security

import (
	"context"

	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"golang.org/x/crypto/bcrypt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func newTokens(t *testing.T) *Tokens {
	t.Helper()
	tk, err := NewTokens(secret, "HS256", "orgsvc", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestTokenRoundTrip(t *testing.T) {
	tk := newTokens(t)
	raw, err := tk.Issue(Grant{AdminID: "admin", OrgID: "org-id", OrgSlug: "slug", Version: 7})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tk.Verify(raw)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "admin" || c.OrgID != "org-id" || c.Org != "slug" || c.Version != 7 || c.Issuer != "orgsvc" {
		t.Fatalf("claims: %+v", c)
	}
}

func TestForgedTokensAreRefused(t *testing.T) {
	tk := newTokens(t)
	now := time.Now()
	good := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": "a", "org_id": "o", "org": "s", "ver": 0, "iss": "orgsvc", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	}
	sign := func(m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	without := func(k string) jwt.MapClaims { c := good(); delete(c, k); return c }
	with := func(k string, v any) jwt.MapClaims { c := good(); c[k] = v; return c }
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	none := sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good())
	valid := sign(jwt.SigningMethodHS256, secret, good())

	cases := map[string]string{
		"alg none":        none,
		"HS384":           sign(jwt.SigningMethodHS384, secret, good()),
		"HS512":           sign(jwt.SigningMethodHS512, secret, good()),
		"RS256":           sign(jwt.SigningMethodRS256, rsaKey, good()),
		"ES256":           sign(jwt.SigningMethodES256, ecKey, good()),
		"wrong secret":    sign(jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), good()),
		"expired":         sign(jwt.SigningMethodHS256, secret, with("exp", now.Add(-time.Minute).Unix())),
		"no exp":          sign(jwt.SigningMethodHS256, secret, without("exp")),
		"no iat":          sign(jwt.SigningMethodHS256, secret, without("iat")),
		"iat in future":   sign(jwt.SigningMethodHS256, secret, with("iat", now.Add(time.Hour).Unix())),
		"no iss":          sign(jwt.SigningMethodHS256, secret, without("iss")),
		"foreign iss":     sign(jwt.SigningMethodHS256, secret, with("iss", "someone-else")),
		"no sub":          sign(jwt.SigningMethodHS256, secret, without("sub")),
		"no org_id":       sign(jwt.SigningMethodHS256, secret, without("org_id")),
		"tampered claims": tamper(valid),
		"garbage":         "not-a-jwt",
		"empty":           "",
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := tk.Verify(raw); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("got %v, want ErrInvalidToken", err)
			}
		})
	}
	if _, err := tk.Verify(valid); err != nil {
		t.Fatalf("the untampered token fails: %v", err)
	}
	// The slug claim is issued but not needed.
	if c, err := tk.Verify(sign(jwt.SigningMethodHS256, secret, without("org"))); err != nil || c.OrgID != "o" {
		t.Fatalf("a token without org: %v, %v", c, err)
	}
	// Within the leeway an expired token still passes; past it, not.
	if _, err := tk.Verify(sign(jwt.SigningMethodHS256, secret, with("exp", now.Add(-10*time.Second).Unix()))); err != nil {
		t.Fatalf("10 s past exp is within the leeway: %v", err)
	}
}

func tamper(token string) string {
	parts := strings.Split(token, ".")
	// Flip one character of the payload.
	b := []byte(parts[1])
	if b[5] == 'A' {
		b[5] = 'B'
	} else {
		b[5] = 'A'
	}
	parts[1] = string(b)
	return strings.Join(parts, ".")
}

func TestNewTokensRefusesNonHMAC(t *testing.T) {
	for _, alg := range []string{"RS256", "none", "ES256", ""} {
		if _, err := NewTokens(secret, alg, "orgsvc", time.Hour); err == nil {
			t.Errorf("NewTokens accepted %q", alg)
		}
	}
}

func TestPasswords(t *testing.T) {
	ctx := context.Background()
	p, err := NewPasswords(4, 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	check := func(hash, pw string) bool {
		t.Helper()
		ok, err := p.Check(ctx, hash, pw)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	h, err := p.Hash(ctx, "correct-horse")
	if err != nil {
		t.Fatal(err)
	}
	if !check(h, "correct-horse") || check(h, "wrong-horse") {
		t.Fatal("Check does not tell right from wrong")
	}
	if check("", "correct-horse") || check("", "orgsvc-dummy-password") {
		t.Fatal("an unknown account matched")
	}
	long := strings.Repeat("x", 72)
	h, err = p.Hash(ctx, long)
	if err != nil {
		t.Fatal(err)
	}
	if !check(h, long) || check(h, long+"y") {
		t.Fatal("72 bytes must match exactly and 73 never")
	}
	if _, err := p.Hash(ctx, long+"y"); !errors.Is(err, ErrPasswordTooLong) {
		t.Fatalf("Hash of 73 bytes: %v", err)
	}
}

func TestPasswordPoolTurnsAwayWhenFull(t *testing.T) {
	p, err := NewPasswords(4, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), 4)
	ctx := context.Background()
	// The only worker is taken (as by a long bcrypt call).
	p.admit <- struct{}{}
	p.run <- struct{}{}

	queued := make(chan error, 1)
	go func() {
		ok, err := p.Check(ctx, string(hash), "pw")
		if err == nil && !ok {
			err = errors.New("queued check did not match")
		}
		queued <- err
	}()
	for p.Waiting() != 1 {
		time.Sleep(time.Millisecond)
	}
	// The queue is full: the next call is turned away at once.
	if _, err := p.Check(ctx, string(hash), "pw"); !errors.Is(err, ErrBusy) {
		t.Fatalf("full pool: %v, want ErrBusy", err)
	}
	if _, err := p.Hash(ctx, "pw"); !errors.Is(err, ErrBusy) {
		t.Fatalf("full pool: %v, want ErrBusy", err)
	}
	// A waiter whose context ends gives up... (the queue slot is taken, so
	// try with a fresh pool)
	p2, _ := NewPasswords(4, 1, 4)
	p2.run <- struct{}{}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p2.Check(cctx, string(hash), "pw"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	// Freeing the worker lets the queued call through.
	<-p.run
	<-p.admit
	if err := <-queued; err != nil {
		t.Fatal(err)
	}
	if p.Waiting() != 0 || p.Running() != 0 {
		t.Fatalf("waiting %d running %d after the burst", p.Waiting(), p.Running())
	}
}

func TestLoadOrCreateSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jwt_secret")
	a, err := LoadOrCreateSecret(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateSecret(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) || len(a) < 32 {
		t.Fatalf("secret not kept: %q vs %q", a, b)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", st.Mode(), err)
	}
}

// A session ends maxSession after its login: refreshed tokens keep its
// start and expire no later than its end, and past the end every token
// of it is refused, without the exp leeway.
func TestTokenSessionBound(t *testing.T) {
	tk := newTokens(t).WithMaxSession(90 * time.Minute)
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	clock := start
	tk.now = func() time.Time { return clock }

	login, err := tk.Issue(Grant{AdminID: "admin", OrgID: "org-id", OrgSlug: "slug", Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tk.Verify(login)
	if err != nil {
		t.Fatal(err)
	}
	if !c.SessionStart().Equal(start) || !c.ExpiresAt.Equal(start.Add(time.Hour)) {
		t.Fatalf("login: session start %v exp %v, want %v and an hour later", c.SessionStart(), c.ExpiresAt, start)
	}
	// Refreshed 50 minutes in: the session's end comes before the TTL's.
	clock = start.Add(50 * time.Minute)
	refreshed, err := tk.Issue(Grant{AdminID: "admin", OrgID: "org-id", OrgSlug: "slug", Version: 1, AuthTime: c.SessionStart()})
	if err != nil {
		t.Fatal(err)
	}
	r, err := tk.Verify(refreshed)
	if err != nil {
		t.Fatal(err)
	}
	if !r.SessionStart().Equal(start) || !r.ExpiresAt.Equal(start.Add(90*time.Minute)) {
		t.Fatalf("refresh: session start %v exp %v, want %v and %v", r.SessionStart(), r.ExpiresAt, start, start.Add(90*time.Minute))
	}
	// At the end, within exp's leeway: refused as over.
	clock = start.Add(90 * time.Minute)
	if _, err := tk.Verify(refreshed); !errors.Is(err, ErrSessionOver) || !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("at the session's end: %v, want ErrSessionOver", err)
	}

	// A token of an earlier version has no auth_time: its iat stands in.
	sign := func(iat time.Time) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": "a", "org_id": "o", "org": "s", "ver": 0, "iss": "orgsvc",
			"iat": iat.Unix(), "exp": iat.Add(time.Hour).Unix(),
		}).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	old, err := tk.Verify(sign(clock.Add(-10 * time.Minute)))
	if err != nil {
		t.Fatalf("old token: %v", err)
	}
	if !old.SessionStart().Equal(clock.Add(-10 * time.Minute)) {
		t.Fatalf("old token: session start %v, want its iat", old.SessionStart())
	}
	if _, err := tk.Verify(sign(clock.Add(-91 * time.Minute))); !errors.Is(err, ErrSessionOver) {
		t.Fatalf("old token issued past the bound: %v, want ErrSessionOver", err)
	}
	// Without a bound, only exp counts.
	tk.WithMaxSession(0)
	if _, err := tk.Verify(refreshed); err != nil {
		t.Fatalf("no bound: %v", err)
	}
}

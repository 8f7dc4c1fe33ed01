package security_test

import (
	"context"
	"testing"
	"time"

	"github.com/orgsvc/orgsvc/internal/security"
)

var benchSecret = []byte("0123456789abcdef0123456789abcdef")

func benchTokens(b *testing.B) *security.Tokens {
	b.Helper()
	tk, err := security.NewTokens(benchSecret, "HS256", "orgsvc", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	return tk
}

// BenchmarkTokensIssue signs one access token, as every login and update
// does.
func BenchmarkTokensIssue(b *testing.B) {
	tk := benchTokens(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tk.Issue(security.Grant{AdminID: "665f1b2c9d3e4a0012345678", OrgID: "665f1b2c9d3e4a0012345679", OrgSlug: "acme_inc", Version: 3}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokensVerify checks one access token, as every authenticated
// request does before it reads the database.
func BenchmarkTokensVerify(b *testing.B) {
	tk := benchTokens(b)
	raw, err := tk.Issue(security.Grant{AdminID: "665f1b2c9d3e4a0012345678", OrgID: "665f1b2c9d3e4a0012345679", OrgSlug: "acme_inc", Version: 3})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tk.Verify(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPasswordsCheck compares a password with its hash at bcrypt's
// lowest cost, through the bounded pool; each step of the cost doubles it.
func BenchmarkPasswordsCheck(b *testing.B) {
	p, err := security.NewPasswords(4, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	hash, err := p.Hash(ctx, "correct-horse-1")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		ok, err := p.Check(ctx, hash, "correct-horse-1")
		if err != nil || !ok {
			b.Fatalf("Check: %v, %v", ok, err)
		}
	}
}

package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/orgsvc/orgsvc/internal/config"
)

// BenchmarkLoginTimingParity measures a login with an unknown e-mail and
// one with a known e-mail and a wrong password, at bcrypt cost 10. The two
// should cost the same (the unknown address is checked against a dummy
// hash); compare their ns/op:
//
//	go test -run XXX -bench LoginTimingParity -benchtime 40x ./api/
func BenchmarkLoginTimingParity(b *testing.B) {
	e := newEnv(b, func(c *config.Config) { c.BcryptCost = 10 })
	o := e.signUp("parity")
	for _, c := range []struct{ name, email string }{
		{"unknown-email", "nobody@parity.example.com"},
		{"wrong-password", o.email},
	} {
		body := fmt.Sprintf(`{"email":%q,"password":"wrong-password-1"}`, c.email)
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				res, err := http.Post(e.srv.URL+"/admin/login", "application/json", strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != http.StatusUnauthorized {
					b.Fatalf("status %d", res.StatusCode)
				}
			}
		})
	}
}

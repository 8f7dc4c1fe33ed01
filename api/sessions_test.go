package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/orgsvc/orgsvc/internal/config"
)

// TestRevocationIsImmediateUnderLoad: readers keep using a token while its
// admin changes the password on the same instance, with the default
// AUTH_CACHE_TTL. No request that starts after the change was answered
// may pass with the old token, not even one racing a check that read the
// admin before the change. Five changes, to give the race its chances.
func TestRevocationIsImmediateUnderLoad(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.AuthCacheTTL = time.Second })
	o := e.signUp("alpha")
	token := o.token
	type attempt struct {
		start  time.Time
		status int
	}
	for trial := range 5 {
		var (
			mu       sync.Mutex
			attempts []attempt
			wg       sync.WaitGroup
			stop     = make(chan struct{})
		)
		auth := map[string]string{"Authorization": "Bearer " + token}
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					start := time.Now()
					r, err := send(e.srv.URL, "GET", "/org/documents", auth, nil)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					attempts = append(attempts, attempt{start, r.status})
					mu.Unlock()
				}
			}()
		}
		time.Sleep(200 * time.Millisecond) // the token is checked and cached
		r := e.call("PUT", "/org/update", token, map[string]any{"organization_name": "alpha", "password": fmt.Sprintf("new-pass-%d", trial)})
		answered := time.Now()
		expect(t, r, http.StatusOK, "")
		time.Sleep(1500 * time.Millisecond) // past AUTH_CACHE_TTL
		close(stop)
		wg.Wait()

		var before, after, late int
		for _, a := range attempts {
			switch {
			case a.start.Before(answered) && a.status == http.StatusOK:
				before++
			case a.start.After(answered):
				after++
				if a.status == http.StatusOK {
					late++
				}
			}
		}
		if before == 0 || after == 0 {
			t.Fatalf("trial %d: %d answers of 200 before the change, %d requests after it: the readers did not overlap it", trial, before, after)
		}
		if late > 0 {
			t.Errorf("trial %d: %d of %d requests started after the password change's answer passed with the old token", trial, late, after)
		}
		token, _ = r.obj()["access_token"].(string)
	}
}

// TestSessionsEndAtJWTMaxSession: refreshing a token through a no-op
// update keeps the session's start and cannot push exp past
// auth_time + JWT_MAX_SESSION; once that is past, the session's tokens
// are refused with a challenge saying so, and a login starts afresh.
func TestSessionsEndAtJWTMaxSession(t *testing.T) {
	const maxSession = 6 * time.Second
	e := newEnv(t, func(c *config.Config) { c.JWTMaxSession = maxSession })
	o := e.signUp("alpha")
	first := decodeClaims(t, o.token)
	authTime, ok := first["auth_time"].(float64)
	if !ok {
		t.Fatalf("login token without auth_time: %v", first)
	}
	end := time.Unix(int64(authTime), 0).Add(maxSession)
	if exp := first["exp"].(float64); exp > float64(end.Unix()) {
		t.Fatalf("login token: exp %v past the session's end %v", exp, end.Unix())
	}

	// Refresh, again and again, with each fresh token.
	tok := o.token
	for range 3 {
		time.Sleep(time.Second) // a later iat
		r := e.call("PUT", "/org/update", tok, map[string]any{"organization_name": "alpha"})
		expect(t, r, http.StatusOK, "Organization updated successfully")
		tok, _ = r.obj()["access_token"].(string)
		c := decodeClaims(t, tok)
		if c["auth_time"] != first["auth_time"] {
			t.Fatalf("refreshed token: auth_time %v, want the login's %v", c["auth_time"], first["auth_time"])
		}
		if exp := c["exp"].(float64); exp > float64(end.Unix()) {
			t.Fatalf("refreshed token: exp %v past the session's end %v", exp, end.Unix())
		}
	}

	time.Sleep(time.Until(end) + 100*time.Millisecond)
	for _, route := range [][2]string{{"GET", "/org/documents"}, {"PUT", "/org/update"}} {
		r := e.call(route[0], route[1], tok, map[string]any{"organization_name": "alpha"})
		expect(t, r, http.StatusUnauthorized, "Invalid token")
		params, err := bearerChallenge(r.header.Get("WWW-Authenticate"))
		if err != nil || params["error"] != "invalid_token" || !strings.Contains(params["error_description"], "session is over") {
			t.Fatalf("%s %s: WWW-Authenticate %q, want invalid_token saying the session is over", route[0], route[1], r.header.Get("WWW-Authenticate"))
		}
	}
	fresh := e.login(o.email, o.password)
	expect(t, e.call("GET", "/org/documents", fresh, nil), http.StatusOK, "")
	if c := decodeClaims(t, fresh); c["auth_time"].(float64) <= authTime {
		t.Fatalf("a new login keeps the old session's auth_time %v", c["auth_time"])
	}
}

// A token of the previous version has no auth_time: its session counts
// from its iat, and a refresh writes that iat down as the auth_time.
func TestSessionsOfTokensWithoutAuthTime(t *testing.T) {
	const maxSession = time.Hour
	e := newEnv(t, func(c *config.Config) { c.JWTMaxSession = maxSession })
	o := e.signUp("alpha")
	mint := func(iat time.Time) string {
		c := jwt.MapClaims{}
		for k, v := range decodeClaims(t, o.token) {
			c[k] = v
		}
		delete(c, "auth_time")
		c["iat"], c["exp"] = iat.Unix(), time.Now().Add(time.Hour).Unix()
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(testSecret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	iat := time.Now().Add(-50 * time.Minute)
	r := e.call("PUT", "/org/update", mint(iat), map[string]any{"organization_name": "alpha"})
	expect(t, r, http.StatusOK, "")
	tok, _ := r.obj()["access_token"].(string)
	c := decodeClaims(t, tok)
	if got := c["auth_time"]; got != float64(iat.Unix()) {
		t.Fatalf("refreshed token: auth_time %v, want the old token's iat %d", got, iat.Unix())
	}
	if exp := c["exp"].(float64); exp > float64(iat.Add(maxSession).Unix()) {
		t.Fatalf("refreshed token: exp %v past iat + JWT_MAX_SESSION %d", exp, iat.Add(maxSession).Unix())
	}
	r = e.call("GET", "/org/documents", mint(time.Now().Add(-maxSession-time.Minute)), nil)
	expect(t, r, http.StatusUnauthorized, "Invalid token")
	if !strings.Contains(r.header.Get("WWW-Authenticate"), "session is over") {
		t.Fatalf("old token past the bound: WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
	}
}

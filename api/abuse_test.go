package api_test

import (
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/orgsvc/orgsvc/internal/config"
)

// defaultOf is the default of the integer setting name, as config.Config
// declares it.
func defaultOf(t *testing.T, name string) int {
	t.Helper()
	typ := reflect.TypeFor[config.Config]()
	for i := range typ.NumField() {
		if f := typ.Field(i); f.Tag.Get("envconfig") == name {
			n, err := strconv.Atoi(f.Tag.Get("default"))
			if err != nil {
				t.Fatalf("%s: default %q: %v", name, f.Tag.Get("default"), err)
			}
			return n
		}
	}
	t.Fatalf("no setting %s", name)
	return 0
}

// TestCredentialChangesCannotStarveLogins: one admin floods PUT
// /org/update with password changes, 40 senders at once, each sending
// again as soon as answered (with the newest token), while another admin
// logs in ten times. bcrypt has one worker and a queue of four, so a
// flood that reached it would turn the logins away with 503. With the
// default credential limits the flood is refused before hashing: 429, or
// 409 while one change holds the organization. "Mostly": at least 9 of
// the 10 logins succeed, at most CREDENTIAL_RATE_PER_ACCOUNT changes do,
// and at least 90% of the flood's answers are 429 or 409 (not counting
// the 401s of requests sent with a token a change had just replaced).
func TestCredentialChangesCannotStarveLogins(t *testing.T) {
	perAccount := defaultOf(t, "CREDENTIAL_RATE_PER_ACCOUNT")
	e := newEnv(t, func(c *config.Config) {
		c.BcryptCost, c.BcryptWorkers, c.BcryptQueue = 10, 1, 4
		// A login that waits long on a loaded machine (-race) is not what
		// this test is about: only a full bcrypt queue may turn it away.
		c.RequestTimeout = 2 * time.Minute
		c.CredentialRatePerAccount = perAccount
		c.CredentialRatePerAddress = defaultOf(t, "CREDENTIAL_RATE_PER_ADDRESS")
	})
	attacker, other := e.signUp("attacker"), e.signUp("other")

	var (
		mu       sync.Mutex
		token    = attacker.token
		statuses = map[int]int{}
		answered int
		wg       sync.WaitGroup
		stop     = make(chan struct{})
	)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				tok := token
				mu.Unlock()
				body := fmt.Sprintf(`{"organization_name":"attacker","password":"flood-pass-%d-%d"}`, i, n)
				r, err := send(e.srv.URL, "PUT", "/org/update",
					map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/json"}, []byte(body))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				statuses[r.status]++
				answered++
				if s, ok := r.obj()["access_token"].(string); ok && r.status == http.StatusOK {
					token = s
				}
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	// The logins start once every sender has had an answer.
	for {
		mu.Lock()
		n := answered
		mu.Unlock()
		if n >= 40 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var logins []string
	ok := 0
	for range 10 {
		body := fmt.Sprintf(`{"email":%q,"password":%q}`, other.email, other.password)
		r, err := send(e.srv.URL, "POST", "/admin/login", map[string]string{"Content-Type": "application/json"}, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		logins = append(logins, fmt.Sprint(r.status))
		if r.status != http.StatusOK {
			logins[len(logins)-1] += fmt.Sprintf(" %v", r.body)
		}
		if r.status == http.StatusOK {
			ok++
		}
	}
	close(stop)
	wg.Wait()

	t.Logf("flood: %v; other admin's logins: %v", statuses, logins)
	if ok < 9 {
		t.Errorf("the other admin's logins during the flood: %d of 10 succeeded (%v), want at least 9", ok, logins)
	}
	if statuses[http.StatusOK] > perAccount {
		t.Errorf("%d password changes succeeded (each a bcrypt hash) within a minute, want at most %d", statuses[http.StatusOK], perAccount)
	}
	refused, counted := statuses[http.StatusTooManyRequests]+statuses[http.StatusConflict], answered-statuses[http.StatusUnauthorized]
	if refused*10 < counted*9 {
		t.Errorf("%d of %d answers to the flood were 429 or 409, want at least 90%%: %v", refused, counted, statuses)
	}
	// The limit is the account's: the other admin may still change its password.
	expect(t, e.call("PUT", "/org/update", e.login(other.email, other.password),
		map[string]any{"organization_name": "other", "password": "other-new-pass-1"}), http.StatusOK, "")
}

// TestCredentialRateLimits: an update carrying an e-mail or a password
// counts against its admin and its client address; one without does not.
func TestCredentialRateLimits(t *testing.T) {
	t.Run("per account", func(t *testing.T) {
		e := newEnv(t, func(c *config.Config) { c.CredentialRatePerAccount = 2 })
		o := e.signUp("alpha")
		tok := o.token
		for i := range 2 {
			r := e.call("PUT", "/org/update", tok, map[string]any{"organization_name": "alpha", "password": fmt.Sprintf("changed-pass-%d", i)})
			expect(t, r, http.StatusOK, "")
			tok, _ = r.obj()["access_token"].(string)
		}
		r := e.call("PUT", "/org/update", tok, map[string]any{"organization_name": "alpha", "email": "new@alpha.example.com"})
		expect(t, r, http.StatusTooManyRequests, "Too many requests; retry later")
		if r.header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
		// Nothing changed: the old password still logs in.
		e.login(o.email, "changed-pass-1")
		// A rename or a refresh is no credential change.
		expect(t, e.call("PUT", "/org/update", tok, map[string]any{"organization_name": "alpha"}), http.StatusOK, "")
		expect(t, e.call("PUT", "/org/update", tok, map[string]any{"organization_name": "alpha", "new_organization_name": "alpha2"}), http.StatusOK, "")
	})
	t.Run("per address", func(t *testing.T) {
		e := newEnv(t, func(c *config.Config) { c.CredentialRatePerAddress = 2; c.TrustProxy = 1 })
		a, b, c := e.signUp("alpha"), e.signUp("beta"), e.signUp("gamma")
		change := func(o *org, xff string) int {
			body := fmt.Sprintf(`{"organization_name":%q,"password":"changed-pass-1"}`, o.name)
			return e.request("PUT", "/org/update", []byte(body), map[string]string{
				"Authorization": "Bearer " + o.token, "Content-Type": "application/json", "X-Forwarded-For": xff,
			}).status
		}
		if got := []int{change(a, "203.0.113.1"), change(b, "203.0.113.1"), change(c, "203.0.113.1")}; got[0] != 200 || got[1] != 200 || got[2] != 429 {
			t.Fatalf("three admins from one address: %v, want 200 200 429", got)
		}
		if s := change(c, "203.0.113.2"); s != 200 {
			t.Fatalf("from another address: %d", s)
		}
	})
}

// TestLoginLockoutIsPerAddress: with the default limits, failed logins
// from one address lock that address out of the e-mail, while the owner
// logging in from another address gets in. Only many addresses together
// reach the e-mail's ceiling.
func TestLoginLockoutIsPerAddress(t *testing.T) {
	perPair := defaultOf(t, "LOGIN_RATE_PER_EMAIL")
	e := newEnv(t, func(c *config.Config) {
		c.TrustProxy = 1
		c.LoginRatePerEmail = perPair
		c.LoginRatePerEmailTotal = defaultOf(t, "LOGIN_RATE_PER_EMAIL_TOTAL")
		c.LoginRatePerAddress = defaultOf(t, "LOGIN_RATE_PER_ADDRESS")
	})
	victim := e.signUp("victim")
	login := func(addr, password string) response {
		body := fmt.Sprintf(`{"email":%q,"password":%q}`, victim.email, password)
		return e.request("POST", "/admin/login", []byte(body), map[string]string{"Content-Type": "application/json", "X-Forwarded-For": addr})
	}
	const attacker, owner = "203.0.113.66", "198.51.100.7"
	for i := range perPair {
		expect(t, login(attacker, fmt.Sprintf("guess-%d", i)), http.StatusUnauthorized, "Invalid credentials")
	}
	r := login(attacker, "guess-again")
	expect(t, r, http.StatusTooManyRequests, "Too many requests; retry later")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	// Locked out means locked out, even with the right password.
	expect(t, login(attacker, victim.password), http.StatusTooManyRequests, "")
	// The owner, elsewhere, is not; a typo of its own changes nothing.
	expect(t, login(owner, victim.password), http.StatusOK, "")
	expect(t, login(owner, "typo"), http.StatusUnauthorized, "Invalid credentials")
	expect(t, login(owner, victim.password), http.StatusOK, "")
	// Successes count for nothing: more of them than the limit still pass.
	for range perPair + 1 {
		expect(t, login(owner, victim.password), http.StatusOK, "")
	}

	t.Run("ceiling across addresses", func(t *testing.T) {
		e := newEnv(t, func(c *config.Config) { c.TrustProxy = 1; c.LoginRatePerEmail = 2; c.LoginRatePerEmailTotal = 5 })
		o := e.signUp("alpha")
		login := func(addr, password string) int {
			body := fmt.Sprintf(`{"email":%q,"password":%q}`, o.email, password)
			return e.request("POST", "/admin/login", []byte(body), map[string]string{"Content-Type": "application/json", "X-Forwarded-For": addr}).status
		}
		var got []int
		for i := range 3 {
			for range 2 {
				got = append(got, login(fmt.Sprintf("203.0.113.%d", 10+i), "guess"))
			}
		}
		// Five failures from three addresses; the sixth is refused.
		if want := []int{401, 401, 401, 401, 401, 429}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("failures from three addresses: %v, want %v", got, want)
		}
		if s := login("198.51.100.7", o.password); s != http.StatusTooManyRequests {
			t.Fatalf("the owner past the e-mail's ceiling: %d, want 429", s)
		}
	})
}

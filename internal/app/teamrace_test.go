package app_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lastOwner is the detail of the 409 that keeps an organization's last
// owner.
const lastOwner = "An organization needs at least one owner"

// TestTeamRace runs the team races of the api package's tests (accepts of
// one invitation, owners demoting each other, a removal racing the member's
// own writes) across two server processes on one store, each request of a
// race through a different one:
//
//   - two accepts of one invitation: one 200, the other 410, and one
//     membership more;
//   - the two owners demoting each other: one 200, the other 409 "An
//     organization needs at least one owner" (or 401, its token ended by
//     the winner), exactly one owner left and the demoted one's token
//     ended, every round;
//   - a removal through one process while the member writes documents
//     through the other: no write sent after the removal was answered is
//     acknowledged (both instances check every token against the database,
//     AUTH_CACHE_TTL=0; with a cache, the other instance follows within
//     AUTH_CACHE_TTL, as documented), and every write acknowledged is
//     stored.
//
// A request of a race refused as busy (409 "Organization is being changed;
// retry", the other's operation under way) is sent again until it meets
// the other's outcome; that final answer is the one judged.
//
// Afterwards `orgsvc check` finds the database consistent.
func TestTeamRace(t *testing.T) {
	t.Parallel()
	seed := time.Now().UnixNano()
	t.Logf("random seed %d", seed)
	dataDir := filepath.Join(t.TempDir(), "data")
	mongoAddr := freeAddr(t)
	common := []string{
		"JWT_SECRET=" + twoProcSecret, "BCRYPT_COST=4", "AUTH_CACHE_TTL=0",
		"CREATE_RATE_PER_ADDRESS=0", "LOGIN_RATE_PER_ADDRESS=0", "LOGIN_RATE_PER_EMAIL=0",
	}
	a := runServer(t, t.TempDir(), freeAddr(t), baseEnv(append([]string{
		"DATA_DIR=" + dataDir, "EMBEDDED_MONGO_ADDR=" + mongoAddr}, common...)...))
	b := runServer(t, t.TempDir(), freeAddr(t), baseEnv(append([]string{
		"MONGO_URI=mongodb://" + mongoAddr + "/"}, common...)...))
	h := &twoProcs{a: a, b: b, rng: rand.New(rand.NewPCG(uint64(seed), uint64(seed>>1))), counts: map[string]int{}}

	ownerID := h.createOrg(t, a, "Team Race", "owner@team.example.com")
	owner := h.login(t, a, "owner@team.example.com")
	joined := 1 // the organization's members

	t.Run("Accepts", func(t *testing.T) {
		for round := range 6 {
			email := fmt.Sprintf("racer%d@team.example.com", round)
			invite := h.invite(t, owner, email, "member")
			accept := map[string]any{"token": invite, "password": twoProcPassword}
			calls := []raceCall{{a, "POST", "/invitations/accept", "", accept}, {b, "POST", "/invitations/accept", "", accept}}
			res, ok := h.judge(t, round, "accept", calls, func(r response) bool { return r.status == http.StatusGone })
			joined++
			if got := len(h.members(t, owner)); ok != 1 || got != joined {
				t.Fatalf("round %d: answers %s, %s; %d members, want one 200 and %d members%s",
					round, describe(res[0]), describe(res[1]), got, joined, h.serverLogs())
			}
			h.login(t, b, email)
		}
	})

	t.Run("LastOwner", func(t *testing.T) {
		demote := map[string]any{"role": "admin"}
		for round := range 6 {
			email := fmt.Sprintf("second%d@team.example.com", round)
			second := h.join(t, owner, email, "owner")
			calls := []raceCall{
				{a, "PATCH", "/org/members/" + second, owner, demote},
				{b, "PATCH", "/org/members/" + ownerID, h.login(t, b, email), demote},
			}
			res, ok := h.judge(t, round, "demote", calls, func(r response) bool {
				return (r.status == http.StatusConflict && detail(r) == lastOwner) || r.status == http.StatusUnauthorized
			})
			owners := h.owners(t, h.login(t, b, "owner@team.example.com"))
			if ok != 1 || len(owners) != 1 {
				t.Fatalf("round %d: answers %s, %s; owners %v, want one 200 and one owner%s",
					round, describe(res[0]), describe(res[1]), owners, h.serverLogs())
			}
			// The demoted owner's token ended, on both instances.
			demoted := calls[1].token
			if owners[0] != ownerID {
				demoted = calls[0].token
			}
			for _, s := range []*server{a, b} {
				mustStatus(t, s.call(t, "GET", "/me", demoted, nil), http.StatusUnauthorized)
			}
			// Whoever is left owner makes the signing account the owner
			// again, and the signing account removes the second.
			if owners[0] != ownerID {
				mustStatus(t, b.call(t, "PATCH", "/org/members/"+ownerID, h.login(t, b, email), map[string]any{"role": "owner"}), http.StatusOK)
			}
			owner = h.login(t, a, "owner@team.example.com")
			mustStatus(t, a.call(t, "DELETE", "/org/members/"+second, owner, nil), http.StatusNoContent)
		}
	})

	t.Run("RemovalRacesOwnWrites", func(t *testing.T) {
		for round := range 3 {
			email := fmt.Sprintf("leaver%d@team.example.com", round)
			member := h.join(t, owner, email, "member")
			token := h.login(t, b, email)
			type write struct {
				sent, answered time.Time
				status         int
				id             string
			}
			var writes []write
			var stopped atomic.Bool
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; !stopped.Load(); i++ {
					w := write{sent: time.Now()}
					r, err := try(b.base, "POST", "/org/documents", token, map[string]any{"round": round, "i": i})
					w.answered = time.Now()
					if err == nil {
						w.status = r.status
						w.id, _ = r.body["id"].(string)
					}
					writes = append(writes, w)
				}
			}()
			time.Sleep(50 * time.Millisecond)
			mustStatus(t, a.call(t, "DELETE", "/org/members/"+member, owner, nil), http.StatusNoContent)
			removed := time.Now()
			time.Sleep(300 * time.Millisecond)
			stopped.Store(true)
			wg.Wait()

			// A write in flight when the removal was answered may be
			// acknowledged after it: it raced the removal, and either order
			// is an answer. One sent after the answer may not.
			before, inFlight, after := 0, 0, 0
			for _, w := range writes {
				switch {
				case w.status == http.StatusCreated && w.sent.After(removed):
					t.Errorf("round %d: a write sent %s after the removal was answered was acknowledged (document %s)",
						round, w.sent.Sub(removed), w.id)
				case w.status == http.StatusCreated:
					before++
					if w.answered.After(removed) {
						inFlight++
					}
					mustStatus(t, a.call(t, "GET", "/org/documents/"+w.id, owner, nil), http.StatusOK)
				case w.status == http.StatusUnauthorized:
					if w.sent.After(removed) {
						after++
					}
				case w.status == http.StatusTooManyRequests: // the organization's rate, before or after
				default:
					t.Fatalf("round %d: a write by the member being removed: %d", round, w.status)
				}
			}
			if before == 0 || after == 0 {
				t.Fatalf("round %d: %d writes acknowledged before the removal, %d refused after it: want some of each", round, before, after)
			}
			mustStatus(t, b.call(t, "GET", "/org/documents", token, nil), http.StatusUnauthorized)
			t.Logf("round %d: %d writes acknowledged (%d of them in flight at the removal's answer), %d refused after it", round, before, inFlight, after)
		}
	})

	h.logCounts(t)
	// The check opens the embedded store's files: B, on A's store, stops
	// first.
	b.stop(t)
	a.stop(t)
	if code, out := runCheck(t, t.TempDir(), baseEnv("DATA_DIR="+dataDir, "JWT_SECRET="+twoProcSecret)); code != 0 || strings.TrimSpace(out) != "consistent" {
		t.Fatalf("orgsvc check: exit %d:\n%s", code, out)
	}
}

// judge sends the calls of a race at once and returns their settled
// answers (see settled) and how many were 200; it fails the test on an
// answer that is neither 200 nor one loser accepts.
func (h *twoProcs) judge(t *testing.T, round int, kind string, calls []raceCall, loser func(response) bool) ([]raceResult, int) {
	t.Helper()
	res := h.race(calls)
	ok := 0
	for i, r := range res {
		res[i] = h.settled(kind, calls[i], r)
		switch r := res[i]; {
		case r.err != nil:
			t.Fatalf("round %d: %s", round, describe(r))
		case r.r.status == http.StatusOK:
			ok++
		case !loser(r.r):
			t.Fatalf("round %d: %s %s, not an answer a race may give", round, kind, describe(r))
		}
	}
	return res, ok
}

// settled is the answer to c, a call of a race answered r: when r is the
// 409 of an operation under way (the other call's), c is sent again until
// it meets that call's outcome. Each answer is counted under kind.
func (h *twoProcs) settled(kind string, c raceCall, r raceResult) raceResult {
	for range 100 {
		if r.err != nil {
			return r
		}
		h.count(kind, r.r)
		if !isBusy(r.r) {
			return r
		}
		kind = kind + " (retried)"
		time.Sleep(20 * time.Millisecond)
		r.r, r.err = try(c.s.base, c.method, c.path, c.token, c.body)
	}
	return r
}

// invite invites email to the token's organization with role, through
// the first server, and returns the invitation's token.
func (h *twoProcs) invite(t *testing.T, token, email, role string) string {
	t.Helper()
	r := h.a.call(t, "POST", "/org/invitations", token, map[string]any{"email": email, "role": role})
	mustStatus(t, r, http.StatusCreated)
	return r.body["token"].(string)
}

// join makes a new account of email a member of the token's organization
// with role, as an accepted invitation does, and returns its id.
func (h *twoProcs) join(t *testing.T, token, email, role string) string {
	t.Helper()
	mustStatus(t, h.a.call(t, "POST", "/invitations/accept", "", map[string]any{"token": h.invite(t, token, email, role), "password": twoProcPassword}), http.StatusOK)
	me := h.a.call(t, "GET", "/me", h.login(t, h.a, email), nil)
	mustStatus(t, me, http.StatusOK)
	return me.body["id"].(string)
}

// members lists the token's organization's members, through the second
// server.
func (h *twoProcs) members(t *testing.T, token string) []map[string]any {
	t.Helper()
	r := h.b.call(t, "GET", "/org/members?limit=100", token, nil)
	mustStatus(t, r, http.StatusOK)
	var out []map[string]any
	for _, it := range r.body["items"].([]any) {
		out = append(out, it.(map[string]any))
	}
	return out
}

// owners are the ids of the token's organization's owners.
func (h *twoProcs) owners(t *testing.T, token string) []string {
	t.Helper()
	var ids []string
	for _, m := range h.members(t, token) {
		if m["role"] == "owner" {
			ids = append(ids, m["id"].(string))
		}
	}
	return ids
}

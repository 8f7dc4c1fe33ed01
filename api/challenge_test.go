package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
)

// bearerChallenge parses a WWW-Authenticate header that must hold one
// Bearer challenge as RFC 6750 §3 writes it, and returns its parameters.
func bearerChallenge(h string) (map[string]string, error) {
	rest, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return nil, fmt.Errorf("%q: not a Bearer challenge with parameters", h)
	}
	params := map[string]string{}
	for {
		name, after, ok := strings.Cut(rest, `="`)
		if !ok || name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz_") != "" {
			return nil, fmt.Errorf("%q: bad parameter at %q", h, rest)
		}
		value, tail, ok := strings.Cut(after, `"`)
		if !ok {
			return nil, fmt.Errorf("%q: unterminated value of %s", h, name)
		}
		for _, c := range value {
			// error_description's characters (RFC 6750 §3): no quote, no backslash.
			if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
				return nil, fmt.Errorf("%q: character %q in %s", h, c, name)
			}
		}
		if _, dup := params[name]; dup {
			return nil, fmt.Errorf("%q: %s twice", h, name)
		}
		switch name {
		case "realm", "error_description":
		case "error":
			if value != "invalid_request" && value != "invalid_token" && value != "insufficient_scope" {
				return nil, fmt.Errorf("%q: error %q is not one of RFC 6750", h, value)
			}
		default:
			return nil, fmt.Errorf("%q: unexpected parameter %s", h, name)
		}
		params[name] = value
		if tail == "" {
			return params, nil
		}
		if rest, ok = strings.CutPrefix(tail, ", "); !ok {
			return nil, fmt.Errorf("%q: junk after %s", h, name)
		}
	}
}

// requestLine is the service's log line for the request of that id.
func (e *env) requestLine(id string) (map[string]any, string) {
	e.t.Helper()
	for _, line := range strings.Split(e.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "request" && rec["request_id"] == id {
			return rec, line
		}
	}
	e.t.Fatalf("no request line for %s in %s", id, e.logs.String())
	return nil, ""
}

func TestUnauthorizedSaysWhy(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("alpha")
	claims := decodeClaims(t, o.token)
	mint := func(key []byte, change func(jwt.MapClaims)) string {
		c := jwt.MapClaims{}
		for k, v := range claims {
			c[k] = v
		}
		change(c)
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	expired := mint(testSecret, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })
	wrongSecret := mint([]byte("not-the-secret-not-the-secret-xx"), func(jwt.MapClaims) {})

	// Revoked: a password change moves the token version on.
	revoked := e.login(o.email, o.password)
	expect(t, e.call("PUT", "/org/update", o.token, map[string]any{"organization_name": "alpha", "password": "changed-pass-1"}), http.StatusOK, "")

	// An organization deleted (its admin with it), and one whose record
	// alone is gone.
	deleted := e.signUp("deleted")
	expect(t, e.call("DELETE", "/org/delete", deleted.token, map[string]any{"organization_name": "deleted"}), http.StatusOK, "")
	orphan := e.signUp("orphan")
	orgID, err := bson.ObjectIDFromHex(decodeClaims(t, orphan.token)["org_id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Collection(model.Organizations).DeleteOne(context.Background(), bson.D{{Key: "_id", Value: orgID}}); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, token, detail, reason, says string
	}{
		// detail as the contract pins it where it does (steps 51-54, 56, 135).
		{"expired", expired, "Invalid token", "token_expired", "expired"},
		{"wrong secret", wrongSecret, "Invalid token", "token_invalid", "signature"},
		{"malformed", "not-a-jwt", "Invalid token", "token_invalid", "signature"},
		{"revoked", revoked, "Token has been revoked", "token_revoked", "revoked"},
		{"organization deleted", deleted.token, "Admin not found", "token_unknown_owner", "organization"},
		{"organization record gone", orphan.token, "Token's organization not found", "token_unknown_owner", "organization"},
	}
	descriptions := map[string]string{} // reason -> description
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := fmt.Sprintf("why-401-%d", i)
			r := e.request("GET", "/org/documents", nil, map[string]string{"Authorization": "Bearer " + c.token, "X-Request-ID": id})
			expect(t, r, http.StatusUnauthorized, c.detail)
			params, err := bearerChallenge(r.header.Get("WWW-Authenticate"))
			if err != nil {
				t.Fatal(err)
			}
			desc := params["error_description"]
			if params["error"] != "invalid_token" || !strings.Contains(desc, c.says) {
				t.Fatalf("challenge %q: want error=invalid_token and a description saying %q", r.header.Get("WWW-Authenticate"), c.says)
			}
			if prev, ok := descriptions[c.reason]; ok && prev != desc {
				t.Fatalf("%s described as %q and as %q", c.reason, prev, desc)
			}
			descriptions[c.reason] = desc
			rec, line := e.requestLine(id)
			if rec["auth_error"] != c.reason {
				t.Fatalf("auth_error: got %v, want %s: %s", rec["auth_error"], c.reason, line)
			}
			sig := c.token[strings.LastIndexByte(c.token, '.')+1:]
			if strings.Contains(line, c.token) || strings.Contains(line, sig) {
				t.Fatalf("the log line holds the token: %s", line)
			}
		})
	}
	seen := map[string]string{}
	for reason, desc := range descriptions {
		if other, dup := seen[desc]; dup {
			t.Fatalf("%s and %s share the description %q", reason, other, desc)
		}
		seen[desc] = reason
	}
	if len(seen) != 4 {
		t.Fatalf("descriptions: %v, want 4 distinct", descriptions)
	}

	// No token, another scheme, no password match: the bare challenge.
	for _, c := range []struct {
		name, method, path, auth, reason string
		body                             any
	}{
		{"no token", "GET", "/org/documents", "", "token_missing", nil},
		{"basic", "GET", "/org/documents", "Basic YWRtaW46cGFzcw==", "scheme_not_bearer", nil},
		{"wrong password", "POST", "/admin/login", "", "invalid_credentials", map[string]any{"email": o.email, "password": "wrong-pass-1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := "why-401-" + strings.ReplaceAll(c.name, " ", "-")
			h := map[string]string{"X-Request-ID": id, "Content-Type": "application/json"}
			if c.auth != "" {
				h["Authorization"] = c.auth
			}
			var body []byte
			if c.body != nil {
				body, _ = json.Marshal(c.body)
			}
			r := e.request(c.method, c.path, body, h)
			expect(t, r, http.StatusUnauthorized, "")
			if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="orgsvc"` {
				t.Fatalf("WWW-Authenticate: got %q, want the bare challenge", got)
			}
			if rec, line := e.requestLine(id); rec["auth_error"] != c.reason {
				t.Fatalf("auth_error: got %v, want %s: %s", rec["auth_error"], c.reason, line)
			}
		})
	}

	// A request that passes carries no auth_error.
	r := e.request("GET", "/org/documents", nil, map[string]string{"Authorization": "Bearer " + e.login(o.email, "changed-pass-1"), "X-Request-ID": "why-200"})
	expect(t, r, http.StatusOK, "")
	if rec, line := e.requestLine("why-200"); rec["auth_error"] != nil {
		t.Fatalf("auth_error on a 200: %s", line)
	}
}

package api_test

import (
	"net/http"
	"testing"
)

// TestIdempotencyKeyHeader: POST /org/documents with an Idempotency-Key
// answers a retry with the first create's document, refuses the key with
// another body or a malformed key in the validation shape, and makes one
// document in all.
func TestIdempotencyKeyHeader(t *testing.T) {
	e := newEnv(t)
	o := e.signUp("keyed")
	post := func(key, body string) response {
		return e.request("POST", "/org/documents", []byte(body), map[string]string{
			"Authorization": "Bearer " + o.token, "Content-Type": "application/json", "Idempotency-Key": key,
		})
	}
	first := post("3f1c9a52-order-17", `{"total":12}`)
	expect(t, first, http.StatusCreated, "")
	again := post("3f1c9a52-order-17", `{"total":12}`)
	expect(t, again, http.StatusCreated, "")
	if string(again.raw) != string(first.raw) {
		t.Fatalf("retry answered %s, want the first answer %s", again.raw, first.raw)
	}
	for _, c := range []struct{ key, body, typ string }{
		{"3f1c9a52-order-17", `{"total":13}`, "value_error.idempotency_key.reused"},
		{"has space", `{"total":12}`, "value_error.idempotency_key"},
	} {
		r := post(c.key, c.body)
		expect(t, r, http.StatusUnprocessableEntity, "")
		p := r.problems()
		if len(p) != 1 || p[0]["type"] != c.typ || fmtLoc(p[0]["loc"]) != "header.Idempotency-Key" {
			t.Fatalf("key %q body %s: %s, want %s at header.Idempotency-Key", c.key, c.body, r.raw, c.typ)
		}
	}
	list := e.call("GET", "/org/documents", o.token, nil)
	expect(t, list, http.StatusOK, "")
	if items := list.obj()["items"].([]any); len(items) != 1 {
		t.Fatalf("%d documents, want 1: %s", len(items), list.raw)
	}
}

// fmtLoc joins a loc array with dots.
func fmtLoc(loc any) string {
	parts, _ := loc.([]any)
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += "."
		}
		s, _ := p.(string)
		out += s
	}
	return out
}

package jsondoc

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

type refWalker struct {
	dec      *json.Decoder
	json     []byte
	top      []member
	problems []Problem
	// keys counts the keys seen; past maxKeys (when not 0) the walk stops.
	keys, maxKeys int
	stop          bool
}

// refWalk is the walk of encoding/json tokens that walk replaced, kept
// to check walk against: it compacts raw and checks it: a JSON object, keys allowed, nesting
// within MaxDepth, at most maxKeys keys (0: any number).
func refWalk(raw []byte, maxKeys int) (*refWalker, []Problem) {
	if !utf8.Valid(raw) {
		return nil, []Problem{{Msg: "body is not valid UTF-8", Type: "value_error.utf8"}}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, []Problem{{Msg: "body is not valid JSON: " + err.Error(), Type: "value_error.jsondecode"}}
	}
	w := &refWalker{dec: json.NewDecoder(bytes.NewReader(compact.Bytes())), json: compact.Bytes(), maxKeys: maxKeys}
	w.dec.UseNumber()
	if tok, _ := w.dec.Token(); tok != json.Delim('{') {
		return nil, []Problem{{Msg: "value is not a valid dict", Type: "type_error.dict"}}
	}
	w.object(nil, 1)
	return w, w.problems
}

func (w *refWalker) fail(path []any, msg, typ string) {
	if len(w.problems) < maxProblems {
		w.problems = append(w.problems, Problem{Path: append([]any(nil), path...), Msg: msg, Type: typ})
	}
}

// object walks the members of an object whose '{' was just read.
func (w *refWalker) object(path []any, depth int) {
	seen := map[string]bool{}
	for !w.stop && w.dec.More() {
		tok, _ := w.dec.Token()
		key, _ := tok.(string)
		if w.keys++; w.maxKeys > 0 && w.keys > w.maxKeys {
			w.problems = append(w.problems[:0], Problem{
				Msg:  "document has more than " + strconv.Itoa(w.maxKeys) + " keys, nested ones included",
				Type: "value_error.document.max_keys", Ctx: map[string]any{"limit_value": w.maxKeys},
			})
			w.stop = true
			return
		}
		keyPath := append(path, key)
		switch {
		case strings.HasPrefix(key, "$"):
			w.fail(keyPath, "keys must not start with '$'", "value_error.key.dollar")
		case strings.Contains(key, "."):
			w.fail(keyPath, "keys must not contain '.'", "value_error.key.dot")
		case strings.ContainsRune(key, 0):
			w.fail(keyPath, "keys must not contain NUL", "value_error.key.nul")
		case seen[key]:
			w.fail(keyPath, "duplicate key", "value_error.key.duplicate")
		}
		seen[key] = true
		v, isScalar := w.value(keyPath, depth)
		if depth == 1 {
			w.top = append(w.top, member{key: key, value: v, scalar: isScalar})
		}
	}
	_, _ = w.dec.Token() // '}'
}

// value walks one value inside a container at depth; for a scalar it
// returns the token (string, json.Number, bool or nil) and true.
func (w *refWalker) value(path []any, depth int) (any, bool) {
	tok, err := w.dec.Token()
	if err != nil {
		w.fail(path, err.Error(), "value_error.jsondecode")
		return nil, false
	}
	if tok != json.Delim('{') && tok != json.Delim('[') {
		return tok, true
	}
	if depth+1 > MaxDepth {
		w.fail(path, "nesting deeper than "+strconv.Itoa(MaxDepth)+" levels", "value_error.depth")
		w.skip()
		return nil, false
	}
	if tok == json.Delim('{') {
		w.object(path, depth+1)
		return nil, false
	}
	for i := 0; !w.stop && w.dec.More(); i++ {
		w.value(append(path, i), depth+1)
	}
	if w.stop {
		return nil, false
	}
	_, _ = w.dec.Token() // ']'
	return nil, false
}

// skip reads past the rest of a container whose opening token was read.
func (w *refWalker) skip() {
	for level := 1; level > 0; {
		tok, err := w.dec.Token()
		if err != nil {
			return
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			level++
		case json.Delim('}'), json.Delim(']'):
			level--
		}
	}
}

// FuzzWalk checks walk against refWalk: the same text, top-level members
// and problems, with and without a key cap.
func FuzzWalk(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"a":[[1,2]],"b":{"c":null},"s":"\u00e9\"x","n":-1.5e3,"t":true,"f":false}`, `{"$x":1,"a.b":2,"a":3,"a":4}`,
		`{"\u0000":1,"\u0061":2,"a":3}`, "{\"a\" : [ {\"b\":1} , 2 ] }", `[1]`, `{"a":`, nest(40, `{"a":`, "}"), `{"a":` + nest(33, "[", "]") + `}`,
		`{"a":1,"b":{"c":2,"d":{"e":3}},"f":[{"g":4}]}`,
	} {
		f.Add([]byte(seed), uint8(0))
		f.Add([]byte(seed), uint8(2))
	}
	f.Fuzz(func(t *testing.T, raw []byte, maxKeys uint8) {
		got, gotProblems := walk(raw, int(maxKeys))
		want, wantProblems := refWalk(raw, int(maxKeys))
		if !reflect.DeepEqual(gotProblems, wantProblems) {
			t.Fatalf("%q (cap %d): problems %+v, want %+v", raw, maxKeys, gotProblems, wantProblems)
		}
		if (got == nil) != (want == nil) {
			t.Fatalf("%q: walker %v, want %v", raw, got, want)
		}
		if got == nil || len(gotProblems) > 0 {
			return
		}
		if !bytes.Equal(got.json, want.json) || !reflect.DeepEqual(got.top, want.top) {
			t.Fatalf("%q: %s %+v, want %s %+v", raw, got.json, got.top, want.json, want.top)
		}
	})
}

// Package jsondoc checks client JSON documents and prepares them for
// storage: the JSON text is kept exactly as sent (compacted), and the
// top-level scalar members are lifted out so that listings can filter on
// them.
package jsondoc

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// MaxDepth is the deepest nesting allowed; the document object is level 1.
const MaxDepth = 32

// maxProblems bounds how many problems one answer lists.
const maxProblems = 20

// Problem is one reason a document is refused. Path leads from the
// document's root to the offending key or value.
type Problem struct {
	Path []any
	Msg  string
	Type string
}

// Doc is a checked document.
type Doc struct {
	// JSON is the document, compacted, with every number, string and key
	// order as sent.
	JSON []byte
	// Fields are the top-level scalar members, encoded for equality
	// filters (see Number).
	Fields bson.D
}

// Parse checks that raw is a JSON object whose keys and nesting are
// allowed, and returns it ready to store.
func Parse(raw []byte) (Doc, []Problem) {
	w, problems := walk(raw)
	if len(problems) > 0 {
		return Doc{}, problems
	}
	d := Doc{JSON: w.json, Fields: bson.D{}}
	for _, m := range w.top {
		if m.scalar && m.key != "" {
			if v, ok := encode(m.value); ok {
				d.Fields = append(d.Fields, bson.E{Key: m.key, Value: v})
			}
		}
	}
	return d, nil
}

// ParsePatch checks a JSON Merge Patch (RFC 7396) for a document: the same
// rules as Parse, its null members standing for removals.
func ParsePatch(raw []byte) ([]byte, []Problem) {
	w, problems := walk(raw)
	if len(problems) > 0 {
		return nil, problems
	}
	return w.json, nil
}

// Merge applies a checked merge patch to a stored document and checks the
// result as a document.
func Merge(doc, patch []byte) (Doc, []Problem) {
	merged, err := jsonpatch.MergePatch(doc, patch)
	if err != nil {
		return Doc{}, []Problem{{Msg: "cannot apply the merge patch: " + err.Error(), Type: "value_error.merge_patch"}}
	}
	return Parse(merged)
}

// Condition is one equality of a listing filter: a top-level field and its
// value, encoded as Doc.Fields are; a nil Value means JSON null.
type Condition struct {
	Field string
	Value any
}

// ParseFilter checks a listing filter: a JSON object of top-level fields
// and scalar values (string, number, boolean, null). Operators, nested
// values and keys that documents may not have are refused.
func ParseFilter(raw string) ([]Condition, []Problem) {
	w, problems := walk([]byte(raw))
	if len(problems) > 0 {
		return nil, problems
	}
	var out []Condition
	for _, m := range w.top {
		path := []any{m.key}
		switch v, ok := encode(m.value); {
		case m.key == "":
			problems = append(problems, Problem{Path: path, Msg: "filter keys must not be empty", Type: "value_error.key.empty"})
		case !m.scalar:
			problems = append(problems, Problem{Path: path, Msg: "filter values must be a string, number, boolean or null", Type: "type_error.scalar"})
		case !ok:
			problems = append(problems, Problem{Path: path, Msg: "number out of range", Type: "value_error.number"})
		default:
			out = append(out, Condition{Field: m.key, Value: v})
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return out, nil
}

// encode turns a scalar token into the value stored for filtering.
func encode(v any) (any, bool) {
	if n, ok := v.(json.Number); ok {
		return Number(n)
	}
	return v, true
}

// Number encodes a JSON number for an equality filter: integers that fit
// int64 as int64 (so 2^53+1 stays exact), every other finite number as a
// double. MongoDB and FerretDB compare the two types by value. Numbers
// beyond a double's range cannot be filtered on.
func Number(n json.Number) (any, bool) {
	lit := n.String()
	if !strings.ContainsAny(lit, ".eE") && lit != "-0" {
		if i, err := strconv.ParseInt(lit, 10, 64); err == nil {
			return i, true
		}
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || math.IsInf(f, 0) {
		return nil, false
	}
	return f, true
}

// member is a top-level member of a document; value is set for scalars.
type member struct {
	key    string
	value  any
	scalar bool
}

type walker struct {
	dec      *json.Decoder
	json     []byte
	top      []member
	problems []Problem
}

// walk compacts raw and checks it: a JSON object, keys allowed, nesting
// within MaxDepth.
func walk(raw []byte) (*walker, []Problem) {
	if !utf8.Valid(raw) {
		return nil, []Problem{{Msg: "body is not valid UTF-8", Type: "value_error.utf8"}}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, []Problem{{Msg: "body is not valid JSON: " + err.Error(), Type: "value_error.jsondecode"}}
	}
	w := &walker{dec: json.NewDecoder(bytes.NewReader(compact.Bytes())), json: compact.Bytes()}
	w.dec.UseNumber()
	if tok, _ := w.dec.Token(); tok != json.Delim('{') {
		return nil, []Problem{{Msg: "value is not a valid dict", Type: "type_error.dict"}}
	}
	w.object(nil, 1)
	return w, w.problems
}

func (w *walker) fail(path []any, msg, typ string) {
	if len(w.problems) < maxProblems {
		w.problems = append(w.problems, Problem{Path: append([]any(nil), path...), Msg: msg, Type: typ})
	}
}

// object walks the members of an object whose '{' was just read.
func (w *walker) object(path []any, depth int) {
	seen := map[string]bool{}
	for w.dec.More() {
		tok, _ := w.dec.Token()
		key, _ := tok.(string)
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
func (w *walker) value(path []any, depth int) (any, bool) {
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
	for i := 0; w.dec.More(); i++ {
		w.value(append(path, i), depth+1)
	}
	_, _ = w.dec.Token() // ']'
	return nil, false
}

// skip reads past the rest of a container whose opening token was read.
func (w *walker) skip() {
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

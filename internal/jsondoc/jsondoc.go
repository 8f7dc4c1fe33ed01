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

	"go.mongodb.org/mongo-driver/v2/bson"
)

// MaxDepth is the deepest nesting allowed; the document object is level 1.
const MaxDepth = 32

// maxProblems bounds how many problems one answer lists.
const maxProblems = 20

// DefaultMaxKeys is the key cap of Limits when none is set.
const DefaultMaxKeys = 10000

// Limits bound what a document may hold beyond MaxDepth.
type Limits struct {
	// MaxKeys bounds the keys of a document, counted over every object
	// in it, nested ones included (array elements are not keys); a
	// document beyond it is refused as soon as the walk counts one key
	// too many. 0: no bound.
	MaxKeys int
}

// Problem is one reason a document is refused. Path leads from the
// document's root to the offending key or value; Ctx, when set, holds
// the limit that was crossed.
type Problem struct {
	Path []any
	Msg  string
	Type string
	Ctx  map[string]any
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
// allowed, and returns it ready to store; no key cap.
func Parse(raw []byte) (Doc, []Problem) { return Limits{}.Parse(raw) }

// ParsePatch checks a JSON Merge Patch (RFC 7396) for a document: the same
// rules as Parse, its null members standing for removals; no key cap.
func ParsePatch(raw []byte) ([]byte, []Problem) { return Limits{}.ParsePatch(raw) }

// Merge applies a checked merge patch to a stored document and checks the
// result as a document; no key cap.
func Merge(doc, patch []byte) (Doc, []Problem) { return Limits{}.Merge(doc, patch) }

// Parse is the package's Parse within l.
func (l Limits) Parse(raw []byte) (Doc, []Problem) {
	w, problems := walk(raw, l.MaxKeys)
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

// ParsePatch is the package's ParsePatch within l: the patch's own keys
// count against the cap.
func (l Limits) ParsePatch(raw []byte) ([]byte, []Problem) {
	w, problems := walk(raw, l.MaxKeys)
	if len(problems) > 0 {
		return nil, problems
	}
	return w.json, nil
}

// Merge is the package's Merge within l, which the result must respect.
func (l Limits) Merge(doc, patch []byte) (Doc, []Problem) {
	merged, err := mergePatch(doc, patch)
	if err != nil {
		return Doc{}, []Problem{{Msg: "cannot apply the merge patch: " + err.Error(), Type: "value_error.merge_patch"}}
	}
	return l.Parse(merged)
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
	w, problems := walk([]byte(raw), 0)
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
	json     []byte // compacted
	pos      int
	top      []member
	problems []Problem
	// keys counts the keys seen; past maxKeys (when not 0) the walk stops.
	keys, maxKeys int
	stop          bool
}

// walk compacts raw and checks it: a JSON object, keys allowed, nesting
// within MaxDepth, at most maxKeys keys (0: any number). It scans the
// compacted text, which json.Compact has checked, once: no tokens are
// allocated, only keys and top-level scalars are decoded.
func walk(raw []byte, maxKeys int) (*walker, []Problem) {
	if !utf8.Valid(raw) {
		return nil, []Problem{{Msg: "body is not valid UTF-8", Type: "value_error.utf8"}}
	}
	var compact bytes.Buffer
	compact.Grow(len(raw))
	if err := json.Compact(&compact, raw); err != nil {
		return nil, []Problem{{Msg: "body is not valid JSON: " + err.Error(), Type: "value_error.jsondecode"}}
	}
	w := &walker{json: compact.Bytes(), maxKeys: maxKeys}
	if len(w.json) == 0 || w.json[0] != '{' {
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

// object walks the object starting at w.pos, and moves past it.
func (w *walker) object(path []any, depth int) {
	seen := map[string]bool{}
	b := w.json
	w.pos++ // '{'
	for !w.stop && b[w.pos] != '}' {
		if b[w.pos] == ',' {
			w.pos++
		}
		end := stringEnd(b, w.pos)
		key := decodeKey(b[w.pos:end])
		w.pos = end + 1 // past ':'
		if w.keys++; w.maxKeys > 0 && w.keys > w.maxKeys {
			w.problems = append(w.problems[:0], Problem{
				Msg:  "document has more than " + strconv.Itoa(w.maxKeys) + " keys, nested ones included",
				Type: "value_error.document.max_keys", Ctx: map[string]any{"limit_value": w.maxKeys},
			})
			w.stop = true
			return
		}
		switch {
		case strings.HasPrefix(key, "$"):
			w.fail(append(path, key), "keys must not start with '$'", "value_error.key.dollar")
		case strings.Contains(key, "."):
			w.fail(append(path, key), "keys must not contain '.'", "value_error.key.dot")
		case strings.ContainsRune(key, 0):
			w.fail(append(path, key), "keys must not contain NUL", "value_error.key.nul")
		case seen[key]:
			w.fail(append(path, key), "duplicate key", "value_error.key.duplicate")
		}
		seen[key] = true
		v, isScalar := w.value(path, key, depth, depth == 1)
		if depth == 1 {
			w.top = append(w.top, member{key: key, value: v, scalar: isScalar})
		}
	}
	w.pos++ // '}'
}

// value walks the value at w.pos, at path+elem inside a container at
// depth, and moves past it; for a scalar it returns true and, when decode
// is set, its value (string, json.Number, bool or nil). The path is built
// only for containers, whose problems need it.
func (w *walker) value(path []any, elem any, depth int, decode bool) (any, bool) {
	b := w.json
	start := w.pos
	switch b[start] {
	case '{', '[':
	default:
		w.pos = valueEnd(b, start)
		if !decode {
			return nil, true
		}
		return scalar(b[start:w.pos]), true
	}
	path = append(path, elem)
	if depth+1 > MaxDepth {
		w.fail(path, "nesting deeper than "+strconv.Itoa(MaxDepth)+" levels", "value_error.depth")
		w.pos = valueEnd(b, start)
		return nil, false
	}
	if b[start] == '{' {
		w.object(path, depth+1)
		return nil, false
	}
	w.pos++ // '['
	for i := 0; !w.stop && b[w.pos] != ']'; i++ {
		if b[w.pos] == ',' {
			w.pos++
		}
		w.value(path, i, depth+1, false)
	}
	w.pos++ // ']'
	return nil, false
}

// scalar decodes a scalar's text as encoding/json's tokens have it.
func scalar(lit []byte) any {
	switch lit[0] {
	case '"':
		return decodeKey(lit)
	case 't':
		return true
	case 'f':
		return false
	case 'n':
		return nil
	}
	return json.Number(lit)
}

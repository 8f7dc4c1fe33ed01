package jsondoc

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestParseKeepsTextAndLiftsScalars(t *testing.T) {
	d, problems := Parse([]byte(`{ "s":"x", "n":9007199254740993, "f":1.5, "z":-0, "b":true, "nil":null, "o":{"k":1}, "a":[1], "huge":1e400, "":1 }`))
	if problems != nil {
		t.Fatal(problems)
	}
	if string(d.JSON) != `{"s":"x","n":9007199254740993,"f":1.5,"z":-0,"b":true,"nil":null,"o":{"k":1},"a":[1],"huge":1e400,"":1}` {
		t.Fatalf("JSON: %s", d.JSON)
	}
	want := bson.D{{Key: "s", Value: "x"}, {Key: "n", Value: int64(9007199254740993)}, {Key: "f", Value: 1.5}, {Key: "z", Value: math.Copysign(0, -1)}, {Key: "b", Value: true}, {Key: "nil", Value: nil}}
	if len(d.Fields) != len(want) {
		t.Fatalf("Fields: %v", d.Fields)
	}
	for i := range want {
		if d.Fields[i].Key != want[i].Key || d.Fields[i].Value != want[i].Value {
			t.Fatalf("field %d: got %v, want %v", i, d.Fields[i], want[i])
		}
	}
}

func TestParseRefuses(t *testing.T) {
	cases := map[string]string{
		`{"$set":1}`:                       "value_error.key.dollar",
		`{"a":{"$gt":1}}`:                  "value_error.key.dollar",
		`{"a":[{"$ne":1}]}`:                "value_error.key.dollar",
		`{"a.b":1}`:                        "value_error.key.dot",
		"{\"a\\u0000\":1}":                 "value_error.key.nul",
		`{"a":1,"a":1}`:                    "value_error.key.duplicate",
		`[1]`:                              "type_error.dict",
		`1`:                                "type_error.dict",
		`null`:                             "type_error.dict",
		`{"a":`:                            "value_error.jsondecode",
		`{} []`:                            "value_error.jsondecode",
		"{\"a\":\"\xff\"}":                 "value_error.utf8",
		nest(33, `{"a":`, "}"):             "value_error.depth",
		`{"a":` + nest(32, "[", "]") + `}`: "value_error.depth",
	}
	for in, typ := range cases {
		_, problems := Parse([]byte(in))
		if len(problems) == 0 || problems[0].Type != typ {
			t.Errorf("Parse(%.40q): %v, want %s", in, problems, typ)
		}
	}
	if _, problems := Parse([]byte(nest(32, `{"a":`, "}"))); problems != nil {
		t.Errorf("32 levels refused: %v", problems)
	}
	_, problems := Parse([]byte(`{"a":{"b.c":1,"$d":2}}`))
	if len(problems) != 2 || problems[0].Path[0] != "a" || problems[0].Path[1] != "b.c" {
		t.Errorf("problems and paths: %v", problems)
	}
}

func nest(levels int, open, close string) string {
	return strings.Repeat(open, levels) + "1" + strings.Repeat(close, levels)
}

func TestParseFilter(t *testing.T) {
	conds, problems := ParseFilter(`{"kind":"x","n":2,"big":9007199254740993,"ok":false,"gone":null}`)
	if problems != nil {
		t.Fatal(problems)
	}
	want := []Condition{{"kind", "x"}, {"n", int64(2)}, {"big", int64(9007199254740993)}, {"ok", false}, {"gone", nil}}
	if len(conds) != len(want) {
		t.Fatalf("got %v", conds)
	}
	for i := range want {
		if conds[i] != want[i] {
			t.Fatalf("condition %d: got %v, want %v", i, conds[i], want[i])
		}
	}
	for _, bad := range []string{`{"n":{"$gt":1}}`, `{"$or":[]}`, `{"n":[1]}`, `{"n":{}}`, `{"":1}`, `{"n":1e999}`, `[]`, `x`} {
		if _, problems := ParseFilter(bad); len(problems) == 0 {
			t.Errorf("ParseFilter(%s) accepted", bad)
		}
	}
}

func TestMerge(t *testing.T) {
	patch, problems := ParsePatch([]byte(`{"a":null,"b":{"c":2},"big":12345678901234567890}`))
	if problems != nil {
		t.Fatal(problems)
	}
	d, problems := Merge([]byte(`{"a":1,"b":{"c":1,"d":[[1]]},"keep":-0}`), patch)
	if problems != nil {
		t.Fatal(problems)
	}
	var got, want any
	_ = json.Unmarshal(d.JSON, &got)
	_ = json.Unmarshal([]byte(`{"b":{"c":2,"d":[[1]]},"keep":-0,"big":12345678901234567890}`), &want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("merged: %s", d.JSON)
	}
	if !bytes.Contains(d.JSON, []byte(`12345678901234567890`)) || !bytes.Contains(d.JSON, []byte(`"keep":-0`)) {
		t.Fatalf("literals changed: %s", d.JSON)
	}
	if _, problems := ParsePatch([]byte(`{"$set":{"a":1}}`)); len(problems) == 0 {
		t.Fatal("operator in a patch accepted")
	}
	if _, problems := Merge([]byte(nest(31, `{"a":`, "}")), []byte(nest(33, `{"a":`, "}"))); len(problems) == 0 {
		t.Fatal("merge past the depth limit accepted")
	}
}

func TestNumber(t *testing.T) {
	cases := map[string]any{
		"1": int64(1), "-0": math.Copysign(0, -1), "1.0": 1.0, "1e2": 100.0,
		"9223372036854775807": int64(math.MaxInt64), "9223372036854775808": 9223372036854775808.0,
	}
	for lit, want := range cases {
		got, ok := Number(json.Number(lit))
		if !ok || got != want {
			t.Errorf("Number(%s) = %v, %v; want %v", lit, got, ok, want)
		}
	}
	if _, ok := Number("1e400"); ok {
		t.Error("1e400 is beyond a double")
	}
}

// FuzzParse checks that Parse never panics, and that what it accepts is
// valid JSON that parses again to the same text.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{`{}`, `{"a":[[1,2]],"b":{"c":null}}`, `{"$x":1}`, `{"a.b":1}`, `[`, `{"a":1e400,"b":-0}`, nest(40, `{"a":`, "}")} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, problems := Parse(raw)
		if problems != nil {
			return
		}
		if !json.Valid(d.JSON) {
			t.Fatalf("accepted invalid JSON %q", raw)
		}
		again, problems := Parse(d.JSON)
		if problems != nil || !bytes.Equal(again.JSON, d.JSON) {
			t.Fatalf("not stable: %q -> %q", d.JSON, again.JSON)
		}
		_, _ = ParseFilter(string(raw))
	})
}

func TestKeyCap(t *testing.T) {
	l := Limits{MaxKeys: 3}
	for _, ok := range []string{`{}`, `{"a":1,"b":{"c":1}}`, `{"a":[{"x":1},{"y":2}]}`, `{"a":[1,2,3,4,5,6]}`} {
		if _, problems := l.Parse([]byte(ok)); problems != nil {
			t.Errorf("Parse(%s): %v, want it accepted", ok, problems)
		}
	}
	for _, over := range []string{`{"a":1,"b":2,"c":3,"d":4}`, `{"a":1,"b":{"c":1,"d":2}}`, `{"a":[{"x":1},{"y":2},{"z":3}]}`} {
		_, problems := l.Parse([]byte(over))
		if len(problems) != 1 || problems[0].Type != "value_error.document.max_keys" || problems[0].Ctx["limit_value"] != 3 || len(problems[0].Path) != 0 {
			t.Errorf("Parse(%s): %+v, want one max_keys problem at the root", over, problems)
		}
		if _, problems := l.ParsePatch([]byte(over)); len(problems) != 1 || problems[0].Type != "value_error.document.max_keys" {
			t.Errorf("ParsePatch(%s): %+v", over, problems)
		}
	}
	// The walk stops at the key past the cap: what follows is not read.
	_, problems := l.Parse([]byte(`{"a":1,"b":2,"c":3,"d":4,"$e":5,"f.g":6}`))
	if len(problems) != 1 || problems[0].Type != "value_error.document.max_keys" {
		t.Errorf("problems after the cap: %+v", problems)
	}
	// Without a cap, or below it, other problems are reported as before.
	if _, problems := Parse([]byte(`{"a":1,"b":2,"c":3,"d":4,"$e":5}`)); len(problems) != 1 || problems[0].Type != "value_error.key.dollar" {
		t.Errorf("no cap: %+v", problems)
	}
	// A merge whose result is past the cap is refused.
	if _, problems := l.Merge([]byte(`{"a":1,"b":2}`), []byte(`{"c":3}`)); problems != nil {
		t.Errorf("merge to 3 keys: %v", problems)
	}
	if _, problems := l.Merge([]byte(`{"a":1,"b":2}`), []byte(`{"c":3,"d":4}`)); len(problems) != 1 || problems[0].Type != "value_error.document.max_keys" {
		t.Errorf("merge to 4 keys: %+v", problems)
	}
	if _, problems := l.Merge([]byte(`{"a":1,"b":2,"c":3}`), []byte(`{"c":null,"d":4}`)); problems != nil {
		t.Errorf("merge that removes as many as it adds: %v", problems)
	}
}

func TestMergeKeepsOrderAndText(t *testing.T) {
	cases := []struct{ doc, patch, want string }{
		{`{"a":1,"b":2,"c":3}`, `{"b":null,"d":4,"a":1.50}`, `{"a":1.50,"c":3,"d":4}`},
		{`{"\u0061":1,"z":"\u00e9"}`, `{"a":2}`, `{"\u0061":2,"z":"\u00e9"}`},
		{`{"a":{"x":1,"y":[1,{"q":null}]}}`, `{"a":{"y":null,"z":{"n":null,"m":-0}}}`, `{"a":{"x":1,"z":{"m":-0}}}`},
		{`{"a":[1,2]}`, `{"a":{"b":1}}`, `{"a":{"b":1}}`},
		{`{"a":{"b":1}}`, `{"a":[3]}`, `{"a":[3]}`},
		{`{"a":1}`, `{}`, `{"a":1}`},
		{`{}`, `{"gone":null}`, `{}`},
		{`{"s":"a,b}\"c"}`, `{"t":"]"}`, `{"s":"a,b}\"c","t":"]"}`},
		{` { "a" : [ 1 , 2 ] , "b" : true } `, ` { "b" : null } `, `{"a":[ 1 , 2 ]}`},
	}
	for _, c := range cases {
		got, err := mergePatch([]byte(c.doc), []byte(c.patch))
		if err != nil || string(got) != c.want {
			t.Errorf("merge %s with %s: %s, %v; want %s", c.doc, c.patch, got, err, c.want)
		}
	}
	if _, err := mergePatch([]byte(`{"a":`), []byte(`{}`)); err == nil {
		t.Error("a broken document merged")
	}
}

// FuzzMerge checks the merge against the RFC 7396 implementation of
// github.com/evanphx/json-patch, value for value.
func FuzzMerge(f *testing.F) {
	f.Add([]byte(`{"a":1,"b":{"c":[1,2],"d":null}}`), []byte(`{"b":{"c":null,"e":{"f":null,"g":1}},"h":"x"}`))
	f.Add([]byte(`{"a":{"b":{"c":1}}}`), []byte(`{"a":{"b":2}}`))
	f.Add([]byte(`{"a":1}`), []byte(`{"a":{"b":{"c":null}}}`))
	f.Fuzz(func(t *testing.T, doc, patch []byte) {
		d, problems := Parse(doc)
		if problems != nil {
			return
		}
		p, problems := ParsePatch(patch)
		if problems != nil {
			return
		}
		got, err := mergePatch(d.JSON, p)
		if err != nil {
			t.Fatal(err)
		}
		want, err := jsonpatch.MergePatch(d.JSON, p)
		if err != nil {
			return
		}
		if !sameJSON(got, want) {
			t.Fatalf("merge %s with %s: %s, want %s", d.JSON, p, got, want)
		}
	})
}

func sameJSON(a, b []byte) bool {
	decode := func(b []byte) (any, error) {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		return v, dec.Decode(&v)
	}
	x, errA := decode(a)
	y, errB := decode(b)
	return errA == nil && errB == nil && reflect.DeepEqual(normNumbers(x), normNumbers(y))
}

// normNumbers compares numbers by value, as json-patch re-encodes them.
func normNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = normNumbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = normNumbers(e)
		}
	}
	return v
}

package model

import (
	"math"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestScalarEntry: equal values give equal entries (numbers by value, as
// MongoDB compares them), different ones different entries, and an entry
// reads back to a value that gives it again.
func TestScalarEntry(t *testing.T) {
	entry := func(v any) string {
		e, ok := ScalarEntry("k", v)
		if !ok {
			t.Fatalf("ScalarEntry(%v) refused", v)
		}
		return e
	}
	same := [][2]any{
		{int64(2), 2.0}, {int32(2), int64(2)}, {math.Copysign(0, -1), int64(0)}, {float64(1 << 53), int64(1 << 53)},
		{int64(math.MaxInt64), int64(math.MaxInt64)}, {-9.223372036854775808e18, int64(math.MinInt64)}, {1.5, 1.5},
	}
	for _, p := range same {
		if entry(p[0]) != entry(p[1]) {
			t.Errorf("%v (%T) and %v (%T): %q, %q", p[0], p[0], p[1], p[1], entry(p[0]), entry(p[1]))
		}
	}
	different := [][2]any{
		{int64(1<<53 + 1), float64(1 << 53)}, {int64(2), "2"}, {"true", true}, {nil, ""}, {nil, "z"}, {false, int64(0)},
		{1.5, 1.25}, {9.223372036854775808e18, int64(math.MaxInt64)}, {"a", "a\x00"},
	}
	for _, p := range different {
		if entry(p[0]) == entry(p[1]) {
			t.Errorf("%v (%T) and %v (%T) share %q", p[0], p[0], p[1], p[1], entry(p[0]))
		}
	}
	for _, v := range []any{nil, "", "a\x00b", true, false, int64(-7), 1e300, 2.5e-300, 9.223372036854775808e18} {
		e := entry(v)
		back, ok := parseEntry(e)
		if !ok || back.Key != "k" || entry(back.Value) != e {
			t.Errorf("%q read back as %v, %v", e, back, ok)
		}
	}
	if _, ok := ScalarEntry("k", bson.D{}); ok {
		t.Error("a sub-document made an entry")
	}
}

package model

import (
	"math"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Where a stored document keeps its top-level scalars (Document.Fields).
// ScalarsKey holds them as an array of strings, one ScalarEntry each. A
// sub-document of one key per member, as LegacyFieldsKey holds them in
// documents written before, costs the embedded store time quadratic in
// the members at every write and read (FerretDB finds each key of a
// document by a linear search; BENCHMARKS.md has the number); an array
// costs linear. Filters match both forms; the next write of a
// document replaces the old one.
const (
	ScalarsKey      = "scalars"
	LegacyFieldsKey = "fields"
)

// ScalarEntry is the stored form of a top-level scalar member: the key, a
// NUL (which keys may not hold), a type letter and the value's text.
// Numbers are written so that equal values give equal text, as MongoDB
// compares them (an integral double as the integer, 2 and 2.0 alike;
// other doubles in their shortest form), so an equality filter is an
// equality of strings. ok is false for a value that is not a scalar.
func ScalarEntry(key string, v any) (entry string, ok bool) {
	var text string
	switch x := v.(type) {
	case nil:
		text = "z"
	case string:
		text = "s" + x
	case bool:
		text = "b" + strconv.FormatBool(x)
	case int64:
		text = "n" + strconv.FormatInt(x, 10)
	case int32:
		text = "n" + strconv.FormatInt(int64(x), 10)
	case float64:
		if x == math.Trunc(x) && x >= -(1<<63) && x < 1<<63 {
			text = "n" + strconv.FormatInt(int64(x), 10)
		} else {
			text = "n" + strconv.FormatFloat(x, 'g', -1, 64)
		}
	default:
		return "", false
	}
	return key + "\x00" + text, true
}

// parseEntry reads a ScalarEntry back: numbers as int64 when integral and
// in range, otherwise as float64.
func parseEntry(entry string) (bson.E, bool) {
	key, text, ok := strings.Cut(entry, "\x00")
	if !ok || text == "" {
		return bson.E{}, false
	}
	switch text[0] {
	case 'z':
		return bson.E{Key: key}, true
	case 's':
		return bson.E{Key: key, Value: text[1:]}, true
	case 'b':
		return bson.E{Key: key, Value: text[1:] == "true"}, true
	case 'n':
		if i, err := strconv.ParseInt(text[1:], 10, 64); err == nil {
			return bson.E{Key: key, Value: i}, true
		}
		if f, err := strconv.ParseFloat(text[1:], 64); err == nil {
			return bson.E{Key: key, Value: f}, true
		}
	}
	return bson.E{}, false
}

// Scalars is fields in their stored form.
func Scalars(fields bson.D) []string {
	out := make([]string, 0, len(fields))
	for _, f := range fields {
		if e, ok := ScalarEntry(f.Key, f.Value); ok {
			out = append(out, e)
		}
	}
	return out
}

// storedDocument is a Document as its collection holds it.
type storedDocument struct {
	ID        bson.ObjectID `bson:"_id"`
	Org       bson.ObjectID `bson:"_org,omitempty"`
	JSON      string        `bson:"data_json"`
	Scalars   []string      `bson:"scalars"`
	Legacy    bson.D        `bson:"fields,omitempty"`
	CreatedAt time.Time     `bson:"created_at"`
	UpdatedAt time.Time     `bson:"updated_at"`
}

// MarshalBSON stores d with its Fields under ScalarsKey.
func (d Document) MarshalBSON() ([]byte, error) {
	return bson.Marshal(storedDocument{ID: d.ID, Org: d.Org, JSON: d.JSON, Scalars: Scalars(d.Fields), CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt})
}

// UnmarshalBSON reads a stored document of either form; Fields stay
// empty when a projection left them out.
func (d *Document) UnmarshalBSON(b []byte) error {
	var s storedDocument
	if err := bson.Unmarshal(b, &s); err != nil {
		return err
	}
	*d = Document{ID: s.ID, Org: s.Org, JSON: s.JSON, Fields: s.Legacy, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
	if s.Scalars != nil {
		d.Fields = make(bson.D, 0, len(s.Scalars))
		for _, entry := range s.Scalars {
			if e, ok := parseEntry(entry); ok {
				d.Fields = append(d.Fields, e)
			}
		}
	}
	return nil
}

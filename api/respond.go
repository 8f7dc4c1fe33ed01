package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"

	"github.com/orgsvc/orgsvc/internal/jsondoc"
)

// FieldError is one validation problem, in FastAPI's shape.
type FieldError struct {
	Loc  []any          `json:"loc"`
	Msg  string         `json:"msg" example:"value is not a valid email address"`
	Type string         `json:"type" example:"value_error.email"`
	Ctx  map[string]any `json:"ctx,omitempty" swaggertype:"object"`
} //	@name	FieldError

// ValidationError is the body of every 422 answer.
type ValidationError struct {
	Detail []FieldError `json:"detail"`
} //	@name	ValidationError

// ErrorResponse is the body of every other error answer.
type ErrorResponse struct {
	Detail string `json:"detail" example:"Organization not found"`
} //	@name	ErrorResponse

// jsonContentType is the Content-Type of every JSON answer.
var jsonContentType = []string{"application/json"}

// encode writes v as JSON with the given status.
func encode(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"detail":"Internal Server Error"}`)
	}
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// normalizer is implemented by request types that clean their fields (for
// example, trim a name) before they are validated.
type normalizer interface{ normalize() }

// decode reads a JSON object body into dst, a pointer to a struct whose
// fields are *string, and validates it. It follows the original service's
// rules: a body is parsed as JSON when its Content-Type is absent or JSON;
// numbers are accepted where a string is expected; unknown fields are
// ignored; every problem is reported at once. Unlike the original, a key
// given twice is refused.
func (s *server) decode(w http.ResponseWriter, r *http.Request, dst any) error {
	body, err := readJSONBody(w, r, s.maxBodyBytes)
	if err != nil {
		return err
	}
	if problems := s.parse(body, dst); len(problems) > 0 {
		return fieldErrors(problems)
	}
	return nil
}

// readJSONBody reads a JSON request body, up to limit bytes: a Content-Type
// other than JSON is errUnsupportedMediaType, a larger body errBodyTooLarge.
// A body without Content-Type is read as JSON, as FastAPI did.
func readJSONBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if !isJSON(r.Header.Get("Content-Type")) {
		return nil, errUnsupportedMediaType
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, errBodyTooLarge
		}
		return nil, fmt.Errorf("%w: %v", errUnreadableBody, err)
	}
	return body, nil
}

// parse decodes a JSON body into dst and validates it.
func (s *server) parse(body []byte, dst any) []FieldError {
	if problems := malformed([]any{"body"}, body); len(problems) > 0 {
		return problems
	}
	var raw any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return []FieldError{jsonError([]any{"body"}, body, err)}
	}
	if raw == nil {
		return []FieldError{missing("body")}
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		return []FieldError{notADict()}
	}
	if dups := duplicateKeys(body); len(dups) > 0 {
		return dups
	}
	v := reflect.ValueOf(dst).Elem()
	t := v.Type()
	typeErrs := map[int]FieldError{}
	for i := range t.NumField() {
		name := jsonName(t.Field(i))
		switch val := obj[name].(type) {
		case nil:
		case string:
			v.Field(i).Set(reflect.ValueOf(&val))
		case json.Number:
			str := val.String()
			v.Field(i).Set(reflect.ValueOf(&str))
		default:
			typeErrs[i] = FieldError{Loc: []any{"body", name}, Msg: "str type expected", Type: "type_error.str"}
		}
	}
	if n, ok := dst.(normalizer); ok {
		n.normalize()
	}
	byField := make([][]FieldError, t.NumField())
	for i, fe := range typeErrs {
		byField[i] = append(byField[i], fe)
	}
	var verrs validator.ValidationErrors
	if err := s.validate.Struct(dst); errors.As(err, &verrs) {
		for _, fe := range verrs {
			f, _ := t.FieldByName(fe.StructField())
			i := f.Index[0]
			if _, bad := typeErrs[i]; bad {
				continue
			}
			byField[i] = append(byField[i], fieldProblem(fe))
		}
	}
	var out []FieldError
	for _, p := range byField {
		out = append(out, p...)
	}
	return out
}

// isJSON mirrors FastAPI: no Content-Type, application/json or any
// application/*+json is read as JSON.
func isJSON(contentType string) bool {
	if contentType == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

func missing(loc ...any) FieldError {
	return FieldError{Loc: loc, Msg: "field required", Type: "value_error.missing"}
}

func notADict() FieldError {
	return FieldError{Loc: []any{"body"}, Msg: "value is not a valid dict", Type: "type_error.dict"}
}

// malformed is the one check of every JSON text a request sends (control
// bodies, documents, filters) before anything reads it: one value, valid
// UTF-8. It returns nil, or the problem in FastAPI's shape (see jsonError).
func malformed(where []any, text []byte) []FieldError {
	if len(text) == 0 {
		return []FieldError{missing(where...)}
	}
	if !json.Valid(text) {
		// Unmarshal gives the offset; it checks trailing data as well.
		return []FieldError{jsonError(where, text, json.Unmarshal(text, new(json.RawMessage)))}
	}
	if !utf8.Valid(text) {
		return []FieldError{jsonError(where, text, errNotUTF8)}
	}
	return nil
}

var errNotUTF8 = errors.New("invalid UTF-8")

// jsonError describes malformed JSON as FastAPI does, with the offset after
// where in loc and the line and column in ctx. Nothing of the text itself
// is echoed: it may hold a password.
func jsonError(where []any, text []byte, err error) FieldError {
	pos := len(text)
	msg := "invalid JSON"
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		msg = syntaxMessage(syn)
		pos = int(syn.Offset)
		if msg != "unexpected end of JSON input" && pos > 0 {
			pos-- // Offset counts the offending byte; FastAPI points at it.
		}
	case errors.Is(err, errNotUTF8):
		msg = err.Error()
		for pos = 0; pos < len(text); {
			r, n := utf8.DecodeRune(text[pos:])
			if r == utf8.RuneError && n == 1 {
				break
			}
			pos += n
		}
	}
	pos = min(pos, len(text))
	line := bytes.Count(text[:pos], []byte("\n")) + 1
	col := pos - bytes.LastIndexByte(text[:pos], '\n')
	return FieldError{
		Loc:  append(append([]any{}, where...), pos),
		Msg:  msg + ": line " + strconv.Itoa(line) + " column " + strconv.Itoa(col) + " (char " + strconv.Itoa(pos) + ")",
		Type: "value_error.jsondecode",
		Ctx:  map[string]any{"msg": msg, "pos": pos, "lineno": line, "colno": col},
	}
}

// syntaxContexts are where encoding/json says a syntax error is, longest
// first where one ends another.
var syntaxContexts = []string{
	"looking for beginning of value", "looking for beginning of object key string",
	"after object key:value pair", "after object key", "after array element", "after top-level value",
	"in string literal", "in string escape code", `in \u hexadecimal character escape`,
	"after decimal point in numeric literal", "in exponent of numeric literal", "in numeric literal",
	"exceeded max depth",
}

// syntaxMessage is encoding/json's message without the offending character
// and the literal it broke ("invalid character 'x' in literal true
// (expecting 'r')" would tell the body's bytes).
func syntaxMessage(err *json.SyntaxError) string {
	msg := err.Error()
	if !strings.HasPrefix(msg, "invalid character ") {
		return msg // unexpected end of JSON input
	}
	for _, c := range syntaxContexts {
		if strings.HasSuffix(msg, " "+c) {
			return "invalid character " + c
		}
	}
	if strings.Contains(msg, " in literal ") {
		return "invalid character in literal"
	}
	return "invalid character"
}

// duplicateKey is the problem type jsondoc gives a repeated key.
const duplicateKey = "value_error.key.duplicate"

// duplicateKeys reports every key the body repeats, as the documents'
// checker finds them; its other rules are a document's, not a control
// body's.
func duplicateKeys(body []byte) []FieldError {
	_, problems := jsondoc.Parse(body)
	var dups []jsondoc.Problem
	for _, p := range problems {
		if p.Type == duplicateKey {
			dups = append(dups, p)
		}
	}
	return docProblems([]any{"body"}, dups)
}

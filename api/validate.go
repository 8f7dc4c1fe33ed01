package api

import (
	"reflect"
	"strconv"
	"strings"

	"github.com/go-playground/validator/v10"

	"github.com/orgsvc/orgsvc/internal/model"
)

// newValidator returns the request validator: field names are the JSON
// names, two rules are added for passwords, one for organization names,
// and e-mail domains must pass IDNA.
func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string { return jsonName(f) })
	// maxbytes=N: at most N bytes (bcrypt reads only the first 72).
	_ = v.RegisterValidation("maxbytes", func(fl validator.FieldLevel) bool {
		return len(fl.Field().String()) <= atoi(fl.Param())
	})
	// nonul: no NUL character.
	_ = v.RegisterValidation("nonul", func(fl validator.FieldLevel) bool {
		return !strings.ContainsRune(fl.Field().String(), 0)
	})
	// orgname: no control, line-break, zero-width or bidi character.
	_ = v.RegisterValidation("orgname", func(fl validator.FieldLevel) bool {
		return !model.HiddenInName(fl.Field().String())
	})
	// email: the built-in rule, and a domain the IDNA lookup profile
	// accepts (see model.NormalizeEmail).
	builtin := validator.New()
	_ = v.RegisterValidation("email", func(fl validator.FieldLevel) bool {
		s := fl.Field().String()
		return builtin.Var(s, "email") == nil && model.ValidEmailDomain(s)
	})
	return v
}

// canonicalName stores a new organization name's canonical form (NFKC,
// trimmed) in place, so that its length is checked as it will be stored.
func canonicalName(s *string) {
	if s != nil {
		*s = model.CanonicalName(*s)
	}
}

// jsonName is the name a request field goes by: in the body, and so in
// validation errors.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

// fieldProblem describes a broken rule of the validator as FastAPI did.
func fieldProblem(fe validator.FieldError) FieldError {
	loc := []any{"body", fe.Field()}
	switch fe.Tag() {
	case "required":
		return missing(loc...)
	case "min":
		return FieldError{Loc: loc, Msg: "ensure this value has at least " + fe.Param() + " characters", Type: "value_error.any_str.min_length", Ctx: map[string]any{"limit_value": atoi(fe.Param())}}
	case "max":
		return FieldError{Loc: loc, Msg: "ensure this value has at most " + fe.Param() + " characters", Type: "value_error.any_str.max_length", Ctx: map[string]any{"limit_value": atoi(fe.Param())}}
	case "email":
		return FieldError{Loc: loc, Msg: "value is not a valid email address", Type: "value_error.email"}
	case "maxbytes":
		return FieldError{Loc: loc, Msg: "ensure this value has at most " + fe.Param() + " bytes (bcrypt's limit)", Type: "value_error.any_str.max_bytes", Ctx: map[string]any{"limit_value": atoi(fe.Param())}}
	case "nonul":
		return FieldError{Loc: loc, Msg: "value must not contain NUL characters", Type: "value_error.str.nul"}
	case "orgname":
		return FieldError{Loc: loc, Msg: model.NameCharsMessage, Type: model.NameCharsType}
	default:
		return FieldError{Loc: loc, Msg: "value is not valid (" + fe.Tag() + ")", Type: "value_error." + fe.Tag()}
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

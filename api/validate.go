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

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func itoa(n int) string { return strconv.Itoa(n) }

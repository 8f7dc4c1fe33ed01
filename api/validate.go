package api

import (
	"reflect"
	"strconv"
	"strings"

	"github.com/go-playground/validator/v10"
)

// newValidator returns the request validator: field names are the JSON
// names, and two rules are added for passwords.
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
	return v
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func itoa(n int) string { return strconv.Itoa(n) }

package model

import (
	"strings"
)

// MaxSlugBytes bounds a slug so that "<db>.org_<slug>" fits the namespace
// limits of MongoDB (255 bytes) and of FerretDB (235-byte collection names).
const MaxSlugBytes = 200

// Slug turns an organization name into the suffix of its tenant collection,
// by the original service's rule: trim, lower-case, then replace every
// maximal run of characters outside [a-z0-9_] with a single "_".
func Slug(name string) string {
	lower := strings.ToLower(strings.TrimSpace(name))
	var b strings.Builder
	b.Grow(len(lower))
	inRun := false
	for _, r := range lower {
		if r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			inRun = false
			continue
		}
		if !inRun {
			b.WriteByte('_')
			inRun = true
		}
	}
	return b.String()
}

// EmailKey is the form under which an e-mail address is kept unique.
func EmailKey(email string) string { return strings.ToLower(email) }

// NormalizeEmail lower-cases the domain part and keeps the local part as
// sent, as the original service did.
func NormalizeEmail(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return email
	}
	return email[:at+1] + strings.ToLower(email[at+1:])
}

package model

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// MaxSlugBytes bounds a slug so that "<db>.org_<slug>" fits the namespace
// limits of MongoDB (255 bytes) and of FerretDB (235-byte collection names).
const MaxSlugBytes = 200

// UnicodeSlugPrefix starts the slug of a name without ASCII letters or
// digits. The original rule never writes "-", so such a slug meets no
// slug of that rule.
const UnicodeSlugPrefix = "xn--"

// CanonicalName is a new organization name as it is stored: NFKC (so that
// fullwidth letters, ligatures and non-breaking spaces read as what they
// look like), then trimmed.
func CanonicalName(name string) string { return strings.TrimSpace(norm.NFKC.String(name)) }

// SameName reports whether a name sent by a client names the stored one:
// exactly, or once NFKC-normalized. Case and spaces still matter.
func SameName(stored, sent string) bool {
	return stored == sent || stored == norm.NFKC.String(sent)
}

// Slug turns an organization name into the suffix of its tenant
// collection. The name is NFKC-normalized, trimmed and lower-cased. If it
// then holds an ASCII letter or digit, or only ASCII, the original
// service's rule applies: every maximal run of characters outside
// [a-z0-9_] becomes one "_". Otherwise the original rule would give "_"
// to every such name, so runs of ASCII characters outside [a-z0-9_]
// become one "_", the rest is kept and the whole is Punycode with the
// prefix "xn--": "日本" is "xn--wgv71a", "Москва" is "xn--80adxhks".
// Distinct names of that kind get distinct slugs, ASCII and no "$" or NUL.
func Slug(name string) string {
	lower := strings.ToLower(CanonicalName(name))
	if !hasASCIIAlnum(lower) && !ascii(lower) {
		return unicodeSlug(lower)
	}
	return originalSlug(lower)
}

// legacySlug is the slug a name had before names were normalized.
func legacySlug(name string) string { return originalSlug(strings.ToLower(strings.TrimSpace(name))) }

// LookupSlugs are the slugs under which an organization named name may be
// found: the slug the name had before names were normalized (an
// organization made then keeps it), when it differs, then its slug.
func LookupSlugs(name string) []string {
	var out []string
	for _, s := range []string{legacySlug(name), Slug(name)} {
		if s != "" && (len(out) == 0 || out[0] != s) {
			out = append(out, s)
		}
	}
	return out
}

// originalSlug replaces every run of characters outside [a-z0-9_] of a
// lower-cased name with one "_".
func originalSlug(lower string) string {
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

// unicodeSlug is the slug of a lower-cased name without ASCII letters or
// digits that holds something beyond ASCII.
func unicodeSlug(lower string) string {
	var b strings.Builder
	inRun := false
	for _, r := range lower {
		if r < utf8.RuneSelf && r != '_' {
			// Punctuation, spaces, "$", ".": one "_" a run, as in the
			// original rule. No "." is left to split labels at.
			if !inRun {
				b.WriteByte('_')
				inRun = true
			}
			continue
		}
		b.WriteRune(r)
		inRun = false
	}
	if utf8.RuneCountInString(b.String()) > MaxSlugBytes {
		// Punycode writes at least a byte a character (and takes time
		// quadratic in the length): too long for a slug either way.
		return UnicodeSlugPrefix + strings.Repeat("_", MaxSlugBytes)
	}
	s, err := idna.Punycode.ToASCII(b.String())
	if err != nil || !strings.HasPrefix(s, UnicodeSlugPrefix) {
		return "" // cannot happen for a name of bounded length; refused as empty
	}
	return s
}

func hasASCIIAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') {
			return true
		}
	}
	return false
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// NameCharsMessage and NameCharsType describe, in the validation error
// shape, a name HiddenInName refuses.
const (
	NameCharsMessage = "name must not contain control, line-break, zero-width or bidirectional control characters"
	NameCharsType    = "value_error.name.characters"
)

// HiddenInName reports whether name holds a character an organization
// name may not: controls (NUL, CR and LF among them), line and paragraph
// separators, zero-width characters and bidi controls. They are invisible
// or reorder text, so two names that look the same could differ by them.
func HiddenInName(name string) bool {
	for _, r := range name {
		switch {
		case r < 0x20 || (r >= 0x7f && r <= 0x9f): // C0, DEL, C1 (NEL)
			return true
		case r >= 0x200b && r <= 0x200f: // zero-width space, ZWNJ, ZWJ, LRM, RLM
			return true
		case r >= 0x2028 && r <= 0x202e: // line and paragraph separators, LRE..RLO
			return true
		case r == 0x2060 || (r >= 0x2066 && r <= 0x2069) || r == 0x061c || r == 0xfeff:
			return true
		}
	}
	return false
}

// emailDomains maps an e-mail domain as DNS lookups do (UTS #46): case,
// width and compatibility forms folded, A-labels read as U-labels, and
// labels that break the IDNA rules refused.
var emailDomains = idna.Lookup

// NormalizeEmail keeps the local part as sent and maps the domain through
// IDNA (lower-cased, NFKC-folded, "xn--" labels decoded), so that
// "kate@ＭＡＩＬ.test" is "kate@mail.test". A domain the mapping refuses
// (see ValidEmailDomain) is only lower-cased, as the original service did.
func NormalizeEmail(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return email
	}
	domain, err := emailDomains.ToUnicode(email[at+1:])
	if err != nil {
		domain = strings.ToLower(email[at+1:])
	}
	return email[:at+1] + domain
}

// ValidEmailDomain reports whether the domain of email passes the IDNA
// lookup rules.
func ValidEmailDomain(email string) bool {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return false
	}
	_, err := emailDomains.ToUnicode(email[at+1:])
	return err == nil
}

// EmailKey is the form under which an e-mail address is kept unique: the
// normalized address (NormalizeEmail) in lower case.
func EmailKey(email string) string { return strings.ToLower(NormalizeEmail(email)) }

package model

import (
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"
)

func TestSlug(t *testing.T) {
	cases := map[string]string{
		"alpha":            "alpha",
		"ALPHA":            "alpha",
		"Acme Inc!":        "acme_inc_",
		"Acme Inc":         "acme_inc",
		"acme_inc":         "acme_inc",
		"a__b":             "a__b",
		"  Gamma Renamed ": "gamma_renamed",
		"!!":               "_",
		"   ":              "",
		"x-y.z/w":          "x_y_z_w",
		"café":             "caf_",
		"12345":            "12345",
		"a$b\x00c":         "a_b_c",
		// Fullwidth and compatibility forms are what they look like.
		"Ａｃｍｅ Ｉｎｃ":      "acme_inc",
		"ﬁnance":        "finance",
		"Acme\u00a0Inc": "acme_inc",
		// No ASCII letter or digit: Punycode.
		"日本":     "xn--wgv71a",
		"中国":     "xn--fiqs8s",
		"Москва": "xn--80adxhks",
		"МОСКВА": "xn--80adxhks",
		"日本 中国":  "xn--_-lq6ay5zb5pzpb",
		"日本-中国":  "xn--_-lq6ay5zb5pzpb",
		"日本$.中国": "xn--_-lq6ay5zb5pzpb",
		"日本　中国":  "xn--_-lq6ay5zb5pzpb", // ideographic space
		"日本。中国":  "xn--r6j112gn7fb5pzpb",
		"  日本  ": "xn--wgv71a",
	}
	for in, want := range cases {
		if got := Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSlugsOfNonASCIINamesDiffer: names without ASCII letters or digits no
// longer share the slug "_", and their slugs are fit for a collection name.
func TestSlugsOfNonASCIINamesDiffer(t *testing.T) {
	names := []string{"日本", "中国", "한국", "Ελλάδα", "ישראל", "مصر", "ประเทศไทย", "日本!", "日本語", "東京", "Россия", "😀😀"}
	seen := map[string]string{}
	for _, n := range names {
		s := Slug(n)
		if other, dup := seen[s]; dup {
			t.Errorf("%q and %q share the slug %q", n, other, s)
		}
		seen[s] = n
		if !strings.HasPrefix(s, UnicodeSlugPrefix) || strings.ContainsAny(s, "$.\x00") || len(s) > MaxSlugBytes {
			t.Errorf("Slug(%q) = %q: not a usable collection suffix", n, s)
		}
		for _, r := range s {
			if r >= 0x80 {
				t.Errorf("Slug(%q) = %q is not ASCII", n, s)
			}
		}
	}
	// The longest names (50 characters) fit.
	long := strings.Repeat("語", 25) + strings.Repeat("東", 25)
	if s := Slug(long); len(s) > MaxSlugBytes || !strings.HasPrefix(s, UnicodeSlugPrefix) {
		t.Errorf("Slug of 50 CJK characters = %q (%d bytes)", s, len(s))
	}
	// A huge lookup is refused as too long, not encoded.
	if s := Slug(strings.Repeat("語", 100000)); len(s) <= MaxSlugBytes {
		t.Errorf("Slug of 100000 characters has %d bytes, want more than %d", len(s), MaxSlugBytes)
	}
}

func TestLookupSlugs(t *testing.T) {
	cases := map[string][]string{
		"Acme Inc": {"acme_inc"},
		"":         nil,
		"日本":       {"_", "xn--wgv71a"},
		"Ａcme":     {"_cme", "acme"},
	}
	for in, want := range cases {
		if got := LookupSlugs(in); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("LookupSlugs(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCanonicalName(t *testing.T) {
	cases := map[string]string{
		"  Acme Inc ":   "Acme Inc",
		"Ａｃｍｅ":          "Acme",
		"Acme\u00a0Inc": "Acme Inc",
		"ﬁnance":        "finance",
		"Cafe\u0301":    "Café",
		"\u00a8x":       "\u0308x", // NFKC gives " \u0308x"; trimmed, still NFKC
		"日本\u3000":      "日本",
	}
	for in, want := range cases {
		got := CanonicalName(in)
		if got != want {
			t.Errorf("CanonicalName(%q) = %q, want %q", in, got, want)
		}
		if !norm.NFKC.IsNormalString(got) || CanonicalName(got) != got {
			t.Errorf("CanonicalName(%q) = %q is not stable", in, got)
		}
	}
	if !SameName("Acme", "Ａｃｍｅ") || !SameName("Acme", "Acme") || SameName("Acme", "ACME") || SameName("Acme", " Acme") {
		t.Error("SameName: fullwidth is the same name; case and spaces are not")
	}
}

func TestHiddenInName(t *testing.T) {
	for _, r := range []rune{0, '\r', '\n', '\t', 0x7f, 0x85, 0x200b, 0x200c, 0x200d, 0x200e, 0x200f, 0x2028, 0x2029,
		0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2060, 0x2066, 0x2067, 0x2068, 0x2069, 0x061c, 0xfeff} {
		if name := "Ac" + string(r) + "me"; !HiddenInName(name) {
			t.Errorf("HiddenInName(%q) = false", name)
		}
	}
	for _, name := range []string{"Acme Inc", "日本", "Café", "a-b_c!", "Ελλάδα", "مصر"} {
		if HiddenInName(name) {
			t.Errorf("HiddenInName(%q) = true", name)
		}
	}
}

func TestNormalizeEmail(t *testing.T) {
	cases := map[string]string{
		"Mixed.Case@MAILCASE.Example.COM": "Mixed.Case@mailcase.example.com",
		"a@b.com":                         "a@b.com",
		"weird@local@HOST.com":            "weird@local@host.com",
		"kate@ＭＡＩＬ.test":                  "kate@mail.test",
		"Kate@ｍａｉｌ.ｔｅｓｔ":                  "Kate@mail.test",
		"kate@BÜCHER.example":             "kate@bücher.example",
		"kate@xn--bcher-kva.example":      "kate@bücher.example",
		"kate@ﬁ.test":                     "kate@fi.test",
		"a~b@Mail~X.test":                 "a~b@mail~x.test", // refused by the profile: lower-cased only
	}
	for in, want := range cases {
		got := NormalizeEmail(in)
		if got != want {
			t.Errorf("NormalizeEmail(%q) = %q, want %q", in, got, want)
		}
		if again := NormalizeEmail(got); again != got {
			t.Errorf("NormalizeEmail(%q) = %q, not stable", got, again)
		}
	}
	if EmailKey("Mixed.Case@mailcase.example.com") != "mixed.case@mailcase.example.com" {
		t.Error("EmailKey does not lower-case")
	}
	if EmailKey("kate@ＭＡＩＬ.test") != EmailKey("kate@mail.test") {
		t.Error("EmailKey: a fullwidth domain is another address")
	}
	for email, want := range map[string]bool{
		"kate@mail.test": true, "kate@ＭＡＩＬ.test": true, "kate@bücher.example": true,
		"kate@a~b.test": false, "kate@exa\u200dmple.com": false, "kate@ab--c.test": false, "kate@xn--zz.test": false, "kate": false,
	} {
		if got := ValidEmailDomain(email); got != want {
			t.Errorf("ValidEmailDomain(%q) = %v, want %v", email, got, want)
		}
	}
}

package model

import "testing"

func TestSlug(t *testing.T) {
	cases := map[string]string{
		"alpha":            "alpha",
		"ALPHA":            "alpha",
		"Acme Inc!":        "acme_inc_",
		"Acme Inc":         "acme_inc",
		"acme_inc":         "acme_inc",
		"a__b":             "a__b",
		"  Gamma Renamed ": "gamma_renamed",
		"日本":               "_",
		"中国":               "_",
		"!!":               "_",
		"   ":              "",
		"x-y.z/w":          "x_y_z_w",
		"café":             "caf_",
		"12345":            "12345",
		"a$b\x00c":         "a_b_c",
	}
	for in, want := range cases {
		if got := Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalizeEmail(t *testing.T) {
	cases := map[string]string{
		"Mixed.Case@MAILCASE.Example.COM": "Mixed.Case@mailcase.example.com",
		"a@b.com":                         "a@b.com",
		"weird@local@HOST.com":            "weird@local@host.com",
	}
	for in, want := range cases {
		if got := NormalizeEmail(in); got != want {
			t.Errorf("NormalizeEmail(%q) = %q, want %q", in, got, want)
		}
	}
	if EmailKey("Mixed.Case@mailcase.example.com") != "mixed.case@mailcase.example.com" {
		t.Error("EmailKey does not lower-case")
	}
}

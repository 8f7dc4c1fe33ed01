package app_test

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/orgsvc/orgsvc/internal/app"
)

func TestCommandLine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args     []string
		code     int
		out, err string
	}{
		{args: []string{"orgsvc", "version"}, code: 0, out: "orgsvc "},
		{args: []string{"orgsvc", "--version"}, code: 0, out: runtime.Version()},
		{args: []string{"orgsvc", "--help"}, code: 0, out: "orgsvc [serve]"},
		{args: []string{"orgsvc", "-h"}, code: 0, out: "orgsvc version"},
		{args: []string{"orgsvc", "--port=1"}, code: 2, err: `unknown flag "--port=1"`},
		{args: []string{"orgsvc", "launch"}, code: 2, err: `unknown command "launch"`},
		{args: []string{"orgsvc", "serve", "--verbose"}, code: 2, err: "serve takes no arguments"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args[1:], " "), func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			code := app.Run(context.Background(), c.args, environ(t, nil), &out, &errb)
			if code != c.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, c.code, errb.String())
			}
			if c.out != "" && !strings.Contains(out.String(), c.out) {
				t.Fatalf("stdout %q lacks %q", out.String(), c.out)
			}
			if c.err != "" && !strings.Contains(errb.String(), c.err) {
				t.Fatalf("stderr %q lacks %q", errb.String(), c.err)
			}
			if c.code == 2 && !strings.Contains(errb.String(), "Usage:") {
				t.Fatalf("an error without the usage: %q", errb.String())
			}
		})
	}
}

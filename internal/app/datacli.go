package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/orgsvc/orgsvc/internal/exportfmt"
	"github.com/orgsvc/orgsvc/internal/jsondoc"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/service"
)

const exportUsage = `Usage:
  orgsvc export --org NAME|ID [--out FILE]
        write the organization's documents as NDJSON (GET /org/export's
        format) to FILE, or to stdout
`

const importUsage = `Usage:
  orgsvc import --org NAME|ID [--mode merge|replace] FILE
        load an export into the organization (POST /org/import): merge
        upserts by id (the default), replace puts it in place of every
        document; a bad line changes nothing
`

// progress is a progress bar on stderr when it is a terminal, else
// nothing; max -1 is a count without an end.
func progress(stderr io.Writer, max int64, what string, bytes bool) *progressbar.ProgressBar {
	f, ok := stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription(what),
		progressbar.OptionThrottle(100 * time.Millisecond), progressbar.OptionShowCount(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(stderr) }),
	}
	if bytes {
		opts = append(opts, progressbar.OptionShowBytes(true))
	}
	return progressbar.NewOptions64(max, opts...)
}

// flags parses a command's flags; the exit status when it should stop.
func flags(fs *flag.FlagSet, args []string, usage string, stdout, stderr io.Writer) (int, bool) {
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprint(stdout, usage)
		return 0, true
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	return 0, false
}

// openOrg opens the store as openTool does and looks up the organization
// a command names; nil and the exit status when either fails.
func openOrg(ctx context.Context, getenv func(string) string, stderr io.Writer, cmd, name string) (*tool, *service.OrgService, *model.Organization, int) {
	t, code := openTool(ctx, getenv, stderr)
	if t == nil {
		return nil, nil, nil, code
	}
	orgs := t.orgs()
	org, err := orgs.Lookup(ctx, name)
	if err != nil {
		t.close()
		fmt.Fprintf(stderr, "%s: %s: %v\n", cmd, name, err)
		return nil, nil, nil, 1
	}
	return t, orgs, org, 0
}

// exportCommand runs orgsvc export.
func exportCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("orgsvc export", flag.ContinueOnError)
	name := fs.String("org", "", "organization name, or id")
	out := fs.String("out", "", "file to write (default: stdout)")
	if code, stop := flags(fs, args, exportUsage, stdout, stderr); stop {
		return code
	}
	if *name == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "orgsvc export: --org is required, and nothing else\n\n%s", exportUsage)
		return 2
	}
	t, orgs, org, code := openOrg(ctx, getenv, stderr, "orgsvc export", *name)
	if t == nil {
		return code
	}
	defer t.close()
	var w io.Writer = stdout
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			fmt.Fprintf(stderr, "orgsvc export: %v\n", err)
			return 1
		}
		defer f.Close()
		w = f
	}
	bar := progress(stderr, -1, "documents", false)
	x := exportfmt.NewWriter(w)
	n := 0
	err := orgs.Export(ctx, service.OperatorPrincipal(org, "orgsvc export"),
		func(o *model.Organization) error { return x.Header(o.Name, time.Now()) },
		func(d *model.Document) error {
			n++
			if bar != nil {
				_ = bar.Add(1)
			}
			return x.Document(d)
		})
	if err == nil {
		err = x.Flush()
	}
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		fmt.Fprintf(stderr, "orgsvc export: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "exported %d documents of %q\n", n, org.Name)
	return 0
}

// importCommand runs orgsvc import.
func importCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("orgsvc import", flag.ContinueOnError)
	name := fs.String("org", "", "organization name, or id")
	mode := fs.String("mode", service.ImportMerge, "merge or replace")
	if code, stop := flags(fs, args, importUsage, stdout, stderr); stop {
		return code
	}
	if *name == "" || fs.NArg() != 1 || (*mode != service.ImportMerge && *mode != service.ImportReplace) {
		fmt.Fprintf(stderr, "orgsvc import: --org, a --mode of merge or replace, and one FILE are required\n\n%s", importUsage)
		return 2
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "orgsvc import: %v\n", err)
		return 1
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		fmt.Fprintf(stderr, "orgsvc import: %v\n", err)
		return 1
	}
	t, orgs, org, code := openOrg(ctx, getenv, stderr, "orgsvc import", *name)
	if t == nil {
		return code
	}
	defer t.close()
	var r io.Reader = f
	bar := progress(stderr, info.Size(), "reading", true)
	if bar != nil {
		pr := progressbar.NewReader(f, bar)
		r = &pr
	}
	limits := jsondoc.Limits{MaxKeys: t.cfg.MaxDocumentKeys}
	res, err := orgs.Import(ctx, service.OperatorPrincipal(org, "orgsvc import"), *mode, exportfmt.Reader(r, limits, t.cfg.MaxDocumentBytes))
	if bar != nil {
		_ = bar.Finish()
	}
	var bad *service.ImportProblemsError
	if errors.As(err, &bad) {
		for _, p := range bad.Problems {
			fmt.Fprintf(stderr, "line %d: %v: %s\n", p.Line, p.Loc, p.Msg)
		}
		fmt.Fprintf(stderr, "orgsvc import: %d problems; nothing was changed\n", bad.Total)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "orgsvc import: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "imported %d documents into %q (%s)\n", res.Documents, org.Name, res.Mode)
	return 0
}

package app

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/orgsvc/orgsvc/internal/model"
)

const orgUsage = `Usage:
  orgsvc org list [--prefix NAME] [--after NAME] [--limit N] [--json]
        list organizations by name, with their documents and bytes; --after
        the last name of a page gives the next one
  orgsvc org suspend --name NAME|ID [--json]
        refuse every request of the organization's members with 403; its
        data and members are kept
  orgsvc org resume --name NAME|ID [--json]
        end a suspension
  orgsvc org limits --name NAME|ID [--max-documents N] [--max-bytes N]
                    [--rate N] [--burst N] [--reset] [--json]
        show the organization's limits, or set its own (0: none; --reset:
        the server's settings again)
`

// orgCommand runs orgsvc org.
func orgCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, orgUsage)
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, orgUsage)
		return 0
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("orgsvc org "+sub, flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON, for scripts")
	var name, prefix, after *string
	var limit *int
	var maxDocs, maxBytes, burst *int64
	var rate *float64
	var reset *bool
	switch sub {
	case "list":
		prefix = fs.String("prefix", "", "only names whose slug begins with this one's")
		after = fs.String("after", "", "start after this name")
		limit = fs.Int("limit", 50, "page size, 1 to 1000")
	case "suspend", "resume":
		name = fs.String("name", "", "organization name, or id")
	case "limits":
		name = fs.String("name", "", "organization name, or id")
		maxDocs = fs.Int64("max-documents", -1, "most documents (0: no limit)")
		maxBytes = fs.Int64("max-bytes", -1, "most bytes, as the store counts them (0: no limit)")
		rate = fs.Float64("rate", -1, "requests per second over all members (0: no limit)")
		burst = fs.Int64("burst", -1, "burst above the rate")
		reset = fs.Bool("reset", false, "forget the organization's own limits")
	default:
		fmt.Fprintf(stderr, "orgsvc org: unknown command %q\n\n%s", sub, orgUsage)
		return 2
	}
	if code, stop := flags(fs, args, orgUsage, stdout, stderr); stop {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "orgsvc org %s: unexpected arguments %q\n", sub, fs.Args())
		return 2
	}
	if name != nil && *name == "" {
		fmt.Fprintf(stderr, "orgsvc org %s: --name is required\n", sub)
		return 2
	}
	if limit != nil && (*limit < 1 || *limit > 1000) {
		fmt.Fprintf(stderr, "orgsvc org list: --limit %d is outside 1..1000\n", *limit)
		return 2
	}
	t, code := openTool(ctx, getenv, stderr)
	if t == nil {
		return code
	}
	defer t.close()
	orgs := t.orgs()
	orgs.SetTenantLimits(tenantLimits(t.cfg))
	fail := func(err error) int {
		fmt.Fprintf(stderr, "orgsvc org %s: %v\n", sub, err)
		return 1
	}
	printJSON := func(v any) {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
	}
	if sub == "list" {
		page, more, err := orgs.ListOrgs(ctx, *prefix, *after, *limit)
		if err != nil {
			return fail(err)
		}
		type row struct {
			ID        string `json:"id"`
			Name      string `json:"organization_name"`
			Documents int64  `json:"documents"`
			Bytes     int64  `json:"bytes"`
			Suspended bool   `json:"suspended"`
		}
		rows := make([]row, 0, len(page))
		for _, o := range page {
			rows = append(rows, row{ID: o.Org.ID.Hex(), Name: o.Org.Name, Documents: o.Stats.Documents, Bytes: o.Stats.Bytes, Suspended: o.Org.Suspended})
		}
		var next *string
		if more {
			next = &page[len(page)-1].Org.Name
		}
		if *asJSON {
			printJSON(map[string]any{"items": rows, "next": next})
			return 0
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tDOCUMENTS\tBYTES\tSUSPENDED")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%v\n", r.ID, r.Name, r.Documents, r.Bytes, r.Suspended)
		}
		_ = tw.Flush()
		if next != nil {
			fmt.Fprintf(stdout, "more: --after %s\n", strconv.Quote(*next))
		}
		return 0
	}
	org, err := orgs.Lookup(ctx, *name)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", *name, err))
	}
	switch sub {
	case "suspend", "resume":
		if err := orgs.Suspend(ctx, org, sub == "suspend", "orgsvc org "+sub); err != nil {
			return fail(err)
		}
		if *asJSON {
			printJSON(map[string]any{"id": org.ID.Hex(), "organization_name": org.Name, "suspended": sub == "suspend"})
		} else {
			fmt.Fprintf(stdout, "%s %q\n", map[string]string{"suspend": "suspended", "resume": "resumed"}[sub], org.Name)
		}
		return 0
	}
	// limits
	own := model.OrgLimits{}
	if org.Limits != nil {
		own = *org.Limits
	}
	changed := *reset
	set := func(v int64, into **int64) {
		if v >= 0 {
			*into, changed = &v, true
		}
	}
	set(*maxDocs, &own.MaxDocuments)
	set(*maxBytes, &own.MaxBytes)
	if *rate >= 0 {
		own.RatePerSecond, changed = rate, true
	}
	if *burst >= 0 {
		b := int(*burst)
		own.RateBurst, changed = &b, true
	}
	if changed {
		l := &own
		if *reset {
			l = nil
		}
		if err := orgs.SetOrgLimits(ctx, org, l, "orgsvc org limits"); err != nil {
			return fail(err)
		}
		org.Limits = l
	}
	inForce := orgs.TenantLimits().With(org.Limits)
	if *asJSON {
		printJSON(map[string]any{"id": org.ID.Hex(), "organization_name": org.Name, "limits": inForce, "own": org.Limits})
		return 0
	}
	fmt.Fprintf(stdout, "%s (%s)\n  max documents    %s\n  max bytes        %s\n  requests/second  %s (burst %d)\n",
		org.Name, org.ID.Hex(), orNone(float64(inForce.MaxDocuments)), orNone(float64(inForce.MaxBytes)), orNone(inForce.RatePerSecond), inForce.RateBurst)
	return 0
}

// orNone writes a limit, "none" for 0.
func orNone(v float64) string {
	if v == 0 {
		return "none"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

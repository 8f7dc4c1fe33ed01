package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/service"
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
  orgsvc org deleted [--json]
        list the deleted organizations that may still be restored, with
        when each is purged (ORG_DELETE_RETENTION after its deletion)
  orgsvc org restore --id ID [--name NEW_NAME] [--owner EMAIL] [--json]
        bring a deleted organization back, with its documents and the
        members that can come back; --name when its name was taken
        meanwhile, --owner to make an existing account an owner
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
	var name, prefix, after, id, newName, owner *string
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
	case "deleted":
	case "restore":
		id = fs.String("id", "", "the deleted organization's id (orgsvc org deleted)")
		newName = fs.String("name", "", "the name to restore it under (default: its own)")
		owner = fs.String("owner", "", "e-mail of an existing account to make an owner")
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
	var orgID bson.ObjectID
	if id != nil {
		var err error
		if *id == "" {
			fmt.Fprintf(stderr, "orgsvc org %s: --id is required\n", sub)
			return 2
		}
		if orgID, err = bson.ObjectIDFromHex(*id); err != nil {
			fmt.Fprintf(stderr, "orgsvc org %s: --id %q is not an organization id (24 hex digits)\n", sub, *id)
			return 2
		}
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
		lines := make([][]any, len(rows))
		for i, r := range rows {
			lines[i] = []any{r.ID, r.Name, r.Documents, r.Bytes, r.Suspended}
		}
		printTable(stdout, []string{"ID", "NAME", "DOCUMENTS", "BYTES", "SUSPENDED"}, lines)
		if next != nil {
			fmt.Fprintf(stdout, "more: --after %s\n", strconv.Quote(*next))
		}
		return 0
	}
	switch sub {
	case "deleted":
		return listDeleted(ctx, orgs, *asJSON, stdout, printJSON, fail)
	case "restore":
		return restoreOrg(ctx, orgs, service.RestoreRequest{ID: orgID, Name: *newName, Owner: *owner, Command: "orgsvc org restore"},
			*asJSON, stdout, printJSON, fail)
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

// listDeleted runs orgsvc org deleted.
func listDeleted(ctx context.Context, orgs *service.OrgService, asJSON bool, stdout io.Writer, printJSON func(any), fail func(error) int) int {
	list, err := orgs.ListDeleted(ctx)
	if err != nil {
		return fail(err)
	}
	type row struct {
		ID        string    `json:"id"`
		Name      string    `json:"organization_name"`
		DeletedAt time.Time `json:"deleted_at"`
		Deadline  time.Time `json:"deadline"`
		Documents int64     `json:"documents"`
		Bytes     int64     `json:"bytes"`
		Members   int       `json:"members"`
		DeletedBy string    `json:"deleted_by"`
	}
	rows := make([]row, 0, len(list))
	for _, d := range list {
		a := d.Archive
		by := a.DeletedBy.Email
		if by == "" {
			by = a.DeletedBy.ID
		}
		rows = append(rows, row{ID: a.ID.Hex(), Name: a.Org.Name, DeletedAt: a.DeletedAt, Deadline: a.PurgeAt,
			Documents: d.Stats.Documents, Bytes: d.Stats.Bytes, Members: len(a.Members), DeletedBy: by})
	}
	if asJSON {
		printJSON(map[string]any{"items": rows})
		return 0
	}
	lines := make([][]any, len(rows))
	for i, r := range rows {
		lines[i] = []any{r.ID, r.Name, r.DeletedAt.Format(time.RFC3339), r.Deadline.Format(time.RFC3339), r.Documents, r.Members}
	}
	printTable(stdout, []string{"ID", "NAME", "DELETED", "DEADLINE", "DOCUMENTS", "MEMBERS"}, lines)
	return 0
}

// printTable writes rows under header in aligned columns.
func printTable(w io.Writer, header []string, rows [][]any) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, v := range r {
			cells[i] = fmt.Sprint(v)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	_ = tw.Flush()
}

// restoreOrg runs orgsvc org restore.
func restoreOrg(ctx context.Context, orgs *service.OrgService, req service.RestoreRequest, asJSON bool, stdout io.Writer, printJSON func(any), fail func(error) int) int {
	res, err := orgs.Restore(ctx, req)
	switch {
	case errors.Is(err, service.ErrNotDeleted):
		return fail(fmt.Errorf("%s: %w (orgsvc org deleted lists them)", req.ID.Hex(), err))
	case errors.Is(err, service.ErrOrgExists):
		return fail(fmt.Errorf("%w: restore it under another name with --name NEW_NAME", err))
	case errors.Is(err, service.ErrNoOwner):
		return fail(fmt.Errorf("%w (their accounts are gone or their e-mails taken): make an existing account an owner with --owner EMAIL", err))
	case errors.Is(err, service.ErrEmailTaken):
		return fail(fmt.Errorf("%w meanwhile: run the restore again", err))
	case errors.Is(err, service.ErrOrgBusy):
		return fail(fmt.Errorf("%w: retry in a moment", err))
	case err != nil:
		return fail(err)
	}
	type account struct {
		ID        string `json:"id"`
		Email     string `json:"email"`
		Role      string `json:"role,omitempty"`
		Recreated bool   `json:"recreated,omitempty"`
		Reason    string `json:"reason,omitempty"`
	}
	rows := func(list []service.Restored) []account {
		out := make([]account, 0, len(list))
		for _, r := range list {
			out = append(out, account{ID: r.AccountID.Hex(), Email: r.Email, Role: r.Role, Recreated: r.Recreated, Reason: r.Reason})
		}
		return out
	}
	members, left := rows(res.Members), rows(res.LeftOut)
	if asJSON {
		printJSON(map[string]any{"id": res.Org.ID.Hex(), "organization_name": res.Org.Name, "documents": res.Documents,
			"members": members, "left_out": left, "already": res.Already})
		return 0
	}
	if res.Already {
		fmt.Fprintf(stdout, "%q (%s) is restored already, with %d documents\n", res.Org.Name, res.Org.ID.Hex(), res.Documents)
		return 0
	}
	fmt.Fprintf(stdout, "restored %q (%s) with %d documents\n", res.Org.Name, res.Org.ID.Hex(), res.Documents)
	for _, m := range members {
		anew := ""
		if m.Recreated {
			anew = " (account made anew)"
		}
		fmt.Fprintf(stdout, "  %-7s %s%s\n", m.Role, m.Email, anew)
	}
	for _, m := range left {
		fmt.Fprintf(stdout, "  left out: %s (%s)\n", m.Email, m.Reason)
	}
	return 0
}

package chaos

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgsvc/orgsvc/internal/model"
)

// verifyAudit reads each organization's audit log from the store (orgsvc
// check has verified its chain) and checks it against the ledger: one
// org.created under the first acknowledged name; renames that form one
// path from it to the current name, through every acknowledged name; one
// org.deleted, last, for an acknowledged deletion.
func (r *runner) verifyAudit(ctx context.Context, cs []*client, cli *mongo.Client) error {
	logs, err := readLogs(ctx, cli)
	if err != nil {
		return err
	}
	for _, c := range cs {
		for _, o := range c.orgs {
			if o.id == "" || o.uncertain() {
				continue
			}
			subject := fmt.Sprintf("audit log of organization %s (%q)", o.id, o.name)
			if problem := auditProblem(o, logs[o.id]); problem != "" {
				r.violate("audit-log", subject, problem, o.id)
			}
		}
	}
	return nil
}

// readLogs reads every audit event of the store, through the driver, in
// one pass over each database's audit collection (the embedded store
// reads a whole collection for a range of _ids, so a read per log would
// read each collection once per organization in it), by organization id
// and in seq order.
func readLogs(ctx context.Context, cli *mongo.Client) (map[string][]model.Event, error) {
	dbs, err := cli.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	logs := map[string][]model.Event{}
	for _, db := range dbs {
		evs, err := findAll[model.Event](ctx, cli.Database(db).Collection(model.AuditCollection))
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			logs[ev.OrgID] = append(logs[ev.OrgID], ev)
		}
	}
	for _, evs := range logs {
		slices.SortFunc(evs, func(a, b model.Event) int { return cmp.Compare(a.Seq, b.Seq) })
	}
	return logs, nil
}

// auditProblem is what is wrong with o's events, or "".
func auditProblem(o *orgRec, evs []model.Event) string {
	var created, deleted int
	var path []string // the names the log says the organization had
	for i, ev := range evs {
		switch ev.Action {
		case "org.created":
			created++
			if len(ev.Targets) > 0 {
				path = append(path, ev.Targets[0].Name)
			}
		case "org.renamed":
			ch, ok := ev.Changes["organization_name"]
			if !ok || ch.From == nil || ch.To == nil {
				return fmt.Sprintf("event %d: a rename without its names", ev.Seq)
			}
			if len(path) == 0 || *ch.From != path[len(path)-1] {
				return fmt.Sprintf("event %d: renamed from %q, but the log's name then was %v", ev.Seq, *ch.From, path)
			}
			path = append(path, *ch.To)
		case "org.deleted":
			deleted++
			if i != len(evs)-1 {
				return fmt.Sprintf("event %d: org.deleted is followed by %s", ev.Seq, evs[i+1].Action)
			}
		}
	}
	switch {
	case created != 1:
		return fmt.Sprintf("%d org.created events, want 1", created)
	case o.deleted && deleted != 1:
		return fmt.Sprintf("an acknowledged deletion, %d org.deleted events", deleted)
	case !o.deleted && deleted != 0:
		return "org.deleted for an organization that is not deleted"
	case path[0] != o.names[0]:
		return fmt.Sprintf("created as %q, acknowledged as %q", path[0], o.names[0])
	case path[len(path)-1] != o.name:
		return fmt.Sprintf("the log's last name %q, the acknowledged one %q", path[len(path)-1], o.name)
	}
	// Every acknowledged name is on the path, in order.
	at := 0
	for _, n := range o.names {
		i := slices.Index(path[at:], n)
		if i < 0 {
			return fmt.Sprintf("the acknowledged names %q are not all, in order, on the log's path %q", o.names, path)
		}
		at += i
	}
	return ""
}

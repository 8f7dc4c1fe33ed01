package audit

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
)

// Broken is the first link of a chain that does not hold.
type Broken struct {
	Org    string
	Seq    int64
	Reason string
}

func (b *Broken) Error() string {
	return fmt.Sprintf("organization %s: event %d: %s", b.Org, b.Seq, b.Reason)
}

// Chain checks events one at a time, in sequence order: each one's hash,
// its id, and its link to the one before. The first event seen may start
// anywhere (the sweeper removes a log's oldest events); its prev_hash is
// taken as given.
type Chain struct {
	Org    string
	Events int64
	seq    int64
	hash   string
}

// Next checks ev, the event after the last one checked; a *Broken error
// when it does not follow.
func (c *Chain) Next(ev *model.Event) error {
	broken := func(format string, args ...any) error {
		return &Broken{Org: c.Org, Seq: ev.Seq, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case ev.OrgID != c.Org:
		return broken("org_id is %q", ev.OrgID)
	case ev.ID != fmt.Sprintf("%s:%d", c.Org, ev.Seq):
		return broken("id is %q", ev.ID)
	case c.Events == 0 && ev.Seq == 1 && ev.PrevHash != ZeroHash:
		return broken("the first event's prev_hash is not zero")
	case c.Events > 0 && ev.Seq != c.seq+1:
		return broken("follows event %d", c.seq)
	case c.Events > 0 && ev.PrevHash != c.hash:
		return broken("prev_hash is not the hash of event %d", c.seq)
	}
	if h := Hash(*ev); h != ev.Hash {
		return broken("hash is %s, the event's content hashes to %s", ev.Hash, h)
	}
	c.Events++
	c.seq, c.hash = ev.Seq, ev.Hash
	return nil
}

// Verify checks org's whole log and returns how many events it holds.
// A broken link is a *Broken error.
func (l *Log) Verify(ctx context.Context, org bson.ObjectID) (int64, error) {
	c := &Chain{Org: org.Hex()}
	err := l.Scan(ctx, org, emptyFilter, c.Next)
	return c.Events, err
}

// VerifyAll checks every log, reading each database's events once, and
// calls report once per log, in _id order, with its events and nil or
// the *Broken error of its first broken link. Another error ends it.
func (l *Log) VerifyAll(ctx context.Context, report func(org bson.ObjectID, events int64, err error)) error {
	dbs, err := l.repo.Databases(ctx)
	if err != nil {
		return err
	}
	for _, db := range dbs {
		var c *Chain
		var org bson.ObjectID
		var broken error
		end := func() {
			if c != nil {
				report(org, c.Events, broken)
			}
		}
		err := l.repo.ScanDatabase(ctx, db, func(ev *model.Event) error {
			o, ok := model.EventKeyOrg(ev.Key)
			if !ok {
				return fmt.Errorf("%s.%s: _id %q is no event's", db, model.AuditCollection, ev.Key)
			}
			if c == nil || o != org {
				end()
				c, org, broken = &Chain{Org: o.Hex()}, o, nil
			}
			if broken == nil {
				broken = c.Next(ev)
			}
			return nil
		})
		if err != nil {
			return err
		}
		end()
	}
	return nil
}

package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

var errStop = errors.New("stop")

// Swept is what a sweep removed.
type Swept struct {
	Events int64 // events removed from the start of live logs
	Logs   int   // logs of deleted organizations removed whole
}

// Sweep removes the events older than retention from the start of every
// log: the first event kept keeps its prev_hash, so the rest still
// verifies. A live organization's newest event always stays, so that its
// chain goes on from it. A deleted organization's log (live says which
// are live) goes whole once its newest event is older than retention. Two
// instances sweeping at once remove the same events.
func (l *Log) Sweep(ctx context.Context, retention time.Duration, live func(context.Context, bson.ObjectID) (bool, error)) (Swept, error) {
	var out Swept
	if retention <= 0 {
		return out, nil
	}
	cutoff := Time(l.now().Add(-retention))
	logs, err := l.repo.Logs(ctx)
	if err != nil {
		return out, err
	}
	for _, at := range logs {
		org := at.Org
		var keep, last int64
		err := l.repo.Scan(ctx, at, repository.AuditFilter{}, func(ev *model.Event) error {
			last = ev.Seq
			if ev.Time >= cutoff {
				keep = ev.Seq
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			return out, fmt.Errorf("sweep the audit log of %s: %w", org.Hex(), err)
		}
		if keep == 0 && last != 0 {
			// Every event is older than the retention.
			alive, err := live(ctx, org)
			if err != nil {
				return out, err
			}
			if !alive {
				if err := l.repo.Drop(ctx, at); err != nil {
					return out, err
				}
				l.Forget(org)
				out.Logs++
				continue
			}
			keep = last
		}
		if keep == 0 {
			continue
		}
		n, err := l.repo.DeleteBefore(ctx, at, keep)
		if err != nil {
			return out, err
		}
		out.Events += n
	}
	return out, nil
}

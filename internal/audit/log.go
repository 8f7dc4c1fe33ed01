package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// TimeFormat is an event's time: UTC, milliseconds, fixed width, so that
// times compare as strings.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// Time formats t as an event time.
func Time(t time.Time) string { return t.UTC().Format(TimeFormat) }

// headTTL bounds how long a known head is trusted without reading: well
// inside the shortest AUDIT_RETENTION (1h), so that a stale head can never
// point into the part of a log the sweeper removed (which never removes a
// live organization's newest event).
const headTTL = time.Minute

// Log appends to and reads the organizations' audit logs. Appends to one
// organization's log are gapless across instances: the next event's seq
// is inserted as _id, and an instance that loses the race reads the
// winner's event and tries the next seq. A source already in the log is
// refused by a unique index.
type Log struct {
	repo *repository.AuditRepository
	now  func() time.Time
	// locate, when set, says which database holds a live organization's
	// tenant collection (see SetLocator).
	locate func(context.Context, bson.ObjectID) (string, error)

	mu    sync.Mutex
	heads map[bson.ObjectID]*head
	// dbs is where each log this instance has met is; a log never moves.
	dbs map[bson.ObjectID]string
	// hints are the databases of organizations told by Know.
	hints map[bson.ObjectID]string
	// prepared are the databases whose audit collection this instance
	// has made sure of.
	prepared map[string]bool
}

// head is what this instance knows of one organization's log.
type head struct {
	mu   sync.Mutex // serializes this instance's appends to the log
	seq  int64
	hash string
	read time.Time // when seq was learned; zero: unknown
}

// NewLog returns the audit logs over repo.
func NewLog(repo *repository.AuditRepository) *Log { return NewLogAt(repo, time.Now) }

// NewLogAt is NewLog with a clock of its own (for tests of retention).
func NewLogAt(repo *repository.AuditRepository, now func() time.Time) *Log {
	return &Log{repo: repo, now: now, heads: map[bson.ObjectID]*head{},
		dbs: map[bson.ObjectID]string{}, hints: map[bson.ObjectID]string{}, prepared: map[string]bool{}}
}

// SetLocator sets how the log finds the database of a live organization:
// f returns the database that holds its tenant collection (as Know takes
// it), or repository.ErrNotFound when there is no such organization.
func (l *Log) SetLocator(f func(context.Context, bson.ObjectID) (string, error)) { l.locate = f }

// Know tells the log that org's tenant collection is in the database db
// (model.Organization.TenantDB: "" is the master database), when the
// caller knows it without a read (a sign-up, a deletion, which removes
// the organization's record).
func (l *Log) Know(org bson.ObjectID, db string) {
	if db == "" {
		db = l.repo.Master()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hints[org] = db
}

// where is the log of org: in the organization's tenant database; for an
// organization that no longer exists, wherever its log is kept (the
// master database when it has none).
func (l *Log) where(ctx context.Context, org bson.ObjectID) (repository.LogRef, error) {
	l.mu.Lock()
	db, known := l.dbs[org]
	l.mu.Unlock()
	if known {
		return repository.LogRef{DB: db, Org: org}, nil
	}
	db, err := l.find(ctx, org)
	if err != nil {
		return repository.LogRef{}, err
	}
	l.mu.Lock()
	if known, ok := l.dbs[org]; ok {
		db = known
	} else {
		l.dbs[org] = db
	}
	l.mu.Unlock()
	return repository.LogRef{DB: db, Org: org}, nil
}

// find is where's answer for a log met for the first time.
func (l *Log) find(ctx context.Context, org bson.ObjectID) (string, error) {
	l.mu.Lock()
	hint := l.hints[org]
	delete(l.hints, org)
	l.mu.Unlock()
	if hint != "" {
		return hint, nil
	}
	if l.locate != nil {
		db, err := l.locate(ctx, org)
		if err == nil && db == "" {
			return l.repo.Master(), nil
		}
		if err == nil {
			return db, nil
		}
		if !errors.Is(err, repository.ErrNotFound) {
			return "", fmt.Errorf("find the audit log: %w", err)
		}
	}
	refs, err := l.repo.Logs(ctx)
	if err != nil {
		return "", fmt.Errorf("find the audit log: %w", err)
	}
	for _, r := range refs {
		if r.Org == org {
			return r.DB, nil
		}
	}
	return l.repo.Master(), nil
}

// Logs returns the organizations that have a log, live or deleted.
func (l *Log) Logs(ctx context.Context) ([]bson.ObjectID, error) {
	refs, err := l.repo.Logs(ctx)
	if err != nil {
		return nil, err
	}
	orgs := make([]bson.ObjectID, len(refs))
	l.mu.Lock()
	for i, r := range refs {
		orgs[i] = r.Org
		if _, ok := l.dbs[r.Org]; !ok {
			l.dbs[r.Org] = r.DB
		}
	}
	l.mu.Unlock()
	return orgs, nil
}

func (l *Log) head(org bson.ObjectID) *head {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.heads[org]
	if h == nil {
		h = &head{}
		l.heads[org] = h
	}
	return h
}

// Append adds ev to org's log, filling in its seq, id, org, time, chain and
// source (a new one unless ev names its own). An event whose source is in
// the log already is not added again: Append then returns nil and leaves
// ev's seq zero.
func (l *Log) Append(ctx context.Context, org bson.ObjectID, ev *model.Event) error {
	if ev.Source == "" {
		ev.Source = "r:" + bson.NewObjectID().Hex()
	}
	ev.OrgID = org.Hex()
	at, err := l.where(ctx, org)
	if err != nil {
		return err
	}
	h := l.head(org)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := l.prepare(ctx, at.DB); err != nil {
		return err
	}
	// A log this instance has not written to yet is taken to be new: true
	// of a sign-up's, and one insert finds out otherwise.
	guess := h.read.IsZero()
	if guess {
		h.seq, h.hash = 0, ZeroHash
	} else if l.now().Sub(h.read) > headTTL {
		if err := l.learnHead(ctx, at, h); err != nil {
			return err
		}
	}
	for {
		ev.Seq, ev.PrevHash = h.seq+1, h.hash
		ev.ID = model.EventID(org, ev.Seq)
		ev.Time = Time(l.now())
		ev.Hash = Hash(*ev)
		err := l.repo.Insert(ctx, at, ev)
		if err == nil {
			h.seq, h.hash = ev.Seq, ev.Hash
			if guess {
				h.read = l.now()
			}
			return nil
		}
		if !errors.Is(err, repository.ErrDuplicate) {
			h.read = time.Time{}
			return fmt.Errorf("append to the audit log: %w", err)
		}
		// Either another instance took this seq, or the source is in the
		// log already (a step running again).
		there, err := l.repo.Event(ctx, at, ev.Seq)
		if errors.Is(err, repository.ErrNotFound) {
			ev.Seq = 0 // the seq was free: the source was taken
			return nil
		}
		if err != nil {
			h.read = time.Time{}
			return fmt.Errorf("append to the audit log: %w", err)
		}
		if there.Source == ev.Source {
			*ev = *there
			return nil
		}
		if guess {
			guess = false
			if err := l.learnHead(ctx, at, h); err != nil {
				return err
			}
			continue
		}
		h.seq, h.hash, h.read = there.Seq, there.Hash, l.now()
	}
}

// learnHead reads the newest event of at into h.
func (l *Log) learnHead(ctx context.Context, at repository.LogRef, h *head) error {
	last, err := l.repo.Last(ctx, at)
	switch {
	case errors.Is(err, repository.ErrNotFound):
		h.seq, h.hash = 0, ZeroHash
	case err != nil:
		return fmt.Errorf("read the audit log's head: %w", err)
	default:
		h.seq, h.hash = last.Seq, last.Hash
	}
	h.read = l.now()
	return nil
}

// Page is a page of org's events, newest first (see
// repository.AuditRepository.Page); before 0 starts at the newest.
func (l *Log) Page(ctx context.Context, org bson.ObjectID, f repository.AuditFilter, before int64, limit int) ([]model.Event, bool, error) {
	at, err := l.where(ctx, org)
	if err != nil {
		return nil, false, err
	}
	return l.repo.Page(ctx, at, f, before, limit)
}

var emptyFilter repository.AuditFilter

// Scan calls fn with org's events that match f, in sequence order.
func (l *Log) Scan(ctx context.Context, org bson.ObjectID, f repository.AuditFilter, fn func(*model.Event) error) error {
	at, err := l.where(ctx, org)
	if err != nil {
		return err
	}
	return l.repo.Scan(ctx, at, f, fn)
}

// Forget drops what this instance knows of org's log (after the log is
// removed).
func (l *Log) Forget(org bson.ObjectID) {
	l.mu.Lock()
	delete(l.heads, org)
	delete(l.dbs, org)
	l.mu.Unlock()
}

// prepare makes sure of the audit collection of the database db, once per
// instance, before its first event there.
func (l *Log) prepare(ctx context.Context, db string) error {
	l.mu.Lock()
	done := l.prepared[db]
	l.mu.Unlock()
	if done {
		return nil
	}
	if err := l.repo.Prepare(ctx, db); err != nil {
		return fmt.Errorf("prepare the audit log: %w", err)
	}
	l.mu.Lock()
	l.prepared[db] = true
	l.mu.Unlock()
	return nil
}

// MoveLegacy moves the logs that the master database holds in the layout
// of one collection per organization, which this version replaced, into
// the audit collections of the organizations' tenant databases (a deleted
// organization's into the master database's). Each instance runs it at
// start-up, before it serves: a move run again, or by two instances at
// once, ends the same. It returns how many logs it moved.
func (l *Log) MoveLegacy(ctx context.Context) (int, error) {
	orgs, err := l.repo.LegacyLogs(ctx)
	if err != nil {
		return 0, err
	}
	for i, org := range orgs {
		db, err := l.find(ctx, org)
		if err != nil {
			return i, err
		}
		if err := l.prepare(ctx, db); err != nil {
			return i, err
		}
		if _, err := l.repo.MoveLegacy(ctx, org, db); err != nil {
			return i, fmt.Errorf("move the audit log of %s: %w", org.Hex(), err)
		}
		l.Forget(org)
	}
	return len(orgs), nil
}

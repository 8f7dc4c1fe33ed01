package api

import (
	"bufio"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/audit"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/service"
)

// AuditEvent is one event of an organization's audit log. hash is the
// SHA-256 of the event's canonical form (see the README), prev_hash the
// hash of the event before it.
type AuditEvent struct {
	ID       string                 `json:"id" example:"6650f1c2a1b2c3d4e5f60718:42"`
	Seq      int64                  `json:"seq" example:"42"`
	OrgID    string                 `json:"org_id" example:"6650f1c2a1b2c3d4e5f60718"`
	Time     string                 `json:"time" example:"2026-12-02T09:30:00.123Z"`
	Action   string                 `json:"action" example:"member.role_changed"`
	Actor    AuditActor             `json:"actor"`
	Targets  []AuditTarget          `json:"targets"`
	Changes  map[string]AuditChange `json:"changes"`
	Context  AuditContext           `json:"context"`
	PrevHash string                 `json:"prev_hash" example:"9f2c…"`
	Hash     string                 `json:"hash" example:"4be1…"`
} //	@name	AuditEvent

// AuditActor is who did it: an account, or the system.
type AuditActor struct {
	Type  string `json:"type" example:"account" enums:"account,system"`
	ID    string `json:"id" example:"6650f1c2a1b2c3d4e5f60719"`
	Email string `json:"email" example:"admin@acme.example.com"`
} //	@name	AuditActor

// AuditTarget is what it was done to.
type AuditTarget struct {
	Type string `json:"type" example:"account" enums:"organization,account,invitation,document"`
	ID   string `json:"id" example:"6650f1c2a1b2c3d4e5f6071a"`
	Name string `json:"name" example:"bob@acme.example.com"`
} //	@name	AuditTarget

// AuditChange is a field's value before and after (null: none).
type AuditChange struct {
	From *string `json:"from" example:"member" extensions:"x-nullable"`
	To   *string `json:"to" example:"admin" extensions:"x-nullable"`
} //	@name	AuditChange

// AuditContext is the request it came from; empty strings for the system.
type AuditContext struct {
	RequestID     string `json:"request_id" example:"3f8a0c1e9b7d4a52b6e1c0d9f8a7b6c5"`
	ClientAddress string `json:"client_address" example:"203.0.113.7"`
	UserAgent     string `json:"user_agent" example:"curl/8.5.0"`
} //	@name	AuditContext

// AuditPage is a page of the audit log, newest first; next is the cursor
// of the following page (pass it as after), null on the last one.
type AuditPage struct {
	Items []AuditEvent `json:"items"`
	Next  *string      `json:"next" example:"42" extensions:"x-nullable"`
} //	@name	AuditPage

func auditEvent(ev model.Event) AuditEvent {
	ev = audit.Normal(ev)
	out := AuditEvent{
		ID: ev.ID, Seq: ev.Seq, OrgID: ev.OrgID, Time: ev.Time, Action: ev.Action,
		Actor:    AuditActor(ev.Actor),
		Targets:  make([]AuditTarget, 0, len(ev.Targets)),
		Changes:  make(map[string]AuditChange, len(ev.Changes)),
		Context:  AuditContext(ev.Context),
		PrevHash: ev.PrevHash, Hash: ev.Hash,
	}
	for _, t := range ev.Targets {
		out.Targets = append(out.Targets, AuditTarget(t))
	}
	for k, c := range ev.Changes {
		out.Changes[k] = AuditChange(c)
	}
	return out
}

// auditContext carries, for the audit log, the request's id, client
// address and user agent.
func (s *server) auditContext(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := model.EventContext{ClientAddress: s.clientAddr(r), UserAgent: truncate(r.UserAgent(), 256)}
		if ri, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
			c.RequestID = ri.id
		}
		next.ServeHTTP(w, r.WithContext(audit.WithRequest(r.Context(), c)))
	})
}

// truncate cuts s to at most n bytes, on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}

// auditFilter reads the filters of an audit listing or export.
func auditFilter(r *http.Request, withListing bool) (repository.AuditFilter, error) {
	q := r.URL.Query()
	var f repository.AuditFilter
	var problems fieldErrors
	for _, name := range []string{"since", "until"} {
		v := q.Get(name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			problems = append(problems, FieldError{Loc: []any{"query", name}, Msg: "not an RFC 3339 time, e.g. 2026-12-01T00:00:00Z", Type: "value_error.datetime"})
			continue
		}
		// Event times are whole milliseconds: a bound within one is
		// rounded up, so that since stays inclusive and until exclusive.
		if ms := t.Truncate(time.Millisecond); !ms.Equal(t) {
			t = ms.Add(time.Millisecond)
		}
		if name == "since" {
			f.Since = audit.Time(t)
		} else {
			f.Until = audit.Time(t)
		}
	}
	if withListing {
		if v := q.Get("action"); v != "" {
			if !slices.Contains(service.Actions, v) {
				problems = append(problems, FieldError{Loc: []any{"query", "action"}, Msg: "not an audit action", Type: "value_error.audit_action"})
			}
			f.Action = v
		}
		if v := q.Get("actor"); v != "" {
			if _, err := bson.ObjectIDFromHex(v); err != nil {
				problems = append(problems, FieldError{Loc: []any{"query", "actor"}, Msg: "not an account id (24 hex digits)", Type: "value_error.account_id"})
			}
			f.Actor = v
		}
	}
	if len(problems) > 0 {
		return f, problems
	}
	return f, nil
}

// handleAudit godoc
//
//	@Summary		List the audit log
//	@Description	The organization's audit log, newest first, a page at a time: who did what, when, from where. Owners and admins only. Pass the answer's next as after for the following page. action, actor (an account id), since (inclusive) and until (exclusive, RFC 3339 times) narrow it. Each event's hash chains it to the one before; the README tells how to verify the chain.
//	@Tags			audit
//	@Produce		json
//	@Security		BearerAuth
//	@Param			limit	query		int		false	"Page size, 1 to 500"	default(50)	minimum(1)	maximum(500)
//	@Param			after	query		string	false	"Cursor: the previous page's next"
//	@Param			action	query		string	false	"Only this action, e.g. member.role_changed"
//	@Param			actor	query		string	false	"Only events by this account id"
//	@Param			since	query		string	false	"Only events at or after this time (RFC 3339)"
//	@Param			until	query		string	false	"Only events before this time (RFC 3339)"
//	@Success		200		{object}	AuditPage
//	@Failure		401		{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Header			401		{string}	WWW-Authenticate	"Bearer challenge (RFC 6750)"
//	@Failure		403		{object}	ErrorResponse	"Members and viewers may not read the audit log; or Organization suspended"
//	@Failure		422		{object}	ValidationError
//	@Failure		500		{object}	ErrorResponse
//	@Failure		503		{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Failure		429	{object}	ErrorResponse	"Past the organization's request rate (Retry-After)"
//	@Router			/org/audit [get]
func (s *server) handleAudit(w http.ResponseWriter, r *http.Request) error {
	limit, err := pageLimit(r.URL.Query().Get("limit"))
	if err != nil {
		return err
	}
	var before int64
	if v := r.URL.Query().Get("after"); v != "" {
		if before, err = strconv.ParseInt(v, 10, 64); err != nil || before < 1 {
			return fieldErrors{{Loc: []any{"query", "after"}, Msg: "not a cursor of this listing", Type: "value_error.cursor"}}
		}
	}
	f, err := auditFilter(r, true)
	if err != nil {
		return err
	}
	evs, more, err := s.orgs.AuditPage(r.Context(), principal(r), f, before, limit)
	if err != nil {
		return err
	}
	page := AuditPage{Items: make([]AuditEvent, 0, len(evs))}
	for _, ev := range evs {
		page.Items = append(page.Items, auditEvent(ev))
	}
	if more {
		next := strconv.FormatInt(evs[len(evs)-1].Seq, 10)
		page.Next = &next
	}
	encode(w, http.StatusOK, page)
	return nil
}

// handleAuditExport godoc
//
//	@Summary		Export the audit log
//	@Description	Streams the organization's audit log as NDJSON, one event a line (AuditEvent), oldest first, in constant memory; since (inclusive) and until (exclusive) narrow it. Owners and admins only. The export is itself recorded, as audit.exported, before the stream starts.
//	@Tags			audit
//	@Produce		application/x-ndjson,json
//	@Security		BearerAuth
//	@Param			since	query		string	false	"Only events at or after this time (RFC 3339)"
//	@Param			until	query		string	false	"Only events before this time (RFC 3339)"
//	@Success		200		{array}		AuditEvent	"NDJSON (application/x-ndjson): one AuditEvent a line, not a JSON array; error answers are JSON"
//	@Failure		401		{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Header			401		{string}	WWW-Authenticate	"Bearer challenge (RFC 6750)"
//	@Failure		403		{object}	ErrorResponse	"Members and viewers may not read the audit log; or Organization suspended"
//	@Failure		422		{object}	ValidationError
//	@Failure		500		{object}	ErrorResponse
//	@Failure		503		{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Failure		429	{object}	ErrorResponse	"Past the organization's request rate (Retry-After)"
//	@Router			/org/audit/export [get]
func (s *server) handleAuditExport(w http.ResponseWriter, r *http.Request) error {
	f, err := auditFilter(r, false)
	if err != nil {
		return err
	}
	var out *bufio.Writer
	var enc *json.Encoder
	err = s.orgs.AuditExport(r.Context(), principal(r), f, func(ev *model.Event) error {
		if out == nil {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(http.StatusOK)
			out = bufio.NewWriterSize(w, 64<<10)
			enc = json.NewEncoder(out)
			enc.SetEscapeHTML(false)
		}
		return enc.Encode(auditEvent(*ev))
	})
	if out == nil {
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		// The status is sent: the stream ends short, and the log says why.
		s.log.Error("audit export cut short", "err", err)
		panic(http.ErrAbortHandler) // the client sees a broken stream, not a short one
	}
	return nil
}
